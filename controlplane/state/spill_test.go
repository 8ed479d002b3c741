package state

import (
	"math"
	"strings"
	"testing"
	"time"
)

// flow is a DemandFlow of service api.
func flow(home, next string, answers uint64) DemandFlow {
	return DemandFlow{Service: "api", Home: home, Next: next, Answers: answers}
}

// nearestCluster is newCluster's with api using nearest and the given
// capacities (us-east, us-west, eu-west) and max_utilization.
func nearestCluster(t *testing.T, caps [3]int, mu float64) *cluster {
	c := newCluster(t, true)
	cfg := *c.s.Config
	cfg.Regions = append([]Region(nil), cfg.Regions...)
	for i := range cfg.Regions {
		cfg.Regions[i].Capacity = caps[i]
	}
	cfg.Services = append([]Service(nil), cfg.Services...)
	cfg.Services[0].Policy = PolicyNearest
	cfg.Topology = &Topology{Default: []string{"us-east", "us-west", "eu-west"}}
	cfg.Policy.MaxUtilization = mu
	cfg.Policy.Demand = 180 // all the measured demand (TestPlanSpill): loads in answers/s
	c.mustApply(CmdApplyConfig, ApplyConfig{Config: &cfg})
	return c
}

func TestPlanSpill(t *testing.T) {
	// Home demand, answers per second over a 10 s window: us-east 100
	// (80 next us-west, 20 next eu-west), us-west 50, eu-west 30.
	flows := []DemandFlow{
		flow("us-east", "us-west", 800), flow("us-east", "eu-west", 200),
		flow("us-west", "us-east", 500), flow("eu-west", "us-east", 300),
	}
	type want struct {
		share, accept float64
		util          float64 // -1: nil
	}
	for _, tc := range []struct {
		name     string
		caps     [3]int
		mu       float64
		weights  [3]int // before planning us-east (its own is the plan's)
		weight   int
		want     map[string]want
		unplaced float64
	}{
		{
			name: "room everywhere", caps: [3]int{0, 1000, 1000}, mu: 1, weights: [3]int{0, 100, 100},
			want: map[string]want{"us-west": {0.8, 1, 0.13}, "eu-west": {0.2, 1, 0.05}},
		},
		{
			// us-west: 50 own + 80 arriving, room 100: accepts 50/80; the
			// other 30 go on to eu-west (room 1000).
			name: "second choice full, overflow to the third", caps: [3]int{0, 100, 1000}, mu: 1, weights: [3]int{0, 100, 100},
			want: map[string]want{"us-west": {0.5, 0.625, 1}, "eu-west": {0.5, 1, 0.08}},
		},
		{
			// max_utilization 0.8: us-west may carry 80, 30 of them
			// its own clients'.
			name: "max_utilization", caps: [3]int{0, 100, 1000}, mu: 0.8, weights: [3]int{0, 100, 100},
			want: map[string]want{"us-west": {0.3, 0.375, 0.8}, "eu-west": {0.7, 1, 0.1}},
		},
		{
			name: "half evacuated: half moves", caps: [3]int{0, 100, 1000}, mu: 1, weights: [3]int{50, 100, 100}, weight: 50,
			want: map[string]want{"us-west": {0.8, 1, 0.9}, "eu-west": {0.2, 1, 0.04}},
		},
		{
			// Both nearly full (room for 10 each): each accepts what fits
			// of what reaches it; the 80 that fit nowhere go back to the
			// second choice: us-west 10 + 80·0.9·0.89, eu-west the rest.
			name: "nowhere to go", caps: [3]int{0, 60, 40}, mu: 1, weights: [3]int{0, 100, 100},
			want:     map[string]want{"us-west": {0.74, 0.102, 2.067}, "eu-west": {0.26, 0.109, 1.4}},
			unplaced: 0.8,
		},
		{
			// eu-west at weight 0 too: us-east's clients can go only to
			// us-west, which keeps them even over capacity (never empty).
			name: "the third choice is out", caps: [3]int{0, 100, 1000}, mu: 1, weights: [3]int{0, 100, 0},
			want:     map[string]want{"us-west": {1, 0.5, 1.5}},
			unplaced: 0.5,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := nearestCluster(t, tc.caps, tc.mu)
			for i, r := range []string{"us-east", "us-west", "eu-west"} {
				c.mustApply(CmdSetWeight, SetWeight{Region: r, Weight: tc.weights[i], Reason: "test", Force: true})
			}
			c.mustApply(CmdDemandReport, DemandReport{Node: "c1", At: t0, WindowSeconds: 10, Flows: flows})
			d := CombineDemand(c.s)
			p := PlanSpill(c.s, d, "us-east", tc.weight, nil)
			if want := 100 * (1 - float64(tc.weight)/100); math.Abs(p.Moving-want) > 1e-6 {
				t.Fatalf("moving %v, want %v", p.Moving, want)
			}
			if len(p.Flows) != len(tc.want) {
				t.Fatalf("flows %+v, want %v", p.Flows, tc.want)
			}
			for _, f := range p.Flows {
				w, ok := tc.want[f.To]
				u := -1.0
				if f.Utilization != nil {
					u = *f.Utilization
				}
				if !ok || math.Abs(f.Share-w.share) > 0.01 || math.Abs(f.Accept-w.accept) > 0.01 || math.Abs(u-w.util) > 0.01 {
					t.Errorf("%s: share %.3f accept %.3f utilisation %.3f, want %+v", f.To, f.Share, f.Accept, u, w)
				}
			}
			if math.Abs(p.Unplaced-tc.unplaced) > 0.01 {
				t.Errorf("unplaced %.3f, want %.2f", p.Unplaced, tc.unplaced)
			}
			// Stored, it is what the state and the event say.
			c.now = c.now.Add(time.Second)
			res := c.mustApply(CmdSetSpill, SetSpill{Plan: p})
			if got := c.s.SpillPlanFor("us-east"); got == nil || !SamePlan(got, &p) || len(res.Events) != 1 {
				t.Fatalf("stored %+v, events %v", got, res.Events)
			}
			if e := c.s.Events[len(c.s.Events)-1]; e.Kind != EventSpill || !strings.Contains(e.Detail, "us-west") {
				t.Fatalf("event %+v", e)
			}
		})
	}
}

