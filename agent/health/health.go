package health

import (
	"sort"
	"time"

	"github.com/evac-sh/evac/agent/gossip"
)

// ServiceHealth is the health of one service in one region.
type ServiceHealth struct {
	Region  string `json:"region"`
	Service string `json:"service"`
	// Share of alive reporting agents that pass; 0 when !Known.
	Share float64 `json:"share"`
	// Passing alive agents, and alive agents reporting the service.
	Passing   int `json:"passing"`
	Reporting int `json:"reporting"`
	// Agents of the region: alive, and all known (dead and left included).
	AgentsAlive int `json:"agents_alive"`
	AgentsTotal int `json:"agents_total"`
	// Failing lists "node/check" for every failing or stale report of an
	// alive agent, sorted.
	Failing []string `json:"failing,omitempty"`
	// Known is true when at least one alive agent reports the service.
	Known bool `json:"known"`
}

// agentVerdict is one alive agent's standing for one service.
type agentVerdict struct {
	passing bool
	failing []string
}

// Compute returns region -> service -> health for every listed region and
// service. An empty regions (or services) list means every region (or
// service) seen in the agents and reports. Reports are matched to members
// by origin; an agent's region is the one in its member metadata.
func Compute(members []gossip.Member, reports []gossip.Report, regions []string, services []string,
	now time.Time, stale time.Duration) map[string]map[string]ServiceHealth {

	agents := make(map[string]gossip.Member)
	alive := map[string]int{}
	total := map[string]int{}
	seenRegions := map[string]bool{}
	for _, m := range members {
		if m.Role != gossip.RoleAgent {
			continue
		}
		agents[m.Name] = m
		total[m.Region]++
		seenRegions[m.Region] = true
		if m.Live() {
			alive[m.Region]++
		}
	}

	// region -> service -> agent -> verdict, alive agents only.
	verdicts := map[string]map[string]map[string]*agentVerdict{}
	seenServices := map[string]bool{}
	for _, r := range reports {
		seenServices[r.Service] = true
		m, ok := agents[r.Origin]
		if !ok || !m.Live() {
			continue
		}
		bySvc := verdicts[m.Region]
		if bySvc == nil {
			bySvc = map[string]map[string]*agentVerdict{}
			verdicts[m.Region] = bySvc
		}
		byAgent := bySvc[r.Service]
		if byAgent == nil {
			byAgent = map[string]*agentVerdict{}
			bySvc[r.Service] = byAgent
		}
		v := byAgent[r.Origin]
		if v == nil {
			v = &agentVerdict{passing: true}
			byAgent[r.Origin] = v
		}
		isStale := stale > 0 && now.Sub(r.Time) > stale
		if r.Status != gossip.StatusPassing || isStale {
			v.passing = false
			v.failing = append(v.failing, r.Origin+"/"+r.Check)
		}
	}

	if len(regions) == 0 {
		regions = keys(seenRegions)
	}
	if len(services) == 0 {
		services = keys(seenServices)
	}
	out := make(map[string]map[string]ServiceHealth, len(regions))
	for _, region := range regions {
		bySvc := make(map[string]ServiceHealth, len(services))
		for _, svc := range services {
			h := ServiceHealth{Region: region, Service: svc, AgentsAlive: alive[region], AgentsTotal: total[region]}
			for _, v := range verdicts[region][svc] {
				h.Reporting++
				if v.passing {
					h.Passing++
				}
				h.Failing = append(h.Failing, v.failing...)
			}
			sort.Strings(h.Failing)
			if h.Reporting > 0 {
				h.Known = true
				h.Share = float64(h.Passing) / float64(h.Reporting)
			}
			bySvc[svc] = h
		}
		out[region] = bySvc
	}
	return out
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
