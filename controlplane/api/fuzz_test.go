package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/fsm"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/runbooks"
)

// fuzzConfig is the steering config of the fuzzed controller's state.
const fuzzConfig = `zone: example.com.
nameservers: {ns1: 192.0.2.53}
regions:
  - {name: us-east, capacity: 100}
  - {name: us-west, capacity: 100}
  - {name: eu-west, capacity: 100}
services:
  - name: api
    endpoints:
      us-east: [192.0.2.11]
      us-west: [198.51.100.11]
      eu-west: [203.0.113.11]
policy: {detect_after: 5s, ramp: [50, 0], step_interval: 10s, max_evacuated: 1}
`

// fsmBackend is a one-node controller without the network: every proposal
// is applied at once, as the next log index, by the real FSM. The clock is
// fixed so that a run is reproducible.
type fsmBackend struct {
	mu    sync.Mutex
	f     *fsm.FSM
	index uint64
	now   time.Time
}

func newFSMBackend(t testing.TB, snapshot []byte) *fsmBackend {
	t.Helper()
	b := &fsmBackend{f: fsm.New(zap.NewNop()), now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	if snapshot != nil {
		if err := b.f.Restore(io.NopCloser(bytes.NewReader(snapshot))); err != nil {
			t.Fatal(err)
		}
		b.index = b.f.State().Index
	}
	return b
}

func (b *fsmBackend) State() *state.State { return b.f.State() }

func (b *fsmBackend) Propose(_ context.Context, t state.CommandType, actor, id string, body any) (state.Result, error) {
	data, err := state.Encode(t, id, actor, b.now, body)
	if err != nil {
		return state.Result{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.index++
	switch resp := b.f.Apply(&raft.Log{Index: b.index, Type: raft.LogCommand, Data: data}).(type) {
	case error:
		return state.Result{}, resp
	case []byte:
		var res state.Result
		if err := json.Unmarshal(resp, &res); err != nil {
			return state.Result{}, fmt.Errorf("decode result: %w", err)
		}
		return res, nil
	default:
		return state.Result{}, fmt.Errorf("FSM answered %T", resp)
	}
}

func (b *fsmBackend) WaitApplied(context.Context, uint64) error { return nil }

func (b *fsmBackend) Status() wire.Status {
	st := b.f.State()
	return wire.Status{NodeID: "fuzz", Leader: "fuzz", IsLeader: true, AppliedIndex: st.Index, CommitIndex: st.Index,
		Serial: st.Serial, Frozen: st.Frozen, ConfigVersion: st.ConfigVersion, RaftState: "Leader"}
}

func (b *fsmBackend) RegionHealth() map[string]wire.RegionHealth {
	return map[string]wire.RegionHealth{}
}
func (b *fsmBackend) ReportedCapacity() map[string]int { return nil }
func (b *fsmBackend) Members() []wire.Member           { return nil }
func (b *fsmBackend) Ready() error                     { return nil }

// bufSink is an in-memory raft.SnapshotSink.
type bufSink struct{ bytes.Buffer }

func (*bufSink) ID() string    { return "fuzz" }
func (*bufSink) Cancel() error { return nil }
func (*bufSink) Close() error  { return nil }

// baseSnapshot is a state with the config, the shipped runbooks and a
// schedule, as the FSM persists it.
func baseSnapshot(t testing.TB) []byte {
	t.Helper()
	b := newFSMBackend(t, nil)
	cfg, err := state.ParseConfig([]byte(fuzzConfig))
	if err != nil {
		t.Fatal(err)
	}
	cmds := []struct {
		t    state.CommandType
		body any
	}{{state.CmdApplyConfig, state.ApplyConfig{Config: cfg}}}
	for _, src := range runbooks.Shipped() {
		cmds = append(cmds, struct {
			t    state.CommandType
			body any
		}{state.CmdPutRunbook, state.PutRunbook{Source: string(src)}})
	}
	cmds = append(cmds, struct {
		t    state.CommandType
		body any
	}{state.CmdScheduleAdd, state.ScheduleAdd{ID: "weekly", Cron: "0 0 10 * * 2", Runbook: "chaos-kong",
		Params: map[string]string{"region": "us-west"}}})
	for _, c := range cmds {
		res, err := b.Propose(context.Background(), c.t, "seed", "", c.body)
		if err != nil || res.Error != "" {
			t.Fatalf("seed %s: %v %s", c.t, err, res.Error)
		}
	}
	snap, _ := b.f.Snapshot()
	var sink bufSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

// fuzzRoutes are the API's routes; {x} is replaced by the fuzzed name.
var fuzzRoutes = []struct{ method, path string }{
	{http.MethodPost, "/v1/regions/{x}/evacuate"},
	{http.MethodPost, "/v1/regions/{x}/restore"},
	{http.MethodPut, "/v1/config"},
	{http.MethodPost, "/v1/freeze"},
	{http.MethodPost, "/v1/unfreeze"},
	{http.MethodPut, "/v1/runbooks/{x}"},
	{http.MethodDelete, "/v1/runbooks/{x}"},
	{http.MethodPost, "/v1/drills"},
	{http.MethodPost, "/v1/drills/{x}/abort"},
	{http.MethodPost, "/v1/schedules"},
	{http.MethodDelete, "/v1/schedules/{x}"},
	{http.MethodGet, "/v1/regions/{x}"},
	{http.MethodGet, "/v1/runbooks/{x}"},
	{http.MethodGet, "/v1/drills/{x}"},
	{http.MethodGet, "/v1/schedules/{x}"},
	{http.MethodGet, "/v1/events?since={x}&limit={x}"},
	{http.MethodGet, "/v1/config"},
	{http.MethodGet, "/v1/status"},
}

// stateWithoutIndex is the state as JSON without the applied index: a refused
// command is committed (the index moves) but must change nothing else.
func stateWithoutIndex(t *testing.T, s *state.State) string {
	c := *s
	c.Index = 0
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzHandler sends any body to any route of the real router, backed by the
// real FSM: no panic and no 5xx; every error is a JSON Error with a message
// and a code; a 4xx, a read or a dry run changes nothing; and the same
// write sent again with its Idempotency-Key changes nothing more.
func FuzzHandler(f *testing.F) {
	seeds := []struct {
		route      int
		name, body string
	}{
		{0, "us-west", `{"reason":"drill","ramp":[50,0],"step_interval":"1s"}`},
		{0, "us-west", `{"reason":"x","dry_run":true}`},
		{0, "us-east", `{"reason":"x","force":true}`},
		{1, "us-west", `{"reason":"back","ramp":[100]}`},
		{2, "", fuzzConfig},
		{3, "", `{"reason":"change freeze"}`},
		{4, "", ``},
		{6, "canary-10", ``},
		{7, "", `{"runbook":"chaos-kong","params":{"region":"us-west"},"reason":"game day"}`},
		{8, "d-1", `{"reason":"stop"}`},
		{9, "", `{"id":"s1","cron":"0 0 10 * * 2","tz":"Europe/Paris","runbook":"canary-10","params":{"region":"eu-west"},"skip_if":["frozen"]}`},
		{10, "weekly", ``},
		{15, "3", ``},
		{0, "us-west", `{"reason":"x"}]`},
	}
	for i, s := range seeds {
		f.Add(uint8(s.route), s.name, []byte(s.body), fmt.Sprintf("k%d", i))
	}
	for name, src := range runbooks.Shipped() {
		f.Add(uint8(5), strings.TrimSuffix(name, ".yaml"), src, "")
	}
	snap := baseSnapshot(f)
	f.Fuzz(func(t *testing.T, route uint8, name string, body []byte, key string) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		target := strings.ReplaceAll(rt.path, "{x}", url.PathEscape(name))
		if strings.Contains(rt.path, "?") {
			target = strings.ReplaceAll(rt.path, "{x}", url.QueryEscape(name))
		}
		b := newFSMBackend(t, snap)
		h := NewHandler(b, Options{})
		send := func() *httptest.ResponseRecorder {
			req, err := http.NewRequest(rt.method, target, bytes.NewReader(body))
			if err != nil {
				t.Skip("not a request:", err)
			}
			if key != "" {
				req.Header.Set("Idempotency-Key", key)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			return w
		}
		before := stateWithoutIndex(t, b.State())
		w := send()
		after := stateWithoutIndex(t, b.State())
		if w.Code >= 500 {
			t.Fatalf("%s %s: %d %s", rt.method, target, w.Code, w.Body)
		}
		if w.Code >= 300 && w.Code < 400 {
			// The router's redirect to the clean path ("//" in it).
			if after != before {
				t.Fatalf("%s %s answered %d but changed the state", rt.method, target, w.Code)
			}
			return
		}
		if w.Code >= 400 {
			var e wire.Error
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" || e.Code == "" {
				t.Fatalf("%s %s: %d with body %q", rt.method, target, w.Code, w.Body)
			}
			if after != before {
				t.Fatalf("%s %s answered %d (%s) but changed the state", rt.method, target, w.Code, e.Error)
			}
			return
		}
		var wr wire.WriteResult
		_ = json.Unmarshal(w.Body.Bytes(), &wr)
		if (rt.method == http.MethodGet || wr.DryRun != nil) && after != before {
			t.Fatalf("%s %s (a read or dry run) changed the state", rt.method, target)
		}
		if key == "" || rt.method == http.MethodGet {
			return
		}
		w2 := send()
		if again := stateWithoutIndex(t, b.State()); again != after {
			t.Fatalf("%s %s retried with its Idempotency-Key (answer %d) changed the state again", rt.method, target, w2.Code)
		}
	})
}

// requestTypes are the JSON bodies the API decodes strictly.
var requestTypes = []func() any{
	func() any { return new(wire.MoveRequest) },
	func() any { return new(wire.DrillRequest) },
	func() any { return new(wire.AbortRequest) },
	func() any { return new(state.ScheduleAdd) },
	func() any {
		return new(struct {
			Reason string `json:"reason"`
		})
	},
}

// FuzzDecodeStrict: a body decodes into a request type only when it is one
// JSON value and nothing else, and what it decodes to survives a round trip
// through JSON; otherwise the error says the body is invalid or empty.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{
		`{"reason":"x","ramp":[50,0],"step_interval":"10s","force":true,"dry_run":true}`,
		`{"runbook":"chaos-kong","params":{"region":"us-west"}}`,
		`{"id":"s","cron":"* * * * * *","runbook":"r","blackouts":[{"from":"22:00","to":"06:00","days":["fri"]}],"skip_if":["frozen"]}`,
		`{"reason":"x"}]`, `{"reason":"x"}}`, `{"reason":"x"} {}`, ` `, `{"reason":"x","colour":"red"}`, `{"step_interval":10}`,
	} {
		for i := range requestTypes {
			f.Add(uint8(i), []byte(s), i%2 == 0)
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte, allowEmpty bool) {
		mk := requestTypes[int(kind)%len(requestTypes)]
		decode := func(b []byte) (any, error) {
			v := mk()
			r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(b))
			return v, decodeStrict(httptest.NewRecorder(), r, v, allowEmpty)
		}
		v, err := decode(body)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "invalid JSON body") && !strings.HasPrefix(msg, "request body is empty") {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		if len(bytes.TrimSpace(body)) == 0 {
			if !allowEmpty {
				t.Fatal("empty body accepted")
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted a body that is not one JSON value: %q", body)
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := decode(out)
		if err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		// Compared as JSON: a nil list and an empty one are the same request.
		out2, err := json.Marshal(again)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the request:\n%s\n%s", out, out2)
		}
	})
}

func TestDecodeStrictTrailingData(t *testing.T) {
	for _, body := range []string{`{"reason":"x"}]`, `{"reason":"x"}}`, `{"reason":"x"} {}`, `{"reason":"x"} x`} {
		var v wire.AbortRequest
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		if err := decodeStrict(httptest.NewRecorder(), r, &v, false); err == nil || !strings.Contains(err.Error(), "trailing data") {
			t.Errorf("%s: %v", body, err)
		}
	}
	var v wire.AbortRequest
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(" {\"reason\":\"x\"}\n\t "))
	if err := decodeStrict(httptest.NewRecorder(), r, &v, false); err != nil || v.Reason != "x" {
		t.Errorf("whitespace around the object: %v %+v", err, v)
	}
}
