package state

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const drillRunbook = `name: evac-east
params:
  region: {default: eu-west}
  hold: {default: 10s}
steps:
  - shift: {region: "{{ .region }}", weight: 0}
  - wait: {duration: "{{ .hold }}"}
  - gate: {check: others_healthy, region: "{{ .region }}"}
  - restore: {region: "{{ .region }}", ramp: [50, 100], step_interval: 10s}
  - notify: {message: "{{ .region }} is back"}
`

// log records every command applied through it, to replay them.
type logged struct {
	typ  CommandType
	id   string
	now  time.Time
	body any
}

type drillCluster struct {
	*cluster
	log []logged
}

func newDrillCluster(t *testing.T) *drillCluster {
	dc := &drillCluster{cluster: newCluster(t, true)}
	dc.must(CmdPutRunbook, PutRunbook{Source: drillRunbook})
	return dc
}

func (dc *drillCluster) do(t CommandType, body any) Result {
	dc.t.Helper()
	dc.log = append(dc.log, logged{t, "", dc.now, body})
	return dc.apply(t, body)
}

func (dc *drillCluster) must(t CommandType, body any) Result {
	dc.t.Helper()
	res := dc.do(t, body)
	if res.Error != "" {
		dc.t.Fatalf("%s refused: %s", t, res.Error)
	}
	return res
}

func (dc *drillCluster) refused(t CommandType, body any, code string) {
	dc.t.Helper()
	res := dc.do(t, body)
	if res.Error == "" || res.Code != code {
		dc.t.Fatalf("%s: got %+v, want refusal %s", t, res, code)
	}
}

func (dc *drillCluster) step(id string, index int, phase, outcome string) Result {
	dc.t.Helper()
	return dc.do(CmdDrillStep, DrillStep{ID: id, Index: index, Phase: phase, Outcome: outcome})
}

func (dc *drillCluster) mustStep(id string, index int, phase, outcome string) {
	dc.t.Helper()
	if res := dc.step(id, index, phase, outcome); res.Error != "" {
		dc.t.Fatalf("step %d %s: %s", index, phase, res.Error)
	}
}

func (dc *drillCluster) weights() map[string]int {
	out := map[string]int{}
	for n, r := range dc.s.Regions {
		out[n] = r.Weight
	}
	return out
}

func (dc *drillCluster) countEvents(kind, detailPrefix string) int {
	n := 0
	for _, e := range dc.s.Events {
		if e.Kind == kind && strings.HasPrefix(e.Detail, detailPrefix) {
			n++
		}
	}
	return n
}

func TestRunbookVersions(t *testing.T) {
	dc := newDrillCluster(t)
	if rb := dc.s.Runbooks["evac-east"]; rb.Version != 1 || len(rb.History) != 0 {
		t.Fatalf("first put: %+v", rb)
	}
	events := len(dc.s.Events)
	dc.must(CmdPutRunbook, PutRunbook{Source: drillRunbook})
	if rb := dc.s.Runbooks["evac-east"]; rb.Version != 1 || len(dc.s.Events) != events {
		t.Fatalf("the same source again made version %d", rb.Version)
	}
	dc.must(CmdPutRunbook, PutRunbook{Source: strings.Replace(drillRunbook, "10s}", "20s}", 1)})
	rb := dc.s.Runbooks["evac-east"]
	if rb.Version != 2 || len(rb.History) != 1 || rb.History[0].Version != 1 || rb.History[0].Source != drillRunbook {
		t.Fatalf("second version: %+v", rb)
	}
	res := dc.do(CmdPutRunbook, PutRunbook{Source: "name: bad\nsteps:\n  - shift: {region: us-east, weight: 150}\n"})
	if res.Code != CodeInvalid || !strings.Contains(res.Error, "runbook.yaml:3: steps[0].shift.weight: 150 is not within 0..100") {
		t.Fatalf("invalid runbook: %+v", res)
	}
	dc.must(CmdScheduleAdd, ScheduleAdd{ID: "nightly", Cron: "0 3 * * *", Runbook: "evac-east"})
	dc.refused(CmdDeleteRunbook, DeleteRunbook{Name: "evac-east"}, CodeConflict)
	dc.must(CmdScheduleRemove, ScheduleRemove{ID: "nightly"})
	dc.must(CmdDeleteRunbook, DeleteRunbook{Name: "evac-east"})
	dc.refused(CmdDeleteRunbook, DeleteRunbook{Name: "evac-east"}, CodeNotFound)
}

