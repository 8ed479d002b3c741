package drills

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/controlplane/steering"
)

const steeringYAML = `
zone: example.com
nameservers: {ns1: 192.0.2.53}
regions: [{name: us-east}, {name: us-west}, {name: eu-west}]
services:
  - name: api
    endpoints: {us-east: [192.0.2.11], us-west: [198.51.100.11], eu-west: [203.0.113.11]}
policy: {ramp: [50, 0], restore_ramp: [50, 100], step_interval: 10s}
`

const kong = `name: kong
params: {region: {required: true}}
steps:
  - shift: {region: "{{ .region }}", weight: 0}
  - wait: {duration: 30s}
  - gate: {check: others_healthy}
  - restore: {region: "{{ .region }}", ramp: [50, 100], step_interval: 5s}
  - notify: {message: done}
`

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fake is a one-node "cluster": Propose applies the command with
// state.Apply, as the FSM would, and the clock is the test's.
type fake struct {
	t      *testing.T
	mu     sync.Mutex
	st     *state.State
	now    time.Time
	health steering.Health
}

func newFake(t *testing.T) *fake {
	f := &fake{t: t, st: state.Empty(), now: t0}
	cfg, err := state.ParseConfig([]byte(steeringYAML))
	if err != nil {
		t.Fatal(err)
	}
	f.must(state.CmdApplyConfig, state.ApplyConfig{Config: cfg})
	f.must(state.CmdPutRunbook, state.PutRunbook{Source: kong})
	return f
}

func (f *fake) State() *state.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fake) Health() steering.Health { return f.health }

func (f *fake) ReportedCapacity() map[string]int { return nil }

func (f *fake) Propose(_ context.Context, t state.CommandType, actor, id string, body any) (state.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var res state.Result
	var err error
	f.st, res, err = state.ApplyNext(f.st, t, id, actor, f.now, body)
	return res, err
}

func (f *fake) must(t state.CommandType, body any) {
	f.t.Helper()
	if res, _ := f.Propose(context.Background(), t, "tester", "", body); res.Error != "" {
		f.t.Fatalf("%s: %s", t, res.Error)
	}
}

func (f *fake) engine() *Engine {
	return NewEngine(Config{Tick: time.Second, Grace: time.Minute, Now: func() time.Time { return f.now }}, f, f)
}

// run ticks e every second of fake time for d, the steering engine's ramp
// steps included.
func (f *fake) run(e *Engine, d time.Duration) {
	end := f.now.Add(d)
	for ; !f.now.After(end); f.now = f.now.Add(time.Second) {
		e.Tick(context.Background())
		for _, p := range steering.Decide(steering.Input{State: f.State(), Now: f.now, WarmedUp: false}) {
			if p.Type == state.CmdRampStep {
				_, _ = f.Propose(context.Background(), p.Type, "steering", "steering:"+p.Key, p.Body)
			}
		}
	}
}

func (f *fake) count(kind, substr string) int {
	n := 0
	for _, e := range f.State().Events {
		if e.Kind == kind && strings.Contains(e.Detail, substr) {
			n++
		}
	}
	return n
}

// TestDrillAcrossLeaderChange runs a drill with one engine, drops it in the
// middle of the wait (a leader lost), and finishes it with a fresh one.
func TestDrillAcrossLeaderChange(t *testing.T) {
	f := newFake(t)
	f.must(state.CmdDrillStart, state.DrillStart{ID: "d-1", Runbook: "kong", Params: map[string]string{"region": "eu-west"}})
	f.run(f.engine(), 10*time.Second)
	d := f.State().Drills["d-1"]
	if d.Current != 1 || f.State().Regions["eu-west"].Weight != 0 {
		t.Fatalf("after 10s: step %d, eu-west %d", d.Current, f.State().Regions["eu-west"].Weight)
	}
	waitStart := d.Steps[1].StartedAt
	// A new leader 5 s later carries on from the committed start of the wait.
	f.now = f.now.Add(5 * time.Second)
	f.run(f.engine(), 60*time.Second)
	d = f.State().Drills["d-1"]
	if d.Status != state.DrillSucceeded {
		t.Fatalf("drill %s at step %d: %s", d.Status, d.Current, d.Outcome)
	}
	if got := d.Steps[1].EndedAt.Sub(waitStart); got < 30*time.Second || got > 32*time.Second {
		t.Errorf("the wait lasted %s, want 30s from its committed start", got)
	}
	for i := 1; i <= 5; i++ {
		for _, kind := range []string{state.EventDrillStepStart, state.EventDrillStepEnd} {
			if n := f.count(kind, "drill d-1 step "+string(rune('0'+i))+"/5"); n != 1 {
				t.Errorf("%s of step %d: %d times", kind, i, n)
			}
		}
	}
	if r := f.State().Regions["eu-west"]; r.Weight != 100 || r.Phase != state.PhaseActive {
		t.Errorf("eu-west after the drill: %+v", r)
	}
}