// TestPlanSpillNoPolicyDemand: without policy.demand the capacity check
// is off; the plan says where the clients go.
func TestPlanSpillNoPolicyDemand(t *testing.T) {
	c := nearestCluster(t, [3]int{0, 1, 1}, 1)
	cfg := *c.s.Config
	cfg.Policy.Demand = 0
	c.mustApply(CmdApplyConfig, ApplyConfig{Config: &cfg})
	c.mustApply(CmdDemandReport, DemandReport{Node: "c1", At: t0, WindowSeconds: 1, Flows: []DemandFlow{
		flow("us-east", "us-west", 30), flow("us-east", "eu-west", 10)}})
	p := PlanSpill(c.s, CombineDemand(c.s), "us-east", 0, nil)
	if p.Limited() || len(p.Flows) != 2 || p.Flows[0].Share != 0.75 || p.Flows[0].Utilization != nil {
		t.Fatalf("plan %+v", p)
	}
}

func TestPlanSpillNoDemand(t *testing.T) {
	c := nearestCluster(t, [3]int{0, 10, 10}, 1)
	p := PlanSpill(c.s, CombineDemand(c.s), "us-east", 0, nil)
	if p.Moving != 0 || len(p.Flows) != 0 || p.Limited() {
		t.Fatalf("plan without demand: %+v", p)
	}
}

