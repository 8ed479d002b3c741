package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/evac-sh/evac/controlplane/state"
)

var (
	descReportsDropped = prometheus.NewDesc("evac_gossip_reports_dropped_total",
		"Health reports and refreshes this controller refused as they arrived, by reason: seq_future (sequence more than 5 min in its future), not_enrolled, wrong_region, unsigned, bad_signature.",
		[]string{"reason"}, nil)
	descAgentsEnrolled = prometheus.NewDesc("evac_agents_enrolled", "Agents enrolled in the replicated state.", nil, nil)
	descAgentsEnforced = prometheus.NewDesc("evac_agents_enrolment_enforced",
		"1 when only enrolled agents' signed reports count (policy.require_enrolled_agents).", nil, nil)
)

// WatchAgents exports the agents' enrolment and the reports dropped by the
// gossip layer: dropped returns the counts by reason since start.
func (m *Metrics) WatchAgents(st func() *state.State, dropped func() map[string]uint64) {
	m.reg.MustRegister(&agentCollector{st: st, dropped: dropped})
}

type agentCollector struct {
	st      func() *state.State
	dropped func() map[string]uint64
}

func (c *agentCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descReportsDropped
	ch <- descAgentsEnrolled
	ch <- descAgentsEnforced
}

func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	for reason, n := range c.dropped() {
		ch <- prometheus.MustNewConstMetric(descReportsDropped, prometheus.CounterValue, float64(n), reason)
	}
	st := c.st()
	ch <- prometheus.MustNewConstMetric(descAgentsEnrolled, prometheus.GaugeValue, float64(len(st.Agents)))
	enforced := 0.0
	if st.AgentsEnforced() {
		enforced = 1
	}
	ch <- prometheus.MustNewConstMetric(descAgentsEnforced, prometheus.GaugeValue, enforced)
}
