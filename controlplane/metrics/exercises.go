package metrics

import (
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/runbooks"
)

// Drill and schedule series. They are derived at scrape time from the
// replicated state alone (the drills the state keeps, running and the last
// 100 finished, and each schedule's last 50 runs), so every controller
// reports the same values at the same applied index, and a restart or a
// leader change changes nothing. They are gauges over that retained
// window, not counters since the cluster began.
var (
	descDrills = prometheus.NewDesc("evac_drills",
		"Drills kept in the replicated state (running, and the last 100 finished) by status: running, succeeded, aborted, preempted, failed.",
		[]string{"status"}, nil)
	descScheduleRuns = prometheus.NewDesc("evac_schedule_runs",
		"Runs among each schedule's last 50 kept in the replicated state, by outcome (started, skipped, missed; a record of N missed runs counts N).",
		[]string{"schedule", "outcome"}, nil)
	descScheduleSkipped = prometheus.NewDesc("evac_schedule_skipped_runs",
		"Skipped runs among each schedule's last 50, by reason: blocked (a block_on condition fired or could not be evaluated), blackout, skip_if, drill_refused, other.",
		[]string{"schedule", "reason"}, nil)
	descStepDuration = prometheus.NewDesc("evac_drill_step_duration_seconds",
		"Durations of the ended steps of the drills kept in the replicated state (committed start to committed end), by step kind.",
		[]string{"kind"}, nil)

	drillStatuses = []string{state.DrillRunning, state.DrillSucceeded, state.DrillAborted, state.DrillPreempted, state.DrillFailed}
	runOutcomes   = []string{state.RunStarted, state.RunSkipped, state.RunMissed}
	skipReasons   = []string{"blocked", "blackout", "skip_if", "drill_refused", "other"}
	stepKinds     = []string{runbooks.KindShift, runbooks.KindWait, runbooks.KindGate, runbooks.KindRestore, runbooks.KindNotify}
	stepBuckets   = []float64{0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600}
	_             = prometheus.Collector((*exerciseCollector)(nil))
)

// exerciseCollector reads the drill and schedule series from the state.
type exerciseCollector struct{ src Source }

func (c *exerciseCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDrills, descScheduleRuns, descScheduleSkipped, descStepDuration} {
		ch <- d
	}
}

// SkipReasonClass is the reason label of a skipped run's recorded reason.
func SkipReasonClass(reason string) string {
	switch {
	case strings.HasPrefix(reason, "blocked:"):
		return "blocked"
	case strings.HasPrefix(reason, "blackout "):
		return "blackout"
	case strings.HasPrefix(reason, "skip_if "):
		return "skip_if"
	case strings.HasPrefix(reason, "drill refused:"):
		return "drill_refused"
	}
	return "other"
}

func (c *exerciseCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.State()
	if st == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	statuses := map[string]int{}
	durations := map[string][]float64{}
	for _, d := range st.Drills {
		statuses[d.Status]++
		for _, s := range d.Steps {
			if !s.StartedAt.IsZero() && !s.EndedAt.IsZero() {
				durations[s.Kind] = append(durations[s.Kind], s.EndedAt.Sub(s.StartedAt).Seconds())
			}
		}
	}
	for _, s := range drillStatuses {
		gauge(descDrills, float64(statuses[s]), s)
	}
	for _, kind := range stepKinds {
		ds := durations[kind]
		sort.Float64s(ds)
		buckets := make(map[float64]uint64, len(stepBuckets))
		sum := 0.0
		i := 0
		for _, ub := range stepBuckets {
			for i < len(ds) && ds[i] <= ub {
				i++
			}
			buckets[ub] = uint64(i)
		}
		for _, d := range ds {
			sum += d
		}
		ch <- prometheus.MustNewConstHistogram(descStepDuration, uint64(len(ds)), sum, buckets, kind)
	}
	for _, id := range st.ScheduleIDs() {
		outcomes := map[string]int{}
		skipped := map[string]int{}
		for _, r := range st.Schedules[id].Runs {
			n := 1
			if r.Outcome == state.RunMissed && r.Missed > 0 {
				n = r.Missed
			}
			outcomes[r.Outcome] += n
			if r.Outcome == state.RunSkipped {
				skipped[SkipReasonClass(r.Reason)]++
			}
		}
		for _, o := range runOutcomes {
			gauge(descScheduleRuns, float64(outcomes[o]), id, o)
		}
		for _, r := range skipReasons {
			gauge(descScheduleSkipped, float64(skipped[r]), id, r)
		}
	}
}
