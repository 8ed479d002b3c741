package dnsserver

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap/zaptest"
)

func TestRRLBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newRRL(10)
	l.now = func() time.Time { return now }
	a := netip.MustParseAddr("192.0.2.7")
	same := netip.MustParseAddr("192.0.2.200") // the same /24
	other := netip.MustParseAddr("192.0.3.7")
	for i := range 10 {
		if got := l.check(a); got != rrlOK {
			t.Fatalf("response %d within the burst: %v", i, got)
		}
	}
	// Over the limit: drop, slip, drop, slip...
	for i, want := range []rrlAction{rrlDrop, rrlSlip, rrlDrop, rrlSlip} {
		if got := l.check(same); got != want {
			t.Fatalf("over the limit %d: %v, want %v", i, got, want)
		}
	}
	if got := l.check(other); got != rrlOK {
		t.Fatalf("another subnet limited: %v", got)
	}
	now = now.Add(200 * time.Millisecond) // 2 tokens
	for i, want := range []rrlAction{rrlOK, rrlOK, rrlDrop} {
		if got := l.check(a); got != want {
			t.Fatalf("after 200ms, %d: %v, want %v", i, got, want)
		}
	}
	if newRRL(0) != nil {
		t.Fatal("RateLimit 0 is not off")
	}
}

func TestRRLOverSockets(t *testing.T) {
	s := New(Config{Addr: "127.0.0.1:0", Logger: zaptest.NewLogger(t), RateLimit: 5})
	s.Update(configured(t, testConfig()))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	u, tc := s.Addr()

	count := func(local string, q *dns.Msg, n int) (ok, slipped, dropped int) {
		conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(local)}, u.(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		b, _ := q.Pack()
		buf := make([]byte, 4096)
		for range n {
			if _, err := conn.Write(b); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
			k, err := conn.Read(buf)
			if err != nil {
				dropped++
				continue
			}
			r := new(dns.Msg)
			if err := r.Unpack(buf[:k]); err != nil {
				t.Fatal(err)
			}
			switch {
			case r.Truncated && len(r.Answer) == 0 && len(r.Question) == 1:
				slipped++
			case !r.Truncated && len(r.Answer)+len(r.Ns) > 0:
				ok++
			default:
				t.Fatalf("unexpected answer %v", r)
			}
		}
		return
	}
	// 30 queries from one /24, each drop costing a 150 ms wait: the burst of
	// 5 and what refills meanwhile (5/s) answered, the rest half slipped,
	// half dropped.
	ok, slipped, dropped := count("127.0.0.1", query("fo.example.com.", dns.TypeMX), 30)
	t.Logf("ok %d, slipped %d, dropped %d", ok, slipped, dropped)
	if ok < 5 || ok > 20 || slipped < 3 || dropped < 3 || slipped-dropped > 1 || dropped-slipped > 1 {
		t.Errorf("ok %d, slipped %d, dropped %d", ok, slipped, dropped)
	}
	// Another /24 is not limited by the first one's traffic; TCP never is.
	if ok, _, _ := count("127.0.7.1", query("fo.example.com.", dns.TypeA), 5); ok != 5 {
		t.Errorf("another subnet: %d of 5 answered", ok)
	}
	count("127.0.0.1", query("fo.example.com.", dns.TypeA), 20)
	for i := range 10 {
		if r := exchange(t, "tcp", tc.String(), query("fo.example.com.", dns.TypeA)); r.Truncated || len(r.Answer) != 2 {
			t.Fatalf("TCP query %d limited: %v", i, r)
		}
	}
}

func TestRRLFastPathSlip(t *testing.T) {
	s := New(Config{RateLimit: 1})
	s.Update(configured(t, testConfig()))
	pkt, err := withEDNS(query("api.example.com.", dns.TypeA), 1232, "10.1.2.0/24").Pack()
	if err != nil {
		t.Fatal(err)
	}
	from := netip.MustParseAddrPort("192.0.2.1:5300")
	var got []string
	for range 3 {
		out, ok := s.fast(pkt, from, nil, &seen{})
		if !ok {
			t.Fatal("declined by the fast path")
		}
		if out == nil {
			got = append(got, "drop")
			continue
		}
		r := new(dns.Msg)
		if err := r.Unpack(out); err != nil {
			t.Fatal(err)
		}
		switch {
		case r.Truncated && len(r.Answer) == 0 && len(r.Ns) == 0 && r.IsEdns0() != nil && len(r.Question) == 1:
			got = append(got, "slip")
		case !r.Truncated && len(r.Answer) == 2:
			got = append(got, "ok")
		default:
			t.Fatalf("unexpected %v", r)
		}
	}
	if want := []string{"ok", "drop", "slip"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