// TestDrillEachEffectOnce walks a drill through every step kind, sending
// every command twice, and checks each step's effect happened once; then
// replays the whole log onto the final state and onto a fresh one.
func TestDrillEachEffectOnce(t *testing.T) {
	dc := newDrillCluster(t)
	dc.must(CmdDrillStart, DrillStart{ID: "d-1", Runbook: "evac-east", Reason: "game day"})
	d := dc.s.Drills["d-1"]
	if d.Status != DrillRunning || len(d.Steps) != 5 || !reflect.DeepEqual(d.Regions, []string{"eu-west"}) ||
		d.Before["eu-west"] != 100 || d.Params["hold"] != "10s" {
		t.Fatalf("started drill: %+v", d)
	}
	twice := func(index int, phase, outcome string) {
		t.Helper()
		dc.mustStep("d-1", index, phase, outcome)
		if res := dc.step("d-1", index, phase, outcome); res.Code != CodeConflict {
			t.Fatalf("step %d %s again: %+v, want a conflict", index, phase, res)
		}
	}
	// shift: the weight changes on start, once.
	twice(0, PhaseStart, "")
	if w := dc.region("eu-west").Weight; w != 0 {
		t.Fatalf("after shift start: eu-west %d", w)
	}
	if res := dc.step("d-1", 1, PhaseStart, ""); res.Code != CodeConflict {
		t.Fatalf("a later step before the current one ended: %+v", res)
	}
	twice(0, PhaseEnd, OutcomeDone)
	dc.now = dc.now.Add(time.Second)
	twice(1, PhaseStart, "")
	if st := dc.s.Drills["d-1"].Steps[1]; !st.StartedAt.Equal(dc.now) {
		t.Fatalf("wait started at %s, want the command's time %s", st.StartedAt, dc.now)
	}
	dc.now = dc.now.Add(10 * time.Second)
	twice(1, PhaseEnd, OutcomeDone)
	twice(2, PhaseStart, "")
	twice(2, PhaseEnd, OutcomePass)
	// restore: the ramp starts on start, once; the step cannot end before
	// the region is active.
	twice(3, PhaseStart, "")
	if r := dc.region("eu-west"); r.Phase != PhaseRestoring || r.Weight != 50 || r.Ramp == nil {
		t.Fatalf("after restore start: %+v", r)
	}
	dc.refused(CmdDrillStep, DrillStep{ID: "d-1", Index: 3, Phase: PhaseEnd, Outcome: OutcomePass}, CodeConflict)
	dc.now = dc.now.Add(10 * time.Second)
	dc.must(CmdRampStep, RampStep{Region: "eu-west", Step: 1})
	twice(3, PhaseEnd, OutcomePass)
	twice(4, PhaseStart, "")
	twice(4, PhaseEnd, OutcomeDone)

	d = dc.s.Drills["d-1"]
	if d.Status != DrillSucceeded || d.After["eu-west"] != 100 || d.Current != 5 {
		t.Fatalf("finished drill: %+v", d)
	}
	// The drill's restore starts no hold-down: a real incident right after
	// it is evacuated automatically.
	if r := dc.region("eu-west"); !r.RestoredAt.IsZero() {
		t.Errorf("eu-west restored at %s by a drill: hold-down would block a real incident", r.RestoredAt)
	}
	beforeIncident, replayFrom := dc.s, len(dc.log)
	for i := range 5 {
		for _, kind := range []string{EventDrillStepStart, EventDrillStepEnd} {
			if n := dc.countEvents(kind, "drill d-1 step "+string(rune('1'+i))+"/5"); n != 1 {
				t.Errorf("%s of step %d recorded %d times", kind, i, n)
			}
		}
	}
	if n := dc.countEvents(EventDrillNotify, "eu-west is back"); n != 1 {
		t.Errorf("notify recorded %d times", n)
	}
	steps := 0
	for _, e := range dc.s.Events {
		if e.Kind == EventWeight || e.Kind == EventStep {
			steps++
		}
	}
	if steps != 3 { // shift to 0, restore step to 50, restore step to 100
		t.Errorf("%d weight changes, want 3", steps)
	}

	dc.now = dc.now.Add(time.Second)
	dc.must(CmdEvacuate, Evacuate{Region: "eu-west", Reason: "real incident", Automatic: true})
	dc.s, dc.log = beforeIncident, dc.log[:replayFrom]

	// Replaying the whole log onto the final state changes no region and
	// no drill: every command is refused or a no-op.
	final := dc.s
	for _, l := range dc.log {
		b, _ := Encode(l.typ, l.id, "tester", l.now, l.body)
		cmd, _ := Decode(b)
		dc.s, _ = Apply(dc.s, dc.s.Index+1, cmd)
	}
	if !reflect.DeepEqual(dc.s.Regions, final.Regions) || !reflect.DeepEqual(dc.s.Drills, final.Drills) {
		t.Error("replaying the log onto the final state changed it")
	}
	// Replaying it onto a fresh state reaches the same drills and regions.
	fresh := newCluster(t, true)
	for _, l := range dc.log {
		b, _ := Encode(l.typ, l.id, "tester", l.now, l.body)
		cmd, _ := Decode(b)
		fresh.s, _ = Apply(fresh.s, fresh.s.Index+1, cmd)
	}
	if !reflect.DeepEqual(fresh.s.Regions, final.Regions) || !reflect.DeepEqual(fresh.s.Drills, final.Drills) {
		t.Error("replaying the log onto a fresh state reached a different state")
	}
}

