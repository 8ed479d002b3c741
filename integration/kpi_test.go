package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/evac-sh/evac/controlplane/state"
)

// startPrometheus runs Debian's Prometheus on ip, scraping target every
// second, and returns its URL once it answers queries.
func startPrometheus(t *testing.T, name, ip, target string) (url string, stop func()) {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus is needed (Debian package; make test and .ci/run install it)")
		}
		t.Skip("skipping: prometheus is not installed (make test installs it)")
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf("global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n  - {job_name: kpi, static_configs: [{targets: [%q]}]}\n", target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("%s:%d", ip, freePort(t, ip))
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(func() {
		stop()
		f.Close()
		if t.Failed() {
			dumpTail(t, logPath, 20)
		}
	})
	url = "http://" + addr
	eventually(t, 90*time.Second, name+" has scraped the KPI", func() error {
		resp, err := http.Get(url + "/api/v1/query?query=evac_test_kpi")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var body struct {
			Data struct {
				Result []any `json:"result"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return err
		}
		if len(body.Data.Result) != 1 {
			return fmt.Errorf("%d series", len(body.Data.Result))
		}
		return nil
	})
	return url, stop
}

// TestKPIHealth: us-east's agents judge it by a business KPI in its
// Prometheus HA pair (each agent asks one of the two, both scraping the
// same exporter). One Prometheus down fails one agent's check: one
// observer's fault, and the region stays in service. The KPI falling
// below the threshold fails both, and us-east is evacuated.
func TestKPIHealth(t *testing.T) {
	t.Parallel()
	const exporterIP = "127.0.161.200"
	reg := prometheus.NewRegistry()
	kpi := prometheus.NewGauge(prometheus.GaugeOpts{Name: "evac_test_kpi", Help: "stream starts per second, as the test sets them"})
	reg.MustRegister(kpi)
	kpi.Set(100)
	ln, err := net.Listen("tcp", exporterIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	exporter := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = exporter.Serve(ln) }()
	t.Cleanup(func() { _ = exporter.Close() })
	promA, stopA := startPrometheus(t, "prometheus-a", "127.0.161.201", ln.Addr().String())
	promB, _ := startPrometheus(t, "prometheus-b", "127.0.161.202", ln.Addr().String())

	regions := []regionDef{
		{"us-east", 161, []string{"192.0.2.11", "192.0.2.12"}},
		{"us-west", 162, []string{"198.51.100.11", "198.51.100.12"}},
		{"eu-west", 163, []string{"203.0.113.11", "203.0.113.12"}},
	}
	tc := startClusterOpts(t, clusterOpts{regions: regions, ctrlSubnet: 160, agentCheck: func(r regionDef, k int, _ string) string {
		if r.name != "us-east" {
			return ""
		}
		prom := map[int]string{1: promA, 2: promB}[k]
		return fmt.Sprintf(`{name: sps, service: api, type: prometheus, url: %q, query: "sum(evac_test_kpi)", below: 50, interval: 1s, timeout: 900ms, rise: 2, fall: 2}`, prom)
	}})
	tc.waitLeader(tc.controllers[0])
	cl := newClient(tc.controllers[0].http)
	if _, err := cl.ApplyConfig(ctxT(t, 30*time.Second), []byte(testSteering()), ""); err != nil {
		t.Fatal(err)
	}
	health := func() (float64, string, int, error) {
		r, err := cl.Region(ctxT(t, 5*time.Second), "us-east")
		if err != nil {
			return 0, "", 0, err
		}
		return r.HealthShare(), string(r.State), r.Weight, nil
	}
	eventually(t, 90*time.Second, "us-east healthy by its KPI on both agents", func() error {
		h, _, _, err := health()
		if err != nil {
			return err
		}
		if h != 1 {
			return fmt.Errorf("health %v", h)
		}
		return nil
	})

	// One Prometheus down: one agent fails, half the region still passes.
	stopA()
	eventually(t, 60*time.Second, "us-east at half health with prometheus-a down", func() error {
		h, _, _, err := health()
		if err != nil {
			return err
		}
		if h != 0.5 {
			return fmt.Errorf("health %v", h)
		}
		return nil
	})
	held := time.Now()
	for time.Since(held) < 5*2*time.Second { // five times detect_after
		if _, st, w, err := health(); err == nil && (st != string(state.PhaseActive) || w != 100) {
			t.Fatalf("us-east %s at %d with one Prometheus down: one observer's fault evacuated it", st, w)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// The KPI falls: the other agent's check fails too, and us-east goes.
	kpi.Set(10)
	eventually(t, 90*time.Second, "us-east evacuated on its KPI", func() error {
		_, st, w, err := health()
		if err != nil {
			return err
		}
		if st != string(state.PhaseEvacuated) {
			return fmt.Errorf("us-east %s at %d", st, w)
		}
		return nil
	})
	evs, err := allEvents(t, tc.controllers[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Kind == state.EventHealthLost && e.Region == "us-east" {
			t.Logf("verdict: %s %s", e.Kind, e.Detail)
		}
	}
}
