package integration

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
)

// spillRegions live on their own loopback subnets (controllers on .154).
var spillRegions = []regionDef{
	{"us-east", 155, testRegions[0].endpoints},
	{"us-west", 156, testRegions[1].endpoints},
	{"eu-west", 157, testRegions[2].endpoints},
}

// spillSteering: as nearSteering, with the policy's demand (300, in the
// units of capacity) and a us-west that can carry 150 of it: with each
// home a third of the demand, us-west has room for half of us-east's
// clients; the other half must go on to their third choice, eu-west.
const spillSteering = `zone: example.com.
ttl: 30
nameservers: {ns1: 192.0.2.53}
regions:
  - {name: us-east, capacity: 1000}
  - {name: us-west, capacity: 150}
  - {name: eu-west, capacity: 1000}
services:
  - name: api
    policy: nearest
    endpoints:
      us-east: [192.0.2.11, 192.0.2.12]
      us-west: [198.51.100.11, 198.51.100.12]
      eu-west: [203.0.113.11, 203.0.113.12]
topology:
  nets:
    10.64.0.0/10: [us-east, us-west, eu-west]
    10.128.0.0/10: [us-west, us-east, eu-west]
    10.192.0.0/10: [eu-west, us-east, us-west]
  default: [us-east, us-west, eu-west]
policy:
  unhealthy_below: 0.5
  detect_after: 2s
  ramp: [0]
  step_interval: 2s
  max_evacuated: 1
  hold_down: 1s
  demand: 300
  max_utilization: 1
  budget: {per_day: 100, cooldown: 1s}
`

