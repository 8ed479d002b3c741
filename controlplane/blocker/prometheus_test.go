package blocker

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/testutil"
)

// TestPrometheusBlocker: against a real Prometheus (Debian's prometheus)
// scraping a gauge the test sets, a query condition fires while the value
// is above its threshold and clears below it; a Prometheus that is down
// makes it unknown, never clear.
func TestPrometheusBlocker(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus is needed (Debian package prometheus; make test and .ci/run install it)")
		}
		t.Skip("skipping: prometheus is not installed (apt-get install prometheus; make test installs it)")
	}
	reg := prometheus.NewRegistry()
	errs := prometheus.NewGauge(prometheus.GaugeOpts{Name: "evac_test_errors", Help: "an error rate the test sets"})
	reg.MustRegister(errs)
	errs.Set(12)
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer target.Close()

	dir := t.TempDir()
	cfg := fmt.Sprintf("global: {scrape_interval: 1s}\nscrape_configs:\n  - {job_name: app, static_configs: [{targets: [%q]}]}\n",
		strings.TrimPrefix(target.URL, "http://"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	defer func() {
		stop()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("prometheus log:\n%s", b)
		}
	}()

	b := state.Blocker{Prometheus: "http://" + addr, Query: "sum(evac_test_errors)", Above: fp(10)}
	e := New(Config{Interval: 200 * time.Millisecond, Timeout: 3 * time.Second}, func() []state.Blocker { return []state.Blocker{b} })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	var last Verdict
	verdict := func(want State) func() bool {
		return func() bool {
			last = e.Verdict([]state.Blocker{b})
			return last.State == want
		}
	}
	// Under load Prometheus takes seconds to open its storage and scrape.
	testutil.WaitFor(t, 90*time.Second, "the query firing", verdict(Firing))
	if last.Reason != "blocked: query sum(evac_test_errors) = 12, above 10" {
		t.Errorf("reason %q", last.Reason)
	}
	errs.Set(3)
	testutil.WaitFor(t, 30*time.Second, "the query clear", verdict(Clear))
	stop()
	testutil.WaitFor(t, 30*time.Second, "unknown with Prometheus down", verdict(Unknown))
	if !strings.Contains(last.Reason, "blocked: query sum(evac_test_errors) > 10 cannot be evaluated: prometheus http://"+addr) {
		t.Errorf("reason %q", last.Reason)
	}
}
