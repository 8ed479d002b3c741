package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Partition tests run on their own loopback subnets (regions on
// 127.0.41-43.0/24, controllers on 127.0.49.0/24) so that their nftables
// rules touch nothing else running on the host.

// partRegions places the regions on 127.0.base+1..base+3; the controllers
// go on 127.0.base+9. Tests that may run in parallel use different bases.
func partRegions(base int) []regionDef {
	out := make([]regionDef, len(testRegions))
	for i, r := range testRegions {
		r.subnet = base + 1 + i
		out[i] = r
	}
	return out
}

func subnetCIDR(n int) string { return fmt.Sprintf("127.0.%d.0/24", n) }

// startPartitionCluster starts the cluster on the partition subnets, applies
// the fast test policy and waits until every controller sees every region
// healthy with both agents alive.
func startPartitionCluster(t *testing.T, applyConfig bool, base int) *testCluster {
	t.Helper()
	tc := startClusterOpts(t, clusterOpts{regions: partRegions(base), ctrlSubnet: base + 9, agentCapacity: 40})
	if applyConfig {
		steering := filepath.Join(t.TempDir(), "steering.yaml")
		if err := os.WriteFile(steering, []byte(testSteering()), 0o644); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "apply steering config", func() error {
			if out, err := tc.evac(tc.controllers[0], "apply", "-f", steering); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
	}
	eventually(t, 60*time.Second, "every controller sees all agents alive", func() error {
		return tc.allAgentsAlive()
	})
	return tc
}

// allAgentsAlive checks that every controller lists every agent alive with
// a recent report.
func (tc *testCluster) allAgentsAlive() error {
	for _, c := range tc.controllers {
		ms, err := newClient(c.http).Members(ctxT(tc.t, 5*time.Second))
		if err != nil {
			return err
		}
		alive := 0
		for _, m := range ms {
			if m.Role == "agent" && m.State == "alive" && m.LastReportAgeSeconds >= 0 && m.LastReportAgeSeconds < 15 {
				alive++
			}
		}
		if want := 2 * len(tc.regions); alive != want {
			return fmt.Errorf("%s sees %d of %d agents alive and reporting", c.id, alive, want)
		}
	}
	return nil
}

// TestPartitionVantagePoints: a region that only the controllers lost is
// not evacuated, for three minutes, because the other regions still reach
// it; once every other region loses it too, it is evacuated.
func TestPartitionVantagePoints(t *testing.T) {
	part := newPartition(t)
	t.Parallel() // minutes of waiting; its own subnets and nft table
	tc := startPartitionCluster(t, true, 40)
	east := tc.regions[0]

	// The health view carries capacity and the per-check breakdown.
	eventually(t, 30*time.Second, "regions healthy, capacity and per-check counts", func() error {
		regions, err := newClient(tc.controllers[0].http).Regions(ctxT(t, 5*time.Second))
		if err != nil {
			return err
		}
		for _, r := range regions {
			svc := r.Services["api"]
			if r.HealthShare() < 1 || r.CapacityReported == nil || *r.CapacityReported != 80 ||
				svc.Checks["http"].Passing != 2 || svc.Checks["http"].Reporting != 2 {
				return fmt.Errorf("%s: health %v, capacity %v, checks %+v", r.Name, r.Health, r.CapacityReported, svc.Checks)
			}
		}
		return nil
	})

	// 1. The controllers lose their link to us-east; us-west and eu-west
	// still reach it.
	part.Cut(subnetCIDR(tc.ctrlSubnet), subnetCIDR(east.subnet))
	const hold = 3 * time.Minute
	minAlive, checks := 2, 0
	for end := time.Now().Add(hold); time.Now().Before(end); time.Sleep(2 * time.Second) {
		for _, c := range tc.controllers {
			r, err := newClient(c.http).Region(ctxT(t, 5*time.Second), east.name)
			if err != nil {
				t.Fatalf("%s: %v", c.id, err)
			}
			if r.State != "active" || r.Weight != 100 || !r.Services["api"].Healthy {
				t.Fatalf("%s: %s evacuated or marked unhealthy with only the controllers cut off from it: state %s weight %d healthy %v reason %q",
					c.id, east.name, r.State, r.Weight, r.Services["api"].Healthy, r.Reason)
			}
			minAlive = min(minAlive, r.AgentsAlive)
			checks++
		}
	}
	t.Logf("FIGURE %s stayed active for %s with the controllers cut off from it (%d observations, fewest agents alive seen: %d)",
		east.name, hold, checks, minAlive)
	if err := tc.allAgentsAlive(); err != nil {
		t.Errorf("reports should still arrive through the other regions: %v", err)
	}

	// 2. Every other region loses us-east too: it is dead to everyone.
	for _, r := range tc.regions[1:] {
		part.Cut(subnetCIDR(east.subnet), subnetCIDR(r.subnet))
	}
	cut := time.Now()
	lastSeen := ""
	took := eventually(t, 90*time.Second, east.name+" evacuated", func() error {
		leader, err := tc.leader()
		if err != nil {
			return err
		}
		r, err := newClient(leader.http).Region(ctxT(t, 5*time.Second), east.name)
		if err != nil {
			return err
		}
		if seen := fmt.Sprintf("agents alive %d, api healthy %v, state %s, weight %d", r.AgentsAlive,
			r.Services["api"].Healthy, r.State, r.Weight); seen != lastSeen {
			t.Logf("+%4.1fs %s: %s", time.Since(cut).Seconds(), leader.id, seen)
			lastSeen = seen
		}
		if r.State != "evacuated" || r.Weight != 0 || !r.Automatic || !strings.Contains(r.Reason, "automatic") {
			return fmt.Errorf("%s: state %s weight %d automatic %v agents alive %d", leader.id, r.State, r.Weight, r.Automatic, r.AgentsAlive)
		}
		return nil
	})
	t.Logf("FIGURE %s evacuated %.1fs after every region lost it", east.name, took.Seconds())
}

// TestPartitionRemerge splits the pool in two halves — controllers and
// us-east against us-west and eu-west — for two minutes, heals, and checks
// that the halves merge again.
func TestPartitionRemerge(t *testing.T) {
	t.Parallel() // minutes of waiting; its own subnets and nft table
	part := newPartition(t)
	tc := startPartitionCluster(t, false, 50)
	a := []string{subnetCIDR(tc.ctrlSubnet), subnetCIDR(tc.regions[0].subnet)}
	b := []string{subnetCIDR(tc.regions[1].subnet), subnetCIDR(tc.regions[2].subnet)}
	for _, x := range a {
		for _, y := range b {
			part.Cut(x, y)
		}
	}
	eventually(t, 60*time.Second, "the controllers see the other half dead", func() error {
		ms, err := newClient(tc.controllers[0].http).Members(ctxT(t, 5*time.Second))
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.Role == "agent" && m.Region != tc.regions[0].name && m.State == "alive" {
				return fmt.Errorf("%s still alive", m.Name)
			}
		}
		return nil
	})
	time.Sleep(2 * time.Minute)
	part.Heal()
	took := eventually(t, 90*time.Second, "halves merged: every controller sees every agent alive and reporting", func() error {
		return tc.allAgentsAlive()
	})
	t.Logf("FIGURE halves merged %.1fs after healing a 2-minute partition", took.Seconds())
}