const twoRegionRunbook = `name: two
steps:
  - shift: {region: eu-west, weight: 0}
  - shift: {region: us-west, weight: 50}
  - wait: {duration: 1m}
  - gate: {check: all_healthy}
`

func TestDrillAbortRestoresWeightsBefore(t *testing.T) {
	dc := newDrillCluster(t)
	dc.must(CmdPutRunbook, PutRunbook{Source: twoRegionRunbook})
	dc.must(CmdSetWeight, SetWeight{Region: "us-west", Weight: 80, Reason: "before"})
	dc.must(CmdDrillStart, DrillStart{ID: "d-2", Runbook: "two"})
	for i := range 2 {
		dc.mustStep("d-2", i, PhaseStart, "")
		dc.mustStep("d-2", i, PhaseEnd, OutcomeDone)
	}
	dc.mustStep("d-2", 2, PhaseStart, "")
	if w := dc.weights(); w["eu-west"] != 0 || w["us-west"] != 50 {
		t.Fatalf("during the drill: %v", w)
	}
	dc.must(CmdDrillAbort, DrillAbort{ID: "d-2", Reason: "enough"})
	if w := dc.weights(); w["eu-west"] != 100 || w["us-west"] != 80 || w["us-east"] != 100 {
		t.Fatalf("after abort: %v, want the weights from before the drill", w)
	}
	if r := dc.region("eu-west"); r.Phase != PhaseActive {
		t.Fatalf("eu-west %s after abort", r.Phase)
	}
	d := dc.s.Drills["d-2"]
	if d.Status != DrillAborted || d.Steps[2].Outcome != DrillAborted || d.After["us-west"] != 80 {
		t.Fatalf("aborted drill: %+v", d)
	}
	dc.refused(CmdDrillAbort, DrillAbort{ID: "d-2", Reason: "again"}, CodeConflict)
	dc.refused(CmdDrillStep, DrillStep{ID: "d-2", Index: 2, Phase: PhaseEnd, Outcome: OutcomeDone}, CodeConflict)
}

