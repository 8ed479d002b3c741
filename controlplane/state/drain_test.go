package state

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func ms(v int64) *int64 { return &v }

// drainReport is a valid report of node c1 on the shift of eu-west by step 0
// of drill d-1 (started at t0).
func drainReport() DrainReport {
	return DrainReport{
		Node: "c1", Step: 0, Region: "eu-west", From: 100, To: 0, ChangeIndex: 7, ChangeAt: t0,
		DrainFigures: DrainFigures{
			Population: 200, Drained: 199, P50Ms: ms(900), P90Ms: ms(1500), P99Ms: ms(2100), PastTTL: 1,
			PastTTLResolvers: []LingeringResolver{{Subnet: "10.0.7.0/24", Service: "api", LastAnswered: t0.Add(-time.Second)}},
			TTLSeconds:       5, SlackMs: 2000, ClosedAt: t0.Add(7 * time.Second), WindowComplete: true,
		},
	}
}

func TestDrillDrainApply(t *testing.T) {
	dc := newDrillCluster(t)
	dc.must(CmdDrillStart, DrillStart{ID: "d-1", Runbook: "evac-east", Reason: "game day"})
	dc.mustStep("d-1", 0, PhaseStart, "")

	mod := func(f func(r *DrainReport)) DrainReport {
		r := drainReport()
		f(&r)
		return r
	}
	refusals := []struct {
		name string
		id   string
		r    DrainReport
		code string
		msg  string
	}{
		{"unknown drill", "d-2", drainReport(), CodeNotFound, `no drill "d-2"`},
		{"no node", "d-1", mod(func(r *DrainReport) { r.Node = "" }), CodeInvalid, "node"},
		{"region not held", "d-1", mod(func(r *DrainReport) { r.Region = "us-east" }), CodeInvalid, "does not hold region us-east"},
		{"step out of range", "d-1", mod(func(r *DrainReport) { r.Step = 5 }), CodeInvalid, "step 5 is not a step"},
		{"a raised weight", "d-1", mod(func(r *DrainReport) { r.From, r.To = 0, 50 }), CodeInvalid, "lowered weight"},
		{"no change time", "d-1", mod(func(r *DrainReport) { r.ChangeAt = time.Time{} }), CodeInvalid, "change index and time"},
		{"more drained than asked", "d-1", mod(func(r *DrainReport) { r.Drained = 201 }), CodeInvalid, "drained 201 of population 200"},
		{"past TTL beyond the undrained", "d-1", mod(func(r *DrainReport) { r.PastTTL = 2 }), CodeInvalid, "past_ttl 2"},
		{"falling percentiles", "d-1", mod(func(r *DrainReport) { r.P90Ms = ms(100) }), CodeInvalid, "must be non-negative and rise"},
		{"p99 without p90", "d-1", mod(func(r *DrainReport) { r.P90Ms = nil }), CodeInvalid, "higher one reached before a lower one"},
		{"bad subnet", "d-1", mod(func(r *DrainReport) { r.PastTTLResolvers[0].Subnet = "10.0.7.0" }), CodeInvalid, "subnet"},
		{"closed before the change", "d-1", mod(func(r *DrainReport) { r.ClosedAt = t0.Add(-time.Second) }), CodeInvalid, "before the change"},
		{"too many listed", "d-1", mod(func(r *DrainReport) {
			r.PastTTL, r.Drained = 30, 170
			for range MaxPastTTLSample {
				r.PastTTLResolvers = append(r.PastTTLResolvers, r.PastTTLResolvers[0])
			}
		}), CodeInvalid, "past-TTL resolvers listed"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			before := dc.s.Drills["d-1"]
			res := dc.do(CmdDrillDrain, DrillDrain{ID: tc.id, Report: tc.r})
			if res.Code != tc.code || !strings.Contains(res.Error, tc.msg) {
				t.Fatalf("got %q (%s), want %s containing %q", res.Error, res.Code, tc.code, tc.msg)
			}
			if !reflect.DeepEqual(dc.s.Drills["d-1"], before) {
				t.Fatal("a refused report changed the drill")
			}
		})
	}

	// Stored as sent, once per (node, change): a repeat replaces.
	r := drainReport()
	dc.must(CmdDrillDrain, DrillDrain{ID: "d-1", Report: r})
	if got := dc.s.Drills["d-1"].Drain; len(got) != 1 || !reflect.DeepEqual(got[0], r) {
		t.Fatalf("stored %+v, want %+v", got, r)
	}
	if n := dc.countEvents(EventDrillDrain, "drill d-1 step 1: eu-west on c1: 100->0, 199 of 200 resolvers drained, 50/90/99% at 900ms/1500ms/2100ms, 1 past TTL"); n != 1 {
		t.Fatalf("%d drain events", n)
	}
	r.Drained, r.PastTTL, r.PastTTLResolvers = 200, 0, nil
	dc.must(CmdDrillDrain, DrillDrain{ID: "d-1", Report: r})
	r2 := drainReport()
	r2.Node = "c2"
	dc.must(CmdDrillDrain, DrillDrain{ID: "d-1", Report: r2})
	got := dc.s.Drills["d-1"].Drain
	if len(got) != 2 || got[0].Node != "c1" || got[0].Drained != 200 || got[1].Node != "c2" {
		t.Fatalf("after a repeat and a second node: %+v", got)
	}

	// A finished drill still takes reports (the window outlasts short drills).
	dc.must(CmdDrillAbort, DrillAbort{ID: "d-1", Reason: "enough"})
	r3 := drainReport()
	r3.Node = "c3"
	dc.must(CmdDrillDrain, DrillDrain{ID: "d-1", Report: r3})
	if n := len(dc.s.Drills["d-1"].Drain); n != 3 {
		t.Fatalf("%d reports after the drill ended", n)
	}

	// Bounded per drill.
	for i := len(dc.s.Drills["d-1"].Drain); i < MaxDrainReports; i++ {
		x := drainReport()
		x.ChangeIndex = uint64(100 + i)
		dc.must(CmdDrillDrain, DrillDrain{ID: "d-1", Report: x})
	}
	x := drainReport()
	x.ChangeIndex = 99999
	dc.refused(CmdDrillDrain, DrillDrain{ID: "d-1", Report: x}, CodeRule)

	// Replaying the log gives the same drill.
	replay := newDrillCluster(t)
	replay.now = dc.now
	for _, l := range dc.log {
		replay.now = l.now
		replay.do(l.typ, l.body)
	}
	if !reflect.DeepEqual(replay.s.Drills["d-1"], dc.s.Drills["d-1"]) {
		t.Fatal("replaying the log gave a different drill")
	}
}

