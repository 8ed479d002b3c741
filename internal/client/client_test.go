package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
)

// Canned answers in the shapes the admin API sends.
const (
	statusJSON = `{"node_id":"c0","leader":"c1","leader_addr":"127.0.0.1:8081","is_leader":false,
		"term":4,"frozen":true,"frozen_reason":"INC-1","config_version":3,"applied_index":120,
		"commit_index":121,"serial":17,"raft_state":"Follower",
		"voters":["c0","c1=127.0.9.2:7300",{"id":"c2","address":"127.0.9.3:7300"}]}`
	regionJSON = `{"name":"us-east","state":"evacuating","weight":50,"health":0.5,"agents_alive":2,
		"agents_total":2,"since":"2026-01-02T03:04:05Z","reason":"INC-1","actor":"alice","automatic":true,
		"ramp":{"kind":"evacuate","steps":[50,0],"next":1,"next_at":"2026-01-02T03:04:35Z"},
		"services":{"api":{"share":0.5,"healthy":false,"passing":1,"reporting":2,"failing":["a1/http"]}}}`
	regionsJSON  = `[` + regionJSON + `,{"name":"us-west","state":"active","weight":100,"health":1,"agents_alive":2,"agents_total":2,"since":"2026-01-02T00:00:00Z","reason":"","ramp":null,"services":{}}]`
	servicesJSON = `[{"name":"api","fqdn":"api.example.com.","policy":"weighted","ttl":30,
		"regions":[{"region":"us-east","endpoints":["192.0.2.11","192.0.2.12"],"weight":50,"effective_weight":0,"healthy":false}]}]`
	membersJSON = `[{"name":"a1","addr":"127.0.1.1:7946","region":"us-east","role":"agent","state":"suspect",
		"last_change":"2026-01-02T03:04:05Z","last_report_age_seconds":2.5,"failing":["api/http"]},
		{"name":"c0","addr":"127.0.9.1:7946","region":"","role":"controller","state":"alive",
		"last_change":"2026-01-02T03:04:05Z","last_report_age_seconds":-1,"failing":[]}]`
	configJSON = `{"version":3,"config":{"zone":"example.com.","ttl":30,"nameservers":{"ns1":"192.0.2.53"},
		"regions":[{"name":"us-east"}],"services":[{"name":"api","endpoints":{"us-east":["192.0.2.11"]}}],
		"policy":{"detect_after":"30s","ramp":[50,0]}}}`
	eventsJSON = `[{"seq":7,"index":40,"time":"2026-01-02T03:04:05Z","actor":"alice","kind":"region.evacuate",
		"region":"us-east","reason":"INC-1","detail":"ramp [50 0] every 30s"},
		{"seq":8,"index":41,"time":"2026-01-02T03:04:35Z","actor":"leader","kind":"region.step","region":"us-east","weight":0}]`
	writeJSON = `{"index":42,"events":[9,10],"duplicate":false,"region":` + regionJSON + `}`
)

type recorded struct {
	method, path, query, ctype, auth, reqID string
	body                                    []byte
}

// fakeAPI serves canned JSON by "METHOD /path" and records every request.
type fakeAPI struct {
	mu     sync.Mutex
	reqs   []recorded
	routes map[string]func(w http.ResponseWriter, r *http.Request)
}

