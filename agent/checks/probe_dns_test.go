package checks

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// startDNS serves api.example.com. A 192.0.2.11 and NXDOMAIN for every
// other name, over UDP and TCP on addr, recording the sources it saw.
func startDNS(t *testing.T, addr string) (string, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var sources []string
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		host, _, _ := net.SplitHostPort(w.RemoteAddr().String())
		mu.Lock()
		sources = append(sources, host)
		mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch {
		case strings.EqualFold(q.Name, "api.example.com.") && q.Qtype == dns.TypeA:
			rr, _ := dns.NewRR("api.example.com. 30 IN A 192.0.2.11")
			m.Answer = append(m.Answer, rr)
		case strings.EqualFold(q.Name, "api.example.com."):
		default:
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: ln, Handler: h}
	go func() { _ = udp.ActivateAndServe() }()
	go func() { _ = tcp.ActivateAndServe() }()
	t.Cleanup(func() { _ = udp.Shutdown(); _ = tcp.Shutdown() })
	return pc.LocalAddr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), sources...)
	}
}

func TestDNSProbe(t *testing.T) {
	server, sources := startDNS(t, "127.0.0.1:0")
	base := Check{Name: "d", Service: "api", Type: TypeDNS, Target: server, Query: "api.example.com",
		Interval: Duration(time.Second), Timeout: Duration(500 * time.Millisecond)}
	tests := []struct {
		name    string
		mutate  func(*Check)
		want    Status
		wantOut string
	}{
		{"rcode only", func(*Check) {}, StatusPassing, "NOERROR, 1 answers (192.0.2.11)"},
		{"expected address", func(c *Check) { c.ExpectAddress = "192.0.2.11" }, StatusPassing, "192.0.2.11"},
		{"missing address", func(c *Check) { c.ExpectAddress = "192.0.2.99" }, StatusFailing, "want 192.0.2.99"},
		{"no A for AAAA", func(c *Check) { c.QueryType = "AAAA"; c.ExpectAddress = "2001:db8::1" }, StatusFailing, "0 answers"},
		{"nxdomain fails", func(c *Check) { c.Query = "nope.example.com" }, StatusFailing, "rcode NXDOMAIN, want NOERROR"},
		{"nxdomain expected", func(c *Check) { c.Query = "nope.example.com"; c.ExpectRcode = "nxdomain" }, StatusPassing, "NXDOMAIN"},
		{"over tcp", func(c *Check) { c.Protocol = "tcp"; c.ExpectAddress = "192.0.2.11" }, StatusPassing, "192.0.2.11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.mutate(&c)
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			st, out := probeOnce(t, c, "")
			if st != tt.want || !strings.Contains(out, tt.wantOut) {
				t.Fatalf("got %s %q; want %s containing %q", st, out, tt.want, tt.wantOut)
			}
		})
	}

	// The source address is bound, over UDP and TCP.
	n := len(sources())
	for _, proto := range []string{"udp", "tcp"} {
		c := base
		c.Protocol = proto
		if st, out := probeOnce(t, c, "127.0.7.9"); st != StatusPassing {
			t.Fatalf("%s with source: %s %q", proto, st, out)
		}
	}
	for _, s := range sources()[n:] {
		if s != "127.0.7.9" {
			t.Fatalf("query left from %s, want 127.0.7.9", s)
		}
	}
}

func TestDNSProbeNoServer(t *testing.T) {
	// A UDP port nobody serves: the probe fails within its timeout.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	_ = pc.Close()
	c := Check{Name: "d", Service: "api", Type: TypeDNS, Target: addr, Query: "api.example.com",
		Interval: Duration(time.Second), Timeout: Duration(300 * time.Millisecond)}
	start := time.Now()
	if st, out := probeOnce(t, c, ""); st != StatusFailing || !strings.HasPrefix(out, "DNS api.example.com. A @") {
		t.Fatalf("got %s %q", st, out)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("probe took %s", el)
	}
}

func TestHTTPProbeBodyAndHeaders(t *testing.T) {
	server, _ := startHTTP(t)
	base := Check{Name: "h", Service: "api", Type: TypeHTTP, Target: server, Interval: Duration(time.Second),
		Timeout: Duration(500 * time.Millisecond)}
	tests := []struct {
		name    string
		mutate  func(*Check)
		want    Status
		wantOut string
	}{
		{"body found", func(c *Check) { c.ExpectBody = "status: green" }, StatusPassing, "HTTP 200"},
		{"body found beyond first line", func(c *Check) { c.ExpectBody = "db: up" }, StatusPassing, "HTTP 200"},
		{"body missing", func(c *Check) { c.ExpectBody = "status: red" }, StatusFailing, `body lacks "status: red"`},
		{"header sent", func(c *Check) { c.Headers = map[string]string{"X-Token": "s3cret"} }, StatusPassing, "HTTP 200"},
		{"wrong header", func(c *Check) { c.Headers = map[string]string{"X-Token": "nope"} }, StatusFailing, "HTTP 403"},
		{"host header", func(c *Check) { c.Headers = map[string]string{"Host": "other.example"} }, StatusFailing, "HTTP 421"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.mutate(&c)
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			st, out := probeOnce(t, c, "")
			if st != tt.want || !strings.Contains(out, tt.wantOut) {
				t.Fatalf("got %s %q; want %s containing %q", st, out, tt.want, tt.wantOut)
			}
		})
	}
}

// startHTTP serves a two-line body; a wrong X-Token gets 403 and a
// foreign Host 421.
func startHTTP(t *testing.T) (string, *httptest.Server) {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok, ok := r.Header["X-Token"]; ok && tok[0] != "s3cret" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		if r.Host != srv.Listener.Addr().String() {
			w.WriteHeader(http.StatusMisdirectedRequest)
			return
		}
		_, _ = w.Write([]byte("status: green\ndb: up\n"))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/health", srv
}
