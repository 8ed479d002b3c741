package dnsserver

import (
	"slices"
	"sync/atomic"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/fnvmix"
)

// Home demand (docs/steering.md, "Capacity-aware spill"): every nearest
// answer the DNS paths give adds one to a counter of (service, the
// client's first choice, its second choice). The counters are atomics in
// one slice allocated when a view is built, and carried over to the next
// view while the config's nearest services and regions are the same, so
// the answer path only adds (no allocation, no lock). The counts only
// rise; the controller's reporter (controlplane/spill) takes differences
// over its sliding window.

// demandTable holds the home-demand counters of one config.
type demandTable struct {
	services []string // nearest services, config order
	regions  []string // config order (topology region indices)
	counts   []atomic.Uint64
}

// stride is the counters per service: home × (next, or none).
func (t *demandTable) stride() int { return len(t.regions) * (len(t.regions) + 1) }

// newDemandTable returns the table for c, or prev when it counts the same
// services and regions.
func newDemandTable(c *state.Config, prev *demandTable) *demandTable {
	var svcs []string
	for _, s := range c.Services {
		if s.Policy == state.PolicyNearest {
			svcs = append(svcs, s.Name)
		}
	}
	if len(svcs) == 0 {
		return nil
	}
	regions := c.RegionNames()
	if prev != nil && slices.Equal(prev.services, svcs) && slices.Equal(prev.regions, regions) {
		return prev
	}
	t := &demandTable{services: svcs, regions: regions}
	t.counts = make([]atomic.Uint64, len(svcs)*t.stride())
	return t
}

// slots returns service's counters (nil when it is not counted).
func (t *demandTable) slots(service string) []atomic.Uint64 {
	if t == nil {
		return nil
	}
	i := slices.Index(t.services, service)
	if i < 0 {
		return nil
	}
	n := t.stride()
	return t.counts[i*n : (i+1)*n : (i+1)*n]
}

// DemandCounts is a reading of the home-demand counters: cumulative
// answers since Table began counting. Two readings with the same Table
// may be subtracted.
type DemandCounts struct {
	// Table identifies the counters; it changes when the config's nearest
	// services or regions do (the counts start again from 0).
	Table    any
	Services []string
	Regions  []string
	// Counts, per service, per home region, per next region (the last
	// column: no second choice).
	Counts []uint64
}

// Flows turns the difference cur - prev (prev may be nil, or of another
// table: then cur alone) into demand flows, leaving out zeros.
func (cur *DemandCounts) Flows(prev *DemandCounts) []state.DemandFlow {
	if cur == nil || len(cur.Regions) == 0 {
		return nil
	}
	same := prev != nil && prev.Table == cur.Table && len(prev.Counts) == len(cur.Counts)
	nr := len(cur.Regions)
	var out []state.DemandFlow
	for i, c := range cur.Counts {
		if same {
			c -= prev.Counts[i]
		}
		if c == 0 {
			continue
		}
		svc := i / (nr * (nr + 1))
		home := i / (nr + 1) % nr
		next := i % (nr + 1)
		f := state.DemandFlow{Service: cur.Services[svc], Home: cur.Regions[home], Answers: c}
		if next < nr {
			f.Next = cur.Regions[next]
		}
		out = append(out, f)
	}
	return out
}

// Demand reads the home-demand counters of the view in force (zero
// DemandCounts when no service uses nearest).
func (s *Server) Demand() DemandCounts {
	v := s.view.Load()
	if v == nil || v.demand == nil {
		return DemandCounts{}
	}
	t := v.demand
	out := DemandCounts{Table: t, Services: t.services, Regions: t.regions, Counts: make([]uint64, len(t.counts))}
	for i := range t.counts {
		out.Counts[i] = t.counts[i].Load()
	}
	return out
}

// spillSeed is the hash state an accept share draws a subnet from: the
// region's seed, then "spill" (independent of the weight's draw, so a
// client kept by a region's weight is not the more likely to be refused
// by its accept share).
func spillSeed(name string) uint64 {
	return fnvmix.Separator(fnvmix.String(regionSeed(name), "spill"))
}

// spillAccepts returns, for a nearest service's view, the accept share of
// every (home, to) region pair as [home*n + to], or nil when no stored
// plan limits any: what nearest.pick reads.
func spillAccepts(st *state.State, regionIdx map[string]int, n int) []float64 {
	var acc []float64
	for home, p := range st.Spill {
		h, ok := regionIdx[home]
		if !ok || !p.Limited() {
			continue
		}
		if acc == nil {
			acc = make([]float64, n*n)
			for i := range acc {
				acc[i] = 1
			}
		}
		for _, f := range p.Flows {
			if to, ok := regionIdx[f.To]; ok {
				acc[h*n+to] = f.Accept
			}
		}
	}
	return acc
}
