package state

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// The FSM snapshots the state as JSON: drills, runbooks and schedules must
// come back the same, or a restored replica would differ from the others.
func TestDrillStateSurvivesSnapshot(t *testing.T) {
	dc := newDrillCluster(t)
	dc.must(CmdScheduleAdd, ScheduleAdd{ID: "tick", Cron: "*/10 * * * * *", Runbook: "evac-east", TZ: "UTC",
		Blackouts: []Blackout{{From: "22:00", To: "06:00", Days: []string{"sat"}}}, SkipIf: []string{SkipFrozen}})
	dc.must(CmdScheduleFire, ScheduleFire{ID: "tick", ScheduledTime: t0.Add(10 * time.Second)})
	dc.must(CmdDrillStart, DrillStart{ID: "d-1", Runbook: "evac-east", Params: map[string]string{"region": "us-west"}})
	dc.mustStep("d-1", 0, PhaseStart, "")
	dc.must(CmdDrillAbort, DrillAbort{ID: "d-1", Reason: "x"})
	b, err := json.Marshal(dc.s)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name    string
		a, want any
	}{{"drills", back.Drills, dc.s.Drills}, {"runbooks", back.Runbooks, dc.s.Runbooks}, {"schedules", back.Schedules, dc.s.Schedules}} {
		if !reflect.DeepEqual(f.a, f.want) {
			t.Errorf("%s differ after a JSON round trip:\n%+v\n%+v", f.name, f.a, f.want)
		}
	}
}
