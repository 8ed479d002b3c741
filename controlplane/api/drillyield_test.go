package api

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/evac-sh/evac/controlplane/drills"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/controlplane/steering"
)

const twoRegionRunbook = `name: two-regions
steps:
  - shift: {region: us-west, weight: 0}
  - shift: {region: eu-west, weight: 40}
  - wait: {duration: 1h}
  - restore: {region: us-west, ramp: [100]}
  - shift: {region: eu-west, weight: 100}
`

// TestOperatorRestoreEndsTheDrillHoldingTheRegion: a drill holds us-west
// (at 0) and eu-west (at 40) when an operator restores us-west through
// the API. The drill gives way: it ends as aborted, naming the operator's
// change; eu-west goes back to its weight from before the drill; us-west
// is the operator's (restored, not put back by the drill); and the drill
// engine proposes nothing more for it.
func TestOperatorRestoreEndsTheDrillHoldingTheRegion(t *testing.T) {
	b, do, id := drillHoldingTwoRegions(t)
	noHealth := func() steering.Health { return steering.Health{} }
	// A dry run shows the drill ending and changes nothing.
	w := do(http.MethodPost, "/v1/regions/us-west/restore", `{"reason":"need it back","ramp":[100],"dry_run":true}`, http.StatusOK)
	if !bytes.Contains(w.Body.Bytes(), []byte(`drill.end`)) || !b.State().Drills[id].Running() {
		t.Fatalf("dry run: %s", w.Body)
	}
	// A restore that is refused (eu-west is active at 40: nothing to
	// restore) leaves the drill alone.
	do(http.MethodPost, "/v1/regions/eu-west/restore", `{"reason":"x","ramp":[100]}`, http.StatusConflict)
	if !b.State().Drills[id].Running() {
		t.Fatal("a refused restore ended the drill")
	}
	do(http.MethodPost, "/v1/regions/us-west/restore", `{"reason":"need it back","ramp":[100]}`, http.StatusOK)
	st := b.State()
	d := st.Drills[id]
	if d.Status != state.DrillAborted || !strings.Contains(d.Outcome, "us-west held by the drill was changed by") ||
		!strings.Contains(d.Outcome, "restore") || !strings.Contains(d.Outcome, "need it back") {
		t.Fatalf("drill %s: %s", d.Status, d.Outcome)
	}
	if r := st.Regions["us-west"]; r.Weight != 100 || r.Phase != state.PhaseActive {
		t.Fatalf("us-west %s at %d, want the operator's restore", r.Phase, r.Weight)
	}
	if r := st.Regions["eu-west"]; r.Weight != 100 {
		t.Fatalf("eu-west at %d, want its weight from before the drill", r.Weight)
	}
	var ended bool
	for _, e := range st.Events {
		if e.Kind == state.EventDrillEnd && strings.Contains(e.Detail, id+" aborted") {
			ended = true
		}
	}
	if !ended {
		t.Fatal("no drill.end event")
	}
	if ps := drills.Decide(st, noHealth, b.now.Add(2*3600e9)); len(ps) != 0 {
		t.Fatalf("the engine still drives the drill: %+v", ps)
	}
}

// TestOperatorEvacuationOfADrillEvacuatedRegion: the drill has us-west at
// 0 when an operator evacuates it: nothing to evacuate, but the drill must
// not bring it back with its restore step. The drill gives way (aborted,
// naming the evacuation), us-west stays out, eu-west goes back to 100.
func TestOperatorEvacuationOfADrillEvacuatedRegion(t *testing.T) {
	b, do, id := drillHoldingTwoRegions(t)
	// The region is out already: an evacuation of it is refused as any
	// evacuation of a region that is out (409), changes nothing, and the
	// drill goes on (evac drill abort hands its regions back). A 2xx here
	// would promise an evacuation the log never records.
	do(http.MethodPost, "/v1/regions/us-west/evacuate", `{"reason":"incident"}`, http.StatusConflict)
	st := b.State()
	if d := st.Drills[id]; !d.Running() {
		t.Fatalf("drill %s: %s", d.Status, d.Outcome)
	}
	if r := st.Regions["us-west"]; r.Weight != 0 {
		t.Fatalf("us-west %s at %d", r.Phase, r.Weight)
	}
}

// drillHoldingTwoRegions starts a drill of twoRegionRunbook through the API
// and runs it, as the leader's drill engine does, to its wait: us-west at
// 0, eu-west at 40.
func drillHoldingTwoRegions(t *testing.T) (*fsmBackend, func(method, path, body string, want int) *httptest.ResponseRecorder, string) {
	t.Helper()
	b := newFSMBackend(t, baseSnapshot(t))
	h := NewHandler(b, Options{})
	do := func(method, path, body string, want int) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, w.Code, w.Body, want)
		}
		return w
	}
	do(http.MethodPut, "/v1/runbooks/two-regions", twoRegionRunbook, http.StatusOK)
	do(http.MethodPost, "/v1/drills", `{"runbook":"two-regions","reason":"game day"}`, http.StatusCreated)
	var id string
	for _, d := range b.State().Drills {
		id = d.ID
	}
	// The leader's drill engine runs the two shifts and starts the wait.
	noHealth := func() steering.Health { return steering.Health{} }
	for range 5 {
		for _, p := range drills.Decide(b.State(), noHealth, b.now) {
			if res, err := b.Propose(context.Background(), p.Type, drills.Actor, p.Key, p.Body); err != nil || res.Error != "" {
				t.Fatalf("%s: %v %s", p.Type, err, res.Error)
			}
		}
	}
	st := b.State()
	if d := st.Drills[id]; !d.Running() || d.Current != 2 || st.Regions["us-west"].Weight != 0 || st.Regions["eu-west"].Weight != 40 {
		t.Fatalf("drill %s at step %d, weights us-west %d eu-west %d", d.Status, d.Current, st.Regions["us-west"].Weight, st.Regions["eu-west"].Weight)
	}
	return b, do, id
}
