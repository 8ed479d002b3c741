package dnsserver

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// NOTIFY (RFC 1996). Every controller sends NOTIFY from its own replica
// whenever the serial it serves changes, not only the leader: followers
// serve DNS too, a secondary treats a NOTIFY as a hint to check the serial
// (duplicates from several primaries cost one SOA query each), and no
// leadership hand-off can lose one. A newer serial cancels the retries of
// an older one.
const notifyAttempts = 5

// notifyTimeout is the first wait for an answer; it doubles per attempt
// (a variable for tests).
var notifyTimeout = time.Second

type notifier struct {
	s     *Server
	local net.IP // the DNS server's address, the source of NOTIFY (nil: any)
	kick  chan struct{}
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func newNotifier(s *Server, local net.IP) *notifier {
	return &notifier{s: s, local: local, kick: make(chan struct{}, 1), stop: make(chan struct{})}
}

// changed asks for a NOTIFY round for the current view; it never blocks.
func (n *notifier) changed() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *notifier) run() {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		var stopRound context.CancelFunc
		defer func() {
			if stopRound != nil {
				stopRound()
			}
		}()
		for {
			select {
			case <-n.stop:
				return
			case <-n.kick:
			}
			if stopRound != nil {
				stopRound()
			}
			v := n.s.view.Load()
			if v == nil || len(v.secondaries) == 0 {
				continue
			}
			ctx, cancel := context.WithCancel(context.Background())
			stopRound = cancel
			for _, sec := range v.secondaries {
				n.wg.Add(1)
				go func() {
					defer n.wg.Done()
					n.notify(ctx, v, sec)
				}()
			}
		}
	}()
}

func (n *notifier) close() {
	n.once.Do(func() { close(n.stop) })
	n.wg.Wait()
}

// notify sends one NOTIFY for v's serial to sec, retrying with backoff
// until it is answered.
//
// To a secondary with a TSIG key the NOTIFY is signed and the answer must
// be; a key this server does not have is logged as an error (the config
// names it, but this server's keys file lacks it) and nothing is sent.
func (n *notifier) notify(ctx context.Context, v *view, sec secondary) {
	log := n.s.log.With(zap.Stringer("secondary", sec.addr), zap.Uint32("serial", v.serial))
	var key *tsigKey
	if sec.key != "" {
		if key = n.s.cfg.TSIG.key(sec.key); key == nil {
			log.Error("secondary names a TSIG key this server does not have (--tsig-keys); not sending NOTIFY, and its transfers will get BADKEY",
				zap.String("key", sec.key))
			return
		}
	}
	wait := notifyTimeout
	for attempt := 1; ; attempt++ {
		m := new(dns.Msg)
		m.SetNotify(v.zone)
		m.Authoritative = true
		m.Answer = v.soa
		if key != nil {
			m.SetTsig(key.name, key.alg, tsigFudge, time.Now().Unix())
		}
		r, err := n.exchange(ctx, m, sec.addr, wait)
		if err == nil {
			switch {
			case r.Rcode != dns.RcodeSuccess:
				log.Warn("NOTIFY answered with an error", zap.String("rcode", dns.RcodeToString[r.Rcode]))
			case key != nil && r.IsTsig() == nil:
				log.Warn("answer to a signed NOTIFY is not signed")
			default:
				log.Debug("NOTIFY acknowledged", zap.Int("attempt", attempt))
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		if attempt == notifyAttempts {
			log.Warn("NOTIFY not acknowledged; giving up (the secondary still polls at the SOA refresh)",
				zap.Int("attempts", attempt), zap.Error(err))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// exchange sends m to sec over UDP from our address and waits up to wait
// for the answer; cancelling ctx ends the wait.
func (n *notifier) exchange(ctx context.Context, m *dns.Msg, sec netip.AddrPort, wait time.Duration) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: wait, TsigProvider: tsigProvider{n.s.cfg.TSIG}}
	if n.local != nil {
		c.Dialer = &net.Dialer{Timeout: wait, LocalAddr: &net.UDPAddr{IP: n.local}}
	}
	conn, err := c.Dial(sec.String())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	r, _, err := c.ExchangeWithConn(m, conn)
	return r, err
}
