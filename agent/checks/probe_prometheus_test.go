package checks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func fp(f float64) *float64 { return &f }

func TestPrometheusCheckValidate(t *testing.T) {
	base := Check{Name: "sps", Service: "api", Type: TypePrometheus, URL: "http://127.0.0.1:9090",
		Query: "sum(rate(stream_starts_total[1m]))"}
	for _, tc := range []struct {
		name  string
		edit  func(*Check)
		field string // "" for valid
	}{
		{"below", func(c *Check) { c.Below = fp(100) }, ""},
		{"above", func(c *Check) { c.Above = fp(0.05) }, ""},
		{"band", func(c *Check) { c.Below, c.Above = fp(1), fp(10) }, ""},
		{"drop week", func(c *Check) { c.Drop, c.Offset = fp(0.3), "1w" }, ""},
		{"no rule", func(*Check) {}, "below"},
		{"empty band", func(c *Check) { c.Below, c.Above = fp(10), fp(1) }, "below"},
		{"drop without offset", func(c *Check) { c.Drop = fp(0.3) }, "offset"},
		{"offset without drop", func(c *Check) { c.Below, c.Offset = fp(1), "1w" }, "offset"},
		{"drop and below", func(c *Check) { c.Drop, c.Offset, c.Below = fp(0.3), "1w", fp(1) }, "drop"},
		{"drop of 1", func(c *Check) { c.Drop, c.Offset = fp(1), "1w" }, "drop"},
		{"drop of 30", func(c *Check) { c.Drop, c.Offset = fp(30), "1w" }, "drop"},
		{"bad offset", func(c *Check) { c.Drop, c.Offset = fp(0.3), "a week" }, "offset"},
		{"no url", func(c *Check) { c.URL, c.Below = "", fp(1) }, "url"},
		{"ftp url", func(c *Check) { c.URL, c.Below = "ftp://x", fp(1) }, "url"},
		{"target instead of url", func(c *Check) { c.Target, c.Below = "http://127.0.0.1:9090", fp(1) }, "target"},
		{"no query", func(c *Check) { c.Query, c.Below = " ", fp(1) }, "query"},
		{"http field", func(c *Check) { c.Below, c.ExpectBody = fp(1), "ok" }, "expect_body"},
		{"dns field", func(c *Check) { c.Below, c.QueryType = fp(1), "A" }, "query_type"},
		{"prometheus field on http", func(c *Check) {
			c.Type, c.Target, c.URL, c.Query, c.Below = TypeHTTP, "http://127.0.0.1:80/", "", "", fp(1)
		}, "below"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.edit(&c)
			err := c.Validate()
			var fe *FieldError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field):
				t.Fatalf("want an error on %q, got %v", tc.field, err)
			}
		})
	}
}

// promServer is a real Prometheus scraping one gauge from this test.
type promServer struct {
	url   string
	gauge prometheus.Gauge
}

func startPrometheus(t *testing.T) *promServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus is needed (Debian package prometheus; make test and .ci/run install it)")
		}
		t.Skip("skipping: prometheus is not installed (apt-get install prometheus; make test installs it)")
	}
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "evac_test_kpi", Help: "a KPI the test sets"})
	reg.MustRegister(g)
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(target.Close)

	dir := t.TempDir()
	cfg := fmt.Sprintf("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"+
		"scrape_configs:\n  - {job_name: kpi, static_configs: [{targets: [%q]}]}\n", strings.TrimPrefix(target.URL, "http://"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("prometheus log:\n%s", b)
		}
	})
	g.Set(100)
	ps := &promServer{url: "http://" + addr, gauge: g}
	// Ready, and the gauge scraped at least once.
	p := ps.prober(t, Check{Query: "evac_test_kpi", Below: fp(0)})
	// Under load Prometheus takes seconds to open its storage and listen.
	var last string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last probe of %s: %s", ps.url, last)
		}
	})
	waitFor(t, "prometheus up with the gauge scraped", 90*time.Second, func() bool {
		var st Status
		st, last = p.probe(ctxFor(t, 3*time.Second))
		return st == StatusPassing
	})
	return ps
}