func TestSummarizeDrain(t *testing.T) {
	rep := func(p50, p90, p99 *int64, pop, past int, superseded bool) DrainReport {
		r := drainReport()
		r.P50Ms, r.P90Ms, r.P99Ms, r.Population, r.PastTTL, r.Superseded = p50, p90, p99, pop, past, superseded
		return r
	}
	str := func(s *DrainSummary) string {
		if s == nil {
			return "nil"
		}
		f := func(p *int64) string {
			if p == nil {
				return "-"
			}
			return strconv.FormatInt(*p, 10)
		}
		return fmt.Sprintf("%d reports, pop %d, %s/%s/%s, past %d", s.Reports, s.Population, f(s.P50Ms), f(s.P90Ms), f(s.P99Ms), s.PastTTL)
	}
	cases := []struct {
		name    string
		reports []DrainReport
		want    string
	}{
		{"none", nil, "nil"},
		{"only empty or cut short", []DrainReport{rep(nil, nil, nil, 0, 0, false), rep(ms(1), ms(2), ms(3), 5, 0, true)}, "nil"},
		{"the slowest controller per percentile", []DrainReport{rep(ms(100), ms(900), ms(1000), 200, 1, false),
			rep(ms(300), ms(500), ms(2000), 180, 2, false)}, "2 reports, pop 200, 300/900/2000, past 3"},
		{"one never reached 99%", []DrainReport{rep(ms(100), ms(900), nil, 200, 3, false),
			rep(ms(300), ms(500), ms(2000), 180, 0, false)}, "2 reports, pop 200, 300/900/-, past 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := str(SummarizeDrain(tc.reports)); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestDrillTimeline(t *testing.T) {
	dc := newDrillCluster(t)
	dc.must(CmdDrillStart, DrillStart{ID: "d-1", Runbook: "evac-east", Reason: "game day"})
	dc.now = dc.now.Add(time.Second)
	dc.mustStep("d-1", 0, PhaseStart, "")
	dc.must(CmdSetWeight, SetWeight{Region: "us-east", Weight: 70, Reason: "not held by the drill"})
	dc.now = dc.now.Add(time.Second)
	dc.must(CmdDrillAbort, DrillAbort{ID: "d-1", Reason: "enough"})
	dc.now = dc.now.Add(time.Second)
	dc.must(CmdSetWeight, SetWeight{Region: "eu-west", Weight: 10, Reason: "after the drill"})
	pts, complete := dc.s.DrillTimeline(dc.s.Drills["d-1"])
	var got []string
	for _, p := range pts {
		got = append(got, fmt.Sprintf("+%s %s %d", p.Time.Sub(t0), p.Region, p.Weight))
	}
	want := []string{"+0s us-east 100", "+0s us-west 100", "+0s eu-west 100", "+1s eu-west 0", "+1s us-east 70", "+2s eu-west 100"}
	if !complete || !reflect.DeepEqual(got, want) {
		t.Fatalf("timeline %v (complete %v), want %v", got, complete, want)
	}
}
