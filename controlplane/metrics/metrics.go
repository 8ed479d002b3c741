package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/buildinfo"
)

// Source is what the collector reads at scrape time; a controller
// implements it.
type Source interface {
	State() *state.State
	Status() wire.Status
	RegionHealth() map[string]wire.RegionHealth
	Members() []wire.Member
}

// Metrics is one controller's registry and instruments.
type Metrics struct {
	reg *prometheus.Registry

	dns         dnsCounters
	dnsDuration prometheus.Histogram
	apply       prometheus.Histogram
	evacs       *prometheus.CounterVec
	evacTime    prometheus.Histogram

	// Evacuation tracking for ObserveEvents.
	mu      sync.Mutex
	since   time.Time            // completions before this are history, not counted
	started map[string]time.Time // region -> start of its evacuation in progress
}

// New returns the metrics of a controller read through src. Events older
// than now are used to pair starts with completions but are not counted
// (a restarted controller replays its log).
func New(src Source) *Metrics {
	m := &Metrics{
		reg:     prometheus.NewRegistry(),
		since:   time.Now(),
		started: map[string]time.Time{},
		dnsDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "evac_dns_reply_duration_seconds",
			Help:    "Time from reading a DNS query to writing its reply.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05},
		}),
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "evac_raft_apply_duration_seconds",
			Help:    "Time from proposing a command to its result, leader forwarding included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		evacs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evac_evacuations_total",
			Help: "Evacuations seen in the audit log since this controller started, by outcome: started, completed (weight reached 0), reverted (restored before completing).",
		}, []string{"outcome"}),
		evacTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "evac_evacuation_duration_seconds",
			Help:    "Time from an evacuation's start to its region being evacuated.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600},
		}),
	}
	dnsQueries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "evac_dns_queries_total",
		Help: "DNS replies sent, by query type and response code.",
	}, []string{"qtype", "rcode"})
	m.dns.init(dnsQueries)
	for _, o := range []string{"started", "completed", "reverted"} {
		m.evacs.WithLabelValues(o)
	}
	bi := buildinfo.Get()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "evac_build_info",
		Help:        "1, labelled with the running binary's version, VCS revision and Go version: a mixed-release cluster shows as several series.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Revision, "goversion": bi.GoVersion},
	})
	build.Set(1)
	m.reg.MustRegister(build, dnsQueries, m.dnsDuration, m.apply, m.evacs, m.evacTime, &collector{src: src}, &exerciseCollector{src: src},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the controller's registry, for more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ObserveApply records the latency of one proposed command.
func (m *Metrics) ObserveApply(d time.Duration) { m.apply.Observe(d.Seconds()) }

// ObserveEvents counts evacuations in a batch of audit events, given in
// sequence order.
func (m *Metrics) ObserveEvents(evs []state.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range evs {
		live := !e.Time.Before(m.since)
		switch e.Kind {
		case state.EventEvacuate:
			m.started[e.Region] = e.Time
			if live {
				m.evacs.WithLabelValues("started").Inc()
			}
		case state.EventEvacuated:
			start, ok := m.started[e.Region]
			delete(m.started, e.Region)
			if live {
				m.evacs.WithLabelValues("completed").Inc()
				if ok {
					m.evacTime.Observe(e.Time.Sub(start).Seconds())
				}
			}
		case state.EventRestore:
			if _, ok := m.started[e.Region]; ok {
				delete(m.started, e.Region)
				if live {
					m.evacs.WithLabelValues("reverted").Inc()
				}
			}
		}
	}
}