func (ps *promServer) prober(t *testing.T, c Check) *promProber {
	t.Helper()
	c.Name, c.Service, c.Type, c.URL = "kpi", "api", TypePrometheus, ps.url
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := newPromProber(c, &sourceDialer{resolver: net.DefaultResolver})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestPrometheusProbe runs the check against a real Prometheus: thresholds
// both ways, a drop against the same query a few seconds earlier, and the
// ways a query gives no value, each of which fails the check.
func TestPrometheusProbe(t *testing.T) {
	ps := startPrometheus(t)
	probe := func(c Check) (Status, string) {
		return ps.prober(t, c).probe(ctxFor(t, 5*time.Second))
	}
	for _, tc := range []struct {
		name string
		c    Check
		want Status
		out  string
	}{
		{"over below", Check{Query: "evac_test_kpi", Below: fp(50)}, StatusPassing, "value 100"},
		{"under above", Check{Query: "evac_test_kpi", Above: fp(150)}, StatusPassing, "value 100"},
		{"over above", Check{Query: "evac_test_kpi", Above: fp(99.5)}, StatusFailing, "value 100 above 99.5"},
		{"scalar", Check{Query: "scalar(evac_test_kpi) * 2", Below: fp(150)}, StatusPassing, "value 200"},
		{"parse error", Check{Query: "sum(", Below: fp(1)}, StatusFailing, "parse error"},
		{"no series", Check{Query: "evac_no_such_metric", Below: fp(1)}, StatusFailing, "returned 0 series"},
		{"two series", Check{Query: `{__name__=~"evac_test_kpi|up"}`, Below: fp(1)}, StatusFailing, "returned 2 series"},
		{"NaN", Check{Query: "evac_test_kpi * NaN", Below: fp(1)}, StatusFailing, "NaN"},
		{"a string", Check{Query: `"kpi"`, Below: fp(1)}, StatusFailing, "string"},
	} {
		if st, out := probe(tc.c); st != tc.want || !strings.Contains(out, tc.out) {
			t.Errorf("%s: %s %q, want %s and %q", tc.name, st, out, tc.want, tc.out)
		}
	}

	// The KPI falls: below fails once Prometheus has scraped the new value.
	below := ps.prober(t, Check{Query: "evac_test_kpi", Below: fp(50)})
	drop := ps.prober(t, Check{Query: "evac_test_kpi", Drop: fp(0.3), Offset: "3s"})
	// Until the gauge has a value 3 s back, the comparison has no baseline:
	// that fails the check (no signal is never healthy), then it passes.
	if st, out := drop.probe(ctxFor(t, 5*time.Second)); st == StatusFailing && !strings.Contains(out, "3s earlier") {
		t.Fatalf("drop before the fall: %s %q", st, out)
	}
	waitFor(t, "drop passes with a baseline 3 s back", 30*time.Second, func() bool {
		st, _ := drop.probe(ctxFor(t, 5*time.Second))
		return st == StatusPassing
	})
	ps.gauge.Set(40)
	var out string
	waitFor(t, "below fails on the new value", 30*time.Second, func() bool {
		var st Status
		st, out = below.probe(ctxFor(t, 5*time.Second))
		return st == StatusFailing
	})
	if !strings.Contains(out, "value 40 below 50") {
		t.Errorf("below: %q", out)
	}
	// 3 s ago it was still 100: a 60% drop, more than 30%.
	if st, out := drop.probe(ctxFor(t, 5*time.Second)); st != StatusFailing || !strings.Contains(out, "down 60%, more than 30%") {
		t.Errorf("drop right after the fall: %s %q", st, out)
	}
	// Once the fall is older than the offset, both ends are 40: no drop.
	waitFor(t, "drop passes once both ends are 40", 30*time.Second, func() bool {
		st, _ := drop.probe(ctxFor(t, 5*time.Second))
		return st == StatusPassing
	})
}

// A query API that accepts and never answers fails the check as a timeout,
// never as healthy.
func TestPrometheusProbeTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := Check{Name: "kpi", Service: "api", Type: TypePrometheus, URL: srv.URL, Query: "up", Below: fp(1)}.WithDefaults()
	p, err := newPromProber(c, &sourceDialer{resolver: net.DefaultResolver})
	if err != nil {
		t.Fatal(err)
	}
	st, out := p.probe(ctxFor(t, 300*time.Millisecond))
	if st != StatusFailing || !strings.Contains(out, "timeout") {
		t.Fatalf("%s %q, want failing with a timeout", st, out)
	}
}
