package cli

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

const explainJSON = `{"name":"api.example.com.","policy":"nearest","client":"10.3.0.0/24","rule":"net",
"preference":["eu-west","us-east","us-west"],"regions":[{"name":"us-east","weight":100,"health":"healthy","effective_weight":100},
{"name":"eu-west","weight":0,"health":"healthy","effective_weight":0}],"kept_share":false,"answer_region":"us-east",
"answer":["192.0.2.11","192.0.2.12"],"scope":16,"serial":9}`

func TestExplainCommand(t *testing.T) {
	clearEnv(t)
	f := newFake(t)
	f.routes["GET /v1/explain"] = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("name") != "api" || r.URL.Query().Get("client") != "10.3.0.0/24" {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"bad query","code":"invalid"}`)
			return
		}
		io.WriteString(w, explainJSON)
	}
	ctx := context.Background()
	code, out, errs := run(ctx, t, "explain", "api", "--client", "10.3.0.0/24", "--addr", f.URL)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, w := range []string{"RULE", "net", "eu-west > us-east > us-west", "KEPT SHARE", "no", "us-east 192.0.2.11,192.0.2.12", "/16", "EFFECTIVE"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if code, _, _ := run(ctx, t, "explain", "api", "--addr", f.URL); code != 2 {
		t.Errorf("without --client: exit %d, want 2", code)
	}
	if code, _, _ := run(ctx, t, "explain", "api", "--client", "10.9.0.0/24", "--addr", f.URL); code != 1 {
		t.Errorf("refused: exit %d, want 1", code)
	}
}

// TestDryRunRefusedSaysSo: a dry run the server would refuse is not
// reported as accepted (issue 13).
func TestDryRunRefusedSaysSo(t *testing.T) {
	clearEnv(t)
	f := newFake(t)
	f.routes["POST /v1/regions/us-west/evacuate"] = func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"index":5,"events":[],"duplicate":false,"dry_run":{"allowed":false,
"refusal":"us-west is the last serving region","code":"rule","regions":[]}}`)
	}
	f.routes["POST /v1/regions/us-east/evacuate"] = func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"index":5,"events":[],"duplicate":false,"dry_run":{"allowed":true,
"regions":[{"name":"us-east","state":"evacuating","weight":50}]}}`)
	}
	ctx := context.Background()
	code, _, errs := run(ctx, t, "evacuate", "us-west", "--reason", "x", "--dry-run", "--addr", f.URL)
	if code != 1 || !strings.Contains(errs, "would be refused: us-west is the last serving region") {
		t.Fatalf("refused dry run: exit %d, stderr %q", code, errs)
	}
	code, out, _ := run(ctx, t, "evacuate", "us-east", "--reason", "x", "--dry-run", "--addr", f.URL)
	if code != 0 || !strings.Contains(out, "would be accepted") || !strings.Contains(out, "weight 50") {
		t.Fatalf("accepted dry run: exit %d, %q", code, out)
	}
}
