package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/evac-sh/evac/controlplane/notify"
	"github.com/evac-sh/evac/controlplane/state"
)

var (
	descWeight = prometheus.NewDesc("evac_region_weight",
		"Region traffic weight (0-100) in this controller's replica.", []string{"region"}, nil)
	descState = prometheus.NewDesc("evac_region_state",
		"1 for the region's current state (active, evacuating, evacuated, restoring), 0 for the others.", []string{"region", "state"}, nil)
	descHealth = prometheus.NewDesc("evac_region_health",
		"Lowest share, over the region's services, of live agents passing the service's checks (this controller's gossip view).", []string{"region"}, nil)
	descSvcHealthy = prometheus.NewDesc("evac_region_service_healthy",
		"Committed health verdict of a service in a region: 1 healthy, 0 unhealthy.", []string{"region", "service"}, nil)
	descLeader          = prometheus.NewDesc("evac_raft_leader", "1 if this controller is the Raft leader.", nil, nil)
	descTerm            = prometheus.NewDesc("evac_raft_term", "Current Raft term.", nil, nil)
	descCommit          = prometheus.NewDesc("evac_raft_commit_index", "Raft commit index.", nil, nil)
	descApplied         = prometheus.NewDesc("evac_raft_applied_index", "Index of the last entry applied to this replica.", nil, nil)
	descMembers         = prometheus.NewDesc("evac_gossip_members", "Gossip pool members by state.", []string{"state"}, nil)
	descFrozen          = prometheus.NewDesc("evac_frozen", "1 while automatic steering is frozen.", nil, nil)
	descConfigVer       = prometheus.NewDesc("evac_config_version", "Version of the steering config in force.", nil, nil)
	descNotifyDelivered = prometheus.NewDesc("evac_notifications_delivered_total",
		"Events delivered to each notification sink, from the replicated progress (every controller reports the cluster's count).", []string{"sink"}, nil)
	descNotifyFailed = prometheus.NewDesc("evac_notifications_failed_total",
		"Events given up on for each notification sink (refused for good, or past give_up_after), from the replicated progress.", []string{"sink"}, nil)
	descNotifyPending = prometheus.NewDesc("evac_notifications_pending",
		"Events each notification sink takes that are not yet delivered: its backlog.", []string{"sink"}, nil)
	descObservers = prometheus.NewDesc("evac_region_observers",
		"Live agents of the region in this controller's gossip view; 0 means no verdict can be made about it (or, if some died, that it is down).", []string{"region"}, nil)
	descAgents = prometheus.NewDesc("evac_region_agents",
		"Agents of the region by state: alive, dead (failed: evidence against the region), left (gracefully: no evidence).", []string{"region", "state"}, nil)
	phases       = []state.Phase{state.PhaseActive, state.PhaseEvacuating, state.PhaseEvacuated, state.PhaseRestoring}
	memberStates = []string{"alive", "suspect", "dead", "left"}
	_            = prometheus.Collector((*collector)(nil))
)

// collector reads the state-derived series from the controller at scrape
// time.
type collector struct{ src Source }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWeight, descState, descHealth, descSvcHealthy, descLeader,
		descTerm, descCommit, descApplied, descMembers, descFrozen, descConfigVer,
		descNotifyDelivered, descNotifyFailed, descNotifyPending, descObservers, descAgents} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	st := c.src.State()
	status := c.src.Status()
	gauge(descLeader, b2f(status.IsLeader))
	gauge(descTerm, float64(status.Term))
	gauge(descCommit, float64(status.CommitIndex))
	gauge(descApplied, float64(status.AppliedIndex))
	gauge(descFrozen, b2f(st.Frozen))
	gauge(descConfigVer, float64(st.ConfigVersion))

	counts := map[string]int{}
	for _, s := range memberStates {
		counts[s] = 0
	}
	for _, m := range c.src.Members() {
		counts[m.State]++
	}
	for s, n := range counts {
		gauge(descMembers, float64(n), s)
	}

	if st.Config == nil {
		return
	}
	for _, n := range notify.Progress(st, nil) {
		ch <- prometheus.MustNewConstMetric(descNotifyDelivered, prometheus.CounterValue, float64(n.Delivered), n.Name)
		ch <- prometheus.MustNewConstMetric(descNotifyFailed, prometheus.CounterValue, float64(n.Failed), n.Name)
		gauge(descNotifyPending, float64(n.Pending), n.Name)
	}
	health := c.src.RegionHealth()
	for _, rs := range st.RegionList() {
		gauge(descWeight, float64(rs.Weight), rs.Name)
		rh := health[rs.Name]
		gauge(descObservers, float64(rh.AgentsAlive), rs.Name)
		gauge(descAgents, float64(rh.AgentsAlive), rs.Name, "alive")
		gauge(descAgents, float64(rh.AgentsDead), rs.Name, "dead")
		gauge(descAgents, float64(rh.AgentsLeft), rs.Name, "left")
		for _, p := range phases {
			gauge(descState, b2f(rs.Phase == p), rs.Name, string(p))
		}
		lowest, known := 0.0, false
		for _, svc := range st.Config.Services {
			if _, ok := svc.Endpoints[rs.Name]; !ok {
				continue
			}
			gauge(descSvcHealthy, b2f(!st.IsUnhealthy(rs.Name, svc.Name)), rs.Name, svc.Name)
			if sh, ok := health[rs.Name].Services[svc.Name]; ok && sh.Known && (!known || sh.Share < lowest) {
				lowest, known = sh.Share, true
			}
		}
		if known {
			gauge(descHealth, lowest, rs.Name)
		}
	}
}