func TestFailedGateAbortsUnlessTold(t *testing.T) {
	dc := newDrillCluster(t)
	dc.must(CmdPutRunbook, PutRunbook{Source: twoRegionRunbook})
	dc.must(CmdDrillStart, DrillStart{ID: "d-3", Runbook: "two"})
	for i := range 3 {
		dc.mustStep("d-3", i, PhaseStart, "")
		dc.mustStep("d-3", i, PhaseEnd, OutcomeDone)
	}
	dc.mustStep("d-3", 3, PhaseStart, "")
	dc.must(CmdDrillStep, DrillStep{ID: "d-3", Index: 3, Phase: PhaseEnd, Outcome: OutcomeFail, Detail: "eu-west unhealthy"})
	d := dc.s.Drills["d-3"]
	if d.Status != DrillAborted || !strings.Contains(d.Outcome, "eu-west unhealthy") {
		t.Fatalf("after a failed gate: %s %q", d.Status, d.Outcome)
	}
	if w := dc.weights(); w["eu-west"] != 100 || w["us-west"] != 100 {
		t.Fatalf("after a failed gate: %v", w)
	}

	dc.must(CmdPutRunbook, PutRunbook{Source: "name: lenient\nsteps:\n  - gate: {check: all_healthy, abort_on_fail: false}\n  - notify: {message: go on}\n"})
	dc.must(CmdDrillStart, DrillStart{ID: "d-4", Runbook: "lenient"})
	dc.mustStep("d-4", 0, PhaseStart, "")
	dc.mustStep("d-4", 0, PhaseEnd, OutcomeFail)
	if d := dc.s.Drills["d-4"]; d.Status != DrillRunning || d.Current != 1 {
		t.Fatalf("abort_on_fail false: %+v", d)
	}
}

func TestIncidentPreemptsDrill(t *testing.T) {
	dc := newDrillCluster(t)
	dc.must(CmdPutRunbook, PutRunbook{Source: "name: pair\nsteps:\n  - shift: {region: eu-west, weight: 50}\n  - shift: {region: us-west, weight: 60}\n  - wait: {duration: 1h}\n"})
	dc.must(CmdDrillStart, DrillStart{ID: "d-5", Runbook: "pair"})
	for i := range 2 {
		dc.mustStep("d-5", i, PhaseStart, "")
		dc.mustStep("d-5", i, PhaseEnd, OutcomeDone)
	}
	dc.must(CmdEvacuate, Evacuate{Region: "eu-west", Reason: "api unhealthy", Automatic: true})
	d := dc.s.Drills["d-5"]
	if d.Status != DrillPreempted || !strings.Contains(d.Outcome, "eu-west") {
		t.Fatalf("drill after the incident: %s %q", d.Status, d.Outcome)
	}
	if r := dc.region("us-west"); r.Weight != 100 {
		t.Errorf("us-west %d: the drill's other region must go back to its weight before", r.Weight)
	}
	if r := dc.region("eu-west"); r.Phase != PhaseEvacuating || r.Ramp == nil || r.Weight != 50 || !r.Automatic {
		t.Errorf("eu-west must stay with the incident: %+v", r)
	}
	// The ramp carries on; the finished drill cannot touch the region.
	dc.refused(CmdDrillStep, DrillStep{ID: "d-5", Index: 2, Phase: PhaseEnd, Outcome: OutcomeDone}, CodeConflict)
	dc.refused(CmdDrillAbort, DrillAbort{ID: "d-5", Reason: "x"}, CodeConflict)
	if r := dc.region("eu-west"); r.Phase != PhaseEvacuating {
		t.Errorf("eu-west %s", r.Phase)
	}

	// An operator's evacuation of a held region pre-empts a drill too.
	dc.must(CmdPutRunbook, PutRunbook{Source: "name: west\nsteps:\n  - shift: {region: us-west, weight: 70}\n  - wait: {duration: 1h}\n"})
	dc.must(CmdDrillStart, DrillStart{ID: "d-7", Runbook: "west"})
	dc.mustStep("d-7", 0, PhaseStart, "")
	dc.must(CmdEvacuate, Evacuate{Region: "us-west", Reason: "INC-9"})
	if d := dc.s.Drills["d-7"]; d.Status != DrillPreempted {
		t.Errorf("drill after a manual evacuation: %s", d.Status)
	}
	if r := dc.region("us-west"); r.Phase != PhaseEvacuating || r.Weight != 50 {
		t.Errorf("us-west: %+v", r)
	}
}

