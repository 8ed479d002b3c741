package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/evac-sh/evac/controlplane/api"
	"github.com/evac-sh/evac/controlplane/api/wire"
)

func hashOf(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// writeTokens writes a tokens file with one token per role, named after
// the role, whose token is "tok-ROLE".
func writeTokens(t *testing.T, path string, names ...string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("tokens:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  - {name: %s, role: %s, sha256: %s}\n", n, n, hashOf("tok-"+n))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	writeTokens(t, path, "viewer", "operator", "admin")
	s, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, path
}

type devHooks struct{}

func (devHooks) FailRegion(string) error { return nil }
func (devHooks) HealRegion(string) error { return nil }

// routes returns "METHOD /path/template" for every route of the API router.
func routes(t *testing.T) []string {
	t.Helper()
	var router *mux.Router
	api.NewHandler(nil, api.Options{Dev: devHooks{}, Extra: func(r *mux.Router) {
		router = r
		r.Handle("/metrics", http.NotFoundHandler()).Methods(http.MethodGet)
	}})
	var out []string
	err := router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		ms, err := route.GetMethods()
		if err != nil {
			return fmt.Errorf("route %s has no method", tpl)
		}
		for _, m := range ms {
			out = append(out, m+" "+tpl)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// want is the least role per route; every route of the router must be
// listed here, so a new one forces a decision.
var want = map[string]Role{
	"GET /healthz":                       RoleNone,
	"GET /readyz":                        RoleNone,
	"GET /metrics":                       RoleViewer,
	"GET /v1/status":                     RoleViewer,
	"GET /v1/regions":                    RoleViewer,
	"GET /v1/regions/{region}":           RoleViewer,
	"POST /v1/regions/{region}/evacuate": RoleOperator,
	"POST /v1/regions/{region}/restore":  RoleOperator,
	"GET /v1/services":                   RoleViewer,
	"GET /v1/members":                    RoleViewer,
	"GET /v1/config":                     RoleViewer,
	"PUT /v1/config":                     RoleAdmin,
	"POST /v1/freeze":                    RoleOperator,
	"POST /v1/unfreeze":                  RoleOperator,
	"GET /v1/events":                     RoleViewer,
	"GET /v1/notifications":              RoleViewer,
	"GET /v1/explain":                    RoleViewer,
	"GET /v1/agents":                     RoleViewer,
	"PUT /v1/agents/{name}":              RoleAdmin,
	"DELETE /v1/agents/{name}":           RoleAdmin,
	"GET /v1/dnssec/rollover":            RoleViewer,
	"POST /v1/dnssec/rollover/{action:init|start|next|abort}": RoleAdmin,
	"POST /v1/dev/regions/{region}/{action:fail|heal}":        RoleAdmin,
	// In SPEC.md, not all routed yet.
	"GET /v1/runbooks":              RoleViewer,
	"GET /v1/runbooks/{name}":       RoleViewer,
	"PUT /v1/runbooks/{name}":       RoleAdmin,
	"DELETE /v1/runbooks/{name}":    RoleAdmin,
	"POST /v1/drills":               RoleOperator,
	"GET /v1/drills":                RoleViewer,
	"GET /v1/drills/{id}":           RoleViewer,
	"POST /v1/drills/{id}/abort":    RoleOperator,
	"POST /v1/schedules":            RoleAdmin,
	"GET /v1/schedules":             RoleViewer,
	"GET /v1/schedules/{id}":        RoleViewer,
	"DELETE /v1/schedules/{id}":     RoleAdmin,
	"GET /v1/cluster/peers":         RoleViewer,
	"POST /v1/cluster/join":         RoleAdmin,
	"DELETE /v1/cluster/peers/{id}": RoleAdmin,
	"GET /ui":                       RoleNone,
	"GET /ui/app.js":                RoleNone,

	"POST /v1/cluster/peers/{id}/promote": RoleAdmin,
}

var varRe = regexp.MustCompile(`\{([a-z]+)(:[^}]*)?\}`)

func concrete(tpl string) string {
	return varRe.ReplaceAllStringFunc(tpl, func(v string) string {
		switch {
		case strings.HasPrefix(v, "{action"):
			return "fail"
		case v == "{region}":
			return "us-east"
		}
		return "x1"
	})
}

func TestEveryRouteHasARole(t *testing.T) {
	for _, r := range routes(t) {
		if _, ok := want[r]; !ok {
			t.Errorf("route %q is not in the role table of this test: decide who may call it", r)
		}
	}
}

func TestRoles(t *testing.T) {
	s, _ := newStore(t)
	var gotActor string
	h := Middleware(s, Options{WriteRate: -1}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotActor = wire.ActorOf(r)
		w.WriteHeader(http.StatusTeapot)
	}))
	tokens := map[string]Role{"": RoleNone, "tok-viewer": RoleViewer, "tok-operator": RoleOperator, "tok-admin": RoleAdmin, "wrong": RoleNone}
	for route, need := range want {
		method, tpl, _ := strings.Cut(route, " ")
		path := concrete(tpl)
		if got := Required(method, path); got != need {
			t.Errorf("Required(%s %s) = %s, want %s", method, path, got, need)
		}
		for tok, role := range tokens {
			req := httptest.NewRequest(method, path, nil)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			rec := httptest.NewRecorder()
			gotActor = ""
			h.ServeHTTP(rec, req)
			name := fmt.Sprintf("%s %s with %q", method, path, tok)
			switch {
			case need == RoleNone:
				if rec.Code != http.StatusTeapot {
					t.Errorf("%s: status %d, want the open handler", name, rec.Code)
				}
			case role == RoleNone:
				if rec.Code != http.StatusUnauthorized || !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s: status %d, WWW-Authenticate %q; want 401 Bearer", name, rec.Code, rec.Header().Get("WWW-Authenticate"))
				}
				checkJSONError(t, name, rec, "unauthorized")
			case role < need:
				if rec.Code != http.StatusForbidden {
					t.Errorf("%s: status %d, want 403", name, rec.Code)
				}
				checkJSONError(t, name, rec, "forbidden")
			default:
				if rec.Code != http.StatusTeapot {
					t.Errorf("%s: status %d, want the handler", name, rec.Code)
				}
				if gotActor != role.String() {
					t.Errorf("%s: actor %q, want the token's name %q", name, gotActor, role.String())
				}
			}
		}
	}
}

