package state

import (
	"fmt"
	"maps"
	"math"
	"strings"
	"time"
)

// Capacity-aware spill (docs/steering.md, "Capacity-aware spill"). When a
// region R's weight is lowered (an evacuation, a drill, a set weight), the
// clients homed in R that leave it go, under policy nearest, to each
// client's next choice. Where a receiving region X would pass
// capacity × max_utilization, only a share of R's clients that reach X are
// accepted there (Accept, stable per client subnet by a hash of its own)
// and the rest go on to their next choice. The leader computes the plan
// from the combined home demand (demand.go) before proposing it (PlanSpill,
// pure), and the set-spill command stores it in the state, where every
// controller's DNS server reads the accept shares: the same answers on
// every controller for the same replica state.

// EventSpill records a spill plan: how much of a region's clients went where.
const EventSpill = "region.spill"

// SpillFlow is where a share of a region's moving clients goes.
type SpillFlow struct {
	To string `json:"to"`
	// Share is the share of the moving clients (by measured demand) that
	// this region takes.
	Share float64 `json:"share"`
	// Accept is the share of the moving clients reaching this region
	// (first among their remaining choices) that it keeps; the rest go on
	// to their next choice. 1: all.
	Accept float64 `json:"accept"`
	// Utilization is the region's predicted load over its capacity (nil
	// when its capacity is unknown, or no demand was measured).
	Utilization *float64 `json:"utilization,omitempty"`
}

// SpillPlan is the capacity plan for a region's clients that leave it at
// Weight: Moving answers per second of its home demand, in Flows.
type SpillPlan struct {
	Region string `json:"region"`
	Weight int    `json:"weight"`
	// Moving is the home demand leaving the region, in answers per second
	// as the controllers measured it (0: nothing measured).
	Moving float64 `json:"moving"`
	// Flows, in config order; empty when nothing is measured.
	Flows []SpillFlow `json:"flows,omitempty"`
	// Unplaced is the share of the moving clients that every receiving
	// region passed on: they go back to their first serving choice, over
	// its capacity.
	Unplaced float64 `json:"unplaced,omitempty"`
	// MeasuredAt is the time of the newest demand report it is based on.
	MeasuredAt time.Time `json:"measured_at,omitzero"`
}

// Accept returns the share of region's clients reaching to that to keeps
// (1 without a plan).
func (p *SpillPlan) Accept(to string) float64 {
	if p == nil {
		return 1
	}
	for _, f := range p.Flows {
		if f.To == to {
			return f.Accept
		}
	}
	return 1
}

// Limited reports whether some receiving region accepts less than all.
func (p *SpillPlan) Limited() bool {
	for _, f := range p.Flows {
		if f.Accept < 1 {
			return true
		}
	}
	return false
}

// Summary is one line saying how much went where.
func (p *SpillPlan) Summary() string {
	if len(p.Flows) == 0 {
		return fmt.Sprintf("%s at weight %d: no home demand measured", p.Region, p.Weight)
	}
	parts := make([]string, 0, len(p.Flows))
	for _, f := range p.Flows {
		s := fmt.Sprintf("%s %.0f%%", f.To, 100*f.Share)
		if f.Accept < 1 {
			s += fmt.Sprintf(" (accepts %.0f%% of those reaching it)", 100*f.Accept)
		}
		if f.Utilization != nil {
			s += fmt.Sprintf(" utilisation %.2f", *f.Utilization)
		}
		parts = append(parts, s)
	}
	out := fmt.Sprintf("%s at weight %d: %.1f answers/s of its clients move: %s", p.Region, p.Weight, p.Moving, strings.Join(parts, ", "))
	if p.Unplaced > 0 {
		out += fmt.Sprintf("; %.0f%% fit nowhere and stay with their first serving choice", 100*p.Unplaced)
	}
	return out
}

// SetSpill stores (or, with no flows at weight 100, clears) a region's
// spill plan. The leader proposes it when the region's weight changes.
type SetSpill struct {
	Plan SpillPlan `json:"plan"`
}

