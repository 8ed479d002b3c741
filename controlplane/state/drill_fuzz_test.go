package state

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// FuzzDrillCommands applies a sequence of drill, runbook and schedule
// commands with fuzzed bodies: Apply never panics, a refused command changes
// nothing, weights stay within 0..100, and no two running drills hold one
// region.
func FuzzDrillCommands(f *testing.F) {
	seeds := []struct {
		t    CommandType
		body string
	}{
		{CmdDrillStart, `{"id":"d-1","runbook":"evac-east","params":{"region":"us-west"}}`},
		{CmdDrillStep, `{"id":"d-1","index":0,"phase":"start"}`},
		{CmdDrillStep, `{"id":"d-1","index":0,"phase":"end","outcome":"done"}`},
		{CmdDrillAbort, `{"id":"d-1","reason":"x"}`},
		{CmdPutRunbook, `{"source":"name: x\nsteps:\n  - shift: {region: eu-west, weight: 5}\n"}`},
		{CmdScheduleAdd, `{"id":"s","cron":"* * * * * *","runbook":"evac-east","skip_if":["frozen"]}`},
		{CmdScheduleFire, `{"id":"s","scheduled_time":"2026-11-25T12:00:10Z"}`},
		{CmdDeleteRunbook, `{"name":"evac-east"}`},
		{CmdScheduleRemove, `{"id":"s"}`},
	}
	for i, s := range seeds {
		next := seeds[(i+1)%len(seeds)]
		f.Add(uint8(s.t), []byte(s.body), uint8(next.t), []byte(next.body))
	}
	f.Fuzz(func(t *testing.T, t1 uint8, b1 []byte, t2 uint8, b2 []byte) {
		dc := newDrillCluster(t)
		for i, c := range []struct {
			typ  uint8
			body []byte
		}{{t1, b1}, {t2, b2}, {t1, b1}} {
			ct := CmdPutRunbook + CommandType(c.typ%uint8(CmdScheduleFire-CmdPutRunbook+1))
			s := dc.s
			cmd := Command{Type: ct, Time: t0.Add(time.Duration(i) * time.Second), Actor: "fuzz", Body: json.RawMessage(c.body)}
			next, res := Apply(s, s.Index+1, cmd)
			if res.Error != "" && (next.Serial != s.Serial || len(next.Events) != len(s.Events) ||
				!reflect.DeepEqual(next.Regions, s.Regions) || !reflect.DeepEqual(next.Drills, s.Drills) ||
				!reflect.DeepEqual(next.Schedules, s.Schedules) || !reflect.DeepEqual(next.Runbooks, s.Runbooks)) {
				t.Fatalf("refused %s changed the state", ct)
			}
			for _, r := range next.RegionList() {
				if r.Weight < 0 || r.Weight > 100 {
					t.Fatalf("%s left %s at weight %d", ct, r.Name, r.Weight)
				}
			}
			held := map[string]string{}
			for id, d := range next.Drills {
				if !d.Running() {
					continue
				}
				for _, rn := range d.Regions {
					if other, ok := held[rn]; ok {
						t.Fatalf("drills %s and %s both hold %s", id, other, rn)
					}
					held[rn] = id
				}
			}
			dc.s = next
		}
	})
}
