package raftnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// The first byte a dialer sends says what the connection is for.
const (
	// forwardMagic opens a forward-RPC connection (forward.go).
	forwardMagic byte = 0xE5
	// maxRaftRPCType is the highest first byte handed to raft. raft v1.8
	// opens every stream with its RPC type, 0 (AppendEntries) to 4
	// (RequestPreVote); a little headroom is left for new RPC types, which
	// raft itself rejects if it does not know them.
	maxRaftRPCType byte = 0x1F
)

const (
	defaultPeekTimeout = 5 * time.Second
	acceptBackoffMin   = 5 * time.Millisecond
	acceptBackoffMax   = time.Second
)

// connWrapper upgrades a raw connection, e.g. to TLS. Server wrappers run on
// the per-connection goroutine under the peek deadline, so a TLS wrapper
// should complete the handshake (HandshakeContext) before returning.
type connWrapper func(ctx context.Context, c net.Conn) (net.Conn, error)

// streamLayer is a raft.StreamLayer that multiplexes raft RPCs and this
// package's forward RPCs on one TCP listener, and dials from the node's own
// IP.
//
// Accepting: one goroutine accepts; each connection gets its own goroutine
// that reads the first byte under a deadline, so an idle or slow client never
// blocks others. Raft connections (first byte <= maxRaftRPCType) are handed,
// with the byte pushed back, to raft's Accept through a channel; forward
// connections go to onForward on the same goroutine; anything else is
// closed.
//
// Every connection, accepted or dialed, is tracked and closed by Close, so no
// reader stays blocked after shutdown.
type streamLayer struct {
	ln          net.Listener
	advertise   *net.TCPAddr
	dialer      net.Dialer
	peekTimeout time.Duration
	onForward   func(net.Conn) // owns the conn; runs on the accepting goroutine
	wrapServer  connWrapper    // nil: plain TCP
	wrapClient  connWrapper    // nil: plain TCP
	log         *zap.Logger

	serving   atomic.Bool // set by serve
	raftCh    chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu    sync.Mutex
	shut  bool
	conns map[*trackedConn]struct{}
}

var _ raft.StreamLayer = (*streamLayer)(nil)

// newStreamLayer binds addr and advertises adv. Call serve to start
// accepting.
func newStreamLayer(addr, adv netip.AddrPort, onForward func(net.Conn), log *zap.Logger) (*streamLayer, error) {
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	tcpAddr := net.TCPAddrFromAddrPort(addr)
	return &streamLayer{
		ln:          ln,
		advertise:   net.TCPAddrFromAddrPort(adv),
		dialer:      net.Dialer{LocalAddr: &net.TCPAddr{IP: tcpAddr.IP}},
		peekTimeout: defaultPeekTimeout,
		onForward:   onForward,
		log:         log,
		raftCh:      make(chan net.Conn),
		closed:      make(chan struct{}),
		conns:       make(map[*trackedConn]struct{}),
	}, nil
}

// serve starts the accept loop.
func (s *streamLayer) serve() {
	s.serving.Store(true)
	s.wg.Add(1)
	go s.acceptLoop()
}

func (s *streamLayer) acceptLoop() {
	defer s.wg.Done()
	backoff := time.Duration(0)
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.isClosed() {
				return
			}
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			s.log.Warn("raft listener accept failed", zap.Error(err), zap.Duration("retry-in", backoff))
			t := time.NewTimer(backoff)
			select {
			case <-s.closed:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		backoff = 0
		tc, ok := s.track(c)
		if !ok {
			return
		}
		s.wg.Add(1)
		go s.route(tc)
	}
}

