package dnsserver

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// floodResult is what the spoofed sources of a flood sent and got back.
type floodResult struct {
	queries, full, slipped int
	// received is the queries the server's socket took: queries less
	// those the kernel dropped on a full receive buffer (a loaded machine
	// can keep the server from reading for a while).
	received          int
	bytesIn, bytesOut int64
	elapsed           time.Duration
}

func (r floodResult) factor() float64 { return float64(r.bytesOut) / float64(r.bytesIn) }

// floodRate paces a flood so that loopback loses nothing (a faster one
// overflows the server's socket buffer, which would understate the factor).
const floodRate = 3000

// spoofedFlood sends n queries for the "big" all-policy service (60
// addresses, about 1 KB, EDNS 4096) at floodRate from sources spread over
// one /24 (127.0.0.1 to 127.0.0.50, as a flood spoofing a victim network
// would) and counts the bytes the server sends back to them.
func spoofedFlood(t *testing.T, s *Server, n int) floodResult {
	t.Helper()
	udp, _ := s.Addr()
	dropsBefore := udpDrops(t, udp.(*net.UDPAddr).Port)
	q := withEDNS(query("big.example.com.", dns.TypeA), 4096, "")
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	const sources = 50
	var full, slipped, sent atomic.Int64
	var bytesOut atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range sources {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, byte(i+1))})
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadBuffer(4 << 20)
		wg.Go(func() {
			defer conn.Close()
			var rg sync.WaitGroup
			rg.Go(func() {
				buf := make([]byte, 65535)
				for {
					_ = conn.SetReadDeadline(time.Now().Add(time.Second))
					k, err := conn.Read(buf)
					if err != nil {
						return
					}
					bytesOut.Add(int64(k))
					var m dns.Msg
					if m.Unpack(buf[:k]) == nil {
						if m.Truncated && len(m.Answer) == 0 {
							slipped.Add(1)
						} else if len(m.Answer) > 0 {
							full.Add(1)
						}
					}
				}
			})
			every := time.Second * sources / floodRate
			for k := range n / sources {
				if d := time.Until(start.Add(time.Duration(k) * every)); d > 0 {
					time.Sleep(d)
				}
				if _, err := conn.WriteTo(wire, udp); err == nil {
					sent.Add(1)
				}
			}
			rg.Wait()
		})
	}
	wg.Wait()
	// The readers stop after 1 s without a packet.
	elapsed := time.Since(start) - time.Second
	dropped := udpDrops(t, udp.(*net.UDPAddr).Port) - dropsBefore
	if dropped > 0 {
		t.Logf("the server's socket dropped %d of %d queries (its reader was kept from the CPU)", dropped, sent.Load())
	}
	return floodResult{queries: int(sent.Load()), received: int(sent.Load()) - dropped, full: int(full.Load()), slipped: int(slipped.Load()),
		bytesIn: sent.Load() * int64(len(wire)), bytesOut: bytesOut.Load(), elapsed: elapsed}
}

// udpDrops is the kernel's count of datagrams dropped by the UDP sockets
// bound to port (the last column of /proc/net/udp and udp6).
func udpDrops(t *testing.T, port int) int {
	t.Helper()
	total := 0
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 13 {
				continue
			}
			_, hexPort, ok := strings.Cut(fields[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); !ok || err != nil || int(p) != port {
				continue
			}
			d, err := strconv.Atoi(fields[len(fields)-1])
			if err != nil {
				t.Fatalf("%s: drops %q: %v", f, fields[len(fields)-1], err)
			}
			total += d
		}
	}
	return total
}

func startRRLServer(t *testing.T, rate int, frozen bool) *Server {
	t.Helper()
	s := New(Config{Addr: "127.0.0.1:0", Logger: zap.NewNop(), RateLimit: rate})
	if frozen {
		at := time.Unix(1_800_000_000, 0)
		s.rrl.now = func() time.Time { return at }
	}
	s.Update(configured(t, testConfig()))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

// TestAmplificationUnderSpoofedFlood measures bytes out / bytes in for a
// flood of 44-byte queries drawing ~1 KB answers, from one /24, with
// response-rate limiting off and at DefaultRateLimit.
func TestAmplificationUnderSpoofedFlood(t *testing.T) {
	const n = 10000

	// Off: every query is answered in full, about 23 times its size.
	off := spoofedFlood(t, startRRLServer(t, 0, false), 2000)
	t.Logf("RRL off: %d queries, %d full answers, amplification %.1fx", off.queries, off.full, off.factor())
	if off.full < off.received*8/10 || float64(off.bytesOut)/float64(int64(off.received)*off.bytesIn/int64(off.queries)) < 15 {
		t.Fatalf("without RRL %d of %d queries were answered, amplification %.1fx: the flood does not measure what it should",
			off.full, off.queries, off.factor())
	}

	// On, with the clock stopped: the whole flood falls in one second, the
	// worst case for a flood of n queries. Exactly one second's worth is
	// answered, every second one after it slips (an empty TC answer about
	// the query's size), the rest are dropped.
	frozen := spoofedFlood(t, startRRLServer(t, DefaultRateLimit, true), n)
	t.Logf("RRL %d/s, one-second burst of %d queries: %d full, %d slipped, amplification %.2fx",
		DefaultRateLimit, frozen.queries, frozen.full, frozen.slipped, frozen.factor())
	if frozen.full != DefaultRateLimit {
		t.Errorf("%d full answers in one second, want %d", frozen.full, DefaultRateLimit)
	}
	if want := (frozen.received - DefaultRateLimit) / 2; frozen.slipped < want*8/10 || frozen.slipped > want+1 {
		t.Errorf("%d slipped answers, want about %d (every second one over the limit)", frozen.slipped, want)
	}
	if frozen.factor() > 1.0 {
		t.Errorf("amplification %.2fx under a burst of %d queries, want at most 1", frozen.factor(), n)
	}

	// On, real clock: the server answers at most rate × (elapsed + 1) in
	// full, and the factor stays within what that allows.
	real := spoofedFlood(t, startRRLServer(t, DefaultRateLimit, false), n)
	qps := float64(real.queries) / real.elapsed.Seconds()
	maxFull := float64(DefaultRateLimit) * (real.elapsed.Seconds() + 1)
	answer := float64(off.bytesOut) / float64(max(off.full, 1))
	bound := (maxFull*answer + float64(real.queries)/2*float64(real.bytesIn)/float64(real.queries)) / float64(real.bytesIn)
	t.Logf("RRL %d/s, %d queries in %s (%.0f/s): %d full, %d slipped, amplification %.2fx (bound %.2fx)",
		DefaultRateLimit, real.queries, real.elapsed.Round(time.Millisecond), qps, real.full, real.slipped, real.factor(), bound)
	if float64(real.full) > maxFull*1.05+1 {
		t.Errorf("%d full answers in %s, want at most %.0f", real.full, real.elapsed, maxFull)
	}
	if real.factor() > bound*1.05 {
		t.Errorf("amplification %.2fx, over the bound %.2fx", real.factor(), bound)
	}
	fmt.Printf("amplification: off %.1fx; rrl %d/s: %.2fx at %.0f queries/s, %.2fx in a one-second burst of %d\n",
		off.factor(), DefaultRateLimit, real.factor(), qps, frozen.factor(), n)
}