func TestSetSpillRefusals(t *testing.T) {
	c := nearestCluster(t, [3]int{0, 100, 100}, 1)
	c.mustApply(CmdSetWeight, SetWeight{Region: "us-east", Weight: 0, Reason: "test", Force: true})
	for _, tc := range []struct {
		name string
		p    SpillPlan
		code string
		msg  string
	}{
		{"stale weight", SpillPlan{Region: "us-east", Weight: 50}, CodeConflict, "its weight is 0 now"},
		{"unknown region", SpillPlan{Region: "mars", Weight: 0}, CodeNotFound, "mars"},
		{"to itself", SpillPlan{Region: "us-east", Flows: []SpillFlow{{To: "us-east", Accept: 1}}}, CodeInvalid, "flows[0].to"},
		{"accept above 1", SpillPlan{Region: "us-east", Flows: []SpillFlow{{To: "us-west", Accept: 1.5}}}, CodeInvalid, "within 0..1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := c.apply(CmdSetSpill, SetSpill{Plan: tc.p})
			if res.Code != tc.code || !strings.Contains(res.Error, tc.msg) {
				t.Fatalf("got %s %q, want %s containing %q", res.Code, res.Error, tc.code, tc.msg)
			}
		})
	}
	// A plan that changes no accept share leaves the serial; a limiting
	// one bumps it; clearing at weight 100 removes it.
	serial := c.s.Serial
	c.mustApply(CmdSetSpill, SetSpill{Plan: SpillPlan{Region: "us-east", Flows: []SpillFlow{{To: "us-west", Share: 1, Accept: 1}}}})
	if c.s.Serial != serial {
		t.Fatal("a plan that limits nothing changed the serial")
	}
	c.mustApply(CmdSetSpill, SetSpill{Plan: SpillPlan{Region: "us-east", Flows: []SpillFlow{{To: "us-west", Share: 0.5, Accept: 0.5}}}})
	if c.s.Serial == serial {
		t.Fatal("a limiting plan left the serial")
	}
	c.mustApply(CmdSetWeight, SetWeight{Region: "us-east", Weight: 100, Reason: "test", Force: true})
	c.mustApply(CmdSetSpill, SetSpill{Plan: SpillPlan{Region: "us-east", Weight: 100}})
	if c.s.SpillPlanFor("us-east") != nil {
		t.Fatal("plan not cleared")
	}
}

func TestDemandReports(t *testing.T) {
	c := nearestCluster(t, [3]int{0, 100, 100}, 1)
	bad := DemandReport{Node: "c1", At: t0, WindowSeconds: 0}
	if res := c.apply(CmdDemandReport, bad); res.Code != CodeInvalid || !strings.Contains(res.Error, "window_seconds") {
		t.Fatalf("got %+v", res)
	}
	c.mustApply(CmdDemandReport, DemandReport{Node: "c1", At: t0, WindowSeconds: 10, Flows: []DemandFlow{flow("us-east", "us-west", 100)}})
	c.mustApply(CmdDemandReport, DemandReport{Node: "c2", At: t0, WindowSeconds: 20, Flows: []DemandFlow{
		flow("us-east", "eu-west", 100), flow("us-west", "", 60), {Service: "solo", Home: "us-east", Answers: 999}}})
	// An older report of c1 changes nothing.
	c.mustApply(CmdDemandReport, DemandReport{Node: "c1", At: t0.Add(-time.Second), WindowSeconds: 10})
	d := CombineDemand(c.s)
	if d.Reports != 2 || d.Home["us-east"] != 15 || d.Home["us-west"] != 3 || d.Next["us-east"]["eu-west"] != 5 || d.Total != 18 {
		t.Fatalf("combined %+v", d)
	}
	if sh, ok := d.HomeShare("us-east"); !ok || math.Abs(sh-15.0/18) > 1e-9 {
		t.Fatalf("home share %v", sh)
	}
	// A report far newer than c2's leaves c2's out (it stopped reporting).
	c.mustApply(CmdDemandReport, DemandReport{Node: "c1", At: t0.Add(time.Hour), WindowSeconds: 10, Flows: []DemandFlow{flow("us-east", "us-west", 100)}})
	if d := CombineDemand(c.s); d.Reports != 1 || d.Total != 10 {
		t.Fatalf("combined %+v", d)
	}
}