func newFake(t *testing.T) (*fakeAPI, *httptest.Server) {
	t.Helper()
	f := &fakeAPI{routes: map[string]func(http.ResponseWriter, *http.Request){}}
	canned := map[string]string{
		"GET /v1/status":                    statusJSON,
		"GET /v1/regions":                   regionsJSON,
		"GET /v1/regions/us-east":           regionJSON,
		"GET /v1/services":                  servicesJSON,
		"GET /v1/members":                   membersJSON,
		"GET /v1/config":                    configJSON,
		"GET /v1/events":                    eventsJSON,
		"PUT /v1/config":                    `{"index":50,"events":[11],"duplicate":false,"version":4}`,
		"POST /v1/regions/us-east/evacuate": writeJSON,
		"POST /v1/regions/us-east/restore":  writeJSON,
		"POST /v1/freeze":                   `{"index":43,"events":[12],"duplicate":false}`,
		"POST /v1/unfreeze":                 `{"index":44,"events":[13],"duplicate":true}`,
		"POST /v1/dev/regions/us-east/fail": `{}`,
		"POST /v1/dev/regions/us-east/heal": ``,
		"GET /healthz":                      `ok`,
	}
	for k, body := range canned {
		f.routes[k] = func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, body)
		}
	}
	f.routes["GET /v1/regions/nowhere"] = func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"unknown region \"nowhere\"","code":"not_found"}`)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"),
			r.Header.Get("Authorization"), r.Header.Get("X-Request-ID"), b})
		h := f.routes[r.Method+" "+r.URL.Path]
		f.mu.Unlock()
		if h == nil {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"no route","code":"not_found"}`)
			return
		}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeAPI) last(t *testing.T) recorded {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("no request was sent")
	}
	return f.reqs[len(f.reqs)-1]
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDecodeShapes(t *testing.T) {
	_, srv := newFake(t)
	c := New(srv.URL, "tok")
	ctx := context.Background()

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantVoters := []wire.Voter{{ID: "c0"}, {ID: "c1", Addr: "127.0.9.2:7300"}, {ID: "c2", Addr: "127.0.9.3:7300"}}
	if st.NodeID != "c0" || st.Leader != "c1" || st.LeaderAddr != "127.0.0.1:8081" || st.IsLeader ||
		st.Term != 4 || !st.Frozen || st.FrozenReason != "INC-1" || st.ConfigVersion != 3 ||
		st.AppliedIndex != 120 || st.CommitIndex != 121 || st.Serial != 17 || st.RaftState != "Follower" ||
		!reflect.DeepEqual(st.Voters, wantVoters) {
		t.Errorf("Status = %+v", st)
	}

	rs, err := c.Regions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[1].Name != "us-west" || rs[1].Ramp != nil || rs[1].HealthShare() != 1 {
		t.Errorf("Regions = %+v", rs)
	}
	r, err := c.Region(ctx, "us-east")
	if err != nil {
		t.Fatal(err)
	}
	want := wire.Region{
		Name: "us-east", State: "evacuating", Weight: 50, Health: ptr(0.5), AgentsAlive: 2, AgentsTotal: 2,
		Since: mustTime(t, "2026-01-02T03:04:05Z"), Reason: "INC-1", Actor: "alice", Automatic: true,
		Ramp:     &state.Ramp{Kind: "evacuate", Steps: []int{50, 0}, Next: 1, NextAt: mustTime(t, "2026-01-02T03:04:35Z")},
		Services: map[string]wire.ServiceHealth{"api": {Share: 0.5, Passing: 1, Reporting: 2, Failing: []string{"a1/http"}}},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("Region =\n%+v\nwant\n%+v", r, want)
	}
	if !reflect.DeepEqual(rs[0], want) {
		t.Errorf("Regions[0] differs from Region")
	}

	ss, err := c.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantSvc := []wire.Service{{Name: "api", FQDN: "api.example.com.", Policy: "weighted", TTL: 30, Regions: []wire.ServiceRegion{
		{Region: "us-east", Endpoints: []string{"192.0.2.11", "192.0.2.12"}, Weight: 50, EffectiveWeight: 0, Healthy: false},
	}}}
	if !reflect.DeepEqual(ss, wantSvc) {
		t.Errorf("Services = %+v", ss)
	}

	ms, err := c.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Name != "a1" || ms[0].State != "suspect" || ms[0].LastReportAgeSeconds != 2.5 ||
		!reflect.DeepEqual(ms[0].Failing, []string{"api/http"}) || ms[1].LastReportAgeSeconds != -1 ||
		ms[0].LastChange.IsZero() || ms[1].Role != "controller" {
		t.Errorf("Members = %+v", ms)
	}

	ci, err := c.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Version != 3 || ci.Config == nil || ci.Config.Zone != "example.com." ||
		ci.Config.Policy.DetectAfter != state.Duration(30*time.Second) ||
		!reflect.DeepEqual(ci.Config.Services[0].Endpoints["us-east"], []string{"192.0.2.11"}) {
		t.Errorf("Config = %+v", ci)
	}

	evs, err := c.Events(ctx, 6, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Seq != 7 || evs[0].Kind != state.EventEvacuate || evs[0].Actor != "alice" ||
		evs[1].Weight == nil || *evs[1].Weight != 0 || evs[0].Weight != nil {
		t.Errorf("Events = %+v", evs)
	}

	wr, err := c.Evacuate(ctx, "us-east", wire.MoveRequest{Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if wr.Index != 42 || !reflect.DeepEqual(wr.Events, []uint64{9, 10}) || wr.Duplicate ||
		wr.Region == nil || wr.Region.Weight != 50 || wr.Version != 0 {
		t.Errorf("Evacuate = %+v", wr)
	}
	wr, err = c.Unfreeze(ctx, "")
	if err != nil || !wr.Duplicate || wr.Index != 44 || wr.Region != nil {
		t.Errorf("Unfreeze = %+v, %v", wr, err)
	}
	wr, err = c.ApplyConfig(ctx, []byte("zone: x"), "")
	if err != nil || wr.Version != 4 {
		t.Errorf("ApplyConfig = %+v, %v", wr, err)
	}
	if err := c.Healthz(ctx); err != nil {
		t.Errorf("Healthz: %v", err)
	}
}

func TestRequests(t *testing.T) {
	f, srv := newFake(t)
	c := New(strings.TrimPrefix(srv.URL, "http://")+"/", "s3cret") // no scheme, trailing slash
	ctx := context.Background()

	if _, err := c.Evacuate(ctx, "us-east", wire.MoveRequest{Reason: "INC-1", Ramp: []int{75, 0}, StepInterval: state.Duration(time.Minute), Force: true}); err != nil {
		t.Fatal(err)
	}
	r := f.last(t)
	if r.method != "POST" || r.path != "/v1/regions/us-east/evacuate" || r.ctype != "application/json" ||
		r.auth != "Bearer s3cret" || len(r.reqID) != 32 {
		t.Errorf("evacuate request = %+v", r)
	}
	if got, want := string(r.body), `{"reason":"INC-1","ramp":[75,0],"step_interval":"1m0s","force":true}`; got != want {
		t.Errorf("evacuate body = %s, want %s", got, want)
	}
	firstID := r.reqID

	if _, err := c.Restore(WithRequestID(ctx, "fixed-id"), "us-east", wire.MoveRequest{Reason: "ok", DryRun: true}); err != nil {
		t.Fatal(err)
	}
	r = f.last(t)
	if r.path != "/v1/regions/us-east/restore" || r.reqID != "fixed-id" || string(r.body) != `{"reason":"ok","dry_run":true}` {
		t.Errorf("restore request = %+v body %s", r, r.body)
	}

	if _, err := c.Freeze(ctx, "why"); err != nil {
		t.Fatal(err)
	}
	if r = f.last(t); r.path != "/v1/freeze" || string(r.body) != `{"reason":"why"}` || r.reqID == firstID {
		t.Errorf("freeze request = %+v body %s", r, r.body)
	}

	if _, err := c.ApplyConfig(ctx, []byte(`{"zone":"a."}`), "application/json"); err != nil {
		t.Fatal(err)
	}
	if r = f.last(t); r.method != "PUT" || r.ctype != "application/json" || string(r.body) != `{"zone":"a."}` {
		t.Errorf("apply request = %+v", r)
	}

	if _, err := c.Events(ctx, 5, 0); err != nil {
		t.Fatal(err)
	}
	if r = f.last(t); r.query != "since=5" || r.reqID != "" {
		t.Errorf("events request = %+v", r)
	}
	if _, err := c.Events(ctx, 0, 20); err != nil {
		t.Fatal(err)
	}
	if r = f.last(t); r.query != "limit=20&since=0" {
		t.Errorf("events query = %q", r.query)
	}

	if err := c.DevFail(ctx, "us-east"); err != nil {
		t.Fatal(err)
	}
	if r = f.last(t); r.method != "POST" || r.path != "/v1/dev/regions/us-east/fail" || len(r.body) != 0 {
		t.Errorf("dev fail request = %+v", r)
	}
	if err := c.DevHeal(ctx, "us-east"); err != nil {
		t.Fatal(err)
	}
	if r = f.last(t); r.path != "/v1/dev/regions/us-east/heal" {
		t.Errorf("dev heal request = %+v", r)
	}
}

func TestAPIError(t *testing.T) {
	f, srv := newFake(t)
	f.routes["POST /v1/unfreeze"] = func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, `{"error":"not frozen","code":"conflict"}`)
	}
	f.routes["GET /v1/status"] = func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upstream exploded", http.StatusBadGateway)
	}
	f.routes["GET /v1/members"] = func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	c := New(srv.URL, "")
	ctx := context.Background()

	for _, tc := range []struct {
		call func() error
		want APIError
		msg  string
	}{
		{func() error { _, err := c.Region(ctx, "nowhere"); return err },
			APIError{Status: 404, Code: "not_found", Message: `unknown region "nowhere"`}, `unknown region "nowhere" (not_found, HTTP 404)`},
		{func() error { _, err := c.Unfreeze(ctx, ""); return err },
			APIError{Status: 409, Code: "conflict", Message: "not frozen"}, "not frozen (conflict, HTTP 409)"},
		{func() error { _, err := c.Status(ctx); return err },
			APIError{Status: 502, Message: "upstream exploded"}, "upstream exploded (HTTP 502)"},
		{func() error { _, err := c.Members(ctx); return err },
			APIError{Status: 503, Message: "service unavailable"}, "service unavailable (HTTP 503)"},
	} {
		err := tc.call()
		var ae *APIError
		if !errors.As(err, &ae) {
			t.Errorf("error %v (%T) is not an *APIError", err, err)
			continue
		}
		if *ae != tc.want || ae.Error() != tc.msg {
			t.Errorf("got %+v %q, want %+v %q", *ae, ae.Error(), tc.want, tc.msg)
		}
	}
}

