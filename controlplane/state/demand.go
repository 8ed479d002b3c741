package state

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Home demand (docs/steering.md, "Capacity-aware spill"): every
// controller's DNS server counts, per nearest service, the answers whose
// client's first choice (home) is each region, split by the client's second
// choice, and reports the counts of a sliding window as a DemandReport
// (command demand-report). Apply keeps each controller's latest report as
// it is; CombineDemand sums them. Nothing here reads a clock: every time is
// in the report.

// Limits on demand reports.
const (
	// MaxDemandFlows is how many (service, home, next) figures one report
	// may carry.
	MaxDemandFlows = 4096
	// MaxDemandReports is how many controllers' reports the state keeps;
	// past it the oldest report goes.
	MaxDemandReports = 64
	// MaxDemandWindow is the longest window a report may cover.
	MaxDemandWindow = time.Hour
)

// DemandFlow counts the answers of one nearest service to clients homed in
// Home whose second choice is Next ("" when the list has one region).
type DemandFlow struct {
	Service string `json:"service"`
	Home    string `json:"home"`
	Next    string `json:"next,omitempty"`
	Answers uint64 `json:"answers"`
}

// DemandReport is one controller's home-demand figures over the window
// that ended At (its own clock, stamped when it measured).
type DemandReport struct {
	Node          string       `json:"node"`
	At            time.Time    `json:"at"`
	WindowSeconds int          `json:"window_seconds"`
	Flows         []DemandFlow `json:"flows,omitempty"`
}

// Validate checks a report on its own.
func (r *DemandReport) Validate() error {
	switch {
	case r.Node == "" || len(r.Node) > 128:
		return fmt.Errorf("node %q must be 1 to 128 characters", r.Node)
	case r.At.IsZero():
		return fmt.Errorf("at is required")
	case r.WindowSeconds <= 0 || time.Duration(r.WindowSeconds)*time.Second > MaxDemandWindow:
		return fmt.Errorf("window_seconds %d must be within 1..%d", r.WindowSeconds, int(MaxDemandWindow/time.Second))
	case len(r.Flows) > MaxDemandFlows:
		return fmt.Errorf("%d flows (at most %d)", len(r.Flows), MaxDemandFlows)
	}
	for i, f := range r.Flows {
		if !ValidName(f.Service) || !ValidName(f.Home) || f.Next != "" && !ValidName(f.Next) {
			return fmt.Errorf("flows[%d]: service %q, home %q, next %q: not valid names", i, f.Service, f.Home, f.Next)
		}
	}
	return nil
}

func (a *applier) demandReport(b DemandReport) *refusal {
	if err := b.Validate(); err != nil {
		return refuse(CodeInvalid, "demand report: %v", err)
	}
	if old, ok := a.s.Demand[b.Node]; ok && !b.At.After(old.At) {
		return nil // an older or repeated report: the newer one stays
	}
	d := maps.Clone(a.s.Demand)
	if d == nil {
		d = map[string]DemandReport{}
	}
	d[b.Node] = b
	for len(d) > MaxDemandReports {
		oldest := ""
		for _, n := range slices.Sorted(maps.Keys(d)) {
			if oldest == "" || d[n].At.Before(d[oldest].At) {
				oldest = n
			}
		}
		delete(d, oldest)
	}
	a.s.Demand = d
	// No event (a report every few seconds per controller would flood the
	// audit log) and no serial bump: answers do not depend on it.
	return nil
}

// Demand is the controllers' combined home demand, in answers per second.
type Demand struct {
	// Home is each region's home demand over every nearest service.
	Home map[string]float64
	// Next is, per home region, the demand by the clients' second choice
	// ("" for clients with no second choice).
	Next map[string]map[string]float64
	// Total is the sum of Home.
	Total float64
	// Reports is how many controllers' reports went in; At the newest.
	Reports int
	At      time.Time
}

// HomeShare is region's share of the measured nearest answers (false when
// nothing was measured).
func (d *Demand) HomeShare(region string) (float64, bool) {
	if d == nil || d.Total <= 0 {
		return 0, false
	}
	return d.Home[region] / d.Total, true
}

// CombineDemand sums the controllers' latest reports that are recent
// relative to the newest one (within two of its windows), for the
// services of s's config that use nearest and the regions it lists. It is
// a pure function of s.
func CombineDemand(s *State) *Demand {
	d := &Demand{Home: map[string]float64{}, Next: map[string]map[string]float64{}}
	if s.Config == nil || len(s.Demand) == 0 {
		return d
	}
	nearest := map[string]bool{}
	for _, svc := range s.Config.Services {
		nearest[svc.Name] = svc.Policy == PolicyNearest
	}
	regions := map[string]bool{}
	for _, r := range s.Config.Regions {
		regions[r.Name] = true
	}
	nodes := slices.Sorted(maps.Keys(s.Demand)) // a fixed order: float sums
	for _, n := range nodes {
		if r := s.Demand[n]; r.At.After(d.At) {
			d.At = r.At
		}
	}
	for _, n := range nodes {
		r := s.Demand[n]
		if r.At.Before(d.At.Add(-2 * time.Duration(r.WindowSeconds) * time.Second)) {
			continue // stale: that controller stopped reporting
		}
		d.Reports++
		for _, f := range r.Flows {
			if !nearest[f.Service] || !regions[f.Home] {
				continue
			}
			next := f.Next
			if !regions[next] {
				next = ""
			}
			rate := float64(f.Answers) / float64(r.WindowSeconds)
			d.Home[f.Home] += rate
			if d.Next[f.Home] == nil {
				d.Next[f.Home] = map[string]float64{}
			}
			d.Next[f.Home][next] += rate
			d.Total += rate
		}
	}
	return d
}