// A shift the safety rules refuse fails the drill and changes nothing.
func TestRefusedShiftFailsDrill(t *testing.T) {
	dc := newDrillCluster(t)
	dc.must(CmdDrillStart, DrillStart{ID: "d-6", Runbook: "evac-east", Params: map[string]string{"region": "us-east"}})
	dc.mustStep("d-6", 0, PhaseStart, "")
	d := dc.s.Drills["d-6"]
	if d.Status != DrillFailed || !strings.Contains(d.Outcome, `service "solo" would have no serving region`) ||
		d.Steps[0].Outcome != OutcomeFail {
		t.Fatalf("drill: %s %q %+v", d.Status, d.Outcome, d.Steps[0])
	}
	if r := dc.region("us-east"); r.Weight != 100 || r.Phase != PhaseActive {
		t.Fatalf("us-east: %+v", r)
	}
}

func TestDrillStartRules(t *testing.T) {
	dc := newDrillCluster(t)
	dc.must(CmdPutRunbook, PutRunbook{Source: "name: west\nsteps:\n  - shift: {region: us-west, weight: 90}\n"})
	dc.must(CmdPutRunbook, PutRunbook{Source: "name: east\nsteps:\n  - shift: {region: us-east, weight: 90}\n"})
	dc.must(CmdPutRunbook, PutRunbook{Source: "name: strict\npreconditions: [no_drill_running]\nsteps:\n  - shift: {region: eu-west, weight: 90}\n"})
	dc.must(CmdPutRunbook, PutRunbook{Source: "name: healthy\npreconditions: [all_regions_healthy, not_frozen]\nsteps:\n  - shift: {region: eu-west, weight: 90}\n"})
	dc.refused(CmdDrillStart, DrillStart{ID: "d-x", Runbook: "nope"}, CodeNotFound)
	dc.refused(CmdDrillStart, DrillStart{ID: "Bad ID", Runbook: "west"}, CodeInvalid)
	dc.refused(CmdDrillStart, DrillStart{ID: "d-x", Runbook: "evac-east", Params: map[string]string{"region": "mars"}}, CodeInvalid)
	dc.refused(CmdDrillStart, DrillStart{ID: "d-x", Runbook: "evac-east", Params: map[string]string{"colour": "red"}}, CodeInvalid)
	dc.must(CmdDrillStart, DrillStart{ID: "d-a", Runbook: "evac-east", Params: map[string]string{"region": "us-east"}})
	dc.refused(CmdDrillStart, DrillStart{ID: "d-a", Runbook: "west"}, CodeConflict)
	// Two drills never hold one region.
	res := dc.do(CmdDrillStart, DrillStart{ID: "d-b", Runbook: "east"})
	if res.Code != CodeConflict || !strings.Contains(res.Error, "held by running drill d-a") {
		t.Fatalf("second drill on us-east: %+v", res)
	}
	dc.refused(CmdDrillStart, DrillStart{ID: "d-c", Runbook: "strict"}, CodeRule)
	dc.must(CmdDrillStart, DrillStart{ID: "d-d", Runbook: "west"})

	dc.must(CmdSetHealth, SetHealth{Region: "us-west", Service: "api", Healthy: false})
	res = dc.do(CmdDrillStart, DrillStart{ID: "d-e", Runbook: "healthy"})
	if res.Code != CodeRule || !strings.Contains(res.Error, "precondition all_regions_healthy: us-west has 1 unhealthy") {
		t.Fatalf("unhealthy: %+v", res)
	}
	dc.must(CmdSetHealth, SetHealth{Region: "us-west", Service: "api", Healthy: true})
	dc.must(CmdFreeze, Freeze{Reason: "change window"})
	res = dc.do(CmdDrillStart, DrillStart{ID: "d-e", Runbook: "healthy"})
	if res.Code != CodeRule || !strings.Contains(res.Error, "precondition not_frozen") {
		t.Fatalf("frozen: %+v", res)
	}
}