func TestCaptureRaw(t *testing.T) {
	_, srv := newFake(t)
	var raw json.RawMessage
	if _, err := New(srv.URL, "").Services(CaptureRaw(context.Background(), &raw)); err != nil {
		t.Fatal(err)
	}
	if string(raw) != servicesJSON {
		t.Errorf("raw = %s", raw)
	}
}

// A GET that gets no response is retried; a POST is not (only answers that
// say what became of it are: TestWriteRetriesWithSameRequestID).
func TestRetryOnlyIdempotentGETs(t *testing.T) {
	var gets, posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := gets.Load()
		if r.Method == http.MethodPost {
			posts.Add(1)
		} else {
			n = gets.Add(1)
		}
		if r.Method == http.MethodPost || n < 3 {
			// Drop the connection without an answer.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		io.WriteString(w, statusJSON)
	}))
	defer srv.Close()
	c := New(srv.URL, "")
	c.backoff = time.Millisecond

	st, err := c.Status(context.Background())
	if err != nil || st.NodeID != "c0" || gets.Load() != 3 {
		t.Errorf("Status after 2 dropped connections = %+v, %v (%d GETs)", st, err, gets.Load())
	}

	_, err = c.Freeze(context.Background(), "x")
	var ce *ConnError
	if !errors.As(err, &ce) || posts.Load() != 1 {
		t.Errorf("Freeze on a dropped connection = %v (%T), %d POSTs; want one *ConnError", err, err, posts.Load())
	}
}

