package steering

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/state"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const cfgYAML = `
zone: example.com.
nameservers: {ns1: 192.0.2.53}
regions: [{name: a}, {name: b}, {name: c}]
services: [{name: api, endpoints: {a: [192.0.2.1], b: [192.0.2.2], c: [192.0.2.3]}}]
policy:
  unhealthy_below: 0.5
  detect_after: 10s
  ramp: [50, 0]
  step_interval: 5s
  max_evacuated: 1
  hold_down: 1s
  budget: {per_day: 10, cooldown: 1s}
`

// log is the real state machine without Raft: commands apply in order.
type log struct {
	t        *testing.T
	s        *state.State
	now      *time.Time
	health   Health
	capacity map[string]int
}

func newLog(t *testing.T, yaml string) *log {
	cfg, err := state.ParseConfig([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	l := &log{t: t, s: state.Empty(), now: &now, health: Health{}}
	if res, _ := l.Propose(context.Background(), state.CmdApplyConfig, "test", "", state.ApplyConfig{Config: cfg}); res.Error != "" {
		t.Fatal(res.Error)
	}
	for _, r := range []string{"a", "b", "c"} {
		l.set(r, 1)
	}
	return l
}

func (l *log) Propose(_ context.Context, t state.CommandType, actor, id string, body any) (state.Result, error) {
	var res state.Result
	var err error
	l.s, res, err = state.ApplyNext(l.s, t, id, actor, *l.now, body)
	return res, err
}

func (l *log) State() *state.State { return l.s }
func (l *log) Health() Health      { return l.health }

func (l *log) ReportedCapacity() map[string]int { return l.capacity }

func (l *log) set(region string, share float64) {
	l.health[region] = map[string]Observed{"api": {Share: share, Known: true, AgentsAlive: 2, AgentsTotal: 2}}
}

func (l *log) kinds() []string {
	var out []string
	for _, e := range l.s.Events[1:] {
		out = append(out, e.Kind+":"+e.Region)
	}
	return out
}

// run ticks the engine every second for d.
func run(l *log, e *Engine, d time.Duration) {
	for end := l.now.Add(d); l.now.Before(end); *l.now = l.now.Add(time.Second) {
		e.Tick(context.Background(), true)
	}
}

func newEngine(l *log) *Engine {
	return NewEngine(EngineConfig{Tick: time.Second, Retry: 2 * time.Second, Now: func() time.Time { return *l.now }}, l, l)
}

func TestDetectAfterHysteresis(t *testing.T) {
	l := newLog(t, cfgYAML)
	e := newEngine(l)
	l.set("a", 0)
	run(l, e, 5*time.Second)
	if !l.s.IsUnhealthy("a", "api") {
		t.Fatal("health verdict not committed")
	}
	// Healthy again before detect_after: no evacuation, the verdict flips back.
	l.set("a", 1)
	run(l, e, 20*time.Second)
	if r, _ := l.s.Region("a"); r.Phase != state.PhaseActive || l.s.IsUnhealthy("a", "api") {
		t.Fatalf("evacuated on a short blip: %+v", r)
	}
	// Sustained: evacuated through the ramp.
	l.set("a", 0.4)
	run(l, e, 9*time.Second)
	if r, _ := l.s.Region("a"); r.Phase != state.PhaseActive {
		t.Fatalf("evacuated before detect_after: %+v", r)
	}
	run(l, e, 3*time.Second)
	r, _ := l.s.Region("a")
	if r.Phase != state.PhaseEvacuating || r.Weight != 50 || !r.Automatic {
		t.Fatalf("after detect_after: %+v", r)
	}
	run(l, e, 6*time.Second)
	if r, _ := l.s.Region("a"); r.Phase != state.PhaseEvacuated || r.Weight != 0 {
		t.Fatalf("after ramp: %+v", r)
	}
	steps := 0
	for _, k := range l.kinds() {
		if k == state.EventStep+":a" {
			steps++
		}
	}
	if steps != 2 {
		t.Fatalf("%d ramp steps recorded, want 2: %v", steps, l.kinds())
	}
}

func TestMassFailureFreezes(t *testing.T) {
	l := newLog(t, cfgYAML)
	e := newEngine(l)
	l.set("a", 0)
	l.set("b", 0)
	run(l, e, 30*time.Second)
	if !l.s.Frozen || !strings.Contains(l.s.FrozenReason, "2 regions") {
		t.Fatalf("not frozen on a mass failure: frozen %v %q", l.s.Frozen, l.s.FrozenReason)
	}
	for _, r := range l.s.RegionList() {
		if r.Weight != 100 {
			t.Fatalf("evacuated during a mass failure: %+v", r)
		}
	}
	// Manual changes still work while frozen.
	if res, _ := l.Propose(context.Background(), state.CmdEvacuate, "op", "", state.Evacuate{Region: "a", Reason: "by hand"}); res.Error != "" {
		t.Fatal(res.Error)
	}
}

func TestMaxEvacuatedAndLastRegion(t *testing.T) {
	l := newLog(t, cfgYAML)
	e := newEngine(l)
	l.set("a", 0)
	run(l, e, 120*time.Second) // past the flap window: a is old news
	l.set("b", 0)
	run(l, e, 30*time.Second)
	out := 0
	for _, r := range l.s.RegionList() {
		if r.Phase == state.PhaseEvacuated {
			out++
		}
	}
	if out != 1 {
		t.Fatalf("%d regions evacuated with max_evacuated 1", out)
	}
	blocked := 0
	for _, ev := range l.s.Events {
		if ev.Kind == "evacuation.blocked" {
			blocked++
			if !strings.Contains(ev.Detail, "max_evacuated") {
				t.Errorf("blocked event does not say why: %+v", ev)
			}
		}
	}
	if blocked != 1 {
		t.Fatalf("blocked recorded %d times, want once: %v", blocked, l.kinds())
	}
}

func TestNeverTheLastRegion(t *testing.T) {
	yaml := strings.Replace(cfgYAML, "max_evacuated: 1", "max_evacuated: 3", 1)
	l := newLog(t, yaml)
	e := newEngine(l)
	l.set("a", 0)
	l.set("b", 0)
	run(l, e, 40*time.Second)
	l.set("c", 0)
	run(l, e, 40*time.Second)
	serving := 0
	for _, r := range l.s.RegionList() {
		if r.Weight > 0 {
			serving++
		}
	}
	if serving == 0 {
		t.Fatalf("every region evacuated: %v", l.kinds())
	}
}

func TestModes(t *testing.T) {
	for _, mode := range []string{"off", "shadow"} {
		t.Run(mode, func(t *testing.T) {
			l := newLog(t, cfgYAML+"  mode: "+mode+"\n")
			e := newEngine(l)
			l.set("a", 0)
			run(l, e, 30*time.Second)
			if r, _ := l.s.Region("a"); r.Weight != 100 {
				t.Fatalf("mode %s changed weights: %+v", mode, r)
			}
			shadow := 0
			for _, ev := range l.s.Events {
				if ev.Kind == "shadow.evacuate" {
					shadow++
				}
			}
			if want := map[string]int{"off": 0, "shadow": 1}[mode]; shadow != want {
				t.Fatalf("%d shadow events, want %d", shadow, want)
			}
		})
	}
}

func TestFlappingRegionIsEvacuatedOnce(t *testing.T) {
	l := newLog(t, cfgYAML)
	e := newEngine(l)
	// Unhealthy 3 s, healthy 3 s, for two minutes: never detect_after (10 s)
	// in a row, but flap_threshold (3) verdicts within the flap window.
	for i := 0; i < 20; i++ {
		l.set("a", 0)
		run(l, e, 3*time.Second)
		l.set("a", 1)
		run(l, e, 3*time.Second)
	}
	evacuations := 0
	for _, ev := range l.s.Events {
		if ev.Kind == state.EventEvacuate {
			evacuations++
			if !strings.Contains(ev.Reason, "flapping") {
				t.Errorf("reason does not say flapping: %q", ev.Reason)
			}
		}
	}
	if r, _ := l.s.Region("a"); evacuations != 1 || r.Phase != state.PhaseEvacuated {
		t.Fatalf("%d evacuations, a is %s: %v", evacuations, r.Phase, l.kinds())
	}
}

func TestAutoRestore(t *testing.T) {
	l := newLog(t, cfgYAML+"  auto_restore_after: 20s\n")
	e := newEngine(l)
	l.set("a", 0)
	run(l, e, 20*time.Second)
	if r, _ := l.s.Region("a"); r.Phase != state.PhaseEvacuated {
		t.Fatalf("not evacuated: %+v", r)
	}
	l.set("a", 1)
	run(l, e, 15*time.Second)
	if r, _ := l.s.Region("a"); r.Phase != state.PhaseEvacuated {
		t.Fatalf("restored before auto_restore_after: %+v", r)
	}
	run(l, e, 20*time.Second)
	if r, _ := l.s.Region("a"); r.Phase != state.PhaseActive || r.Weight != 100 {
		t.Fatalf("not restored after a sustained healthy period: %+v %v", r, l.kinds())
	}
}

func TestCapacityLimitsAutomaticShift(t *testing.T) {
	yaml := strings.Replace(cfgYAML, "regions: [{name: a}, {name: b}, {name: c}]",
		"regions: [{name: a, capacity: 100}, {name: b, capacity: 100}, {name: c, capacity: 100}]", 1) + "  demand: 240\n"
	l := newLog(t, yaml)
	e := newEngine(l)
	l.set("a", 0)
	run(l, e, 30*time.Second)
	// b and c can carry 200 of 240: a keeps the share that does not fit.
	r, _ := l.s.Region("a")
	if r.Weight == 0 || r.Weight == 100 {
		t.Fatalf("capacity ignored: %+v", r)
	}
	share := float64(r.Weight) / float64(r.Weight+200)
	if load := 240 * (1 - share) / 2; load > 100 {
		t.Fatalf("b and c each carry %.0f > 100", load)
	}
	found := false
	for _, ev := range l.s.Events {
		found = found || ev.Kind == "capacity.limited"
	}
	if !found {
		t.Fatal("partial shift not recorded")
	}
	// A manual evacuation that does not fit is refused, and allowed with force.
	if res, _ := l.Propose(context.Background(), state.CmdEvacuate, "op", "", state.Evacuate{Region: "b", Reason: "x"}); res.Code != state.CodeRule {
		t.Fatalf("manual over capacity: %+v", res)
	}
	if res, _ := l.Propose(context.Background(), state.CmdEvacuate, "op", "", state.Evacuate{Region: "b", Reason: "x", Force: true}); res.Error != "" {
		t.Fatalf("forced: %+v", res)
	}
}

func TestVerdicts(t *testing.T) {
	p := state.Policy{UnhealthyBelow: 0.5}
	leader := t0.Add(-5 * time.Second) // became leader 5 s ago
	tests := []struct {
		name         string
		o            Observed
		seen, warmed bool
		healthy, ok  bool
	}{
		{"no observation", Observed{}, false, true, false, false},
		{"passing", Observed{Share: 1, Known: true}, true, true, true, true},
		{"at threshold", Observed{Share: 0.5, Known: true}, true, true, true, true},
		{"below", Observed{Share: 0.49, Known: true}, true, true, false, true},
		{"below on a report received as leader", Observed{Share: 0, Known: true, Updated: t0.Add(-time.Second)}, true, false, false, true},
		{"below on reports heard before leadership: no decision yet", Observed{Share: 0, Known: true, Updated: t0.Add(-10 * time.Second)}, true, false, false, false},
		{"reports heard before leadership count once warmed up", Observed{Share: 0, Known: true, Updated: t0.Add(-10 * time.Second)}, true, true, false, true},
		{"all agents dead", Observed{AgentsTotal: 2, AgentsDead: 2}, true, true, false, true},
		{"one dead, one left", Observed{AgentsTotal: 2, AgentsDead: 1, AgentsLeft: 1}, true, true, false, true},
		{"all agents dead before warm-up", Observed{AgentsTotal: 2, AgentsDead: 2}, true, false, false, false},
		{"all agents left: no evidence", Observed{AgentsTotal: 2, AgentsLeft: 2}, true, true, false, false},
		{"never had agents", Observed{}, true, true, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, ok := verdict(tc.o, tc.seen, p, Input{WarmedUp: tc.warmed, LeaderSince: leader, Now: t0})
			if h != tc.healthy || ok != tc.ok {
				t.Fatalf("verdict = %v,%v want %v,%v", h, ok, tc.healthy, tc.ok)
			}
		})
	}
}

// TestLeftAgentsAreNoEvidence: a region whose agents all left gracefully
// gets no verdict and no evacuation, one region.unobserved event however
// long it lasts, and region.observed when an agent is back; a region whose
// agents died is judged unhealthy and evacuated as before.
func TestLeftAgentsAreNoEvidence(t *testing.T) {
	l := newLog(t, cfgYAML)
	e := newEngine(l)
	l.health["b"] = map[string]Observed{"api": {AgentsTotal: 2, AgentsLeft: 2}}
	run(l, e, 90*time.Second)
	if got := strings.Join(l.kinds(), " "); got != EventUnobserved+":b" {
		t.Fatalf("events while b's agents are gone = %q, want one %s", got, EventUnobserved)
	}
	if l.s.IsUnhealthy("b", "api") {
		t.Fatal("b judged unhealthy on agents that left")
	}
	// A new leader does not repeat the event.
	run(l, newEngine(l), 10*time.Second)
	if n := len(l.kinds()); n != 1 {
		t.Fatalf("a new leader recorded again: %v", l.kinds())
	}
	l.set("b", 1)
	run(l, e, 5*time.Second)
	if got := strings.Join(l.kinds(), " "); got != EventUnobserved+":b "+EventObserved+":b" {
		t.Fatalf("events after an agent is back = %q", got)
	}
	// Dead, not left: the region is judged down and evacuated.
	l.health["b"] = map[string]Observed{"api": {AgentsTotal: 2, AgentsDead: 2}}
	run(l, e, 30*time.Second)
	if r, _ := l.s.Region("b"); !l.s.IsUnhealthy("b", "api") || r.Phase == state.PhaseActive {
		t.Fatalf("dead agents: unhealthy %v, region %+v; want unhealthy and evacuating", l.s.IsUnhealthy("b", "api"), r)
	}
}

// TestNewLeaderWaitsForFreshReports: a leader that has only reports it
// received before it led makes no verdict until a fresh one arrives or
// its warm-up ends.
func TestNewLeaderWaitsForFreshReports(t *testing.T) {
	l := newLog(t, cfgYAML)
	e := newEngine(l)
	e.leaderSince = *l.now
	l.health["a"] = map[string]Observed{"api": {Share: 0, Known: true, AgentsAlive: 2, AgentsTotal: 2, Updated: l.now.Add(-time.Second)}}
	e.Tick(context.Background(), false)
	if l.s.IsUnhealthy("a", "api") {
		t.Fatal("verdict on a report received before leadership")
	}
	l.health["a"] = map[string]Observed{"api": {Share: 0, Known: true, AgentsAlive: 2, AgentsTotal: 2, Updated: l.now.Add(time.Second)}}
	*l.now = l.now.Add(2 * time.Second)
	e.Tick(context.Background(), false)
	if !l.s.IsUnhealthy("a", "api") {
		t.Fatal("no verdict on a fresh failing report")
	}
}

func TestRampStepsContinueAfterLeaderChange(t *testing.T) {
	l := newLog(t, cfgYAML)
	if res, _ := l.Propose(context.Background(), state.CmdEvacuate, "op", "", state.Evacuate{Region: "b", Reason: "x", Ramp: []int{70, 30, 0}}); res.Error != "" {
		t.Fatal(res.Error)
	}
	// A fresh engine (a new leader) picks the ramp up from the state alone.
	*l.now = l.now.Add(4 * time.Second)
	newEngine(l).Tick(context.Background(), false)
	if r, _ := l.s.Region("b"); r.Weight != 70 {
		t.Fatalf("step applied early: %+v", r)
	}
	*l.now = l.now.Add(time.Second)
	newEngine(l).Tick(context.Background(), false)
	newEngine(l).Tick(context.Background(), false) // a second new leader in the same instant
	if r, _ := l.s.Region("b"); r.Weight != 30 {
		t.Fatalf("after due step: %+v", r)
	}
}

func TestReportedCapacityLimitsAutomaticShift(t *testing.T) {
	// No capacity in the config: the agents' reports alone limit the shift.
	l := newLog(t, cfgYAML+"  demand: 240\n")
	l.capacity = map[string]int{"b": 100, "c": 100}
	e := newEngine(l)
	l.set("a", 0)
	run(l, e, 30*time.Second)
	if r, _ := l.s.Region("a"); r.Weight == 0 || r.Weight == 100 {
		t.Fatalf("reported capacity ignored: %+v", r)
	}
}

func TestWarmUpCoversDetectAfter(t *testing.T) {
	l := newLog(t, cfgYAML) // detect_after: 10s
	for _, tc := range []struct{ cfg, want time.Duration }{
		{time.Second, 10 * time.Second},
		{30 * time.Second, 30 * time.Second},
	} {
		e := NewEngine(EngineConfig{Tick: time.Second, WarmUp: tc.cfg}, l, l)
		if got := e.warmUp(); got != tc.want {
			t.Errorf("WarmUp %s: warm-up %s, want %s", tc.cfg, got, tc.want)
		}
	}
}
