package connlimit

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// dialFrom connects to addr from the loopback address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByPeer reports whether the server closed c (a read sees EOF or a
// reset within the timeout).
func closedByPeer(c net.Conn, within time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(within))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil
}

type server struct {
	ln    *Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// serve accepts and holds every connection, as an idle HTTP server would.
func startServer(t *testing.T, lim Limits) (*server, *[]netip.Addr, *sync.Mutex) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var rejMu sync.Mutex
	var rejected []netip.Addr
	s := &server{ln: Wrap(raw, lim, func(a netip.Addr, _ bool) {
		rejMu.Lock()
		rejected = append(rejected, a)
		rejMu.Unlock()
	})}
	s.wg.Go(func() {
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	})
	t.Cleanup(func() {
		s.ln.Close()
		s.wg.Wait()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	return s, &rejected, &rejMu
}

func (s *server) waitLive(t *testing.T, ip string, want int) {
	t.Helper()
	a := netip.MustParseAddr(ip)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, n := s.ln.Live(a)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("live connections from %s: %d, want %d", ip, n, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPerIPCap(t *testing.T) {
	s, rejected, mu := startServer(t, Limits{PerIP: 3})
	addr := s.ln.Addr().String()
	var held []net.Conn
	for range 3 {
		held = append(held, dialFrom(t, "127.0.0.1", addr))
	}
	s.waitLive(t, "127.0.0.1", 3)
	over := dialFrom(t, "127.0.0.1", addr)
	if !closedByPeer(over, 5*time.Second) {
		t.Fatal("a fourth connection from one address was not closed")
	}
	// Another address is not affected by the first one's cap.
	other := dialFrom(t, "127.0.0.2", addr)
	s.waitLive(t, "127.0.0.2", 1)
	if closedByPeer(other, 100*time.Millisecond) {
		t.Fatal("a connection from another address was closed")
	}
	for _, c := range held {
		if closedByPeer(c, 10*time.Millisecond) {
			t.Fatal("a connection within the cap was closed")
		}
	}
	if got := s.ln.Rejected(); got != 1 {
		t.Fatalf("Rejected() = %d, want 1", got)
	}
	mu.Lock()
	if len(*rejected) != 1 || (*rejected)[0] != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("onReject saw %v, want [127.0.0.1]", *rejected)
	}
	mu.Unlock()

	// Closing one (server side) frees its slot.
	s.mu.Lock()
	var first net.Conn
	for _, c := range s.conns {
		if c.RemoteAddr().(*net.TCPAddr).IP.Equal(net.ParseIP("127.0.0.1")) {
			first = c
			break
		}
	}
	s.mu.Unlock()
	first.Close()
	first.Close() // a second Close must not release twice
	s.waitLive(t, "127.0.0.1", 2)
	again := dialFrom(t, "127.0.0.1", addr)
	s.waitLive(t, "127.0.0.1", 3)
	if closedByPeer(again, 100*time.Millisecond) {
		t.Fatal("a connection after one was released was closed")
	}
}

func TestTotalCap(t *testing.T) {
	s, _, _ := startServer(t, Limits{Total: 2})
	addr := s.ln.Addr().String()
	dialFrom(t, "127.0.0.1", addr)
	dialFrom(t, "127.0.0.2", addr)
	s.waitLive(t, "127.0.0.2", 1)
	s.waitLive(t, "127.0.0.1", 1)
	over := dialFrom(t, "127.0.0.3", addr)
	if !closedByPeer(over, 5*time.Second) {
		t.Fatal("a connection over the total cap was not closed")
	}
	if total, _ := s.ln.Live(netip.Addr{}); total != 2 {
		t.Fatalf("total live = %d, want 2", total)
	}
}

func TestNoCaps(t *testing.T) {
	s, _, _ := startServer(t, Limits{})
	addr := s.ln.Addr().String()
	for range 20 {
		dialFrom(t, "127.0.0.1", addr)
	}
	s.waitLive(t, "127.0.0.1", 20)
	if s.ln.Rejected() != 0 {
		t.Fatal("connections rejected without caps")
	}
}

func TestCloseUnblocksAccept(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Wrap(raw, Limits{PerIP: 1}, nil)
	done := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		done <- err
	}()
	ln.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

func TestCapTotal(t *testing.T) {
	for _, tc := range []struct {
		want  int
		limit uint64
		out   int
	}{
		{1024, 0, 1024},
		{1024, 1 << 20, 1024},
		{1024, 1024, 256},
		{0, 1024, 256},
		{0, 0, 0},
		{100, 512, 100},
	} {
		if got := CapTotal(tc.want, tc.limit); got != tc.out {
			t.Errorf("CapTotal(%d, %d) = %d, want %d", tc.want, tc.limit, got, tc.out)
		}
	}
}

func TestRaiseFileLimit(t *testing.T) {
	soft, err := RaiseFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	if soft == 0 {
		t.Fatal("RaiseFileLimit returned 0 on a unix system")
	}
}
