package drills

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/blocker"
	"github.com/evac-sh/evac/controlplane/state"
)

// verdicts gives each alert name's verdict, as the evaluator's cache would.
type verdicts struct {
	mu sync.Mutex
	by map[string]blocker.Verdict
}

func (v *verdicts) set(alert string, vd blocker.Verdict) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.by[alert] = vd
}

func (v *verdicts) Verdict(bs []state.Blocker) blocker.Verdict {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := blocker.Verdict{State: blocker.Clear}
	for _, b := range bs {
		vd, ok := v.by[b.Alert]
		if !ok {
			vd = blocker.Verdict{State: blocker.Pending}
		}
		if rank[vd.State] > rank[out.State] {
			out = vd
		}
	}
	return out
}

// rank orders the states as blocker.Combine does.
var rank = map[blocker.State]int{blocker.Clear: 0, blocker.Pending: 1, blocker.Unknown: 2, blocker.Firing: 3}

const am = "http://127.0.0.1:9093"

func alertOn(name string) []state.Blocker {
	return []state.Blocker{{Alertmanager: am, Alert: name}}
}

func firing(name string) blocker.Verdict {
	return blocker.Verdict{State: blocker.Firing, Reason: "blocked: alert " + name + " firing"}
}

func TestBlock(t *testing.T) {
	st := state.Empty()
	st.Schedules = map[string]state.Schedule{
		"plain":   {ID: "plain"},
		"guarded": {ID: "guarded", BlockOn: alertOn("A")},
	}
	started := state.StepRecord{StartedAt: t0}
	st.Drills = map[string]state.Drill{
		"fresh":   {ID: "fresh", Status: state.DrillRunning, Steps: []state.StepRecord{{}, {}}, BlockOn: alertOn("A")},
		"running": {ID: "running", Status: state.DrillRunning, Current: 1, Steps: []state.StepRecord{started, started}, BlockOn: alertOn("A")},
		"free":    {ID: "free", Status: state.DrillRunning, Steps: []state.StepRecord{{}}},
	}
	fireOf := func(id string) Proposal {
		return Proposal{Type: state.CmdScheduleFire, Key: "schedule:" + id,
			Body: state.ScheduleFire{ID: id, ScheduledTime: t0, Prepared: true, Drill: &state.DrillStart{ID: "x"}}}
	}
	stepOf := func(id string) Proposal {
		return Proposal{Type: state.CmdDrillStep, Key: "drill:" + id, Body: state.DrillStep{ID: id}}
	}
	props := []Proposal{fireOf("plain"), fireOf("guarded"), stepOf("fresh"), stepOf("running"), stepOf("free")}
	for _, tc := range []struct {
		name string
		v    blocker.Verdict
		// want: each proposal's key and, for a fire, its skip reason
		// (a drill abort as "abort:<id>:<reason>").
		want []string
	}{
		{"clear", blocker.Verdict{State: blocker.Clear},
			[]string{"schedule:plain", "schedule:guarded", "drill:fresh", "drill:running", "drill:free"}},
		{"pending: fire and drills wait", blocker.Verdict{State: blocker.Pending},
			[]string{"schedule:plain", "drill:free"}},
		{"firing: skipped, both aborted", firing("A"),
			[]string{"schedule:plain", "schedule:guarded skip=blocked: alert A firing", "drill:free",
				"abort:fresh:blocked: alert A firing", "abort:running:blocked: alert A firing"}},
		{"unknown once: skipped, unstarted aborted, running held",
			blocker.Verdict{State: blocker.Unknown, Reason: "blocked: alert A cannot be evaluated: timeout", Unknowns: 1},
			[]string{"schedule:plain", "schedule:guarded skip=blocked: alert A cannot be evaluated: timeout", "drill:free",
				"abort:fresh:blocked: alert A cannot be evaluated: timeout"}},
		{"unknown past the limit: running aborted too",
			blocker.Verdict{State: blocker.Unknown, Reason: "blocked: alert A cannot be evaluated: timeout", Unknowns: 3},
			[]string{"schedule:plain", "schedule:guarded skip=blocked: alert A cannot be evaluated: timeout", "drill:free",
				"abort:fresh:blocked: alert A cannot be evaluated: timeout",
				"abort:running:blocked: alert A cannot be evaluated: timeout (3 evaluations in a row)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &verdicts{by: map[string]blocker.Verdict{"A": tc.v}}
			out := Block(st, props, v.Verdict, 3)
			var got []string
			for _, p := range out {
				switch b := p.Body.(type) {
				case state.ScheduleFire:
					s := p.Key
					if b.Skip != "" {
						s += " skip=" + b.Skip
						if b.Drill != nil {
							t.Errorf("%s: a skipped fire carries a drill", p.Key)
						}
					}
					got = append(got, s)
				case state.DrillAbort:
					if p.Key != "drill:"+b.ID+":blocked" {
						t.Errorf("abort key %q", p.Key)
					}
					got = append(got, "abort:"+b.ID+":"+b.Reason)
				default:
					got = append(got, p.Key)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// TestBlockedExercises runs the engine with verdicts that change: a due
// run is skipped while the schedule's alert fires and starts once it
// clears; the drill it started (which inherits the schedule's block_on) is
// aborted when the alert fires again, back to its starting weights.
func TestBlockedExercises(t *testing.T) {
	f := newFake(t)
	v := &verdicts{by: map[string]blocker.Verdict{"HighErrorRate": firing("HighErrorRate")}}
	e := NewEngine(Config{Tick: time.Second, Grace: time.Minute, Now: func() time.Time { return f.now }, Blockers: v}, f, f)
	f.must(state.CmdScheduleAdd, state.ScheduleAdd{ID: "g", Cron: "*/10 * * * * *", Runbook: "kong",
		Params: map[string]string{"region": "eu-west"}, BlockOn: alertOn("HighErrorRate"), Prepared: true})
	f.run(e, 25*time.Second) // due 12:00:10, :20
	sc := f.State().Schedules["g"]
	if len(sc.Runs) != 2 || len(f.State().Drills) != 0 {
		t.Fatalf("runs %+v, drills %d", sc.Runs, len(f.State().Drills))
	}
	for _, r := range sc.Runs {
		if r.Outcome != state.RunSkipped || r.Reason != "blocked: alert HighErrorRate firing" {
			t.Errorf("run %+v", r)
		}
	}
	if n := f.count(state.EventScheduleSkipped, "schedule g due"); n != 2 {
		t.Errorf("%d skip events", n)
	}

	v.set("HighErrorRate", blocker.Verdict{State: blocker.Clear})
	f.run(e, 10*time.Second) // due :30 starts the drill
	sc = f.State().Schedules["g"]
	last := sc.Runs[len(sc.Runs)-1]
	if last.Outcome != state.RunStarted {
		t.Fatalf("run after the alert cleared: %+v", last)
	}
	d := f.State().Drills[last.Drill]
	if len(d.BlockOn) != 1 || d.BlockOn[0].Alert != "HighErrorRate" {
		t.Fatalf("the scheduled drill's block_on: %+v", d.BlockOn)
	}
	if w := f.State().Regions["eu-west"].Weight; w != 0 || d.Current != 1 {
		t.Fatalf("drill at step %d, eu-west %d", d.Current, w)
	}

	v.set("HighErrorRate", firing("HighErrorRate"))
	f.run(e, 2*time.Second)
	d = f.State().Drills[last.Drill]
	if d.Status != state.DrillAborted || !strings.Contains(d.Outcome, "blocked: alert HighErrorRate firing") {
		t.Fatalf("drill %s: %q", d.Status, d.Outcome)
	}
	if w := f.State().Regions["eu-west"].Weight; w != 100 || d.After["eu-west"] != 100 {
		t.Fatalf("eu-west %d after the abort (after %v)", w, d.After)
	}
}
