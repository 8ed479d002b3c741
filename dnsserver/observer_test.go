package dnsserver

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap/zaptest"
)

// TestObserver checks that the Observer sees each reply once, with its
// query type and response code.
func TestObserver(t *testing.T) {
	type seen struct {
		qtype uint16
		rcode int
	}
	var mu sync.Mutex
	var got []seen
	s := New(Config{Addr: "127.0.0.1:0", Logger: zaptest.NewLogger(t), Observer: func(q uint16, r int, d time.Duration) {
		if d < 0 || d > 10*time.Second {
			t.Errorf("duration %v", d)
		}
		mu.Lock()
		got = append(got, seen{q, r})
		mu.Unlock()
	}})
	s.Update(configured(t, testConfig()))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	u, c := s.Addr()
	exchange(t, "udp", u.String(), query("api.example.com.", dns.TypeA))
	exchange(t, "tcp", c.String(), query("nope.example.com.", dns.TypeAAAA))
	exchange(t, "udp", u.String(), query("example.org.", dns.TypeTXT))
	want := []seen{{dns.TypeA, dns.RcodeSuccess}, {dns.TypeAAAA, dns.RcodeNameError}, {dns.TypeTXT, dns.RcodeRefused}}
	// The Observer runs after the reply is written: give it a moment.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(want) {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("observed %v, want %v", got, want)
	}
	// The observer runs after each reply is written, so a reply over TCP
	// may be observed after the next one over UDP: compare without order.
	order := func(s []seen) {
		sort.Slice(s, func(i, j int) bool { return s[i].qtype < s[j].qtype })
	}
	order(got)
	order(want)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("observed %+v, want %+v (in any order)", got, want)
			break
		}
	}
}
