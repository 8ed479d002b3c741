package controller

import (
	"fmt"
	"sort"
	"time"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/health"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/controlplane/steering"
	"github.com/evac-sh/evac/gossip"
)

// view computes this controller's health view from the gossip pool.
func (c *Controller) view(st *state.State) map[string]map[string]health.ServiceHealth {
	if st.Config == nil {
		return nil
	}
	members, reports := c.evidence(st)
	return health.Compute(members, reports, st.Config.RegionNames(),
		st.Config.ServiceNames(), time.Now(), c.staleAfter())
}

// Report staleness: an agent re-publishes every result at least every
// refresh_interval (default 10 s; 5 s or less in tests and `evac dev`), and
// gossip delivers it within a second or two, so a report not refreshed for
// several intervals means its agent stopped reporting. Stale reports are
// no evidence either way (see controlplane/health).
const (
	DefaultReportStaleAfter = 60 * time.Second
	FastReportStaleAfter    = 20 * time.Second
)

func (c *Controller) staleAfter() time.Duration {
	switch {
	case c.cfg.ReportStaleAfter > 0:
		return c.cfg.ReportStaleAfter
	case c.cfg.Fast:
		return FastReportStaleAfter
	}
	return DefaultReportStaleAfter
}

// SetGossipKeys replaces the gossip keyring (keys[0] primary); see
// gossip.Node.SetKeys.
func (c *Controller) SetGossipKeys(keys [][]byte) error {
	if c.gossip == nil {
		return errEdgeNoGossip
	}
	return c.gossip.SetKeys(keys)
}

// ReportedCapacity implements steering.Source: the capacity the regions'
// agents report, summed and rounded.
func (c *Controller) ReportedCapacity() map[string]int {
	out := map[string]int{}
	for region, rh := range c.RegionHealth() {
		if rh.CapacityReported != nil {
			out[region] = int(*rh.CapacityReported + 0.5)
		}
	}
	return out
}

// Health implements steering.Source.
func (c *Controller) Health() steering.Health {
	out := steering.Health{}
	for region, svcs := range c.view(c.fsm.State()) {
		out[region] = map[string]steering.Observed{}
		for svc, h := range svcs {
			detail := fmt.Sprintf("%d of %d reporting agents pass", h.Passing, h.Reporting)
			if len(h.Failing) > 0 {
				detail += fmt.Sprintf("; failing %v", h.Failing)
			}
			out[region][svc] = steering.Observed{Share: h.Share, Known: h.Known,
				AgentsAlive: h.AgentsAlive, AgentsTotal: h.AgentsTotal, AgentsDead: h.AgentsDead, AgentsLeft: h.AgentsLeft,
				Updated: h.Updated, Detail: detail}
		}
	}
	return out
}

// RegionHealth implements api.Backend.
func (c *Controller) RegionHealth() map[string]wire.RegionHealth {
	out := map[string]wire.RegionHealth{}
	st := c.fsm.State()
	if st.Config == nil || c.gossip == nil { // an edge has no gossip view
		return out
	}
	members, reports := c.evidence(st)
	now := time.Now()
	view := health.Compute(members, reports, st.Config.RegionNames(), st.Config.ServiceNames(), now, c.staleAfter())
	capacity := health.Capacity(members, reports, now, c.staleAfter())
	for region, svcs := range view {
		rh := wire.RegionHealth{Services: map[string]wire.ServiceHealth{}}
		if v, ok := capacity[region]; ok {
			rh.CapacityReported = &v
		}
		for svc, h := range svcs {
			rh.AgentsAlive, rh.AgentsTotal, rh.AgentsDead, rh.AgentsLeft = h.AgentsAlive, h.AgentsTotal, h.AgentsDead, h.AgentsLeft
			var checks map[string]wire.CheckHealth
			if len(h.Checks) > 0 {
				checks = make(map[string]wire.CheckHealth, len(h.Checks))
				for name, cc := range h.Checks {
					checks[name] = wire.CheckHealth{Passing: cc.Passing, Reporting: cc.Reporting}
				}
			}
			rh.Services[svc] = wire.ServiceHealth{Share: h.Share, Known: h.Known, Passing: h.Passing,
				Reporting: h.Reporting, Failing: h.Failing, Stale: h.Stale, WarmingUp: h.WarmingUp, Checks: checks}
		}
		out[region] = rh
	}
	return out
}

// Members implements api.Backend.
func (c *Controller) Members() []wire.Member {
	if c.gossip == nil { // an edge is not in the gossip pool
		return []wire.Member{}
	}
	now := time.Now()
	last := map[string]time.Time{}
	failing := map[string][]string{}
	for _, r := range c.gossip.Reports() {
		t := r.Received // this node's clock: immune to the origin's skew
		if t.IsZero() {
			t = r.Time
		}
		if t.After(last[r.Origin]) {
			last[r.Origin] = t
		}
		if r.Status != gossip.StatusPassing && r.Status != gossip.StatusWarmingUp {
			failing[r.Origin] = append(failing[r.Origin], r.Service+"/"+r.Check)
		}
	}
	ms := c.gossip.Members()
	out := make([]wire.Member, 0, len(ms))
	for _, m := range ms {
		age := -1.0
		if t, ok := last[m.Name]; ok {
			age = now.Sub(t).Seconds()
		}
		f := failing[m.Name]
		sort.Strings(f)
		out = append(out, wire.Member{Name: m.Name, Addr: m.Addr, Region: m.Region, Role: m.Role,
			State: string(m.State), LastChange: m.LastChange, LastReportAgeSeconds: age, Failing: f})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Region != out[j].Region {
			return out[i].Region < out[j].Region
		}
		return out[i].Name < out[j].Name
	})
	return out
}
