package dnsserver

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/miekg/dns"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"
)

func TestSockaddrAddrPort(t *testing.T) {
	v4 := func(a [4]byte, port uint16) (sa unix.RawSockaddrInet6, l uint32) {
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
		s4.Family = unix.AF_INET
		p := (*[2]byte)(unsafe.Pointer(&s4.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		s4.Addr = a
		return sa, unix.SizeofSockaddrInet4
	}
	v6 := func(a [16]byte, port uint16) (sa unix.RawSockaddrInet6, l uint32) {
		sa.Family = unix.AF_INET6
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		sa.Addr = a
		return sa, unix.SizeofSockaddrInet6
	}
	for _, tc := range []struct {
		name string
		sa   func() (unix.RawSockaddrInet6, uint32)
		want netip.AddrPort
	}{
		{"IPv4", func() (unix.RawSockaddrInet6, uint32) { return v4([4]byte{192, 0, 2, 7}, 53001) },
			netip.MustParseAddrPort("192.0.2.7:53001")},
		{"IPv6", func() (unix.RawSockaddrInet6, uint32) {
			return v6(netip.MustParseAddr("2001:db8::1").As16(), 1)
		}, netip.MustParseAddrPort("[2001:db8::1]:1")},
		{"IPv4 too short", func() (unix.RawSockaddrInet6, uint32) {
			sa, _ := v4([4]byte{192, 0, 2, 7}, 53)
			return sa, 8
		}, netip.AddrPort{}},
		{"IPv6 too short", func() (unix.RawSockaddrInet6, uint32) {
			sa, _ := v6(netip.MustParseAddr("::1").As16(), 53)
			return sa, unix.SizeofSockaddrInet4
		}, netip.AddrPort{}},
		{"unknown family", func() (unix.RawSockaddrInet6, uint32) {
			return unix.RawSockaddrInet6{Family: unix.AF_UNIX}, unix.SizeofSockaddrInet6
		}, netip.AddrPort{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sa, l := tc.sa()
			if got := sockaddrAddrPort(&sa, l); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestUDPBatchesReachEverySender sends queries from many sockets at once,
// so that reads return several datagrams from different senders, and
// checks that each sender gets exactly the answer to its own query, on
// IPv4 and IPv6 loopback.
func TestUDPBatchesReachEverySender(t *testing.T) {
	for _, tc := range []struct {
		addr     string
		busyPoll time.Duration
	}{
		{"127.0.0.1:0", 0},
		{"[::1]:0", 0},
		{"127.0.0.1:0", MaxBusyPoll},
	} {
		addr := tc.addr
		t.Run(fmt.Sprintf("%s busy-poll %v", addr, tc.busyPoll), func(t *testing.T) {
			s := New(Config{Addr: addr, Logger: zaptest.NewLogger(t), BusyPoll: tc.busyPoll})
			s.Update(withWeights(t, configured(t, testConfig()), 50, 30, 20))
			if err := s.Start(); err != nil {
				if addr[0] == '[' {
					t.Fatalf("IPv6 loopback: %v", err)
				}
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := s.Shutdown(ctx); err != nil {
					t.Errorf("shutdown: %v", err)
				}
			})
			u, _ := s.Addr()
			const clients, perClient = 16, 8 // 128 datagrams: within a default socket buffer
			conns := make([]*net.UDPConn, clients)
			for i := range conns {
				c, err := net.DialUDP("udp", nil, u.(*net.UDPAddr))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				conns[i] = c
			}
			// Every client sends all its queries before anyone reads, so
			// the server's reads see full batches from mixed senders.
			for r := range perClient {
				for i, c := range conns {
					m := query("api.example.com.", dns.TypeA)
					m.Id = uint16(i<<8 | r)
					pkt, err := m.Pack()
					if err != nil {
						t.Fatal(err)
					}
					if _, err := c.Write(pkt); err != nil {
						t.Fatal(err)
					}
				}
			}
			buf := make([]byte, 1500)
			for i, c := range conns {
				seen := make(map[uint16]bool)
				for range perClient {
					_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
					n, err := c.Read(buf)
					if err != nil {
						t.Fatalf("client %d: %v (got %d answers)", i, err, len(seen))
					}
					var r dns.Msg
					if err := r.Unpack(buf[:n]); err != nil {
						t.Fatal(err)
					}
					if int(r.Id>>8) != i || seen[r.Id] || len(r.Answer) == 0 || r.Rcode != dns.RcodeSuccess {
						t.Fatalf("client %d got id %#x (seen %v), %d answers, rcode %d", i, r.Id, seen[r.Id], len(r.Answer), r.Rcode)
					}
					seen[r.Id] = true
				}
			}
		})
	}
}

// TestBusyPoll reads datagrams sent while the reader waits, and checks
// which reads found theirs by polling: only with a window set, not yet
// over, the server not stopping, and the reader back from its last park
// less than parkEvery ago (else it parks once, so that the scheduler sees
// the process's other sockets).
func TestBusyPoll(t *testing.T) {
	for _, tc := range []struct {
		name       string
		busyPoll   time.Duration
		parkEvery  time.Duration
		stopping   bool
		sendAfter  time.Duration
		wantPolled []uint64 // the count after each read
	}{
		{"off", 0, time.Minute, false, 50 * time.Millisecond, []uint64{0, 0, 0, 0}},
		// The first read parks: the reader has never been awake. Then a
		// window far longer than the waits catches every datagram.
		{"on", time.Minute, time.Minute, false, 50 * time.Millisecond, []uint64{0, 1, 2, 3}},
		// Polled 700ms since it woke, the reader parks once, then polls
		// again.
		{"parks every parkEvery", time.Minute, 500 * time.Millisecond, false, 700 * time.Millisecond, []uint64{0, 1, 1, 2}},
		// A window long over when the datagram comes: the reader parked.
		{"window ends", time.Millisecond, time.Minute, false, 300 * time.Millisecond, []uint64{0, 0, 0, 0}},
		{"stopping", time.Minute, time.Minute, true, 50 * time.Millisecond, []uint64{0, 0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var stop atomic.Bool
			var polled atomic.Uint64
			stop.Store(tc.stopping)
			bufs := [][]byte{make([]byte, 512), make([]byte, 512)}
			io, err := newUDPIO(conn, bufs, tc.busyPoll, &stop, &polled)
			if err != nil {
				t.Fatal(err)
			}
			io.(*mmsgIO).parkEvery = tc.parkEvery
			c, err := net.DialUDP("udp", nil, conn.LocalAddr().(*net.UDPAddr))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			type result struct {
				n   int
				err error
			}
			ns, from := make([]int, 2), make([]netip.AddrPort, 2)
			// One goroutine reads back to back, as serveUDP does.
			start, done := make(chan struct{}), make(chan result)
			go func() {
				for range start {
					n, err := io.read(ns, from)
					done <- result{n, err}
				}
			}()
			defer close(start)
			for i, want := range tc.wantPolled {
				start <- struct{}{}
				time.Sleep(tc.sendAfter) // the reader is polling or parked by now
				msg := fmt.Sprintf("query %d", i)
				if _, err := c.Write([]byte(msg)); err != nil {
					t.Fatal(err)
				}
				select {
				case r := <-done:
					if r.err != nil || r.n != 1 || string(bufs[0][:ns[0]]) != msg || from[0] != c.LocalAddr().(*net.UDPAddr).AddrPort() {
						t.Fatalf("read %d: %d datagrams (%q from %v), err %v", i, r.n, bufs[0][:ns[0]], from[0], r.err)
					}
				case <-time.After(30 * time.Second):
					t.Fatalf("datagram %d was never read", i)
				}
				if got := polled.Load(); got != want {
					t.Errorf("after read %d, reads found by polling: %d, want %d", i, got, want)
				}
			}
		})
	}
}
