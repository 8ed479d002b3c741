package state

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRunbookCountLimit(t *testing.T) {
	c := newCluster(t, true)
	for i := range MaxRunbooks {
		c.mustApply(CmdPutRunbook, PutRunbook{Source: fmt.Sprintf("name: rb-%d\nsteps:\n  - notify: {message: hi}\n", i)})
	}
	if err := c.s.CheckRunbookCount("one-more"); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "max_runbooks") {
		t.Fatalf("CheckRunbookCount at the limit = %v, want a max_runbooks limit error", err)
	}
	// A new version of a stored runbook is not a new runbook.
	if err := c.s.CheckRunbookCount("rb-0"); err != nil {
		t.Fatalf("new version at the limit: %v", err)
	}
	// Apply does not enforce counts (the API does, before proposing): a
	// rule in Apply would split a mixed-release cluster's replicas.
	c.mustApply(CmdPutRunbook, PutRunbook{Source: "name: one-more\nsteps:\n  - notify: {message: hi}\n"})
}

func TestScheduleCountLimit(t *testing.T) {
	dc := newDrillCluster(t)
	for i := range MaxSchedules {
		dc.must(CmdScheduleAdd, ScheduleAdd{ID: fmt.Sprintf("s-%d", i), Cron: "@daily", Runbook: "evac-east"})
	}
	if err := dc.s.CheckScheduleCount(); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "max_schedules") {
		t.Fatalf("CheckScheduleCount at the limit = %v", err)
	}
	dc.must(CmdScheduleRemove, ScheduleRemove{ID: "s-0"})
	if err := dc.s.CheckScheduleCount(); err != nil {
		t.Fatalf("CheckScheduleCount below the limit = %v", err)
	}
}

func TestRunningDrillLimit(t *testing.T) {
	dc := newDrillCluster(t)
	dc.must(CmdPutRunbook, PutRunbook{Source: "name: hold\nsteps:\n  - wait: {duration: 1h}\n"})
	for i := range MaxRunningDrills {
		dc.must(CmdDrillStart, DrillStart{ID: fmt.Sprintf("d-%d", i), Runbook: "hold"})
	}
	if n := dc.s.RunningDrills(); n != MaxRunningDrills {
		t.Fatalf("RunningDrills = %d, want %d", n, MaxRunningDrills)
	}
	if err := dc.s.CheckRunningDrills(); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "max_running_drills") {
		t.Fatalf("CheckRunningDrills at the limit = %v", err)
	}
	dc.must(CmdDrillAbort, DrillAbort{ID: "d-0", Reason: "make room"})
	if err := dc.s.CheckRunningDrills(); err != nil {
		t.Fatalf("CheckRunningDrills below the limit = %v", err)
	}
}

func TestCheckRunbookSize(t *testing.T) {
	if err := CheckRunbookSize(make([]byte, MaxRunbookBytes)); err != nil {
		t.Fatalf("a runbook of exactly the limit: %v", err)
	}
	err := CheckRunbookSize(make([]byte, MaxRunbookBytes+1))
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "max_runbook_bytes" || !strings.Contains(err.Error(), "max_runbook_bytes") {
		t.Fatalf("a runbook over the limit: %v", err)
	}
}

func TestCheckDrillParams(t *testing.T) {
	many := map[string]string{}
	for i := range MaxDrillParams + 1 {
		many[fmt.Sprintf("p%d", i)] = "x"
	}
	atLimit := map[string]string{}
	for i := range MaxDrillParams {
		atLimit[fmt.Sprintf("p%d", i)] = strings.Repeat("v", MaxDrillParamBytes)
	}
	for _, tc := range []struct {
		name   string
		params map[string]string
		limit  string // "" when accepted
	}{
		{"none", nil, ""},
		{"at every limit", atLimit, ""},
		{"too many", many, "max_drill_params"},
		{"value too long", map[string]string{"region": strings.Repeat("x", MaxDrillParamBytes+1)}, "max_drill_param_bytes"},
		{"name too long", map[string]string{strings.Repeat("k", MaxDrillParamKeyBytes+1): "x"}, "max_drill_param_key_bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckDrillParams(tc.params)
			if tc.limit == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var le *LimitError
			if !errors.As(err, &le) || le.Limit != tc.limit || !strings.Contains(err.Error(), tc.limit) {
				t.Fatalf("got %v, want a %s limit error", err, tc.limit)
			}
		})
	}
	err := CheckDrillParams(map[string]string{"region": strings.Repeat("x", MaxDrillParamBytes+1)})
	if !strings.Contains(err.Error(), "params.region") {
		t.Fatalf("error does not name the param: %v", err)
	}
}