func (a *applier) setSpill(b SetSpill) *refusal {
	p := b.Plan
	r, err := a.region(p.Region)
	if err != nil {
		return err
	}
	if r.Weight != p.Weight {
		return refuse(CodeConflict, "spill plan for %s at weight %d: its weight is %d now", p.Region, p.Weight, r.Weight)
	}
	if p.Moving < 0 || math.IsNaN(p.Moving) || p.Unplaced < 0 || p.Unplaced > 1 {
		return refuse(CodeInvalid, "spill plan: moving %v, unplaced %v out of range", p.Moving, p.Unplaced)
	}
	for i, f := range p.Flows {
		_, known := a.s.Regions[f.To]
		switch {
		case !known || f.To == p.Region:
			return refuse(CodeInvalid, "spill plan: flows[%d].to %q is not another region", i, f.To)
		case !(f.Share >= 0 && f.Share <= 1) || !(f.Accept >= 0 && f.Accept <= 1):
			return refuse(CodeInvalid, "spill plan: flows[%d]: share %v and accept %v must be within 0..1", i, f.Share, f.Accept)
		case f.Utilization != nil && (*f.Utilization < 0 || math.IsNaN(*f.Utilization)):
			return refuse(CodeInvalid, "spill plan: flows[%d].utilization is negative", i)
		}
	}
	old, had := a.s.Spill[p.Region]
	plans := maps.Clone(a.s.Spill)
	if plans == nil {
		plans = map[string]SpillPlan{}
	}
	if p.Weight >= 100 {
		if !had {
			return nil
		}
		delete(plans, p.Region)
	} else {
		plans[p.Region] = p
	}
	a.s.Spill = plans
	if acceptsDiffer(&old, &p) {
		a.answersChanged()
	}
	if p.Weight < 100 {
		// No Weight on the event: it changes none (weight timelines and
		// drain detection read the events that carry one).
		a.event(Event{Kind: EventSpill, Region: p.Region, Reason: r.Reason, Detail: p.Summary()})
	}
	return nil
}

func acceptsDiffer(a, b *SpillPlan) bool {
	for _, f := range a.Flows {
		if b.Accept(f.To) != f.Accept {
			return true
		}
	}
	for _, f := range b.Flows {
		if a.Accept(f.To) != f.Accept {
			return true
		}
	}
	return false
}

// UsesNearest reports whether some service of c uses policy nearest
// (spill plans concern only those).
func (c *Config) UsesNearest() bool {
	for _, s := range c.Services {
		if s.Policy == PolicyNearest {
			return true
		}
	}
	return false
}

// SpillPlanFor returns the plan stored for region, or nil.
func (s *State) SpillPlanFor(region string) *SpillPlan {
	if p, ok := s.Spill[region]; ok {
		return &p
	}
	return nil
}

