package state

import (
	"fmt"
	"strings"
)

// Capacity model. The policy's demand is the total traffic; the regions'
// traffic weights split it, so a region with weight w carries
// demand * w / sum(weights). A region's capacity (from the steering config,
// or as reported by its agents and carried in the command) times
// max_utilization is what it may carry. Capacity 0 means unknown, and such a
// region is not checked. The model is deliberately simple and explainable:
// the evacuation record says which region would overflow and by how much.

// minWeight returns the lowest weight region can be moved to, at or below
// its current weight, without pushing any other region that takes traffic
// past its capacity; and a sentence saying why when that is above 0.
func (s *State) minWeight(region string, capacity map[string]int) (int, string) {
	p := s.Config.Policy
	if p.Demand <= 0 {
		return 0, ""
	}
	caps := map[string]int{}
	for _, r := range s.Config.Regions {
		caps[r.Name] = r.Capacity
	}
	for r, c := range capacity {
		if c > 0 {
			caps[r] = c
		}
	}
	cur := s.Regions[region].Weight
	if cur == 0 {
		return 0, ""
	}
	others := 0
	for name, r := range s.Regions {
		if name != region {
			others += targetWeight(r)
		}
	}
	overflow := func(x int) []string {
		total := others + x
		if total == 0 {
			return []string{"no region would take the traffic"}
		}
		var over []string
		// Config order: the sentence goes into the replicated event log.
		for _, cr := range s.Config.Regions {
			name, r := cr.Name, s.Regions[cr.Name]
			w := targetWeight(r)
			if name == region || w == 0 || caps[name] == 0 {
				continue
			}
			load := float64(p.Demand) * float64(w) / float64(total)
			if limit := float64(caps[name]) * p.MaxUtilization; load > limit+1e-9 {
				over = append(over, fmt.Sprintf("%s would carry %.0f of capacity %.0f", name, load, limit))
			}
		}
		return over
	}
	if len(overflow(0)) == 0 {
		return 0, ""
	}
	for x := 1; x <= cur; x++ {
		if len(overflow(x)) == 0 {
			return x, fmt.Sprintf("capacity: moving %s to 0 would overflow (%s); weight %d is the lowest that fits (demand %d)",
				region, strings.Join(overflow(0), "; "), x, p.Demand)
		}
	}
	return cur, fmt.Sprintf("capacity: the other regions cannot take any of %s's traffic (%s; demand %d)",
		region, strings.Join(overflow(cur-1), "; "), p.Demand)
}
