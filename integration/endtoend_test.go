package integration

import (
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// answerRegions asks controller c for api.example.com. with n client subnets
// and counts the answers by region.
func answerRegions(c *controllerProc, n int) (map[string]int, error) {
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		subnet := fmt.Sprintf("10.%d.%d.0", i/250, i%250)
		r, err := queryA(c.dns, "api.example.com.", subnet)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", c.dns, err)
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			return nil, fmt.Errorf("%s: rcode %s with %d answers", c.id, dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		region := ""
		for _, rr := range r.Answer {
			a, ok := rr.(*dns.A)
			if !ok {
				continue
			}
			rg := regionOf(a.A.String())
			if region != "" && rg != region {
				return nil, fmt.Errorf("%s: one answer mixes regions %s and %s", c.id, region, rg)
			}
			region = rg
		}
		counts[region]++
	}
	return counts, nil
}

func (tc *testCluster) leader() (*controllerProc, error) {
	for _, c := range tc.controllers {
		st, err := newClient(c.http).Status(ctxT(tc.t, 5*time.Second))
		if err != nil {
			continue
		}
		for _, d := range tc.controllers {
			if d.id == st.Leader {
				return d, nil
			}
		}
	}
	return nil, errors.New("no controller names a leader")
}

func TestEndToEnd(t *testing.T) {
	tc := startCluster(t)
	c0 := tc.controllers[0]

	// Apply the steering config through the CLI; every agent is then seen by
	// every controller and every region is healthy.
	tc.applySteering(testSteering())
	tc.waitHealthy()

	// All three controllers split answers across the regions by weight.
	const subnets = 600
	var first map[string]int
	for _, c := range tc.controllers {
		counts, err := answerRegions(c, subnets)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s answers over %d subnets: %v", c.id, subnets, counts)
		for _, r := range testRegions {
			if share := float64(counts[r.name]) / subnets; share < 0.25 || share > 0.42 {
				t.Errorf("%s gives %s %.0f%% of subnets, want about a third", c.id, r.name, 100*share)
			}
		}
		if first == nil {
			first = counts
		} else if fmt.Sprint(first) != fmt.Sprint(counts) {
			t.Errorf("controllers disagree: %v vs %v", first, counts)
		}
	}

	// Fail us-east's backend: it leaves every controller's answers.
	failed := time.Now()
	tc.backends["us-east"].healthy.Store(false)
	took := eventually(t, 90*time.Second, "us-east out of every controller's answers", func() error {
		for _, c := range tc.controllers {
			counts, err := answerRegions(c, 100)
			if err != nil {
				return err
			}
			if counts["us-east"] > 0 {
				return fmt.Errorf("%s still answers us-east for %d of 100 subnets", c.id, counts["us-east"])
			}
		}
		return nil
	})
	t.Logf("FIGURE us-east left every controller's answers %.1fs after its backend failed", took.Seconds())
	eventually(t, 60*time.Second, "us-east evacuated automatically", func() error {
		r, err := newClient(c0.http).Region(ctxT(t, 5*time.Second), "us-east")
		if err != nil {
			return err
		}
		if r.State != "evacuated" || r.Weight != 0 || !r.Automatic {
			return fmt.Errorf("us-east is %s weight %d automatic %v", r.State, r.Weight, r.Automatic)
		}
		return nil
	})
	t.Logf("FIGURE us-east evacuated (weight 0) %.1fs after its backend failed", time.Since(failed).Seconds())

	// kill -9 the leader: DNS keeps answering on the survivors and a new
	// leader is elected within 15 s.
	old, err := tc.leader()
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	old.Kill()
	var survivors []*controllerProc
	for _, c := range tc.controllers {
		if c != old {
			survivors = append(survivors, c)
		}
	}
	for _, c := range survivors {
		if _, err := answerRegions(c, 20); err != nil {
			t.Errorf("DNS on survivor %s right after the leader died: %v", c.id, err)
		}
	}
	took = eventually(t, 30*time.Second, "a new leader", func() error {
		for _, c := range survivors {
			st, err := newClient(c.http).Status(ctxT(t, 2*time.Second))
			if err != nil {
				return err
			}
			if st.Leader == "" || st.Leader == old.id {
				return fmt.Errorf("%s sees leader %q", c.id, st.Leader)
			}
		}
		return nil
	})
	t.Logf("FIGURE new leader %.1fs after kill -9 of %s", took.Seconds(), old.id)
	_ = killed

	// Heal and restore through the CLI on a survivor: us-east returns.
	tc.backends["us-east"].healthy.Store(true)
	out, err := tc.evac(survivors[0], "restore", "us-east", "--reason", "backend fixed", "--ramp", "50,100", "--step-interval", "1s")
	if err != nil {
		t.Fatalf("evac restore: %v\n%s", err, out)
	}
	eventually(t, 60*time.Second, "us-east back in the answers of the survivors", func() error {
		for _, c := range survivors {
			counts, err := answerRegions(c, 200)
			if err != nil {
				return err
			}
			if counts["us-east"] < 30 {
				return fmt.Errorf("%s answers us-east for %d of 200 subnets", c.id, counts["us-east"])
			}
		}
		return nil
	})
	old.Restart()
	eventually(t, 30*time.Second, "restarted controller catches up", func() error {
		counts, err := answerRegions(old, 200)
		if err != nil {
			return err
		}
		if counts["us-east"] < 30 {
			return fmt.Errorf("%s answers us-east for %d of 200", old.id, counts["us-east"])
		}
		return nil
	})

	// Stop and restart all three controllers: weights, states and the event
	// log survive.
	if _, err := tc.evac(survivors[0], "evacuate", "eu-west", "--reason", "persist me", "--ramp", "30,0", "--step-interval", "1h"); err != nil {
		t.Fatal(err)
	}
	before := snapshotView(t, tc)
	for _, c := range tc.controllers {
		c.Stop()
	}
	for _, c := range tc.controllers {
		c.Restart()
	}
	eventually(t, 30*time.Second, "state after full restart", func() error {
		for _, c := range tc.controllers {
			after, err := view(c)
			if err != nil {
				return err
			}
			if after != before {
				return fmt.Errorf("%s after restart:\n%s\nbefore:\n%s", c.id, after, before)
			}
		}
		return nil
	})
}

// view renders what must survive a restart: regions' state and weight, and
// the event log (sequence, kind, region) up to the last event before it.
func view(c *controllerProc) (string, error) {
	cl := newClient(c.http)
	ctx := ctxTimeout(5 * time.Second)
	regions, err := cl.Regions(ctx)
	if err != nil {
		return "", err
	}
	sort.Slice(regions, func(i, j int) bool { return regions[i].Name < regions[j].Name })
	s := ""
	for _, r := range regions {
		s += fmt.Sprintf("%s %s %d %q\n", r.Name, r.State, r.Weight, r.Reason)
	}
	evs, err := cl.Events(ctx, 0, 10000)
	if err != nil {
		return "", err
	}
	for _, e := range evs {
		if e.Kind == "health.unhealthy" || e.Kind == "health.healthy" {
			continue // health verdicts may legitimately be added after a restart
		}
		s += fmt.Sprintf("%d %s %s %s\n", e.Seq, e.Kind, e.Region, e.Actor)
	}
	return s, nil
}

func snapshotView(t *testing.T, tc *testCluster) string {
	t.Helper()
	var v string
	eventually(t, 30*time.Second, "controllers agree", func() error {
		var err error
		v, err = view(tc.controllers[0])
		if err != nil {
			return err
		}
		for _, c := range tc.controllers[1:] {
			w, err := view(c)
			if err != nil {
				return err
			}
			if w != v {
				return fmt.Errorf("%s differs", c.id)
			}
		}
		return nil
	})
	return v
}
