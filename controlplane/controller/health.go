package controller

import (
	"fmt"
	"sort"
	"time"

	"github.com/evac-sh/evac/agent/gossip"
	"github.com/evac-sh/evac/agent/health"
	"github.com/evac-sh/evac/controlplane/api"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/controlplane/steering"
)

// view computes this controller's health view from the gossip pool.
func (c *Controller) view(st *state.State) map[string]map[string]health.ServiceHealth {
	if st.Config == nil {
		return nil
	}
	return health.Compute(c.gossip.Members(), c.gossip.Reports(), st.Config.RegionNames(),
		st.Config.ServiceNames(), time.Now(), 0)
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
				AgentsAlive: h.AgentsAlive, AgentsTotal: h.AgentsTotal, Detail: detail}
		}
	}
	return out
}

// RegionHealth implements api.Backend.
func (c *Controller) RegionHealth() map[string]api.RegionHealth {
	out := map[string]api.RegionHealth{}
	for region, svcs := range c.view(c.fsm.State()) {
		rh := api.RegionHealth{Services: map[string]api.ServiceHealth{}}
		for svc, h := range svcs {
			rh.AgentsAlive, rh.AgentsTotal = h.AgentsAlive, h.AgentsTotal
			rh.Services[svc] = api.ServiceHealth{Share: h.Share, Known: h.Known, Passing: h.Passing,
				Reporting: h.Reporting, Failing: h.Failing}
		}
		out[region] = rh
	}
	return out
}

// Members implements api.Backend.
func (c *Controller) Members() []api.Member {
	now := time.Now()
	last := map[string]time.Time{}
	failing := map[string][]string{}
	for _, r := range c.gossip.Reports() {
		if r.Time.After(last[r.Origin]) {
			last[r.Origin] = r.Time
		}
		if r.Status != gossip.StatusPassing {
			failing[r.Origin] = append(failing[r.Origin], r.Service+"/"+r.Check)
		}
	}
	ms := c.gossip.Members()
	out := make([]api.Member, 0, len(ms))
	for _, m := range ms {
		age := -1.0
		if t, ok := last[m.Name]; ok {
			age = now.Sub(t).Seconds()
		}
		f := failing[m.Name]
		sort.Strings(f)
		out = append(out, api.Member{Name: m.Name, Addr: m.Addr, Region: m.Region, Role: m.Role,
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
