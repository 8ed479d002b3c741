package blocker

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/testutil"
)

func fp(f float64) *float64 { return &f }

// amServer answers GET /api/v2/alerts with body (status code code), and
// records the query string of each request.
func amServer(t *testing.T, code int, body string, hold time.Duration) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		if hold > 0 {
			select {
			case <-time.After(hold):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), queries...)
	}
}

const activeAlert = `[{"labels":{"alertname":"HighErrorRate","service":"api"},"status":{"state":"active","silencedBy":[],"inhibitedBy":[]}}]`

func TestEvaluateAlertmanager(t *testing.T) {
	for _, tc := range []struct {
		name   string
		code   int
		body   string
		hold   time.Duration
		want   State
		detail string
	}{
		{"firing", 200, activeAlert, 0, Firing, "alert HighErrorRate firing (1 active at "},
		{"none", 200, `[]`, 0, Clear, "alert HighErrorRate not firing"},
		{"silenced (a server ignoring the filter)", 200,
			`[{"labels":{"alertname":"HighErrorRate"},"status":{"state":"suppressed","silencedBy":["s1"],"inhibitedBy":[]}}]`, 0, Clear, "not firing"},
		{"another alert", 200, `[{"labels":{"alertname":"Other"},"status":{"state":"active"}}]`, 0, Clear, "not firing"},
		{"server error", 500, `boom`, 0, Unknown, "HTTP 500: boom"},
		{"not JSON", 200, `<html>`, 0, Unknown, "not a list of alerts"},
		{"slow", 200, `[]`, 5 * time.Second, Unknown, ": timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, queries := amServer(t, tc.code, tc.body, tc.hold)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			b := state.Blocker{Alertmanager: srv.URL, Alert: "HighErrorRate"}
			st, detail := Evaluate(ctx, srv.Client(), srv.Client().Transport, b, time.Now())
			if st != tc.want || !strings.Contains(detail, tc.detail) {
				t.Fatalf("got %s %q, want %s %q", st, detail, tc.want, tc.detail)
			}
			q := queries()[0]
			for _, w := range []string{"/api/v2/alerts?", "active=true", "silenced=false", "inhibited=false",
				"filter=alertname%3D%22HighErrorRate%22"} {
				if !strings.Contains(q, w) {
					t.Errorf("request %q lacks %q", q, w)
				}
			}
		})
	}
}

// promServer answers the query API with one result.
func promServer(t *testing.T, result string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":%s}`, result)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func vector(v string) string {
	return `{"resultType":"vector","result":[{"metric":{},"value":[1764000000,"` + v + `"]}]}`
}

func TestEvaluatePrometheus(t *testing.T) {
	for _, tc := range []struct {
		name   string
		result string
		above  *float64
		below  *float64
		want   State
		detail string
	}{
		{"above", vector("12"), fp(10), nil, Firing, "= 12, above 10"},
		{"not above", vector("10"), fp(10), nil, Clear, "= 10"},
		{"below", vector("0.5"), nil, fp(1), Firing, "= 0.5, below 1"},
		{"not below", vector("3"), nil, fp(1), Clear, "= 3"},
		{"no series", `{"resultType":"vector","result":[]}`, fp(10), nil, Unknown, "returned 0 series"},
		{"NaN", vector("NaN"), fp(10), nil, Unknown, "no value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := promServer(t, tc.result)
			b := state.Blocker{Prometheus: srv.URL, Query: "sum(rate(errors_total[5m]))", Above: tc.above, Below: tc.below}
			st, detail := Evaluate(context.Background(), srv.Client(), srv.Client().Transport, b, time.Now())
			if st != tc.want || !strings.Contains(detail, tc.detail) {
				t.Fatalf("got %s %q, want %s %q", st, detail, tc.want, tc.detail)
			}
		})
	}
}

