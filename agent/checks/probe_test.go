package checks

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func newProber(t *testing.T, c Check, src string) prober {
	t.Helper()
	r, err := NewRunner(RunnerConfig{Checks: []Check{c}, SourceIP: src})
	if err != nil {
		t.Fatal(err)
	}
	return r.probes[0]
}

func probeOnce(t *testing.T, c Check, src string) (Status, string) {
	t.Helper()
	c = c.WithDefaults()
	st, out, _ := runProbe(context.Background(), newProber(t, c, src), c.Timeout.D())
	return st, out
}

func TestHTTPProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			_, _ = w.Write([]byte("all good\nsecond line"))
		case "/fail":
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("database down"))
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/redirect":
			http.Redirect(w, r, "/fail", http.StatusFound)
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case "/method":
			if r.Method != http.MethodHead {
				w.WriteHeader(http.StatusMethodNotAllowed)
			}
		}
	}))
	defer srv.Close()

	base := Check{Name: "c", Service: "s", Type: TypeHTTP, Interval: Duration(time.Second), Timeout: Duration(300 * time.Millisecond)}
	tests := []struct {
		name    string
		path    string
		expect  string
		method  string
		want    Status
		wantOut string
	}{
		{"200 passes", "/ok", "", "", StatusPassing, "HTTP 200 OK: all good"},
		{"500 fails", "/fail", "", "", StatusFailing, "HTTP 500 Internal Server Error, want 200-399: database down"},
		{"slow fails with timeout", "/slow", "", "", StatusFailing, "timeout"},
		{"204 outside 200 only", "/nocontent", "200", "", StatusFailing, "want 200"},
		{"500 inside 500-599", "/fail", "500-599", "", StatusPassing, "HTTP 500"},
		{"redirect is not followed", "/redirect", "", "", StatusPassing, "HTTP 302"},
		{"redirect outside 200", "/redirect", "200", "", StatusFailing, "HTTP 302"},
		{"method used", "/method", "200", "HEAD", StatusPassing, "HTTP 200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			c.Target = srv.URL + tt.path
			c.ExpectStatus = tt.expect
			c.Method = tt.method
			start := time.Now()
			st, out := probeOnce(t, c, "")
			if st != tt.want || !strings.Contains(out, tt.wantOut) {
				t.Fatalf("got %s %q; want %s containing %q", st, out, tt.want, tt.wantOut)
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Fatalf("probe took %s, timeout not applied", el)
			}
		})
	}
}

func TestHTTPProbeRefused(t *testing.T) {
	addr := closedPort(t)
	c := Check{Name: "c", Service: "s", Type: TypeHTTP, Target: "http://" + addr + "/", Interval: Duration(time.Second)}
	st, out := probeOnce(t, c, "")
	if st != StatusFailing || !strings.Contains(out, "refused") {
		t.Fatalf("got %s %q", st, out)
	}
}

func TestTCPProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	go acceptAll(ln, nil)

	c := Check{Name: "c", Service: "s", Type: TypeTCP, Target: ln.Addr().String(), Interval: Duration(time.Second)}
	if st, out := probeOnce(t, c, ""); st != StatusPassing {
		t.Fatalf("listener: %s %q", st, out)
	}
	c.Target = closedPort(t)
	if st, out := probeOnce(t, c, ""); st != StatusFailing || !strings.Contains(out, "refused") {
		t.Fatalf("closed port: %s %q", st, out)
	}
}

// TestSourceIP checks that probes leave from the configured source address,
// and that a loopback source is not forced onto a non-loopback target.
func TestSourceIP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	var mu sync.Mutex
	var peers []string
	go acceptAll(ln, func(c net.Conn) {
		mu.Lock()
		peers = append(peers, c.RemoteAddr().(*net.TCPAddr).IP.String())
		mu.Unlock()
	})

	c := Check{Name: "c", Service: "s", Type: TypeTCP, Target: ln.Addr().String(), Interval: Duration(time.Second)}
	if st, out := probeOnce(t, c, "127.0.7.9"); st != StatusPassing {
		t.Fatalf("%s %q", st, out)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	c.Target = "localhost:" + port // resolved, then bound
	if st, out := probeOnce(t, c, "127.0.7.9"); st != StatusPassing {
		t.Fatalf("%s %q", st, out)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		got := append([]string(nil), peers...)
		mu.Unlock()
		if len(got) == 2 {
			for _, p := range got {
				if p != "127.0.7.9" {
					t.Fatalf("probe left from %s, want 127.0.7.9", p)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("accepted %v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}

	if bindable(net.ParseIP("127.0.1.1"), net.ParseIP("192.0.2.1")) {
		t.Fatal("loopback source must not be bound towards a public target")
	}
	if bindable(net.ParseIP("127.0.1.1"), net.ParseIP("::1")) {
		t.Fatal("family mismatch must not be bound")
	}
	if !bindable(net.ParseIP("10.1.1.1"), net.ParseIP("192.0.2.1")) {
		t.Fatal("non-loopback source should be bound")
	}
	if _, err := NewRunner(RunnerConfig{SourceIP: "not-an-ip"}); err == nil {
		t.Fatal("bad source IP accepted")
	}
}

func acceptAll(ln net.Listener, f func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if f != nil {
			f(c)
		}
		_ = c.Close()
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
