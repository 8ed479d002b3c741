package controller

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/evac-sh/evac/controlplane/auth"
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