// TestNearestSpill: 3 controllers measure the home demand of the clients
// that ask them (a third homed in each region); `evac evacuate us-east
// --dry-run` says where its clients would go and how full us-west would be;
// evacuated, us-west takes the half of us-east's clients it has room for
// (the same ones on every controller) and the others get their third
// choice, eu-west; the spill event says so; no client of another region
// changes answer; `evac regions` shows the home shares and the flow.
func TestNearestSpill(t *testing.T) {
	tc := startClusterOpts(t, clusterOpts{regions: spillRegions, ctrlSubnet: 154})
	tc.applySteering(spillSteering)
	tc.waitHealthy()

	const perHome = 1500
	clients := nearClients(perHome)
	homes := []string{"us-east", "us-west", "eu-west"}
	// Every controller answers every client with its first choice, and
	// the controllers' reports give each home about a third.
	before := map[string][]string{}
	eventually(t, 60*time.Second, "home shares measured from every controller", func() error {
		for _, c := range tc.controllers {
			for _, home := range homes {
				regs, _ := nearSurvey(t, c.dns, clients[home])
				for i, r := range regs {
					if r != home {
						return fmt.Errorf("%s: %s got %s", c.id, clients[home][i], r)
					}
				}
				before[home] = regs
			}
		}
		rs, err := newClient(tc.controllers[0].http).Regions(ctxTimeout(5 * time.Second))
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r.HomeShare == nil || math.Abs(*r.HomeShare-1.0/3) > 0.03 {
				return fmt.Errorf("%s home share %v", r.Name, r.HomeShare)
			}
		}
		return nil
	})
	c0 := tc.controllers[0]

	// The dry run: half to us-west (then full), half to eu-west.
	out, err := tc.evac(c0, "evacuate", "us-east", "--reason", "spill test", "--ramp", "0", "--dry-run", "-o", "json")
	if err != nil {
		t.Fatalf("dry run: %v: %s", err, out)
	}
	var dry wire.WriteResult
	if err := json.Unmarshal([]byte(out), &dry); err != nil {
		t.Fatalf("dry run: %v: %s", err, out)
	}
	checkPlan := func(what string, p *state.SpillPlan) {
		t.Helper()
		if p == nil || len(p.Flows) != 2 {
			t.Fatalf("%s: plan %+v", what, p)
		}
		w, e := p.Flows[0], p.Flows[1]
		if w.To != "us-west" || math.Abs(w.Share-0.5) > 0.08 || math.Abs(w.Accept-0.5) > 0.08 ||
			w.Utilization == nil || math.Abs(*w.Utilization-1) > 0.01 {
			t.Fatalf("%s: us-west %+v, want about half, utilisation 1", what, w)
		}
		if e.To != "eu-west" || math.Abs(e.Share-0.5) > 0.08 || e.Accept != 1 {
			t.Fatalf("%s: eu-west %+v, want about half", what, e)
		}
	}
	checkPlan("dry run", dry.DryRun.Spill)
	out, err = tc.evac(c0, "evacuate", "us-east", "--reason", "spill test", "--ramp", "0", "--dry-run")
	if err != nil || !strings.Contains(out, "us-east's clients") || !strings.Contains(out, "UTILISATION") || !strings.Contains(out, "1.00") {
		t.Fatalf("dry run table: %v:\n%s", err, out)
	}

	if out, err := tc.evac(c0, "evacuate", "us-east", "--reason", "spill test", "--ramp", "0"); err != nil {
		t.Fatalf("evacuate: %v: %s", err, out)
	}
	var plan *state.SpillPlan
	eventually(t, 30*time.Second, "us-east's spill plan on every controller", func() error {
		for _, c := range tc.controllers {
			r, err := newClient(c.http).Region(ctxTimeout(5*time.Second), "us-east")
			if err != nil {
				return err
			}
			if r.Weight != 0 || r.Spill == nil || r.Spill.Weight != 0 || len(r.Spill.Flows) == 0 {
				return fmt.Errorf("%s: us-east at %d, plan %+v", c.id, r.Weight, r.Spill)
			}
			plan = r.Spill
		}
		return nil
	})
	checkPlan("evacuated", plan)
	accept := plan.Flows[0].Accept

	// us-east's clients: none answered us-east, the accepted share at
	// us-west, the others at their third choice; the same on every
	// controller.
	var first []string
	for ci, c := range tc.controllers {
		eventually(t, 30*time.Second, c.id+": us-east's clients spill past us-west", func() error {
			regs, _ := nearSurvey(t, c.dns, clients["us-east"])
			n := map[string]int{}
			for _, r := range regs {
				n[r]++
			}
			if n["us-east"] > 0 || n["us-west"]+n["eu-west"] != perHome {
				return fmt.Errorf("%s: answers %v", c.id, n)
			}
			if share := float64(n["us-west"]) / perHome; math.Abs(share-accept) > 0.04 {
				return fmt.Errorf("%s: us-west took %.3f of us-east's clients, the plan accepts %.3f", c.id, share, accept)
			}
			if ci == 0 {
				first = regs
			} else {
				for i := range regs {
					if regs[i] != first[i] {
						return fmt.Errorf("%s and %s differ for %s", c.id, c0.id, clients["us-east"][i])
					}
				}
			}
			return nil
		})
		for _, home := range []string{"us-west", "eu-west"} {
			regs, _ := nearSurvey(t, c.dns, clients[home])
			for i, r := range regs {
				if r != before[home][i] {
					t.Fatalf("%s: %s (home %s) moved from %s to %s", c.id, clients[home][i], home, before[home][i], r)
				}
			}
		}
	}

	// The event says how much went where.
	evs, err := newClient(c0.http).Events(ctxTimeout(5*time.Second), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range evs {
		if e.Kind == "region.spill" && e.Region == "us-east" && strings.Contains(e.Detail, "at weight 0:") &&
			strings.Contains(e.Detail, "us-west ") && strings.Contains(e.Detail, "eu-west") && strings.Contains(e.Detail, "accepts") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no region.spill event for us-east at 0 naming both regions: %+v", evs[len(evs)-3:])
	}
	out, err = tc.evac(c0, "regions")
	if err != nil || !strings.Contains(out, "HOME") || !strings.Contains(out, "us-east's clients") {
		t.Fatalf("evac regions: %v:\n%s", err, out)
	}
	t.Logf("evac regions:\n%s", out)
}
