package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/connlimit"
)

// Config configures a Server.
type Config struct {
	// Addr is host:port to listen on, UDP and TCP on the same port. With
	// port 0 both get the same free port.
	Addr   string
	Logger *zap.Logger
	// Observer, if set, is called once per reply sent, after it is
	// written, with the query type (0 without a question), the response
	// code and the time since the query was read. It runs on the query's
	// goroutine: keep it cheap and allocation-free.
	Observer func(qtype uint16, rcode int, d time.Duration)
	// RateLimit, when above 0, limits UDP responses to each client subnet
	// (/24, /56) to this many per second (rrl.go); 0 turns it off.
	RateLimit int
	// TCPConns caps the live TCP connections per client address and in
	// all; over a cap a connection is closed as soon as it is accepted.
	// Zero values: no cap.
	TCPConns connlimit.Limits
	// OnTCPReject, if set, is told of every TCP connection closed for
	// being over TCPConns (perIP: the per-address cap); keep it cheap.
	OnTCPReject func(addr netip.Addr, perIP bool)
	// DrainSlack is added to the TTL after a change before a resolver not
	// yet drained counts as past the TTL (drain.go); 0: DefaultDrainSlack.
	DrainSlack time.Duration
	// DrainMaxPopulation caps the resolver subnets measured per change;
	// 0: DefaultDrainMaxPopulation.
	DrainMaxPopulation int
	// TSIG holds the keys that sign and verify transfers and NOTIFY
	// (tsig.go); nil: none, and every signed request gets BADKEY.
	TSIG *Keyring
	// Now is the clock signatures are dated by; nil: time.Now.
	Now func() time.Time
	// IXFRJournal is how many zone changes the IXFR journal keeps
	// (journal.go); 0: DefaultJournalSize; below 0: none, and every IXFR
	// not up to date gets the whole zone.
	IXFRJournal int
	// BusyPoll, when above 0, is how long a UDP reader keeps polling its
	// empty socket before it waits in the netpoller (Linux only; clamped
	// to MaxBusyPoll). Queries arriving within the window skip an epoll
	// wake-up and a scheduler hand-off, which at moderate rates is most
	// of a reply's latency; the price is CPU, up to a core per listener
	// while queries keep arriving within the window, and up to 1 ms more
	// for the process's other sockets (busyPollPark). 0: off.
	BusyPoll time.Duration
}

// MaxBusyPoll is the longest Config.BusyPoll: past it a reader only burns
// CPU for queries that a wait would serve as fast.
const MaxBusyPoll = time.Millisecond

// udpReadSize is the buffer for incoming UDP queries: more than we advertise,
// so an odd large query still parses.
const udpReadSize = 4096

// Server is an authoritative DNS server for the zone of the steering config,
// answering from the last state given to Update. Several may live in one
// process; each owns its handler and listeners.
type Server struct {
	cfg Config
	log *zap.Logger

	view          atomic.Pointer[view]
	updateMu      sync.Mutex // serialises Update's rebuilds
	refusedLogged atomic.Bool

	closed atomic.Bool // set by Shutdown or a failed Start; never cleared

	busyPolled atomic.Uint64 // UDP reads that found data by busy polling

	geo atomic.Pointer[geoRef] // nearest's GeoIP database (nearest.go)

	rrl    *rrl // nil: no rate limit
	notify *notifier

	// DNSSEC (sign.go): the signer, under updateMu (nil: unsigned), and
	// why signed answers are refused (SetDNSSECRefusal; nil: they are not).
	signer  *signer
	refusal atomic.Pointer[refusal]
	// The two reasons to refuse, under refusalMu: the controller's
	// (SetDNSSECRefusal) and a lack of keys (buildSigned); refusal is
	// the one in force.
	refusalMu              sync.Mutex
	ctlRefusal, keyRefusal *refusal
	// dirKeys is the signer's key directory as last loaded, for readers
	// that must not wait for a build (DNSSECKeys).
	dirKeys    atomic.Pointer[DNSSECKeys]
	resignStop chan struct{} // closed by Shutdown; nil when not signing
	resignDone chan struct{} // closed when the re-signing loop has returned

	// Drain tracking (drain.go): the general path's recent answers, the
	// changes being measured, and when recording began (Unix ns, 0: not
	// yet). The UDP readers' tables are udpRecs, under mu.
	generalRec     answerTable
	watches        atomic.Pointer[[]*DrainWatch]
	recordingSince atomic.Int64
	udpRecs        []*answerTable

	mu       sync.Mutex // guards the lifecycle below
	running  bool
	udp, tcp *dns.Server // udp is nil when our own loops serve UDP (udp.go)
	pc       net.PacketConn
	ln       *connListener
	capped   atomic.Pointer[connlimit.Listener] // under ln, set by Start
	done     chan struct{}                      // closed when every serve loop has returned
}