// PlanSpill computes the spill plan for region at weight from the
// combined demand d and the regions' capacities (the config's, or the
// agents' reported ones where given and above 0). It is pure.
//
// The model: the region's home demand times (1 - weight/100) moves. Its
// clients' second choices split it as measured. A receiving region X
// keeps w_X% of what reaches it (its own weight dial) and, where it would
// pass capacity × max_utilization, only an accept share of it; what it
// passes on goes to the clients' next choices, estimated in proportion to
// the moving clients' second-choice demand for them (exact with three
// regions). A region's load is its kept home demand plus what other
// regions' plans send it. The measured demand gives the shares; the
// policy's demand (the total traffic, in the units of capacity) gives the
// load: a region's load is policy.demand × its share. With policy.demand
// 0 the capacity check is off, as it is for evacuations, and the plan only
// says where the clients go.
func PlanSpill(s *State, d *Demand, region string, weight int, capacity map[string]int) SpillPlan {
	plan := SpillPlan{Region: region, Weight: weight, MeasuredAt: d.At}
	if s.Config == nil || weight >= 100 {
		return plan
	}
	p := s.Config.Policy
	mu := p.MaxUtilization
	if mu <= 0 {
		mu = 1
	}
	names := s.Config.RegionNames()
	caps := map[string]float64{}
	scale := 1.0
	if p.Demand > 0 && d.Total > 0 {
		// Without policy.demand the capacity check is off (as for
		// evacuations): the plan only says where the clients go.
		scale = float64(p.Demand) / d.Total
		for _, r := range s.Config.Regions {
			caps[r.Name] = float64(r.Capacity)
		}
		for r, c := range capacity {
			if c > 0 {
				caps[r] = float64(c)
			}
		}
	}
	w := func(x string) float64 { return float64(s.Regions[x].Weight) / 100 }
	// base: what each region carries besides region's moving clients.
	base := map[string]float64{}
	for _, x := range names {
		if x == region {
			continue
		}
		base[x] += d.Home[x] * w(x)
		if op, ok := s.Spill[x]; ok && x != region {
			for _, f := range op.Flows {
				if f.To != region {
					base[f.To] += op.Moving * f.Share
				}
			}
		}
	}
	moving := d.Home[region] * (1 - float64(weight)/100)
	plan.Moving = round4(moving)
	next := d.Next[region]
	secondTotal := 0.0
	for _, x := range names {
		if x != region {
			secondTotal += next[x]
		}
	}
	if moving <= 0 || secondTotal <= 0 {
		return plan
	}
	second := map[string]float64{} // the moving clients' second choices, as shares
	for _, x := range names {
		if x != region {
			second[x] = next[x] / secondTotal
		}
	}
	// onward: where the clients passed on by n go (shares summing to 1).
	onward := func(n string) map[string]float64 {
		out := map[string]float64{}
		sum, count := 0.0, 0
		for _, x := range names {
			if x != region && x != n && w(x) > 0 {
				sum += second[x]
				count++
			}
		}
		for _, x := range names {
			if x == region || x == n || w(x) <= 0 {
				continue
			}
			switch {
			case sum > 0:
				out[x] = second[x] / sum
			default:
				out[x] = 1 / float64(count)
			}
		}
		return out
	}
	accept := map[string]float64{}
	for _, x := range names {
		accept[x] = 1
	}
	kept := func(x string) float64 { return w(x) * accept[x] } // share of arrivals x keeps
	var arrive map[string]float64
	flow := func() {
		arrive = map[string]float64{}
		for _, n := range names {
			if n == region || second[n] == 0 {
				continue
			}
			m := moving * second[n]
			pass := m
			if w(n) > 0 {
				arrive[n] += m
				pass = m * (1 - kept(n))
			}
			for x, q := range onward(n) {
				arrive[x] += pass * q
			}
		}
	}
	for range 64 {
		flow()
		changed := false
		for _, x := range names {
			if x == region || caps[x] <= 0 || arrive[x] <= 0 || w(x) <= 0 {
				continue
			}
			head := caps[x]*mu/scale - base[x]
			need := arrive[x] * w(x)
			if need > head*(1+1e-9) {
				if a := math.Max(0, head) / need; a < accept[x]-1e-9 {
					accept[x], changed = a, true
				}
			}
		}
		if !changed {
			break
		}
	}
	flow()
	took := map[string]float64{}
	unplaced := 0.0
	for _, x := range names {
		took[x] = arrive[x] * kept(x)
	}
	// What every region passed on returns to the first serving choice
	// (the answer is never empty): the second choice when it serves.
	for _, n := range names {
		if n == region || second[n] == 0 {
			continue
		}
		m := moving * second[n]
		pass := m
		if w(n) > 0 {
			pass = m * (1 - kept(n))
		}
		left := 0.0
		on := onward(n)
		for x, q := range on {
			left += pass * q * (1 - kept(x))
		}
		if len(on) == 0 {
			left = pass
		}
		if left <= 0 {
			continue
		}
		unplaced += left
		back := n
		if w(n) <= 0 {
			back = firstOf(names, on)
		}
		if back != "" {
			took[back] += left
		}
	}
	for _, x := range names {
		if x == region || (took[x] <= 0 && accept[x] >= 1) {
			continue
		}
		f := SpillFlow{To: x, Share: round4(took[x] / moving), Accept: round4(accept[x])}
		if caps[x] > 0 {
			u := round4((base[x] + took[x]) * scale / caps[x])
			f.Utilization = &u
		}
		plan.Flows = append(plan.Flows, f)
	}
	plan.Unplaced = round4(unplaced / moving)
	return plan
}

// firstOf returns the first of names with the largest share in m.
func firstOf(names []string, m map[string]float64) string {
	best, bestV := "", -1.0
	for _, x := range names {
		if v, ok := m[x]; ok && v > bestV {
			best, bestV = x, v
		}
	}
	return best
}

// round4 rounds to 4 decimals, so that a plan encodes compactly and the
// same on every architecture.
func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// SamePlan reports whether two plans send the same shares the same way
// (what a new proposal would change).
func SamePlan(a, b *SpillPlan) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Region != b.Region || a.Weight != b.Weight || len(a.Flows) != len(b.Flows) {
		return false
	}
	for i := range a.Flows {
		if a.Flows[i].To != b.Flows[i].To || a.Flows[i].Accept != b.Flows[i].Accept {
			return false
		}
	}
	return true
}
