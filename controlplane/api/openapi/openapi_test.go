package openapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/evac-sh/evac/controlplane/api"
	"github.com/evac-sh/evac/controlplane/api/openapi"
	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
)

// backend satisfies api.Backend; the test only builds the router.
type backend struct{}

func (backend) State() *state.State { return &state.State{} }
func (backend) Propose(context.Context, state.CommandType, string, string, any) (state.Result, error) {
	return state.Result{}, nil
}
func (backend) WaitApplied(context.Context, uint64) error  { return nil }
func (backend) Status() wire.Status                        { return wire.Status{} }
func (backend) RegionHealth() map[string]wire.RegionHealth { return nil }
func (backend) ReportedCapacity() map[string]int           { return nil }
func (backend) Members() []wire.Member                     { return nil }
func (backend) Ready() error                               { return nil }
func (backend) FailRegion(string) error                    { return nil }
func (backend) HealRegion(string) error                    { return nil }

type document struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

// routes walks the API's router (with the dev endpoints on, as in evac dev)
// and returns "METHOD /path" for every route, plus the document's own route.
func routes(t *testing.T) (map[string]bool, http.Handler) {
	t.Helper()
	got := map[string]bool{}
	h := api.NewHandler(backend{}, api.Options{Dev: backend{}, Extra: func(r *mux.Router) {
		err := r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
			tpl, err := route.GetPathTemplate()
			if err != nil {
				return err
			}
			methods, err := route.GetMethods()
			if err != nil {
				t.Errorf("route %s has no method matcher", tpl)
				return nil
			}
			for _, p := range expand(tpl) {
				for _, m := range methods {
					got[m+" "+p] = true
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		openapi.Mount(r)
	}})
	got["GET "+openapi.Path] = true
	return got, h
}

var alternation = regexp.MustCompile(`\{(\w+):([\w|]+)\}`)

// expand turns a gorilla template with an alternation variable,
// /v1/dev/regions/{region}/{action:fail|heal}, into the literal paths the
// document lists.
func expand(tpl string) []string {
	m := alternation.FindStringSubmatchIndex(tpl)
	if m == nil {
		return []string{tpl}
	}
	var out []string
	for _, alt := range strings.Split(tpl[m[4]:m[5]], "|") {
		out = append(out, expand(tpl[:m[0]]+alt+tpl[m[1]:])...)
	}
	return out
}

func TestDocumentListsEveryRoute(t *testing.T) {
	var d document
	if err := json.Unmarshal(openapi.Document(), &d); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	if !strings.HasPrefix(d.OpenAPI, "3.") {
		t.Fatalf("openapi = %q, want 3.x", d.OpenAPI)
	}
	documented := map[string]bool{}
	for p, item := range d.Paths {
		for m := range item {
			switch m {
			case "get", "put", "post", "delete", "patch":
				documented[strings.ToUpper(m)+" "+p] = true
			}
		}
	}
	registered, _ := routes(t)
	if len(registered) < 15 {
		t.Fatalf("walked only %d routes: %v", len(registered), registered)
	}
	var missing, extra []string
	for r := range registered {
		if strings.HasPrefix(r, "HEAD ") {
			continue
		}
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for r := range documented {
		if !registered[r] {
			extra = append(extra, r)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("routes registered but not in openapi.json: %v", missing)
	}
	if len(extra) > 0 {
		t.Errorf("routes in openapi.json but not registered: %v", extra)
	}
}

func TestServed(t *testing.T) {
	_, h := routes(t)
	for _, tc := range []struct {
		name string
		srv  *httptest.Server
	}{
		{"http", httptest.NewServer(h)},
		{"https", httptest.NewTLSServer(h)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.srv.Close()
			res, err := tc.srv.Client().Get(tc.srv.URL + openapi.Path)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("GET %s: %d %s", openapi.Path, res.StatusCode, res.Header.Get("Content-Type"))
			}
			var served, stored map[string]any
			if err := json.Unmarshal(b, &served); err != nil {
				t.Fatalf("served document does not parse: %v", err)
			}
			if err := json.Unmarshal(openapi.Document(), &stored); err != nil {
				t.Fatal(err)
			}
			srvs, _ := served["servers"].([]any)
			if len(srvs) != 1 {
				t.Fatalf("servers = %v, want one entry", served["servers"])
			}
			if url := srvs[0].(map[string]any)["url"]; url != tc.srv.URL {
				t.Errorf("servers[0].url = %v, want the serving controller's %s", url, tc.srv.URL)
			}
			delete(served, "servers")
			delete(stored, "servers")
			if !reflect.DeepEqual(served, stored) {
				t.Error("served document differs from the embedded one beyond servers")
			}
		})
	}
}

func TestExpand(t *testing.T) {
	got := expand("/v1/dev/regions/{region}/{action:fail|heal}")
	want := []string{"/v1/dev/regions/{region}/fail", "/v1/dev/regions/{region}/heal"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("expand = %v, want %v", got, want)
	}
}