func TestScheduleFire(t *testing.T) {
	dc := newDrillCluster(t)
	if res := dc.do(CmdScheduleAdd, ScheduleAdd{ID: "x", Cron: "every tuesday", Runbook: "evac-east"}); res.Code != CodeInvalid ||
		!strings.Contains(res.Error, "cron:") {
		t.Fatalf("bad cron: %+v", res)
	}
	dc.refused(CmdScheduleAdd, ScheduleAdd{ID: "x", Cron: "*/10 * * * * *", Runbook: "nope"}, CodeNotFound)
	dc.must(CmdScheduleAdd, ScheduleAdd{ID: "tick", Cron: "*/10 * * * * *", Runbook: "evac-east",
		SkipIf: []string{SkipDrillRunning, SkipFrozen}})
	dc.refused(CmdScheduleAdd, ScheduleAdd{ID: "tick", Cron: "*/10 * * * * *", Runbook: "evac-east"}, CodeConflict)

	due := t0.Add(10 * time.Second)
	dc.must(CmdScheduleFire, ScheduleFire{ID: "tick", ScheduledTime: due})
	drillID := ScheduledDrillID("tick", due)
	if d, ok := dc.s.Drills[drillID]; !ok || d.Schedule != "tick" || !d.Running() {
		t.Fatalf("fired drill: %+v", d)
	}
	// The same due time again (a new leader, a retry) never fires twice.
	dc.refused(CmdScheduleFire, ScheduleFire{ID: "tick", ScheduledTime: due}, CodeConflict)
	dc.refused(CmdScheduleFire, ScheduleFire{ID: "tick", ScheduledTime: t0}, CodeConflict)

	dc.must(CmdScheduleFire, ScheduleFire{ID: "tick", ScheduledTime: due.Add(10 * time.Second)})
	dc.must(CmdDrillAbort, DrillAbort{ID: drillID, Reason: "x"})
	dc.must(CmdScheduleFire, ScheduleFire{ID: "tick", ScheduledTime: due.Add(20 * time.Second), Skip: "blackout 22:00-06:00 UTC"})
	dc.must(CmdScheduleFire, ScheduleFire{ID: "tick", ScheduledTime: due.Add(50 * time.Second), Missed: 3})
	dc.must(CmdFreeze, Freeze{Reason: "change window"})
	dc.must(CmdScheduleFire, ScheduleFire{ID: "tick", ScheduledTime: due.Add(60 * time.Second)})
	dc.must(CmdUnfreeze, Freeze{})
	dc.must(CmdPutRunbook, PutRunbook{Source: "name: evac-east\npreconditions: [all_regions_healthy]\nsteps:\n  - wait: {duration: 1s}\n"})
	dc.must(CmdSetHealth, SetHealth{Region: "us-west", Service: "api", Healthy: false})
	dc.must(CmdScheduleFire, ScheduleFire{ID: "tick", ScheduledTime: due.Add(70 * time.Second)})

	sc := dc.s.Schedules["tick"]
	want := []struct{ outcome, reason string }{
		{RunStarted, ""},
		{RunSkipped, "skip_if drill_running: drill " + drillID},
		{RunSkipped, "blackout 22:00-06:00"},
		{RunMissed, "3 run(s) due while no leader"},
		{RunSkipped, "skip_if frozen: change window"},
		{RunSkipped, "drill refused: precondition all_regions_healthy"},
	}
	if len(sc.Runs) != len(want) {
		t.Fatalf("%d runs, want %d: %+v", len(sc.Runs), len(want), sc.Runs)
	}
	for i, w := range want {
		if r := sc.Runs[i]; r.Outcome != w.outcome || !strings.HasPrefix(r.Reason, w.reason) {
			t.Errorf("run %d: %s %q, want %s %q", i, r.Outcome, r.Reason, w.outcome, w.reason)
		}
	}
	if !sc.LastFired.Equal(due.Add(70 * time.Second)) {
		t.Errorf("last fired %s", sc.LastFired)
	}
	if n := dc.countEvents(EventScheduleSkipped, ""); n != 4 {
		t.Errorf("%d skip events, want 4", n)
	}
}