// New returns a server; it answers nothing until Start, and REFUSED until
// the first Update with a config.
func New(cfg Config) *Server {
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	cfg.BusyPoll = min(max(cfg.BusyPoll, 0), MaxBusyPoll)
	s := &Server{cfg: cfg, log: log.With(zap.String("component", "dns")), rrl: newRRL(cfg.RateLimit)}
	return s
}

// EnableDNSSEC makes the server sign its zone with cfg's keys (sign.go).
// Call it once, before the first Update and Start.
func (s *Server) EnableDNSSEC(cfg DNSSECConfig) error {
	sg, err := newSigner(cfg)
	if err != nil {
		return fmt.Errorf("dnssec: %w", err)
	}
	s.updateMu.Lock()
	defer s.updateMu.Unlock()
	if s.signer != nil || s.view.Load() != nil {
		return errors.New("dnssec: enable it once, before the first Update")
	}
	s.signer = sg
	s.dirKeys.Store(sg.all)
	return nil
}

func (s *Server) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

// Update installs the answers for st. It rebuilds the prepared view only
// when st's serial or config differs from the current one, and swaps it in
// atomically: queries never wait for it. Call it with states in apply
// order. A state without a config changes nothing; a state whose view
// cannot be built keeps the previous view (static stability).
func (s *Server) Update(st *state.State) { s.update(st, nil) }

func (s *Server) update(st *state.State, changes []DrainChange) []*DrainWatch {
	if st == nil || st.Config == nil {
		return nil
	}
	s.updateMu.Lock()
	defer s.updateMu.Unlock()
	cur := s.view.Load()
	v := cur
	keyReason := s.keyReason()
	if cur == nil || cur.cfg != st.Config || cur.stateSerial != max(st.Serial, 1) {
		var err error
		if v, keyReason, err = s.buildSigned(st, cur); err != nil {
			s.log.Error("cannot build DNS answers; keeping the previous ones",
				zap.Uint32("serial", st.Serial), zap.Error(err))
			v, keyReason = cur, s.keyReason()
		} else {
			v.journal = nextJournal(cur, v, s.journalSize())
		}
	}
	if v == nil {
		return nil
	}
	// The watches go live before the new answers: none of them is missed.
	var added []*DrainWatch
	for _, ch := range changes {
		added = append(added, s.watch(v, ch))
	}
	if len(added) > 0 {
		var ws []*DrainWatch
		if p := s.watches.Load(); p != nil {
			ws = slices.Clone(*p)
		}
		ws = append(ws, added...)
		s.watches.Store(&ws)
	}
	if v == cur {
		return added
	}
	s.installView(v, keyReason)
	if n := s.notifier(); n != nil && (cur == nil || cur.serial != v.serial) {
		n.changed()
	}
	if cur == nil || cur.cfg != st.Config {
		s.log.Info("DNS zone loaded", zap.String("zone", v.zone), zap.Uint32("serial", v.serial),
			zap.Int("names", len(v.names)))
	} else {
		s.log.Debug("DNS answers updated", zap.String("zone", v.zone), zap.Uint32("serial", v.serial))
	}
	return added
}

// Serial is the SOA serial served (the state serial, plus a signing
// period offset with signed transfers: xfrsign.go); 0 before the first
// zone.
func (s *Server) Serial() uint32 {
	if v := s.view.Load(); v != nil {
		return v.serial
	}
	return 0
}

// journalSize is how many changes the IXFR journal keeps (0: none).
func (s *Server) journalSize() int {
	switch n := s.cfg.IXFRJournal; {
	case n == 0:
		return DefaultJournalSize
	case n < 0:
		return 0
	default:
		return n
	}
}

