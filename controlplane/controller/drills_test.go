package controller

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/api/wire"
)

const quickRunbook = `name: quick
params:
  region: {required: true}
  hold: {default: 1s}
steps:
  - shift: {region: "{{ .region }}", weight: 0}
  - wait: {duration: "{{ .hold }}"}
  - gate: {check: others_healthy}
  - restore: {region: "{{ .region }}", ramp: [50, 100], step_interval: 300ms}
  - notify: {message: "{{ .region }} back"}
`

// TestDrillThroughAPI runs runbooks, drills and schedules through a
// follower's API on an in-process cluster.
func TestDrillThroughAPI(t *testing.T) {
	c := startCluster(t, 3)
	f := c.follower()
	var wr struct{ Index, Version uint64 }
	if code := call(t, f, "PUT", "/v1/config", steeringYAML, &wr); code != 200 {
		t.Fatalf("apply config: %d", code)
	}

	var e apiErr
	if code := call(t, f, "PUT", "/v1/runbooks/quick", "name: quick\nsteps:\n  - shift: {region: eu-west, weight: 101}\n", &e); code != 400 ||
		!strings.Contains(e.Error, "quick.yaml:3: steps[0].shift.weight: 101 is not within 0..100") {
		t.Fatalf("bad runbook: %d %+v", code, e)
	}
	if code := call(t, f, "PUT", "/v1/runbooks/other", quickRunbook, &e); code != 400 || !strings.Contains(e.Error, `named "quick"`) {
		t.Fatalf("name mismatch: %d %+v", code, e)
	}
	if code := call(t, f, "PUT", "/v1/runbooks/quick", quickRunbook, &wr); code != 200 || wr.Version != 1 {
		t.Fatalf("put runbook: %d %+v", code, wr)
	}
	var rbs []wire.Runbook
	if code := call(t, f, "GET", "/v1/runbooks", "", &rbs); code != 200 || len(rbs) != 1 || rbs[0].Steps != 5 {
		t.Fatalf("list runbooks: %d %+v", code, rbs)
	}
	if code := call(t, f, "POST", "/v1/drills", `{"runbook":"quick"}`, &e); code != 400 || !strings.Contains(e.Error, `"region" is required`) {
		t.Fatalf("missing param: %d %+v", code, e)
	}
	if code := call(t, f, "POST", "/v1/drills", `{"runbook":"nope"}`, &e); code != 404 {
		t.Fatalf("unknown runbook: %d %+v", code, e)
	}

	var d wire.DrillReport
	if code := call(t, f, "POST", "/v1/drills", `{"runbook":"quick","params":{"region":"eu-west"},"reason":"test"}`, &d); code != 201 ||
		!strings.HasPrefix(d.ID, "d-") || d.Status != "running" {
		t.Fatalf("start: %d %+v", code, d)
	}
	// Two drills never hold one region.
	if code := call(t, f, "POST", "/v1/drills", `{"runbook":"quick","params":{"region":"eu-west"}}`, &e); code != 409 {
		t.Fatalf("second drill on eu-west: %d %+v", code, e)
	}
	eventually(t, 20*time.Second, func() error {
		call(t, f, "GET", "/v1/drills/"+d.ID, "", &d)
		if d.Status != "succeeded" {
			return fmt.Errorf("drill %s at step %d", d.Status, d.Current)
		}
		return nil
	})
	for i, st := range d.Steps {
		if st.StartedAt.IsZero() || st.EndedAt.IsZero() || st.Description == "" {
			t.Errorf("step %d: %+v", i, st)
		}
	}
	if d.Steps[1].EndedAt.Sub(d.Steps[1].StartedAt) < time.Second {
		t.Errorf("wait lasted %s", d.Steps[1].EndedAt.Sub(d.Steps[1].StartedAt))
	}
	if d.Before["eu-west"] != 100 || d.After["eu-west"] != 100 || d.Weights["eu-west"] != 100 {
		t.Errorf("weights: before %v after %v now %v", d.Before, d.After, d.Weights)
	}

	// Abort mid-wait: every replica has the weights from before.
	if code := call(t, f, "POST", "/v1/drills", `{"runbook":"quick","params":{"region":"us-west","hold":"1h"}}`, &d); code != 201 {
		t.Fatalf("start: %d", code)
	}
	eventually(t, 30*time.Second, func() error {
		call(t, f, "GET", "/v1/drills/"+d.ID, "", &d)
		if d.Current != 1 || d.Weights["us-west"] != 0 {
			return fmt.Errorf("step %d, us-west %d", d.Current, d.Weights["us-west"])
		}
		return nil
	})
	// The held region says which drill holds it, at which step, until when.
	var regs []wire.Region
	eventually(t, 30*time.Second, func() error { // the wait's start is the next step's commit
		if code := call(t, f, "GET", "/v1/regions", "", &regs); code != 200 {
			return fmt.Errorf("regions: %d", code)
		}
		for _, r := range regs {
			if r.Name == "us-west" && (r.Drill == nil || r.Drill.NextAt.IsZero()) {
				return fmt.Errorf("us-west's drill %+v", r.Drill)
			}
		}
		return nil
	})
	for _, r := range regs {
		switch {
		case r.Name == "us-west" && (r.Drill == nil || r.Drill.ID != d.ID || r.Drill.Step != 2 || r.Drill.StepKind != "wait" || r.Drill.NextAt.Before(time.Now().Add(50*time.Minute))):
			t.Errorf("us-west's drill: %+v", r.Drill)
		case r.Name != "us-west" && r.Drill != nil:
			t.Errorf("%s held by %+v", r.Name, r.Drill)
		}
	}
	if code := call(t, f, "POST", "/v1/drills/"+d.ID+"/abort", `{"reason":1}`, &e); code != 400 {
		t.Fatalf("abort with a bad body: %d", code)
	}
	if code := call(t, f, "POST", "/v1/drills/"+d.ID+"/abort", "", &d); code != 200 || d.Status != "aborted" ||
		!strings.Contains(d.Outcome, "no reason given") {
		t.Fatalf("abort: %d %+v", code, d)
	}
	if code := call(t, f, "POST", "/v1/drills/"+d.ID+"/abort", `{"reason":"again"}`, &e); code != 409 {
		t.Fatalf("abort an aborted drill: %d %+v", code, e)
	}
	for _, ctl := range c.ctls {
		eventually(t, 30*time.Second, func() error {
			if w := ctl.State().Regions["us-west"].Weight; w != 100 {
				return fmt.Errorf("%s: us-west %d", ctl.cfg.NodeID, w)
			}
			return nil
		})
	}

	// Schedules.
	for body, want := range map[string]string{
		`{"cron":"every day","runbook":"quick"}`:                                     "cron:",
		`{"cron":"0 3 * * *","runbook":"quick","tz":"Mars/Olympus"}`:                 "tz:",
		`{"cron":"0 3 * * *","runbook":"quick","params":{"colour":"red"}}`:           "unknown parameter",
		`{"cron":"0 3 * * *","runbook":"quick","skip_if":["rain"],"id":"x"}`:         "skip_if[0]",
		`{"cron":"0 3 * * *","runbook":"quick","blackouts":[{"from":"9","to":"x"}]}`: "blackouts[0].from",
	} {
		if code := call(t, f, "POST", "/v1/schedules", body, &e); code != 400 || !strings.Contains(e.Error, want) {
			t.Errorf("%s: %d %+v, want 400 naming %s", body, code, e, want)
		}
	}
	var sc wire.ScheduleReport
	if code := call(t, f, "POST", "/v1/schedules", `{"id":"nightly","cron":"0 3 * * *","tz":"Europe/Paris","runbook":"quick","params":{"region":"eu-west"}}`, &sc); code != 201 ||
		len(sc.Next) != 3 || sc.Next[0].Hour() != 3 {
		t.Fatalf("add schedule: %d %+v", code, sc)
	}
	if code := call(t, f, "DELETE", "/v1/runbooks/quick", "", &e); code != 409 {
		t.Fatalf("delete a scheduled runbook: %d %+v", code, e)
	}
	if code := call(t, f, "DELETE", "/v1/schedules/nightly", "", nil); code != 200 {
		t.Fatalf("remove schedule: %d", code)
	}
	if code := call(t, f, "GET", "/v1/schedules/nightly", "", &e); code != 404 {
		t.Fatalf("removed schedule: %d", code)
	}
}