func TestConnErrors(t *testing.T) {
	// Nothing listens on a port just closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := New("http://"+addr, "")
	c.backoff = time.Millisecond
	err = c.Healthz(context.Background())
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Method != "GET" || ce.URL != "http://"+addr+"/healthz" {
		t.Errorf("Healthz on a closed port = %v (%T)", err, err)
	}

	// The caller's deadline ends a request the server never answers.
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = New(srv.URL, "").Status(ctx)
	if !errors.As(err, &ce) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Status past its deadline = %v (%T)", err, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Status took %v past a 50ms deadline", d)
	}

	// WithTimeout bounds a request when the caller's context does not.
	start = time.Now()
	_, err = New(srv.URL, "", WithTimeout(50*time.Millisecond), WithHTTPClient(&http.Client{})).Status(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("Status with WithTimeout = %v after %v", err, time.Since(start))
	}
}

func TestDecodeErrorIsNotAPIError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"node_id": 5}`)
	}))
	defer srv.Close()
	_, err := New(srv.URL, "").Status(context.Background())
	var ae *APIError
	var ce *ConnError
	if err == nil || errors.As(err, &ae) || errors.As(err, &ce) || !strings.Contains(err.Error(), "decoding response") {
		t.Errorf("Status with a bad body = %v (%T)", err, err)
	}
}

// A write answered 503 no_leader or 504 outcome_unknown is sent again with
// the same request id, after the answer's Retry-After, a bounded number of
// times; other errors are not retried.
func TestWriteRetriesWithSameRequestID(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		ids  []string
		when []time.Time
	)
	answers := []struct {
		status int
		code   string
	}{
		{http.StatusServiceUnavailable, wire.CodeNoLeader},
		{http.StatusGatewayTimeout, wire.CodeOutcomeUnknown},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n := len(ids)
		ids = append(ids, r.Header.Get("X-Request-ID"))
		when = append(when, time.Now())
		mu.Unlock()
		switch {
		case r.URL.Path == "/v1/unfreeze":
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusGatewayTimeout)
			io.WriteString(w, `{"error":"unknown","code":"outcome_unknown"}`)
		case r.URL.Path == "/v1/freeze" && n < len(answers):
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(answers[n].status)
			fmt.Fprintf(w, `{"error":"try again","code":%q}`, answers[n].code)
		case r.URL.Path == "/v1/freeze":
			io.WriteString(w, `{"index":7,"duplicate":true}`)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"x","code":"rate_limited"}`)
		}
	}))
	defer srv.Close()
	c := New(srv.URL, "")
	c.backoff = time.Millisecond

	res, err := c.Freeze(context.Background(), "x")
	if err != nil || res.Index != 7 || !res.Duplicate {
		t.Fatalf("Freeze after 503 and 504 = %+v, %v", res, err)
	}
	mu.Lock()
	if len(ids) != 3 || ids[0] == "" || ids[1] != ids[0] || ids[2] != ids[0] {
		t.Errorf("request ids %q: want 3 attempts with one id", ids)
	}
	for i := 1; i < len(when); i++ {
		if d := when[i].Sub(when[i-1]); d < 900*time.Millisecond {
			t.Errorf("attempt %d came %v after the previous one, before Retry-After: 1", i+1, d)
		}
	}
	ids, when = nil, nil
	mu.Unlock()

	// Bounded: outcome_unknown every time gives up after writeAttempts
	// and returns the server's error.
	_, err = c.Unfreeze(context.Background(), "")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != wire.CodeOutcomeUnknown || ae.RetryAfter != time.Second {
		t.Fatalf("Unfreeze = %v; want the outcome_unknown APIError with RetryAfter 1s", err)
	}
	mu.Lock()
	if len(ids) != writeAttempts {
		t.Errorf("%d attempts, want %d", len(ids), writeAttempts)
	}
	ids = nil
	mu.Unlock()

	// WithWriteAttempts(1): the caller retries itself.
	one := New(srv.URL, "", WithWriteAttempts(1))
	if _, err := one.Unfreeze(context.Background(), ""); !errors.As(err, &ae) || ae.Code != wire.CodeOutcomeUnknown {
		t.Fatalf("Unfreeze with one attempt = %v", err)
	}
	mu.Lock()
	if len(ids) != 1 {
		t.Errorf("%d attempts with WithWriteAttempts(1), want 1", len(ids))
	}
	ids = nil
	mu.Unlock()

	// Another 503 code is not retried.
	_, err = c.Evacuate(context.Background(), "us-east", wire.MoveRequest{Reason: "x"})
	if !errors.As(err, &ae) || ae.Code != "rate_limited" {
		t.Fatalf("Evacuate = %v", err)
	}
	mu.Lock()
	if len(ids) != 1 {
		t.Errorf("%d attempts for an answer that is not retryable, want 1", len(ids))
	}
	mu.Unlock()
}

// A write is not retried when the deadline would cut the retry short: the
// answer in hand is returned.
func TestWriteRetryRespectsDeadline(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n.Add(1)
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":"no leader","code":"no_leader"}`)
	}))
	defer srv.Close()
	c := New(srv.URL, "", WithTimeout(3*time.Second))
	_, err := c.Freeze(context.Background(), "x")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != wire.CodeNoLeader || n.Load() != 1 {
		t.Fatalf("Freeze = %v after %d attempts; want the no_leader answer after 1", err, n.Load())
	}
}

func ptr[T any](v T) *T { return &v }