func TestGateUsesLiveHealth(t *testing.T) {
	f := newFake(t)
	f.health = steering.Health{"us-west": {"api": {Share: 0.2, Known: true, AgentsAlive: 2, AgentsTotal: 2}}}
	f.must(state.CmdDrillStart, state.DrillStart{ID: "d-2", Runbook: "kong", Params: map[string]string{"region": "eu-west"}})
	f.run(f.engine(), 40*time.Second)
	d := f.State().Drills["d-2"]
	if d.Status != state.DrillAborted || !strings.Contains(d.Outcome, "us-west: api passing in 20% of agents") {
		t.Fatalf("drill %s: %s", d.Status, d.Outcome)
	}
	if w := f.State().Regions["eu-west"].Weight; w != 100 {
		t.Fatalf("eu-west %d after the failed gate", w)
	}
}

func TestScheduleFiresOncePerDueTime(t *testing.T) {
	f := newFake(t)
	f.must(state.CmdPutRunbook, state.PutRunbook{Source: "name: short\nsteps:\n  - wait: {duration: 15s}\n"})
	f.must(state.CmdScheduleAdd, state.ScheduleAdd{ID: "tick", Cron: "*/10 * * * * *", Runbook: "short",
		SkipIf: []string{state.SkipDrillRunning}})
	f.run(f.engine(), 35*time.Second) // due 12:00:10, :20, :30
	// Two engines (an old leader that has not noticed yet, and a new one)
	// tick over the same seconds: each due time still fires once.
	a, b := f.engine(), f.engine()
	for end := f.now.Add(20 * time.Second); f.now.Before(end); f.now = f.now.Add(time.Second) {
		a.Tick(context.Background())
		b.Tick(context.Background())
	}
	// The leader is gone for 3 minutes: past the grace, runs are missed.
	f.now = f.now.Add(3 * time.Minute)
	f.run(f.engine(), 5*time.Second)
	runs := f.State().Schedules["tick"].Runs
	seen := map[time.Time]bool{}
	var outcomes []string
	for _, r := range runs {
		if seen[r.Scheduled] {
			t.Errorf("%s fired twice", r.Scheduled)
		}
		seen[r.Scheduled] = true
		outcomes = append(outcomes, r.Outcome)
	}
	want := "started skipped started skipped started missed started skipped"
	if got := strings.Join(outcomes, " "); got != want {
		t.Fatalf("runs %s, want %s (%+v)", got, want, runs)
	}
	if runs[1].Reason == "" || !strings.Contains(runs[1].Reason, "drill_running") {
		t.Errorf("skip reason %q", runs[1].Reason)
	}
	if runs[5].Missed < 15 {
		t.Errorf("missed %d runs, want about 17", runs[5].Missed)
	}
}

