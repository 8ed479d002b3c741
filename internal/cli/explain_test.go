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
