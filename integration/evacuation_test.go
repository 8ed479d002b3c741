package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// steeringWith is the test steering config with its policy lines replaced.
func steeringWith(policy string) string {
	base := testSteering()
	return base[:strings.LastIndex(base, "\npolicy:")] + "\npolicy:\n" + policy
}

// applySteering applies a steering config through the CLI.
func (tc *testCluster) applySteering(yaml string) {
	tc.t.Helper()
	path := filepath.Join(tc.t.TempDir(), "steering.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		tc.t.Fatal(err)
	}
	eventually(tc.t, 30*time.Second, "apply steering config", func() error {
		if out, err := tc.evac(tc.controllers[0], "apply", "-f", path); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
}

// waitHealthy waits until every controller sees every region healthy.
func (tc *testCluster) waitHealthy() {
	tc.t.Helper()
	eventually(tc.t, 60*time.Second, "all regions healthy on every controller", func() error {
		for _, c := range tc.controllers {
			regions, err := newClient(c.http).Regions(ctxTimeout(5 * time.Second))
			if err != nil {
				return err
			}
			for _, r := range regions {
				if r.AgentsAlive != 2 || r.HealthShare() < 1 {
					return fmt.Errorf("%s sees %s with %d agents, health %v", c.id, r.Name, r.AgentsAlive, r.Health)
				}
			}
		}
		return nil
	})
}

func (tc *testCluster) events(c *controllerProc) []eventRow {
	tc.t.Helper()
	evs, err := newClient(c.http).Events(ctxTimeout(5*time.Second), 0, 10000)
	if err != nil {
		tc.t.Fatal(err)
	}
	out := make([]eventRow, len(evs))
	for i, e := range evs {
		w := -1
		if e.Weight != nil {
			w = *e.Weight
		}
		out[i] = eventRow{e.Seq, e.Kind, e.Region, e.Reason, e.Time, w}
	}
	return out
}

type eventRow struct {
	seq                  uint64
	kind, region, reason string
	time                 time.Time
	weight               int
}

// TestRampSurvivesLeaderKill: kill -9 the leader half-way through a ramp; the
// new leader finishes it, and every step is in the log exactly once.
func TestRampSurvivesLeaderKill(t *testing.T) {
	tc := startCluster(t)
	tc.applySteering(testSteering())
	c0 := tc.controllers[0]
	out, err := tc.evac(c0, "evacuate", "eu-west", "--reason", "ramp under fire", "--ramp", "75,50,25,0", "--step-interval", "3s")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	eventually(t, 30*time.Second, "eu-west at weight 50", func() error {
		r, err := newClient(c0.http).Region(ctxTimeout(5*time.Second), "eu-west")
		if err != nil {
			return err
		}
		if r.Weight != 50 {
			return fmt.Errorf("weight %d", r.Weight)
		}
		return nil
	})
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
	eventually(t, 60*time.Second, "eu-west evacuated by the new leader", func() error {
		r, err := newClient(survivor.http).Region(ctxTimeout(5*time.Second), "eu-west")
		if err != nil {
			return err
		}
		if r.State != "evacuated" || r.Weight != 0 {
			return fmt.Errorf("eu-west %s weight %d", r.State, r.Weight)
		}
		return nil
	})
	var steps []int
	evacuated := 0
	var last time.Time
	for _, e := range tc.events(survivor) {
		if e.region != "eu-west" {
			continue
		}
		switch e.kind {
		case "region.step":
			steps = append(steps, e.weight)
			if !last.IsZero() && e.time.Sub(last) < 2900*time.Millisecond {
				t.Errorf("step to %d only %s after the previous one: steps must keep their interval", e.weight, e.time.Sub(last))
			}
			last = e.time
		case "region.evacuated":
			evacuated++
		}
	}
	if fmt.Sprint(steps) != "[75 50 25 0]" || evacuated != 1 {
		t.Fatalf("steps %v, evacuated %d times; want each of 75,50,25,0 once", steps, evacuated)
	}
	t.Logf("ramp finished on the new leader after kill -9 of %s: steps %v", old.id, steps)
}

// TestShadowModeChangesNothing: in shadow mode a failed region stays in DNS and
// the log records the evacuation that would have happened.
func TestShadowModeChangesNothing(t *testing.T) {
	tc := startCluster(t)
	tc.applySteering(steeringWith(`  detect_after: 2s
  ramp: [0]
  mode: shadow
`))
	tc.waitHealthy()
	failed := time.Now()
	tc.backends["us-west"].healthy.Store(false)
	deadline := time.Now().Add(20 * time.Second)
	sawShadow := false
	for time.Now().Before(deadline) || !sawShadow {
		for _, c := range tc.controllers {
			counts, err := answerRegions(c, 60)
			if err != nil {
				t.Fatal(err)
			}
			if counts["us-west"] == 0 {
				t.Fatalf("%s removed us-west from DNS in shadow mode", c.id)
			}
		}
		for _, e := range tc.events(tc.controllers[0]) {
			if e.kind == "shadow.evacuate" && e.region == "us-west" {
				if !sawShadow {
					t.Logf("FIGURE shadow evacuation recorded at %s, %.1fs after the backend failed: %s",
						e.time.Format(time.RFC3339), e.time.Sub(failed).Seconds(), e.reason)
				}
				sawShadow = true
			}
		}
		if time.Since(failed) > 60*time.Second {
			t.Fatal("no shadow.evacuate event within 60s")
		}
		time.Sleep(time.Second)
	}
	r, err := newClient(tc.controllers[1].http).Region(ctxTimeout(5*time.Second), "us-west")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != "active" || r.Weight != 100 {
		t.Fatalf("shadow mode changed us-west: %s %d", r.State, r.Weight)
	}
}

// TestFlappingRegionEvacuatedOnce: a backend flapping every 3 s for 2 minutes
// gets its region evacuated exactly once.
func TestFlappingRegionEvacuatedOnce(t *testing.T) {
	t.Parallel() // two minutes of mostly waiting: overlap it with the other long tests
	tc := startCluster(t)
	tc.applySteering(steeringWith(`  detect_after: 10s
  ramp: [0]
  flap_threshold: 3
  flap_window: 60s
`))
	tc.waitHealthy()
	b := tc.backends["us-east"]
	end := time.Now().Add(2 * time.Minute)
	for time.Now().Before(end) {
		b.healthy.Store(!b.healthy.Load())
		time.Sleep(3 * time.Second)
	}
	b.healthy.Store(true)
	evacuations := 0
	for _, e := range tc.events(tc.controllers[0]) {
		if e.kind == "region.evacuate" {
			evacuations++
			t.Logf("evacuation at %s: %s", e.time.Format(time.RFC3339), e.reason)
		}
	}
	r, err := newClient(tc.controllers[0].http).Region(ctxTimeout(5*time.Second), "us-east")
	if err != nil {
		t.Fatal(err)
	}
	if evacuations != 1 || r.State != "evacuated" {
		t.Fatalf("%d evacuations; us-east %s; want evacuated exactly once and out until restored", evacuations, r.State)
	}
}