func TestScheduleBlackout(t *testing.T) {
	f := newFake(t)
	f.must(state.CmdPutRunbook, state.PutRunbook{Source: "name: short\nsteps:\n  - notify: {message: hi}\n"})
	f.must(state.CmdScheduleAdd, state.ScheduleAdd{ID: "b", Cron: "*/10 * * * * *", Runbook: "short",
		Blackouts: []state.Blackout{{From: "12:00", To: "12:01"}}})
	f.run(f.engine(), 65*time.Second)
	runs := f.State().Schedules["b"].Runs
	if len(runs) != 6 {
		t.Fatalf("%d runs: %+v", len(runs), runs)
	}
	for i, r := range runs {
		blackout := r.Scheduled.Before(t0.Add(time.Minute))
		if blackout != (r.Outcome == state.RunSkipped && strings.HasPrefix(r.Reason, "blackout 12:00-12:01 UTC")) {
			t.Errorf("run %d at %s: %s %q", i, r.Scheduled.Format("15:04:05"), r.Outcome, r.Reason)
		}
	}
}

// TestScheduleFireCarriesTheRenderedDrill: the leader renders the drill a
// run starts and the fire carries it (Apply renders nothing); a run whose
// drill cannot be rendered carries why, and is recorded as skipped with it.
func TestScheduleFireCarriesTheRenderedDrill(t *testing.T) {
	f := newFake(t)
	f.must(state.CmdScheduleAdd, state.ScheduleAdd{ID: "ok", Cron: "*/10 * * * * *", Runbook: "kong",
		Params: map[string]string{"region": "eu-west"}, Prepared: true})
	f.must(state.CmdScheduleAdd, state.ScheduleAdd{ID: "bad", Cron: "*/10 * * * * *", Runbook: "kong", Prepared: true})
	f.now = t0.Add(10 * time.Second)
	ps, errs := Schedule(f.State(), f.now, time.Minute, time.LoadLocation)
	if len(errs) != 0 || len(ps) != 2 {
		t.Fatalf("proposals %+v, errors %v", ps, errs)
	}
	for _, p := range ps {
		fire := p.Body.(state.ScheduleFire)
		switch fire.ID {
		case "ok":
			d := fire.Drill
			if !fire.Prepared || d == nil || !d.Prepared || d.ID != state.ScheduledDrillID("ok", fire.ScheduledTime) ||
				len(d.Steps) != 5 || d.Steps[0].Region != "eu-west" || d.Params["region"] != "eu-west" {
				t.Fatalf("fire %+v, drill %+v", fire, d)
			}
		case "bad":
			if !fire.Prepared || fire.Drill != nil || !strings.Contains(fire.DrillError, `parameter "region" is required`) {
				t.Fatalf("fire %+v", fire)
			}
		}
		if res, err := f.Propose(context.Background(), p.Type, Actor, p.Key, p.Body); err != nil || res.Error != "" {
			t.Fatalf("%s: %v %s", p.Key, err, res.Error)
		}
	}
	st := f.State()
	if run := st.Schedules["ok"].Runs[0]; run.Outcome != state.RunStarted || !st.Drills[run.Drill].Running() {
		t.Fatalf("ok: %+v", run)
	}
	if run := st.Schedules["bad"].Runs[0]; run.Outcome != state.RunSkipped || !strings.Contains(run.Reason, "drill refused: runbook kong") {
		t.Fatalf("bad: %+v", run)
	}
}

// At the running-drill limit a due run is skipped with the limit as its
// reason: the leader decides it (Apply checks no counts).
func TestScheduleSkipsAtTheRunningDrillLimit(t *testing.T) {
	f := newFake(t)
	f.must(state.CmdPutRunbook, state.PutRunbook{Source: "name: hold\nsteps:\n  - wait: {duration: 1h}\n"})
	for i := range state.MaxRunningDrills {
		d, err := state.PrepareDrill(f.State(), state.DrillStart{ID: fmt.Sprintf("d-%d", i), Runbook: "hold"})
		if err != nil {
			t.Fatal(err)
		}
		f.must(state.CmdDrillStart, d)
	}
	f.must(state.CmdScheduleAdd, state.ScheduleAdd{ID: "sch", Cron: "*/10 * * * * *", Runbook: "hold"})
	f.run(f.engine(), 12*time.Second)
	runs := f.State().Schedules["sch"].Runs
	if len(runs) == 0 || runs[0].Outcome != state.RunSkipped || !strings.Contains(runs[0].Reason, "max_running_drills") {
		t.Fatalf("runs %+v, want the first skipped for max_running_drills", runs)
	}
}
