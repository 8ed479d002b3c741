package cli

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

const spillPlanJSON = `{"region":"us-east","weight":0,"moving":12.5,"flows":[
{"to":"us-west","share":0.48,"accept":0.48,"utilization":1},{"to":"eu-west","share":0.52,"accept":1,"utilization":0.15}],
"measured_at":"2020-01-02T03:04:05Z"}`

// TestSpillOutput: evacuate --dry-run prints where the region's clients
// would go, each receiving region's share and predicted utilisation;
// regions prints the home share and where a lowered region's clients went.
func TestSpillOutput(t *testing.T) {
	clearEnv(t)
	f := newFake(t)
	f.routes["POST /v1/regions/us-east/evacuate"] = func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"index":5,"events":[],"duplicate":false,"dry_run":{"allowed":true,
"regions":[{"name":"us-east","state":"evacuated","weight":0}],"spill":`+spillPlanJSON+`}}`)
	}
	f.routes["GET /v1/regions"] = func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `[{"name":"us-east","state":"evacuated","weight":0,"health":1,"agents_alive":2,"agents_total":2,
"since":"2020-01-02T03:04:05Z","ramp":null,"services":{},"home_share":0.3333,"spill":`+spillPlanJSON+`},
{"name":"us-west","state":"active","weight":100,"health":1,"agents_alive":2,"agents_total":2,
"since":"2020-01-02T03:04:05Z","ramp":null,"services":{}}]`)
	}
	ctx := context.Background()
	code, out, errs := run(ctx, t, "evacuate", "us-east", "--reason", "x", "--dry-run", "--addr", f.URL)
	if code != 0 || errs != "" {
		t.Fatalf("dry run: exit %d, stderr %q", code, errs)
	}
	for _, w := range []string{"would be accepted", "us-east's clients (12.5 answers/s) would go to:", "UTILISATION",
		"us-west", "48%", "1.00", "eu-west", "52%", "0.15"} {
		if !strings.Contains(out, w) {
			t.Errorf("dry run output lacks %q:\n%s", w, out)
		}
	}
	code, out, errs = run(ctx, t, "regions", "--addr", f.URL)
	if code != 0 || errs != "" {
		t.Fatalf("regions: exit %d, stderr %q", code, errs)
	}
	for _, w := range []string{"HOME", "33%", "us-east's clients (weight 0, 12.5 answers/s moving):", "ACCEPTS", "48%"} {
		if !strings.Contains(out, w) {
			t.Errorf("regions output lacks %q:\n%s", w, out)
		}
	}
}