func TestCronAndBlackouts(t *testing.T) {
	s, err := ParseCron("*/10 * * * * *")
	if err != nil {
		t.Fatal(err)
	}
	if next := s.Next(t0.Add(time.Second)); !next.Equal(t0.Add(10 * time.Second)) {
		t.Errorf("next of */10 seconds after 12:00:01 = %s", next)
	}
	if _, err := ParseCron("0 3 * * *"); err != nil {
		t.Errorf("5 fields: %v", err)
	}
	if _, err := ParseCron("@every 1m"); err != nil {
		t.Errorf("descriptor: %v", err)
	}
	if _, err := ParseCron("CRON_TZ=Europe/Paris 0 3 * * *"); err == nil {
		t.Error("a time zone prefix was accepted")
	}
	err = ScheduleAdd{ID: "x", Cron: "0 3 * * *", Runbook: "r", SkipIf: []string{"rainy"},
		Blackouts: []Blackout{{From: "25:00", To: "06:00", Days: []string{"funday"}}}}.Validate()
	for _, w := range []string{"blackouts[0].from", "blackouts[0].days[0]", "skip_if[0]"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Validate: %v, want %s named", err, w)
		}
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	sc := Schedule{Blackouts: []Blackout{{From: "22:00", To: "06:00", Days: []string{"fri"}}}}
	// Friday 2026-11-27 23:30 in Paris is in the window; so is Saturday 01:00
	// (the window started on Friday); Saturday 23:30 is not.
	for _, tc := range []struct {
		t    time.Time
		want bool
	}{
		{time.Date(2026, 11, 27, 23, 30, 0, 0, paris), true},
		{time.Date(2026, 11, 28, 1, 0, 0, 0, paris), true},
		{time.Date(2026, 11, 28, 23, 30, 0, 0, paris), false},
		{time.Date(2026, 11, 27, 21, 59, 0, 0, paris), false},
	} {
		if got := sc.InBlackout(tc.t.UTC(), paris) != ""; got != tc.want {
			t.Errorf("InBlackout(%s) = %v, want %v", tc.t, got, tc.want)
		}
	}
}

// An automatic evacuation pre-empts every running drill, not only one
// holding its region: here it is accepted only because the drill's region
// comes back.
func TestIncidentElsewherePreemptsDrill(t *testing.T) {
	dc := newDrillCluster(t)
	dc.must(CmdPutRunbook, PutRunbook{Source: "name: west-out\nsteps:\n  - shift: {region: us-west, weight: 0}\n  - wait: {duration: 1h}\n"})
	dc.must(CmdDrillStart, DrillStart{ID: "d-8", Runbook: "west-out"})
	dc.mustStep("d-8", 0, PhaseStart, "")
	// us-east is unhealthy and us-west drilled out: without pre-emption no
	// healthy region would be left serving api.
	dc.must(CmdSetHealth, SetHealth{Region: "us-east", Service: "api", Healthy: false})
	dc.must(CmdEvacuate, Evacuate{Region: "eu-west", Reason: "eu-west down", Automatic: true})
	if d := dc.s.Drills["d-8"]; d.Status != DrillPreempted {
		t.Fatalf("drill %s after an incident in eu-west", d.Status)
	}
	if r := dc.region("us-west"); r.Weight != 100 {
		t.Fatalf("us-west %d: the drill must give its region back", r.Weight)
	}
	if r := dc.region("eu-west"); r.Phase != PhaseEvacuating {
		t.Fatalf("eu-west %s", r.Phase)
	}
}

