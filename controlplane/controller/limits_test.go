package controller

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/evac-sh/evac/controlplane/auth"
	"github.com/evac-sh/evac/dnsserver"
)

// TestRefusalMetrics: refused API requests are counted in
// evac_auth_failures_total by reason, and the garbage and connection
// counters are exported.
func TestRefusalMetrics(t *testing.T) {
	tok, sum, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(path, []byte("tokens:\n"+auth.FileLine("v", auth.RoleViewer, sum)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := auth.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := startClusterWith(t, 1, func(_ int, cfg *Config) { cfg.Auth = store })
	get := func(token, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+c.ctls[0].HTTPAddr()+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for range 25 {
		if code, _ := get("wrong", "/v1/status"); code != http.StatusUnauthorized {
			t.Fatalf("wrong token: %d", code)
		}
	}
	for range 3 {
		get("", "/v1/status")
	}
	code, text := get(tok, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, m := range fams["evac_auth_failures_total"].GetMetric() {
		got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
	}
	if got[auth.FailUnknownToken] != 25 || got[auth.FailMissingToken] != 3 || got[auth.FailForbidden] != 0 {
		t.Fatalf("evac_auth_failures_total = %v, want unknown_token 25, missing_token 3, forbidden 0", got)
	}
	for _, name := range []string{"evac_gossip_garbage_total", "evac_conns_rejected_total"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("no %s in /metrics", name)
		}
	}
	if n := len(fams["evac_conns_rejected_total"].GetMetric()); n != 2 {
		t.Errorf("evac_conns_rejected_total has %d series, want api and dns-tcp", n)
	}
}

// TestDNSBusyPollMetric: with DNSBusyPoll set, queries that follow each
// other closely are read by polling, and evac_dns_udp_busy_poll_reads_total
// counts them.
func TestDNSBusyPollMetric(t *testing.T) {
	c := startClusterWith(t, 1, func(_ int, cfg *Config) { cfg.DNSBusyPoll = dnsserver.MaxBusyPoll })
	ctl := c.ctls[0]
	conn, err := net.Dial("udp", ctl.cfg.DNSAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m := new(dns.Msg)
	m.SetQuestion("api.example.com.", dns.TypeA)
	pkt, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	scrape := func() float64 {
		t.Helper()
		resp, err := http.Get("http://" + ctl.HTTPAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		f, ok := fams["evac_dns_udp_busy_poll_reads_total"]
		if !ok {
			t.Fatal("no evac_dns_udp_busy_poll_reads_total in /metrics")
		}
		return f.GetMetric()[0].GetCounter().GetValue()
	}
	// Back-to-back queries: each next one is sent within the 1 ms the
	// reader polls after answering, unless this goroutine is descheduled
	// for longer, which a busy machine may do to some but not all of them.
	buf := make([]byte, 1500)
	deadline := time.Now().Add(60 * time.Second)
	for n := 0; ; n++ {
		if n%100 == 99 && scrape() > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d back-to-back queries no read was counted as found by busy polling", n)
		}
		if _, err := conn.Write(pkt); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Read(buf); err != nil {
			t.Fatalf("query %d: %v", n, err)
		}
	}
}
