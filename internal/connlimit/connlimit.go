// Package connlimit bounds the connections a listener holds: at most
// PerIP live connections from one remote address and at most Total in all.
// A connection over either cap is closed as soon as it is accepted, before
// any byte is read, so a client holding many idle connections costs the
// process at most PerIP file descriptors and never starves the other
// listeners (Raft, DNS) of theirs.
//
// Counting happens in Accept and in the returned connection's Close, so the
// wrapper must be the innermost one (under tls.NewListener): the TLS
// handshake of an over-cap connection is never started.
package connlimit

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Limits are the caps of a Listener; 0 means no cap.
type Limits struct {
	// PerIP is the most live connections from one remote IP address.
	PerIP int
	// Total is the most live connections in all.
	Total int
}

// Listener is a net.Listener that enforces Limits.
type Listener struct {
	net.Listener
	lim Limits
	// onReject, if set, is called (outside the lock) with the remote
	// address of every connection closed for being over a cap.
	onReject func(addr netip.Addr, perIP bool)

	mu    sync.Mutex
	perIP map[netip.Addr]int
	total int

	rejected atomic.Uint64
}

// Wrap returns ln bounded by lim. onReject, if not nil, is told of every
// connection refused (perIP says which cap it hit); it must be cheap.
func Wrap(ln net.Listener, lim Limits, onReject func(addr netip.Addr, perIP bool)) *Listener {
	return &Listener{Listener: ln, lim: lim, onReject: onReject, perIP: map[netip.Addr]int{}}
}

// Accept returns the next connection within the caps; connections over
// them are closed and never returned.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		ok, perIP := l.admit(ip)
		if ok {
			return &conn{Conn: c, l: l, ip: ip}, nil
		}
		_ = c.Close()
		l.rejected.Add(1)
		if l.onReject != nil {
			l.onReject(ip, perIP)
		}
	}
}

// admit counts a new connection from ip if it is within the caps; when it
// is not, perIP says whether the per-address cap refused it.
func (l *Listener) admit(ip netip.Addr) (ok, perIP bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lim.Total > 0 && l.total >= l.lim.Total {
		return false, false
	}
	if l.lim.PerIP > 0 && l.perIP[ip] >= l.lim.PerIP {
		return false, true
	}
	l.total++
	l.perIP[ip]++
	return true, false
}

func (l *Listener) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if n := l.perIP[ip] - 1; n > 0 {
		l.perIP[ip] = n
	} else {
		delete(l.perIP, ip)
	}
}

// Live returns the connections open now, in all and from ip.
func (l *Listener) Live(ip netip.Addr) (total, fromIP int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.perIP[ip.Unmap()]
}

// Rejected is how many connections were closed for being over a cap.
func (l *Listener) Rejected() uint64 { return l.rejected.Load() }

// remoteIP is c's remote address without its port or an IPv4-in-IPv6
// prefix; connections without an IP address (Unix sockets, pipes in tests)
// all count as the zero address.
func remoteIP(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// conn releases its slot once, on the first Close.
type conn struct {
	net.Conn
	l    *Listener
	ip   netip.Addr
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}

// Unwrap returns the underlying connection (for callers that need its
// concrete type, e.g. *net.TCPConn).
func (c *conn) Unwrap() net.Conn { return c.Conn }

// FileShare is the share of the process's open-file limit one listener's
// Total may use at most (CapTotal): the rest stays for Raft, the log, the
// snapshots, gossip, DNS and the other listener.
const FileShare = 4

// CapTotal returns want, lowered to fileLimit/FileShare when fileLimit (the
// soft RLIMIT_NOFILE) is known and that is smaller. want 0 (no cap) is
// also lowered.
func CapTotal(want int, fileLimit uint64) int {
	if fileLimit == 0 {
		return want
	}
	most := int(min(fileLimit/FileShare, 1<<30))
	if want == 0 || want > most {
		return most
	}
	return want
}
