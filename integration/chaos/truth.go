package chaos

import (
	"net/netip"
	"time"
)

// The injected faults are the ground truth the invariants are judged
// against: which processes were running, which links were cut, which
// backends failed, at any instant.

// active reports whether f is in force at t. A killed process counts as
// down until restartSettling after its restart (it must bind its ports and
// load its state).
func (f Fault) active(t time.Time) bool {
	end := f.End
	if f.Kind == FaultKill || f.Kind == FaultQuorum {
		end = end.Add(restartSettling)
	}
	return !t.Before(f.Start) && t.Before(end)
}

// down reports whether process name was killed or paused at t.
func (h *History) down(name string, t time.Time) bool {
	for _, f := range h.Faults {
		if f.Kind != FaultKill && f.Kind != FaultPause && f.Kind != FaultQuorum && f.Kind != FaultOldLeader {
			continue
		}
		if !f.active(t) {
			continue
		}
		for _, n := range f.Nodes {
			if n == name {
				return true
			}
		}
	}
	return false
}

// blocked reports whether any packet from a to b is dropped at t, or from
// b to a: a one-way cut breaks TCP both ways and gossip's probes.
func (h *History) blocked(a, b netip.Addr, t time.Time) bool {
	for _, f := range h.Faults {
		if f.Kind != FaultCut || !f.active(t) {
			continue
		}
		for _, c := range f.Cuts {
			if c.From.Contains(a) && c.To.Contains(b) || c.From.Contains(b) && c.To.Contains(a) {
				return true
			}
		}
	}
	return false
}

// backendFailed reports whether region's backend was failed on purpose at t.
func (h *History) backendFailed(region string, t time.Time) bool {
	for _, f := range h.Faults {
		if f.Kind == FaultBackend && f.Region == region && f.active(t) {
			return true
		}
	}
	return false
}

// stableControllers returns the controllers on the stable majority side at
// t: those in every maximal majority clique of running controllers
// (running: not killed or paused; clique: no cut between any two of them).
// With no majority clique, none.
func (h *History) stableControllers(t time.Time) map[string]bool {
	cs := h.Topo.Controllers
	n := len(cs)
	up := make([]bool, n)
	for i, c := range cs {
		up[i] = !h.down(c.Name, t)
	}
	var cliques []uint32
	for mask := uint32(1); mask < 1<<n; mask++ {
		if popcount(mask)*2 <= n {
			continue
		}
		ok := true
		for i := 0; i < n && ok; i++ {
			if mask&(1<<i) == 0 {
				continue
			}
			if !up[i] {
				ok = false
				break
			}
			for j := i + 1; j < n; j++ {
				if mask&(1<<j) != 0 && h.blocked(cs[i].IP, cs[j].IP, t) {
					ok = false
					break
				}
			}
		}
		if ok {
			cliques = append(cliques, mask)
		}
	}
	// Intersect the maximal ones.
	inter, found := uint32(0), false
	for _, m := range cliques {
		maximal := true
		for _, o := range cliques {
			if o != m && o&m == m {
				maximal = false
				break
			}
		}
		if !maximal {
			continue
		}
		if !found {
			inter, found = m, true
		} else {
			inter &= m
		}
	}
	out := map[string]bool{}
	for i, c := range cs {
		if found && inter&(1<<i) != 0 {
			out[c.Name] = true
		}
	}
	return out
}

func popcount(x uint32) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

// changePoints are the instants at which the ground truth may change
// within [a, b], plus a and b.
func (h *History) changePoints(a, b time.Time) []time.Time {
	pts := []time.Time{a}
	for _, f := range h.Faults {
		end := f.End
		if f.Kind == FaultKill || f.Kind == FaultQuorum {
			end = end.Add(restartSettling)
		}
		for _, x := range []time.Time{f.Start, end} {
			if x.After(a) && x.Before(b) {
				pts = append(pts, x)
			}
		}
	}
	return append(pts, b)
}

// stableThroughout reports whether controller c was on the stable majority
// side at every instant of [a, b].
func (h *History) stableThroughout(c string, a, b time.Time) bool {
	for _, t := range h.changePoints(a, b) {
		if !h.stableControllers(t)[c] {
			return false
		}
	}
	return true
}

// regionSeenHealthy is the ground truth for invariant (e) at t: the
// region's backend was not failed on purpose and some running agent of the
// region could reach a running controller, directly or through a running
// agent of another region that could (gossip reports are rebroadcast by
// every node).
func (h *History) regionSeenHealthy(region string, t time.Time) bool {
	if h.backendFailed(region, t) {
		return false
	}
	var rt *RegionTopo
	for i := range h.Topo.Regions {
		if h.Topo.Regions[i].Name == region {
			rt = &h.Topo.Regions[i]
		}
	}
	if rt == nil {
		return false
	}
	reachesController := func(n Node) bool {
		for _, c := range h.Topo.Controllers {
			if !h.down(c.Name, t) && !h.blocked(n.IP, c.IP, t) {
				return true
			}
		}
		return false
	}
	for _, a := range rt.Agents {
		if h.down(a.Name, t) {
			continue
		}
		if reachesController(a) {
			return true
		}
		for _, other := range h.Topo.Regions {
			if other.Name == region {
				continue
			}
			for _, b := range other.Agents {
				if !h.down(b.Name, t) && !h.blocked(a.IP, b.IP, t) && reachesController(b) {
					return true
				}
			}
		}
	}
	return false
}

// controllerRunning reports whether controller c was running (not killed,
// not paused) throughout [a, b].
func (h *History) controllerRunning(c string, a, b time.Time) bool {
	for _, t := range h.changePoints(a, b) {
		if h.down(c, t) {
			return false
		}
	}
	return true
}