// TestDrillYield: an operator's change to a region a drill holds ends the
// drill as aborted with the change as the reason; the drill's other
// regions go back to their weights from before it, the operator's region
// is left as it is; without a drill holding the region nothing changes.
func TestDrillYield(t *testing.T) {
	dc := newDrillCluster(t)
	dc.must(CmdPutRunbook, PutRunbook{Source: twoRegionRunbook})
	dc.must(CmdDrillStart, DrillStart{ID: "d-2", Runbook: "two"})
	for i := range 2 {
		dc.mustStep("d-2", i, PhaseStart, "")
		dc.mustStep("d-2", i, PhaseEnd, OutcomeDone)
	}
	held := dc.weights()
	if held["eu-west"] != 0 || held["us-west"] != 50 {
		t.Fatalf("during the drill: %v", held)
	}
	tests := []struct {
		name     string
		body     DrillYield
		code     string
		status   string
		wantW    map[string]int
		inReason string
	}{
		{"no region", DrillYield{Change: "restore"}, CodeInvalid, DrillRunning, held, ""},
		{"a region it does not hold", DrillYield{Region: "us-east", Change: "restore"}, "", DrillRunning, held, ""},
		{"a held region", DrillYield{Region: "eu-west", Change: "restore", Reason: "need it"}, "", DrillAborted,
			map[string]int{"eu-west": 0, "us-west": 100, "us-east": 100}, "eu-west held by the drill was changed by tester (restore): need it"},
		{"again: no drill holds it any more", DrillYield{Region: "eu-west", Change: "restore"}, "", DrillAborted,
			map[string]int{"eu-west": 0, "us-west": 100, "us-east": 100}, "eu-west held by the drill"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			events := len(dc.s.Events)
			res := dc.do(CmdDrillYield, tc.body)
			if res.Code != tc.code {
				t.Fatalf("result %+v, want code %q", res, tc.code)
			}
			d := dc.s.Drills["d-2"]
			if d.Status != tc.status || !strings.Contains(d.Outcome, tc.inReason) {
				t.Fatalf("drill %s: %q", d.Status, d.Outcome)
			}
			if w := dc.weights(); !reflect.DeepEqual(w, tc.wantW) {
				t.Fatalf("weights %v, want %v", w, tc.wantW)
			}
			if tc.status == DrillAborted && tc.name == "a held region" {
				if dc.s.Events[len(dc.s.Events)-1].Kind != EventDrillEnd {
					t.Fatalf("last event %+v", dc.s.Events[len(dc.s.Events)-1])
				}
			} else if len(dc.s.Events) != events {
				t.Fatal("events recorded")
			}
		})
	}
}

// TestPreparedCommandsCheckedAtCommit: a drill rendered from a runbook
// version that is no longer the stored one is refused; a scheduled run
// whose drill the leader could not render is recorded as skipped with why;
// a config that was not normalised is refused.
func TestPreparedCommandsCheckedAtCommit(t *testing.T) {
	dc := newDrillCluster(t)
	stale, err := PrepareDrill(dc.s, DrillStart{ID: "d-9", Runbook: "evac-east"})
	if err != nil {
		t.Fatal(err)
	}
	dc.must(CmdPutRunbook, PutRunbook{Source: strings.Replace(drillRunbook, "hold: {default: 10s}", "hold: {default: 20s}", 1)})
	dc.refused(CmdDrillStart, stale, CodeConflict)
	if _, err := PrepareDrill(dc.s, DrillStart{ID: "d-9", Runbook: "nope"}); err == nil || err.(*RefusedError).Code != CodeNotFound {
		t.Fatalf("unknown runbook: %v", err)
	}
	dc.must(CmdScheduleAdd, ScheduleAdd{ID: "s", Cron: "@hourly", Runbook: "evac-east"})
	dc.must(CmdScheduleFire, ScheduleFire{ID: "s", ScheduledTime: t0.Add(time.Hour), Prepared: true, DrillError: "runbook evac-east: bad"})
	runs := dc.s.Schedules["s"].Runs
	if len(runs) != 1 || runs[0].Outcome != RunSkipped || runs[0].Reason != "drill refused: runbook evac-east: bad" {
		t.Fatalf("runs %+v", runs)
	}
	d, err := PrepareDrill(dc.s, ScheduledDrill(dc.s.Schedules["s"], t0.Add(2*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	dc.must(CmdScheduleFire, ScheduleFire{ID: "s", ScheduledTime: t0.Add(2 * time.Hour), Prepared: true, Drill: &d})
	if runs := dc.s.Schedules["s"].Runs; runs[1].Outcome != RunStarted || !dc.s.Drills[runs[1].Drill].Running() {
		t.Fatalf("runs %+v", runs)
	}
	// A fire carrying some other drill is refused as a run.
	other := d
	other.ID = "d-other"
	dc.must(CmdScheduleFire, ScheduleFire{ID: "s", ScheduledTime: t0.Add(3 * time.Hour), Prepared: true, Drill: &other})
	if runs := dc.s.Schedules["s"].Runs; runs[2].Outcome != RunSkipped || !strings.Contains(runs[2].Reason, "carries no drill") {
		t.Fatalf("runs %+v", runs)
	}
	dc.refused(CmdApplyConfig, ApplyConfig{Config: &Config{Zone: "x."}, Normalized: true}, CodeInvalid)
}
