package raftnode

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

func newTestStream(t *testing.T, ip string, onForward func(net.Conn)) *streamLayer {
	t.Helper()
	ap := netip.MustParseAddrPort(freeAddr(t, ip))
	s, err := newStreamLayer(ap, ap, onForward, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s.peekTimeout = 300 * time.Millisecond
	s.serve()
	return s
}

// expectClosed checks that the peer closes c within d.
func expectClosed(t *testing.T, c net.Conn, d time.Duration, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Fatalf("%s: want the server to close it, got %v", what, err)
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

func TestStreamLayerMultiplexing(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	forwarded := make(chan []byte, 1)
	srv := newTestStream(t, "127.0.9.121", func(c net.Conn) {
		defer c.Close()
		b, _ := io.ReadAll(c)
		forwarded <- b
	})
	cli := newTestStream(t, "127.0.9.122", nil)
	defer func() {
		for _, s := range []*streamLayer{cli, srv} {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
			s.wait()
		}
	}()

	// Idle and garbage connections do not hold up raft's Accept.
	idle, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	garbage, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer garbage.Close()
	if _, err := garbage.Write([]byte{0x7F, 1, 2, 3}); err != nil {
		t.Fatal(err)
	}

	// A raft connection: dialed from the client's own IP, first byte
	// replayed to raft.
	rc, err := cli.Dial(raft.ServerAddress(srv.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Write([]byte("\x01hello")); err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := srv.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	var ac net.Conn
	select {
	case ac = <-accepted:
	case <-time.After(2 * time.Second):
		t.Fatal("raft connection not accepted while an idle connection is open")
	}
	if got := ac.RemoteAddr().(*net.TCPAddr).IP.String(); got != "127.0.9.122" {
		t.Fatalf("raft connection came from %s, want the dialer's own IP 127.0.9.122", got)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(ac, buf); err != nil || string(buf) != "\x01hello" {
		t.Fatalf("raft side read %q, %v; want the first byte replayed", buf, err)
	}

	// A forward connection goes to onForward without the magic byte.
	fc, err := cli.dialForward(t.Context(), srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fc.Write([]byte("fwd")); err != nil {
		t.Fatal(err)
	}
	_ = fc.Close()
	select {
	case got := <-forwarded:
		if !bytes.Equal(got, []byte("fwd")) {
			t.Fatalf("forward handler got %q", got)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("forward connection not routed")
	}

	expectClosed(t, garbage, 2*time.Second, "garbage connection")
	start := time.Now()
	expectClosed(t, idle, 2*time.Second, "idle connection")
	if el := time.Since(start); el > time.Second {
		t.Fatalf("idle connection closed after %v, want about the 300ms peek timeout", el)
	}

	// Close unblocks Accept and closes tracked connections.
	_ = srv.Close()
	if _, err := srv.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close = %v, want net.ErrClosed", err)
	}
	_ = ac.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := ac.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("accepted conn after Close: read err %v, want net.ErrClosed", err)
	}
	if _, err := cli.Dial(raft.ServerAddress(srv.Addr().String()), time.Second); err == nil {
		t.Fatal("dial to a closed stream layer succeeded")
	}
}