func TestCombine(t *testing.T) {
	bs := []state.Blocker{{Alertmanager: "http://a", Alert: "A"}, {Alertmanager: "http://a", Alert: "B"}}
	for _, tc := range []struct {
		name string
		a, b Result
		want Verdict
	}{
		{"clear", Result{State: Clear}, Result{State: Clear}, Verdict{State: Clear}},
		{"pending", Result{State: Clear}, Result{State: Pending}, Verdict{State: Pending}},
		{"unknown over pending", Result{State: Pending}, Result{State: Unknown, Detail: "timeout", Unknowns: 2},
			Verdict{State: Unknown, Reason: "blocked: alert B cannot be evaluated: timeout", Unknowns: 2}},
		{"firing over unknown", Result{State: Unknown, Detail: "x", Unknowns: 1}, Result{State: Firing, Detail: "alert B firing"},
			Verdict{State: Firing, Reason: "blocked: alert B firing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Combine(bs, []Result{tc.a, tc.b}); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestEvaluatorCachesAndForgets: Run evaluates each wanted blocker once an
// Interval (the verdict is read from the cache), counts failed evaluations
// in a row, and forgets everything when it stops (leadership lost).
func TestEvaluatorCachesAndForgets(t *testing.T) {
	var hits atomic.Int32
	var fail atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		if fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, activeAlert)
	}))
	defer srv.Close()
	bs := []state.Blocker{{Alertmanager: srv.URL, Alert: "HighErrorRate"}}
	e := New(Config{Interval: 100 * time.Millisecond, Timeout: time.Second}, func() []state.Blocker { return bs })
	if v := e.Verdict(bs); v.State != Pending {
		t.Fatalf("before Run: %+v", v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Run(ctx)
	}()
	testutil.WaitFor(t, 30*time.Second, "firing", func() bool { return e.Verdict(bs).State == Firing })
	if v := e.Verdict(bs); v.Reason != "blocked: alert HighErrorRate firing (1 active at "+srv.URL+")" {
		t.Errorf("reason %q", v.Reason)
	}
	n := hits.Load()
	for range 100 {
		e.Verdict(bs) // reads never query
	}
	if hits.Load()-n > 1 {
		t.Errorf("100 verdicts made %d requests", hits.Load()-n)
	}
	fail.Store(true)
	testutil.WaitFor(t, 30*time.Second, "unknown 3 times in a row", func() bool {
		v := e.Verdict(bs)
		return v.State == Unknown && v.Unknowns >= 3 && strings.Contains(v.Reason, "HTTP 503")
	})
	fail.Store(false)
	testutil.WaitFor(t, 30*time.Second, "firing again, count reset", func() bool {
		v := e.Verdict(bs)
		return v.State == Firing && v.Unknowns == 0
	})
	cancel()
	<-done
	if v := e.Verdict(bs); v.State != Pending {
		t.Fatalf("after Run stopped: %+v", v)
	}
}

func TestWanted(t *testing.T) {
	a := state.Blocker{Alertmanager: "http://a", Alert: "A"}
	b := state.Blocker{Prometheus: "http://p", Query: "up", Below: fp(1)}
	st := state.Empty()
	st.Schedules = map[string]state.Schedule{"s": {ID: "s", BlockOn: []state.Blocker{a}}}
	st.Drills = map[string]state.Drill{
		"run":  {ID: "run", Status: state.DrillRunning, BlockOn: []state.Blocker{a, b}},
		"done": {ID: "done", Status: state.DrillAborted, BlockOn: []state.Blocker{{Alertmanager: "http://a", Alert: "C"}}},
	}
	got := Wanted(st)
	if len(got) != 2 || got[0].Key() != a.Key() || got[1].Key() != b.Key() {
		t.Fatalf("wanted %+v", got)
	}
}

// TestRunStopsItsEvaluations: leadership lost in the middle of a slow
// query, Run returns at once, its evaluation goroutines with it, and
// nothing learnt from the cancelled query is kept.
func TestRunStopsItsEvaluations(t *testing.T) {
	srv, queries := amServer(t, 200, activeAlert, time.Minute)
	bs := []state.Blocker{{Alertmanager: srv.URL, Alert: "HighErrorRate"}}
	e := New(Config{Interval: 50 * time.Millisecond, Timeout: time.Minute}, func() []state.Blocker { return bs })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Run(ctx)
	}()
	testutil.WaitFor(t, 30*time.Second, "a query in flight", func() bool { return len(queries()) > 0 })
	start := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of leadership loss")
	}
	t.Logf("Run returned %s after the cancel", time.Since(start).Round(time.Millisecond))
	if n := len(queries()); n != 1 {
		t.Errorf("%d queries: evaluations of one blocker overlapped", n)
	}
	if v := e.Verdict(bs); v.State != Pending {
		t.Fatalf("after Run stopped: %+v", v)
	}
}