func TestCronMinInterval(t *testing.T) {
	from := time.Date(2026, 12, 3, 14, 7, 30, 0, time.UTC)
	for _, tc := range []struct {
		expr string
		want time.Duration
	}{
		{"* * * * * *", time.Second},
		{"*/10 * * * * *", 10 * time.Second},
		{"0,30 * * * * *", 30 * time.Second},
		{"* * * * *", time.Minute},
		{"*/5 * * * *", 5 * time.Minute},
		{"* 0 * * *", time.Minute}, // every minute of hour 0 only
		{"@every 1s", time.Second},
		{"@every 90s", 90 * time.Second},
		{"@hourly", time.Hour},
		{"0 10 * * tue", 7 * 24 * time.Hour},
		{"0 9,10 * * *", time.Hour},
	} {
		got, err := CronMinInterval(tc.expr, from)
		if err != nil {
			t.Errorf("%q: %v", tc.expr, err)
			continue
		}
		if got != tc.want {
			t.Errorf("CronMinInterval(%q) = %s, want %s", tc.expr, got, tc.want)
		}
	}
	if _, err := CronMinInterval("not cron", from); err == nil {
		t.Error("a bad expression was accepted")
	}
}

func TestCheckScheduleFrequency(t *testing.T) {
	now := time.Date(2026, 12, 3, 14, 7, 30, 0, time.UTC)
	for _, tc := range []struct {
		expr  string
		least time.Duration
		ok    bool
	}{
		{"@every 1s", time.Minute, false},
		{"*/10 * * * * *", time.Minute, false},
		{"*/10 * * * * *", 10 * time.Second, true},
		{"* * * * *", time.Minute, true},
		{"@hourly", time.Minute, true},
		{"*/5 * * * *", 10 * time.Minute, false},
	} {
		err := CheckScheduleFrequency(tc.expr, time.UTC, now, tc.least)
		if tc.ok != (err == nil) {
			t.Errorf("CheckScheduleFrequency(%q, %s) = %v, want ok=%v", tc.expr, tc.least, err, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "policy.schedule_min_interval")) {
			t.Errorf("%q: error does not name the limit: %v", tc.expr, err)
		}
	}
}

func TestLimitPolicyKeys(t *testing.T) {
	base := strings.Replace(testConfigYAML, "policy:\n", "policy:\n  %s\n", 1)
	for _, tc := range []struct {
		line, err string
	}{
		{"schedule_min_interval: 10s", ""},
		{"schedule_min_interval: 500ms", "policy.schedule_min_interval: must be at least 1s"},
		{"events_retained: 1000", ""},
		{"events_retained: 999", "policy.events_retained: must be from 1000 to 1000000"},
		{"events_retained: 2000000", "policy.events_retained"},
		{"max_runbooks: 500", ""},
		{"max_runbooks: 20000", "policy.max_runbooks: must be from 1 to 10000"},
		{"max_runbooks: -1", "policy.max_runbooks"},
	} {
		cfg, err := ParseConfig([]byte(fmt.Sprintf(base, tc.line)))
		if tc.err == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.line, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: got %v, want an error containing %q", tc.line, err, tc.err)
		}
		_ = cfg
	}
	cfg, err := ParseConfig([]byte(testConfigYAML))
	if err != nil {
		t.Fatal(err)
	}
	// Unset keys stay unset in the config (so it normalises as earlier
	// releases did); the state applies their defaults.
	if cfg.Policy.ScheduleMinInterval != 0 || cfg.Policy.EventsRetained != 0 {
		t.Fatalf("defaults written into the config: %+v", cfg.Policy)
	}
	if st := newCluster(t, true).s; st.ScheduleMinInterval() != DefaultScheduleMinInterval || st.EventsRetained() != DefaultEventsRetained ||
		st.MaxRunbooks() != MaxRunbooks {
		t.Fatal("a config without the keys does not use the defaults")
	}
	if Empty().ScheduleMinInterval() != DefaultScheduleMinInterval || Empty().EventsRetained() != DefaultEventsRetained {
		t.Fatal("a state without a config does not use the defaults")
	}
}

func TestEventsRetainedFromConfig(t *testing.T) {
	c := newCluster(t, false)
	cfg, err := ParseConfig([]byte(strings.Replace(testConfigYAML, "policy:\n", "policy:\n  events_retained: 1000\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	c.mustApply(CmdApplyConfig, ApplyConfig{Config: cfg})
	for i := range 700 {
		c.mustApply(CmdFreeze, Freeze{Reason: fmt.Sprint("f", i)})
		c.mustApply(CmdUnfreeze, Freeze{Reason: fmt.Sprint("u", i)})
	}
	n := len(c.s.Events)
	if n < 1000 || n > 1100 {
		t.Fatalf("%d events kept, want 1000 to 1100 (events_retained 1000, trimmed past 10%% more)", n)
	}
	last := c.s.Events[n-1]
	if last.Seq != c.s.NextSeq-1 || last.Kind != EventUnfreeze {
		t.Fatalf("newest event %+v, NextSeq %d", last, c.s.NextSeq)
	}
	if first := c.s.Events[0]; first.Seq != last.Seq-uint64(n)+1 {
		t.Fatalf("events are not the newest %d in order: first %d, last %d", n, first.Seq, last.Seq)
	}
}