func checkJSONError(t *testing.T, name string, rec *httptest.ResponseRecorder, code string) {
	t.Helper()
	var e wire.Error
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code != code || e.Error == "" {
		t.Errorf("%s: body %q, want a JSON error with code %q", name, rec.Body.String(), code)
	}
}

func TestRequiredCleansPaths(t *testing.T) {
	for _, c := range []struct {
		method, path string
		want         Role
	}{
		{"GET", "/ui/../v1/status", RoleViewer},
		{"GET", "/healthz/../v1/events", RoleViewer},
		{"POST", "/v1/regions/x/../../config", RoleAdmin},
		{"POST", "/v1//freeze", RoleOperator},
		{"POST", "/v1/regions/us-east/evacuate/", RoleOperator},
		{"GET", "//healthz", RoleNone},
		{"DELETE", "/ui/app.js", RoleAdmin},
	} {
		if got := Required(c.method, c.path); got != c.want {
			t.Errorf("Required(%s %s) = %s, want %s", c.method, c.path, got, c.want)
		}
	}
}

func TestBearerParsing(t *testing.T) {
	s, _ := newStore(t)
	h := Middleware(s, Options{}, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	for hdr, status := range map[string]int{
		"Bearer tok-viewer": 200, "bearer tok-viewer": 200, "Basic tok-viewer": 401,
		"tok-viewer": 401, "Bearer ": 401, "Bearer tok-viewerX": 401,
	} {
		req := httptest.NewRequest(http.MethodGet, "/v1/status", nil)
		req.Header.Set("Authorization", hdr)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != status {
			t.Errorf("Authorization %q: status %d, want %d", hdr, rec.Code, status)
		}
	}
}

func TestReload(t *testing.T) {
	s, path := newStore(t)
	if _, ok := s.Authenticate("tok-operator"); !ok {
		t.Fatal("operator token not accepted")
	}
	writeTokens(t, path, "viewer", "admin")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Authenticate("tok-operator"); ok {
		t.Error("operator token still accepted after it was removed and the file reloaded")
	}
	if id, ok := s.Authenticate("tok-admin"); !ok || id.Role != RoleAdmin || id.Name != "admin" {
		t.Errorf("admin token: %+v %v", id, ok)
	}
	// A bad file keeps the previous tokens.
	if err := os.WriteFile(path, []byte("tokens: [{name: x, role: root, sha256: 00}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil {
		t.Fatal("reload of a bad file succeeded")
	}
	if _, ok := s.Authenticate("tok-admin"); !ok || s.Len() != 2 {
		t.Error("a bad file on reload replaced the tokens in force")
	}
}

func TestParseErrors(t *testing.T) {
	h := hashOf("a")
	for name, file := range map[string]string{
		"empty":        "tokens: []\n",
		"unknown key":  "tokens: [{name: a, role: admin, sha256: " + h + ", token: a}]\n",
		"bad role":     "tokens: [{name: a, role: root, sha256: " + h + "}]\n",
		"short hash":   "tokens: [{name: a, role: admin, sha256: abcd}]\n",
		"not hex":      "tokens: [{name: a, role: admin, sha256: " + strings.Repeat("zz", 32) + "}]\n",
		"no name":      "tokens: [{role: admin, sha256: " + h + "}]\n",
		"dup name":     "tokens: [{name: a, role: admin, sha256: " + h + "}, {name: a, role: viewer, sha256: " + hashOf("b") + "}]\n",
		"dup token":    "tokens: [{name: a, role: admin, sha256: " + h + "}, {name: b, role: viewer, sha256: " + h + "}]\n",
		"not yaml map": "- a\n",
	} {
		if _, err := parse([]byte(file)); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
	if _, err := parse([]byte("tokens:\n  - {name: a, role: admin, sha256: " + strings.ToUpper(h) + "}\n")); err != nil {
		t.Errorf("upper-case hex: %v", err)
	}
}

func TestNewToken(t *testing.T) {
	tok, sum, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	tok2, _, _ := NewToken()
	if tok == tok2 || len(tok) < 40 || !strings.HasPrefix(tok, "evac_") {
		t.Fatalf("tokens %q, %q", tok, tok2)
	}
	if sum != hashOf(tok) {
		t.Fatal("sum is not the SHA-256 of the token")
	}
	ids, err := parse([]byte("tokens:\n" + FileLine("alice", RoleOperator, sum) + "\n"))
	if err != nil || len(ids) != 1 || ids[0].role != RoleOperator || ids[0].name != "alice" {
		t.Fatalf("FileLine does not parse back: %v %+v", err, ids)
	}
}

func TestWriteRateLimit(t *testing.T) {
	s, _ := newStore(t)
	now := time.Unix(1000, 0)
	h := Middleware(s, Options{WriteRate: 10, WriteBurst: 20, Now: func() time.Time { return now }},
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	do := func(method, tok string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/v1/freeze", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for i := 0; i < 20; i++ {
		if rec := do(http.MethodPost, "tok-operator"); rec.Code != 200 {
			t.Fatalf("write %d within the burst: %d", i, rec.Code)
		}
	}
	rec := do(http.MethodPost, "tok-operator")
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("write past the burst: %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	checkJSONError(t, "past the burst", rec, "rate_limited")
	if rec := do(http.MethodPost, "tok-admin"); rec.Code != 200 {
		t.Errorf("another token is limited too: %d", rec.Code)
	}
	req := httptest.NewRequest(http.MethodGet, "/v1/status", nil)
	req.Header.Set("Authorization", "Bearer tok-operator")
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	if rr.Code != 200 {
		t.Errorf("reads are limited: %d", rr.Code)
	}
	now = now.Add(100 * time.Millisecond) // one write refilled
	if rec := do(http.MethodPost, "tok-operator"); rec.Code != 200 {
		t.Errorf("after 100ms: %d", rec.Code)
	}
	if rec := do(http.MethodPost, "tok-operator"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("second write after 100ms: %d", rec.Code)
	}
}
