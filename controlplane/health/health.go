package health

import (
	"sort"
	"time"

	"github.com/evac-sh/evac/gossip"
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
	// Agents of the region: alive, and all known (dead and left included);
	// of those, how many are dead (failed: evidence) and how many left
	// gracefully (no evidence either way).
	AgentsAlive int `json:"agents_alive"`
	AgentsTotal int `json:"agents_total"`
	AgentsDead  int `json:"agents_dead"`
	AgentsLeft  int `json:"agents_left"`
	// Failing lists "node/check" for every failing fresh report of an
	// alive agent, sorted.
	Failing []string `json:"failing,omitempty"`
	// Stale lists "node/check" for every report of an alive agent older
	// than the staleness bound: not evidence either way, sorted.
	Stale []string `json:"stale,omitempty"`
	// WarmingUp lists "node/check" for every fresh report of an alive agent
	// whose check has not run `rise` times yet: no evidence either way,
	// sorted.
	WarmingUp []string `json:"warming_up,omitempty"`
	// Updated is when this node received the newest report counted in
	// Passing/Reporting (zero when none).
	Updated time.Time `json:"updated"`
	// Checks breaks the service down by check name: how many alive agents
	// pass it, of those reporting it (fresh reports only).
	Checks map[string]CheckCount `json:"checks,omitempty"`
	// Known is true when at least one alive agent reports the service.
	Known bool `json:"known"`
}

// CheckCount is one check of one service in one region.
type CheckCount struct {
	Passing   int `json:"passing"`
	Reporting int `json:"reporting"`
}

// agentVerdict is one alive agent's standing for one service.
type agentVerdict struct {
	passing bool
	failing []string
}

// isStale reports whether r is older than stale (0: never), judged by
// when this node received it (its own clock) when known.
func isStale(r gossip.Report, now time.Time, stale time.Duration) bool {
	if stale <= 0 {
		return false
	}
	return now.Sub(received(r)) > stale
}

// received is when this node received r (its own clock), or r's own time
// when that is unknown.
func received(r gossip.Report) time.Time {
	if r.Received.IsZero() {
		return r.Time
	}
	return r.Received
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
	dead := map[string]int{}
	left := map[string]int{}
	seenRegions := map[string]bool{}
	for _, m := range members {
		if m.Role != gossip.RoleAgent {
			continue
		}
		agents[m.Name] = m
		total[m.Region]++
		seenRegions[m.Region] = true
		switch {
		case m.Live():
			alive[m.Region]++
		case m.State == gossip.StateDead:
			dead[m.Region]++
		case m.State == gossip.StateLeft:
			left[m.Region]++
		}
	}

	// region -> service -> agent -> verdict, alive agents only.
	verdicts := map[string]map[string]map[string]*agentVerdict{}
	checks := map[string]map[string]map[string]CheckCount{} // region -> service -> check
	staleList := map[string]map[string][]string{}
	warming := map[string]map[string][]string{}
	updated := map[string]map[string]time.Time{}
	seenServices := map[string]bool{}
	for _, r := range reports {
		seenServices[r.Service] = true
		m, ok := agents[r.Origin]
		if !ok || !m.Live() {
			continue
		}
		if isStale(r, now, stale) {
			if staleList[m.Region] == nil {
				staleList[m.Region] = map[string][]string{}
			}
			staleList[m.Region][r.Service] = append(staleList[m.Region][r.Service], r.Origin+"/"+r.Check)
			continue
		}
		if r.Status == gossip.StatusWarmingUp {
			if warming[m.Region] == nil {
				warming[m.Region] = map[string][]string{}
			}
			warming[m.Region][r.Service] = append(warming[m.Region][r.Service], r.Origin+"/"+r.Check)
			continue
		}
		if updated[m.Region] == nil {
			updated[m.Region] = map[string]time.Time{}
		}
		if at := received(r); at.After(updated[m.Region][r.Service]) {
			updated[m.Region][r.Service] = at
		}
		if checks[m.Region] == nil {
			checks[m.Region] = map[string]map[string]CheckCount{}
		}
		if checks[m.Region][r.Service] == nil {
			checks[m.Region][r.Service] = map[string]CheckCount{}
		}
		cc := checks[m.Region][r.Service][r.Check]
		cc.Reporting++
		if r.Status == gossip.StatusPassing {
			cc.Passing++
		}
		checks[m.Region][r.Service][r.Check] = cc
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
		if r.Status != gossip.StatusPassing {
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
			h := ServiceHealth{Region: region, Service: svc, AgentsAlive: alive[region], AgentsTotal: total[region],
				AgentsDead: dead[region], AgentsLeft: left[region], Updated: updated[region][svc]}
			for _, v := range verdicts[region][svc] {
				h.Reporting++
				if v.passing {
					h.Passing++
				}
				h.Failing = append(h.Failing, v.failing...)
			}
			sort.Strings(h.Failing)
			h.Stale = staleList[region][svc]
			sort.Strings(h.Stale)
			h.WarmingUp = warming[region][svc]
			sort.Strings(h.WarmingUp)
			h.Checks = checks[region][svc]
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

// Capacity sums, per region, the capacity reported by its alive agents:
// each agent counts once, with the figure of its most recently received
// fresh report that carries one. Regions where no agent reports capacity
// are absent.
func Capacity(members []gossip.Member, reports []gossip.Report, now time.Time, stale time.Duration) map[string]float64 {
	live := map[string]string{} // agent -> region
	for _, m := range members {
		if m.Role == gossip.RoleAgent && m.Live() {
			live[m.Name] = m.Region
		}
	}
	type latest struct {
		at  time.Time
		cap float64
	}
	per := map[string]latest{}
	for _, r := range reports {
		if r.Capacity == nil || isStale(r, now, stale) {
			continue
		}
		if _, ok := live[r.Origin]; !ok {
			continue
		}
		at := r.Received
		if at.IsZero() {
			at = r.Time
		}
		if cur, ok := per[r.Origin]; !ok || at.After(cur.at) {
			per[r.Origin] = latest{at: at, cap: *r.Capacity}
		}
	}
	out := map[string]float64{}
	for agent, l := range per {
		out[live[agent]] += l.cap
	}
	return out
}