// Start binds UDP and TCP on the configured address and returns once both
// are serving. A server that failed to start, or was shut down, cannot be
// started again.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed.Load():
		return errors.New("dns server: already shut down")
	case s.running:
		return errors.New("dns server: already started")
	}
	pc, ln, err := listen(s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("dns server: %w", err)
	}
	capped := connlimit.Wrap(ln, s.cfg.TCPConns, s.cfg.OnTCPReject)
	s.capped.Store(capped)
	s.pc, s.ln = pc, &connListener{Listener: capped, conns: map[*trackedConn]struct{}{}}

	// Our own UDP loops (the fast path) need no per-packet control messages,
	// which they only can do without when the address is a specific one:
	// bound to a wildcard, replies must leave from the address the query
	// came to, which miekg/dns's server handles.
	udpConn, own := s.pc.(*net.UDPConn)
	if ip := s.pc.LocalAddr().(*net.UDPAddr).IP; ip.IsUnspecified() {
		own = false
	}
	udpUp, tcpUp := make(chan struct{}), make(chan struct{})
	s.tcp = &dns.Server{Listener: s.ln, Handler: s, DecorateReader: s.decorate, MsgAcceptFunc: acceptQuery,
		TsigProvider: tsigProvider{s.cfg.TSIG}, NotifyStartedFunc: func() { close(tcpUp) }}
	servers := []*dns.Server{s.tcp}
	if own {
		close(udpUp)
	} else {
		s.udp = &dns.Server{PacketConn: s.pc, Handler: s, UDPSize: udpReadSize, DecorateReader: s.decorate,
			MsgAcceptFunc: acceptQuery, TsigProvider: tsigProvider{s.cfg.TSIG}, NotifyStartedFunc: func() { close(udpUp) }}
		servers = append(servers, s.udp)
	}

	errc := make(chan error, 2)
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Go(func() {
			err := srv.ActivateAndServe()
			errc <- err
			if err != nil && !s.closed.Load() {
				s.log.Error("DNS listener stopped", zap.String("addr", s.cfg.Addr), zap.Error(err))
			}
		})
	}
	s.recordingSince.Store(time.Now().UnixNano())
	if own {
		for range udpLoops() {
			rec := new(answerTable)
			s.udpRecs = append(s.udpRecs, rec)
			wg.Go(func() { s.serveUDP(udpConn, rec) })
		}
	}
	s.done = make(chan struct{})
	go func() {
		wg.Wait()
		close(s.done)
	}()

	for _, up := range []chan struct{}{udpUp, tcpUp} {
		select {
		case <-up:
		case err := <-errc:
			// Closing the sockets ends whichever loop is still running.
			s.closed.Store(true)
			s.pc.Close()
			s.ln.Close()
			<-s.done
			if err == nil {
				err = errors.New("listener stopped")
			}
			return fmt.Errorf("dns server: %w", err)
		}
	}
	var local net.IP
	if ip := s.pc.LocalAddr().(*net.UDPAddr).IP; !ip.IsUnspecified() {
		local = ip
	}
	s.notify = newNotifier(s, local)
	s.notify.run()
	if s.view.Load() != nil {
		s.notify.changed()
	}
	if s.signer != nil {
		stop, done := make(chan struct{}), make(chan struct{})
		s.resignStop, s.resignDone = stop, done
		every := resignEvery(s.signer.cfg.Refresh)
		go func() {
			defer close(done)
			s.resignLoop(stop, every)
		}()
	}
	s.running = true
	udpAddr, tcpAddr := s.pc.LocalAddr(), s.ln.Addr()
	s.log.Info("DNS server listening", zap.Stringer("udp", udpAddr), zap.Stringer("tcp", tcpAddr))
	return nil
}

// Addr returns the bound addresses, nil before Start.
func (s *Server) Addr() (udp, tcp net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pc == nil || s.ln == nil {
		return nil, nil
	}
	return s.pc.LocalAddr(), s.ln.Addr()
}

// Shutdown stops listening and waits for the queries in flight. When ctx
// ends first it closes every connection and returns ctx's error, once the
// goroutines have gone. It is idempotent and safe before Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	wasRunning := s.running
	s.running = false
	s.closed.Store(true)
	udp, tcp, done := s.udp, s.tcp, s.done
	resignStop, resignDone := s.resignStop, s.resignDone
	s.resignStop = nil
	s.mu.Unlock()
	if resignStop != nil {
		close(resignStop)
		<-resignDone
	}
	if done == nil {
		return nil // never started
	}
	var errs []error
	if wasRunning {
		for _, srv := range []*dns.Server{udp, tcp} {
			if srv == nil {
				continue
			}
			if err := srv.ShutdownContext(ctx); err != nil && !errors.Is(err, ctx.Err()) {
				errs = append(errs, err)
			}
		}
		if udp == nil {
			s.pc.Close() // ends our UDP loops
		}
	}
	if n := s.notifier(); n != nil {
		n.close()
	}
	select {
	case <-done:
	case <-ctx.Done():
		// Handlers stuck writing to slow clients: cut them off.
		s.pc.Close()
		s.ln.Close()
		s.ln.closeAll()
		<-done
		errs = append(errs, ctx.Err())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dns server shutdown: %w", err)
	}
	if wasRunning {
		s.log.Info("DNS server stopped")
	}
	return nil
}

// TCPRejected is how many TCP connections were closed on accept for being
// over Config.TCPConns.
func (s *Server) TCPRejected() uint64 {
	if l := s.capped.Load(); l != nil {
		return l.Rejected()
	}
	return 0
}

// BusyPollReads is how many UDP reads found their queries by busy polling
// (Config.BusyPoll), each a netpoller wait saved.
func (s *Server) BusyPollReads() uint64 { return s.busyPolled.Load() }

// notifier returns the NOTIFY sender, nil before Start.
func (s *Server) notifier() *notifier {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notify
}

// udpLoops is how many goroutines read the UDP socket.
func udpLoops() int { return min(runtime.GOMAXPROCS(0), 4) }

// listen binds UDP then TCP on the same port. With port 0 the kernel picks
// the UDP port; should TCP be taken on it, another is tried.
func listen(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("address %q: %w", addr, err)
	}
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err // already names "listen udp" and the address
		}
		_, bound, _ := net.SplitHostPort(pc.LocalAddr().String())
		ln, err := net.Listen("tcp", net.JoinHostPort(host, bound))
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if port != "0" || attempt == 9 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("listen tcp %s: %w", net.JoinHostPort(host, bound), err)
		}
	}
}
