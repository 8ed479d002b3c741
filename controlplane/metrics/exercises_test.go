package metrics

import (
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/runbooks"
)

func TestSkipReasonClass(t *testing.T) {
	for reason, want := range map[string]string{
		"blocked: alert HighErrorRate firing (1 active at http://127.0.0.1:9093)": "blocked",
		"blocked: query up cannot be evaluated: timeout":                          "blocked",
		"blackout 22:00-06:00 sat,sun Europe/Paris":                               "blackout",
		"skip_if frozen: incident":                                                "skip_if",
		"drill refused: runbook kong: parameter \"region\" is required":           "drill_refused",
		"something new": "other",
	} {
		if got := SkipReasonClass(reason); got != want {
			t.Errorf("%q: %s, want %s", reason, got, want)
		}
	}
}

func TestExerciseSeries(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	step := func(kind string, d time.Duration) state.StepRecord {
		return state.StepRecord{Action: runbooks.Action{Kind: kind}, StartedAt: t0, EndedAt: t0.Add(d)}
	}
	st := state.Empty()
	st.Drills = map[string]state.Drill{
		"a": {ID: "a", Status: state.DrillSucceeded, Steps: []state.StepRecord{step(runbooks.KindShift, 0), step(runbooks.KindWait, 30*time.Second)}},
		"b": {ID: "b", Status: state.DrillAborted, Steps: []state.StepRecord{step(runbooks.KindShift, 0), step(runbooks.KindWait, 400*time.Second),
			{Action: runbooks.Action{Kind: runbooks.KindRestore}}}},
		"c": {ID: "c", Status: state.DrillRunning, Steps: []state.StepRecord{{Action: runbooks.Action{Kind: runbooks.KindWait}, StartedAt: t0}}},
	}
	st.Schedules = map[string]state.Schedule{"tue": {ID: "tue", Runs: []state.ScheduleRun{
		{Outcome: state.RunStarted, Drill: "a"},
		{Outcome: state.RunSkipped, Reason: "blocked: alert HighErrorRate firing"},
		{Outcome: state.RunSkipped, Reason: "blocked: alert HighErrorRate firing"},
		{Outcome: state.RunSkipped, Reason: "blackout 00:00-08:00 UTC"},
		{Outcome: state.RunMissed, Missed: 7},
	}}}
	fams := scrape(t, New(fakeSource{st: st}))
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"evac_drills", []string{"status", "running"}, 1},
		{"evac_drills", []string{"status", "succeeded"}, 1},
		{"evac_drills", []string{"status", "aborted"}, 1},
		{"evac_drills", []string{"status", "preempted"}, 0},
		{"evac_schedule_runs", []string{"schedule", "tue", "outcome", "started"}, 1},
		{"evac_schedule_runs", []string{"schedule", "tue", "outcome", "skipped"}, 3},
		{"evac_schedule_runs", []string{"schedule", "tue", "outcome", "missed"}, 7},
		{"evac_schedule_skipped_runs", []string{"schedule", "tue", "reason", "blocked"}, 2},
		{"evac_schedule_skipped_runs", []string{"schedule", "tue", "reason", "blackout"}, 1},
		{"evac_schedule_skipped_runs", []string{"schedule", "tue", "reason", "skip_if"}, 0},
		{"evac_drill_step_duration_seconds", []string{"kind", "shift"}, 2}, // sample counts
		{"evac_drill_step_duration_seconds", []string{"kind", "wait"}, 2},  // the running one has not ended
		{"evac_drill_step_duration_seconds", []string{"kind", "restore"}, 0},
	} {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, m := range fams["evac_drill_step_duration_seconds"].Metric {
		if m.Label[0].GetValue() != "wait" {
			continue
		}
		h := m.Histogram
		if h.GetSampleSum() != 430 {
			t.Errorf("wait sum %v, want 430", h.GetSampleSum())
		}
		for _, b := range h.Bucket {
			want := uint64(0)
			if b.GetUpperBound() >= 30 {
				want = 1
			}
			if b.GetUpperBound() >= 400 {
				want = 2
			}
			if b.GetCumulativeCount() != want {
				t.Errorf("wait bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
			}
		}
	}
}
