package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/api/wire"
)

// putRunbook stores a runbook through the CLI.
func (tc *testCluster) putRunbook(c *controllerProc, src string) {
	tc.t.Helper()
	path := filepath.Join(tc.t.TempDir(), "runbook.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		tc.t.Fatal(err)
	}
	eventually(tc.t, 20*time.Second, "runbook put", func() error {
		if out, err := tc.evac(c, "runbook", "put", path); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
}

var drillIDRE = regexp.MustCompile(`drill (d-[0-9a-f-]+) started`)

// startDrill starts a drill through the CLI and returns its id.
func (tc *testCluster) startDrill(c *controllerProc, args ...string) string {
	tc.t.Helper()
	out, err := tc.evac(c, append([]string{"drill", "start"}, args...)...)
	m := drillIDRE.FindStringSubmatch(out)
	if err != nil || m == nil {
		tc.t.Fatalf("drill start %v: %v: %s", args, err, out)
	}
	return m[1]
}

func drillOn(c *controllerProc, id string) (wire.DrillReport, error) {
	return newClient(c.http).Drill(ctxTimeout(5*time.Second), id)
}

// TestDrillSurvivesLeaderKillAndAbort: (a) a drill goes on after kill -9 of
// the leader during its wait, on the new leader, each step once in the
// event log; (b) aborting a drill mid-way puts the weights from before it
// back on every controller, and in every controller's DNS answers.
func TestDrillSurvivesLeaderKillAndAbort(t *testing.T) {
	tc := startCluster(t)
	tc.applySteering(testSteering())
	tc.waitHealthy()
	c0 := tc.controllers[0]
	tc.putRunbook(c0, `name: it-kong
params: {region: {required: true}}
steps:
  - shift: {region: "{{ .region }}", weight: 0}
  - wait: {duration: 12s}
  - gate: {check: others_healthy, region: "{{ .region }}"}
  - restore: {region: "{{ .region }}", ramp: [50, 100], step_interval: 2s}
  - notify: {message: "it-kong done"}
`)
	id := tc.startDrill(c0, "it-kong", "--param", "region=eu-west", "--reason", "integration")

	// (a) Kill the leader while the drill waits.
	eventually(t, 30*time.Second, "the drill in its wait", func() error {
		d, err := drillOn(c0, id)
		if err != nil {
			return err
		}
		if d.Current != 1 || d.Steps[1].StartedAt.IsZero() {
			return fmt.Errorf("step %d", d.Current)
		}
		return nil
	})
	old, err := tc.leader()
	if err != nil {
		t.Fatal(err)
	}
	old.Kill()
	killed := time.Now()
	var survivor *controllerProc
	for _, c := range tc.controllers {
		if c != old {
			survivor = c
		}
	}
	var d wire.DrillReport
	eventually(t, 90*time.Second, "the drill finished by the new leader", func() error {
		d, err = drillOn(survivor, id)
		if err != nil {
			return err
		}
		if d.Status != "succeeded" {
			return fmt.Errorf("%s at step %d: %s", d.Status, d.Current+1, d.Outcome)
		}
		return nil
	})
	if took := d.Steps[1].EndedAt.Sub(d.Steps[1].StartedAt); took < 12*time.Second {
		t.Errorf("the wait lasted %s across the leader change, want at least 12s from its committed start", took)
	}
	if d.Steps[1].EndedAt.Before(killed.Add(-time.Second)) {
		t.Errorf("the wait ended at %s, before the leader was killed at %s: the test did not kill during the wait", d.Steps[1].EndedAt, killed)
	}
	counts := map[string]int{}
	for _, e := range tc.events(survivor) {
		if strings.HasPrefix(e.kind, "drill.step.") && strings.Contains(e.reason, "integration") {
			counts[e.kind]++
		}
	}
	evs, err := newClient(survivor.http).Events(ctxTimeout(5*time.Second), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	perStep := map[string]int{}
	for _, e := range evs {
		if strings.HasPrefix(e.Kind, "drill.step.") && strings.Contains(e.Detail, "drill "+id+" ") {
			perStep[e.Kind+" "+strings.SplitN(e.Detail, ":", 2)[0]]++
		}
	}
	for i := 1; i <= 5; i++ {
		for _, kind := range []string{"drill.step.start", "drill.step.end"} {
			key := fmt.Sprintf("%s drill %s step %d/5", kind, id, i)
			if perStep[key] != 1 {
				t.Errorf("%s: %d times in the event log, want once", key, perStep[key])
			}
		}
	}
	r, err := newClient(survivor.http).Region(ctxTimeout(5*time.Second), "eu-west")
	if err != nil || r.Weight != 100 || r.State != "active" {
		t.Fatalf("eu-west after the drill: %+v %v", r, err)
	}
	t.Logf("drill %s finished on the new leader after kill -9 of %s: wait %s, steps %v", id, old.id,
		d.Steps[1].EndedAt.Sub(d.Steps[1].StartedAt).Round(time.Millisecond), counts)

	// (b) Bring the killed controller back, then abort a drill mid-way.
	old.Restart()
	eventually(t, 60*time.Second, old.id+" caught up", func() error {
		d, err := drillOn(old, id)
		if err != nil {
			return err
		}
		if d.Status != "succeeded" {
			return fmt.Errorf("%s sees the drill %s", old.id, d.Status)
		}
		return nil
	})
	tc.putRunbook(survivor, `name: it-hold
steps:
  - shift: {region: us-west, weight: 0}
  - shift: {region: us-east, weight: 50}
  - wait: {duration: 10m}
`)
	id2 := tc.startDrill(survivor, "it-hold", "--reason", "integration abort")
	for _, c := range tc.controllers {
		eventually(t, 30*time.Second, c.id+" applies the drill's shifts", func() error {
			counts, err := answerRegions(c, 60)
			if err != nil {
				return err
			}
			d, err := drillOn(c, id2)
			if err != nil {
				return err
			}
			if d.Current != 2 || d.Weights["us-west"] != 0 || d.Weights["us-east"] != 50 || counts["us-west"] != 0 {
				return fmt.Errorf("step %d, weights %v, answers %v", d.Current, d.Weights, counts)
			}
			return nil
		})
	}
	if out, err := tc.evac(tc.controllers[1], "drill", "abort", id2, "--reason", "integration: enough"); err != nil {
		t.Fatalf("abort: %v: %s", err, out)
	}
	for _, c := range tc.controllers {
		eventually(t, 30*time.Second, c.id+" back to the weights before the drill", func() error {
			regions, err := newClient(c.http).Regions(ctxTimeout(5 * time.Second))
			if err != nil {
				return err
			}
			for _, r := range regions {
				if r.Weight != 100 || r.State != "active" {
					return fmt.Errorf("%s %s %d", r.Name, r.State, r.Weight)
				}
			}
			counts, err := answerRegions(c, 60)
			if err != nil {
				return err
			}
			if counts["us-west"] == 0 {
				return fmt.Errorf("DNS answers %v: us-west missing", counts)
			}
			d, err := drillOn(c, id2)
			if err != nil {
				return err
			}
			if d.Status != "aborted" {
				return fmt.Errorf("drill %s", d.Status)
			}
			return nil
		})
	}
}

// TestScheduleOncePerDueTimeAcrossLeaderKill: a schedule firing every 10 s
// runs exactly once per due time for a minute with a kill -9 of the leader
// in it; a run skipped because the previous drill still runs says so.
func TestScheduleOncePerDueTimeAcrossLeaderKill(t *testing.T) {
	tc := startCluster(t)
	// Runs every 10 s need the policy's leave (the default is once a minute).
	tc.applySteering(testSteering() + "  schedule_min_interval: 10s\n")
	c0 := tc.controllers[0]
	tc.putRunbook(c0, `name: it-tick
steps:
  - notify: {message: tick}
  - wait: {duration: 12s}
`)
	out, err := tc.evac(c0, "schedule", "add", "--id", "tick", "--cron", "*/10 * * * * *", "--runbook", "it-tick",
		"--skip-if", "drill_running")
	if err != nil {
		t.Fatalf("schedule add: %v: %s", err, out)
	}
	start := time.Now()
	time.Sleep(25 * time.Second) // let it fire a few times
	old, err := tc.leader()
	if err != nil {
		t.Fatal(err)
	}
	old.Kill()
	var survivor *controllerProc
	for _, c := range tc.controllers {
		if c != old {
			survivor = c
		}
	}
	time.Sleep(time.Until(start.Add(65 * time.Second)))
	eventually(t, 30*time.Second, "schedule removed", func() error {
		if out, err := tc.evac(survivor, "schedule", "rm", "tick"); err != nil && !strings.Contains(out, "no schedule") {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	// The runs, from the audit log (the schedule's own record went with it).
	evs, err := newClient(survivor.http).Events(ctxTimeout(5*time.Second), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	dueRE := regexp.MustCompile(`schedule tick due (\S+Z)`)
	seen := map[time.Time]string{}
	var dues []time.Time
	skippedRunning := 0
	for _, e := range evs {
		if !strings.HasPrefix(e.Kind, "schedule.") || e.Kind == "schedule.added" || e.Kind == "schedule.removed" {
			continue
		}
		m := dueRE.FindStringSubmatch(e.Detail)
		if m == nil {
			t.Fatalf("event %s %q", e.Kind, e.Detail)
		}
		due, err := time.Parse(time.RFC3339, m[1])
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := seen[due]; dup {
			t.Errorf("due time %s fired twice: %s and %s", due.Format(time.TimeOnly), prev, e.Kind)
		}
		seen[due] = e.Kind
		dues = append(dues, due)
		if e.Kind == "schedule.skipped" && strings.Contains(e.Reason, "drill_running") {
			skippedRunning++
		}
		if e.Kind == "schedule.missed" {
			// One record covers n due times, the last of them this one.
			var n int
			fmt.Sscanf(e.Reason, "%d run(s)", &n)
			for k := 1; k < n; k++ {
				dues = append(dues, due.Add(-time.Duration(k)*10*time.Second))
			}
		}
		t.Logf("%s %s %s %s", due.Local().Format(time.TimeOnly), e.Kind, e.Time.Local().Format("15:04:05.000"), e.Reason)
	}
	sort.Slice(dues, func(i, j int) bool { return dues[i].Before(dues[j]) })
	if len(dues) < 5 {
		t.Fatalf("%d due times recorded in a minute, want about 6", len(dues))
	}
	for i := 1; i < len(dues); i++ {
		if gap := dues[i].Sub(dues[i-1]); gap != 10*time.Second {
			t.Errorf("due times %s and %s are %s apart: a due time was lost", dues[i-1].Format(time.TimeOnly),
				dues[i].Format(time.TimeOnly), gap)
		}
	}
	if skippedRunning == 0 {
		t.Error("no run was skipped with reason drill_running, though each drill outlasts the period")
	}
	// Every started run is one drill.
	ds, err := newClient(survivor.http).Drills(ctxTimeout(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	started := 0
	for _, kind := range seen {
		if kind == "schedule.fired" {
			started++
		}
	}
	fromSchedule := 0
	for _, d := range ds {
		if d.Schedule == "tick" {
			fromSchedule++
		}
	}
	if started == 0 || fromSchedule != started {
		t.Errorf("%d runs started, %d drills from the schedule", started, fromSchedule)
	}
	t.Logf("%d due times over %s with kill -9 of %s: %d started, %d skipped (drill running)", len(dues),
		time.Since(start).Round(time.Second), old.id, started, skippedRunning)
}