// route reads the first byte of an accepted connection and hands the
// connection to raft or to the forward handler.
func (s *streamLayer) route(raw *trackedConn) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), s.peekTimeout)
	defer cancel()
	_ = raw.SetDeadline(time.Now().Add(s.peekTimeout))
	c := net.Conn(raw)
	if s.wrapServer != nil {
		var err error
		if c, err = s.wrapServer(ctx, raw); err != nil {
			s.log.Debug("raft listener: handshake failed", zap.Stringer("remote-addr", raw.RemoteAddr()), zap.Error(err))
			_ = raw.Close()
			return
		}
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		s.log.Debug("raft listener: no first byte", zap.Stringer("remote-addr", raw.RemoteAddr()), zap.Error(err))
		_ = c.Close()
		return
	}
	_ = raw.SetDeadline(time.Time{})
	switch {
	case b[0] == forwardMagic:
		s.onForward(c)
	case b[0] <= maxRaftRPCType:
		select {
		case s.raftCh <- &prefixConn{Conn: c, first: b[0]}:
		case <-s.closed:
			_ = c.Close()
		}
	default:
		s.log.Debug("raft listener: unknown first byte, closing", zap.Stringer("remote-addr", raw.RemoteAddr()), zap.Uint8("byte", b[0]))
		_ = c.Close()
	}
}

// Accept implements net.Listener for raft's NetworkTransport.
func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.raftCh:
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

// Addr is the advertised address: AdvertiseAddr, or RaftAddr.
func (s *streamLayer) Addr() net.Addr { return s.advertise }

// Dial implements raft.StreamLayer. raft writes its RPC type byte first.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.dial(ctx, string(address))
}

// dialForward opens a forward-RPC connection to addr.
func (s *streamLayer) dialForward(ctx context.Context, addr string) (net.Conn, error) {
	c, err := s.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetWriteDeadline(d)
	}
	if _, err := c.Write([]byte{forwardMagic}); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("open forward stream to %s: %w", addr, err)
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}

// dial connects to addr from the node's own IP.
func (s *streamLayer) dial(ctx context.Context, addr string) (net.Conn, error) {
	if s.isClosed() {
		return nil, fmt.Errorf("dial %s: %w", addr, net.ErrClosed)
	}
	c, err := s.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err // a *net.OpError naming both addresses
	}
	tc, ok := s.track(c)
	if !ok {
		return nil, fmt.Errorf("dial %s: %w", addr, net.ErrClosed)
	}
	if s.wrapClient == nil {
		return tc, nil
	}
	wc, err := s.wrapClient(ctx, tc)
	if err != nil {
		_ = tc.Close()
		return nil, fmt.Errorf("dial %s: handshake: %w", addr, err)
	}
	return wc, nil
}

// Close stops accepting and closes every tracked connection. It does not
// wait for goroutines; see wait. Idempotent.
func (s *streamLayer) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.shut = true
		conns := s.conns
		s.conns = nil
		s.mu.Unlock()
		close(s.closed)
		if e := s.ln.Close(); e != nil && !errors.Is(e, net.ErrClosed) {
			err = fmt.Errorf("close raft listener: %w", e)
		}
		for c := range conns {
			_ = c.Conn.Close()
		}
	})
	return err
}

// wait blocks until the accept loop and every per-connection goroutine
// (including forward handlers) have returned. Call after Close.
func (s *streamLayer) wait() { s.wg.Wait() }

func (s *streamLayer) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

func (s *streamLayer) track(c net.Conn) (*trackedConn, bool) {
	tc := &trackedConn{Conn: c, s: s}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		_ = c.Close()
		return nil, false
	}
	s.conns[tc] = struct{}{}
	return tc, true
}

func (s *streamLayer) untrack(tc *trackedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, tc) // no-op on the nil map after Close
}

// trackedConn removes itself from its stream layer when closed.
type trackedConn struct {
	net.Conn
	s    *streamLayer
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		c.s.untrack(c)
		err = c.Conn.Close()
	})
	return err
}

// prefixConn replays the first byte consumed by route. Reads come from one
// goroutine (raft's connection handler), so no locking is needed.
type prefixConn struct {
	net.Conn
	first    byte
	consumed bool
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if c.consumed || len(p) == 0 {
		return c.Conn.Read(p)
	}
	p[0] = c.first
	c.consumed = true
	return 1, nil
}
