package chaos

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/evac-sh/evac/controlplane/state"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func topo() Topology {
	var tp Topology
	for i, n := range []string{"c1", "c2", "c3"} {
		tp.Controllers = append(tp.Controllers, Node{Name: n, IP: netip.AddrFrom4([4]byte{127, 0, 80, byte(11 + i)})})
	}
	for i, r := range []string{"east", "west", "eu"} {
		rt := RegionTopo{Name: r, Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 0, byte(81 + i), 0}), 24)}
		for k := 1; k <= 3; k++ {
			rt.Agents = append(rt.Agents, Node{Name: r + "-a" + string(rune('0'+k)), IP: netip.AddrFrom4([4]byte{127, 0, byte(81 + i), byte(k)})})
		}
		tp.Regions = append(tp.Regions, rt)
	}
	return tp
}

// op builds an operation of one attempt on c1 from a to b seconds.
func op(tag string, kind OpKind, region string, a, b float64, status int, code string, index uint64) *Op {
	return &Op{Tag: tag, Kind: kind, Region: region, Attempts: []Attempt{{Controller: "c1", Call: at(a), Return: at(b), Status: status, Code: code, Index: index}}}
}

func ev(seq, index uint64, s float64, kind, region, reason, detail string) state.Event {
	return state.Event{Seq: seq, Index: index, Time: at(s), Kind: kind, Region: region, Reason: reason, Detail: detail}
}

func weightEv(seq, index uint64, s float64, region string, w int) state.Event {
	e := ev(seq, index, s, state.EventWeight, region, "drill", "")
	e.Weight = &w
	return e
}

func sameLogs(log []state.Event) map[string][]state.Event {
	return map[string][]state.Event{"c1": log, "c2": log, "c3": log}
}

func probe(c string, s float64, rcode int, regions ...string) Probe {
	return Probe{Controller: c, Time: at(s), Rcode: rcode, Regions: regions, Answers: 2 * len(regions)}
}

// steady probes every controller every 0.5 s over [a, b] with answer
// regions.
func steady(a, b float64, regions ...string) []Probe {
	var out []Probe
	for s := a; s <= b; s += 0.5 {
		for _, c := range []string{"c1", "c2", "c3"} {
			out = append(out, probe(c, s, 0, regions...))
		}
	}
	return out
}

func TestCheck(t *testing.T) {
	evacuated := []state.Event{ev(1, 10, 1.1, state.EventEvacuate, "east", "e1", "ramp [0]")}
	cases := []struct {
		name   string
		ops    []*Op
		log    []state.Event
		probes []Probe
		faults []Fault
		zero   map[time.Time]map[string][]string
		want   string // the invariants violated, comma-separated
	}{
		{name: "clean evacuate then restore",
			ops:    []*Op{op("e1", OpEvacuate, "east", 1, 2, 200, "", 10), op("r1", OpRestore, "east", 5, 6, 200, "", 11)},
			log:    []state.Event{ev(1, 10, 1.1, state.EventEvacuate, "east", "e1", ""), ev(2, 11, 5.1, state.EventRestore, "east", "r1", "")},
			probes: append(append(steady(0, 1, "east", "west"), steady(4, 5, "west")...), steady(7, 8, "east")...)},
		{name: "acknowledged evacuation missing from the log",
			ops:  []*Op{op("e1", OpEvacuate, "east", 1, 2, 200, "", 10)},
			want: "a"},
		{name: "refused evacuation in the log",
			ops:  []*Op{op("e1", OpEvacuate, "east", 1, 2, 409, "rule", 0)},
			log:  evacuated,
			want: "a"},
		{name: "ambiguous evacuation applied twice",
			ops:  []*Op{op("e1", OpEvacuate, "east", 1, 2, 0, "", 0)},
			log:  append(evacuated, ev(2, 12, 1.5, state.EventEvacuate, "east", "e1", "")),
			want: "a"},
		{name: "acknowledged at another index",
			ops:  []*Op{op("e1", OpEvacuate, "east", 1, 2, 200, "", 9)},
			log:  evacuated,
			want: "a"},
		{name: "two evacuations acknowledged back to back: not linearizable",
			ops:  []*Op{op("e1", OpEvacuate, "east", 1, 2, 200, "", 10), op("e2", OpEvacuate, "east", 3, 4, 200, "", 11)},
			log:  []state.Event{ev(1, 10, 1.1, state.EventEvacuate, "east", "e1", ""), ev(2, 11, 3.1, state.EventEvacuate, "east", "e2", "")},
			want: "linearizable"},
		{name: "restore conflict while evacuated: not linearizable",
			ops:  []*Op{op("e1", OpEvacuate, "east", 1, 2, 200, "", 10), op("r1", OpRestore, "east", 3, 4, 409, "conflict", 0)},
			log:  evacuated,
			want: "linearizable"},
		{name: "an automatic evacuation from the log explains a conflict",
			ops:    []*Op{op("e1", OpEvacuate, "east", 5, 6, 409, "conflict", 0)},
			log:    []state.Event{ev(1, 10, 1, state.EventEvacuate, "east", "health", "ramp [0]; automatic")},
			faults: []Fault{{Kind: FaultBackend, Region: "east", Start: at(0), End: at(3)}}},
		{name: "a pending evacuation explains a later conflict",
			ops: []*Op{op("e1", OpEvacuate, "east", 1, 2, 0, "", 0), op("e2", OpEvacuate, "east", 5, 6, 409, "conflict", 0)},
			log: evacuated},
		{name: "a drill's shift to 0 explains a conflict, its restore a success",
			ops: []*Op{op("e1", OpEvacuate, "east", 2, 3, 409, "conflict", 0), op("e2", OpEvacuate, "east", 8, 9, 200, "", 12)},
			log: []state.Event{weightEv(1, 10, 1, "east", 0), ev(2, 11, 5, state.EventRestore, "east", "drill x step 3/3", ""),
				ev(3, 12, 8.1, state.EventEvacuate, "east", "e2", "")}},
		{name: "a first attempt answered duplicate was applied (the server retried it itself)",
			ops: []*Op{{Tag: "e1", Kind: OpEvacuate, Region: "east", Attempts: []Attempt{{Controller: "c2", Call: at(1), Return: at(4),
				Status: 200, Index: 12, Duplicate: true}}}, op("e2", OpEvacuate, "east", 5, 6, 409, "conflict", 0)},
			log: evacuated},
		{name: "logs differ between controllers",
			log:  evacuated,
			want: "b"},
		{name: "an empty DNS answer",
			probes: []Probe{probe("c2", 3, 0)},
			want:   "c"},
		{name: "SERVFAIL",
			probes: []Probe{probe("c2", 3, 2, "east")},
			want:   "c"},
		{name: "a running controller silent for 6 s",
			probes: append(steady(0, 1, "east"), probe("c3", 7, -1)),
			want:   "c"},
		{name: "a killed controller's silence is no violation",
			probes: append(steady(0, 1, "east"), probe("c3", 7, -1)),
			faults: []Fault{{Kind: FaultKill, Nodes: []string{"c3"}, Start: at(1.2), End: at(6)}}},
		{name: "the majority answers an evacuated region after 2 s",
			ops:    []*Op{op("e1", OpEvacuate, "east", 1, 2, 200, "", 10)},
			log:    evacuated,
			probes: append(steady(4.5, 5, "west"), probe("c2", 4.6, 0, "east")),
			want:   "d"},
		{name: "within 2 s the old answer is allowed",
			ops:    []*Op{op("e1", OpEvacuate, "east", 1, 2, 200, "", 10)},
			log:    evacuated,
			probes: []Probe{probe("c2", 3.5, 0, "east")}},
		{name: "a controller cut from the others may answer the region",
			ops:    []*Op{op("e1", OpEvacuate, "east", 1, 2, 200, "", 10)},
			log:    evacuated,
			probes: []Probe{probe("c2", 6, 0, "east")},
			faults: []Fault{{Kind: FaultCut, Start: at(0), End: at(8), Cuts: []Cut{
				{From: netip.MustParsePrefix("127.0.80.12/32"), To: netip.MustParsePrefix("127.0.80.11/32")},
				{From: netip.MustParsePrefix("127.0.80.12/32"), To: netip.MustParsePrefix("127.0.80.13/32")}}}}},
		{name: "a controller only on one side of a split may answer the region",
			ops:    []*Op{op("e1", OpEvacuate, "east", 1, 2, 200, "", 10)},
			log:    evacuated,
			probes: []Probe{probe("c1", 6, 0, "east")},
			faults: []Fault{{Kind: FaultCut, Start: at(0), End: at(8), Cuts: []Cut{
				{From: netip.MustParsePrefix("127.0.80.12/32"), To: netip.MustParsePrefix("127.0.80.11/32")}}}}},
		{name: "automatic evacuation with nothing injected",
			log:  []state.Event{ev(1, 10, 30, state.EventEvacuate, "east", "health", "ramp [0]; automatic")},
			want: "e"},
		{name: "automatic evacuation with only the controllers cut from the region",
			log: []state.Event{ev(1, 10, 30, state.EventEvacuate, "east", "health", "ramp [0]; automatic")},
			faults: []Fault{{Kind: FaultCut, Start: at(0), End: at(29), Cuts: []Cut{
				{From: netip.MustParsePrefix("127.0.80.0/24"), To: netip.MustParsePrefix("127.0.81.0/24")},
				{From: netip.MustParsePrefix("127.0.81.0/24"), To: netip.MustParsePrefix("127.0.80.0/24")}}}},
			want: "e"},
		{name: "automatic evacuation of a region cut from everything",
			log: []state.Event{ev(1, 10, 30, state.EventEvacuate, "east", "health", "ramp [0]; automatic")},
			faults: []Fault{{Kind: FaultCut, Start: at(0), End: at(29), Cuts: []Cut{
				{From: netip.MustParsePrefix("127.0.80.0/24"), To: netip.MustParsePrefix("127.0.81.0/24")},
				{From: netip.MustParsePrefix("127.0.82.0/24"), To: netip.MustParsePrefix("127.0.81.0/24")},
				{From: netip.MustParsePrefix("127.0.83.0/24"), To: netip.MustParsePrefix("127.0.81.0/24")}}}}},
		{name: "automatic evacuation of a region whose agents were all killed",
			log:    []state.Event{ev(1, 10, 30, state.EventEvacuate, "east", "health", "ramp [0]; automatic")},
			faults: []Fault{{Kind: FaultKill, Nodes: []string{"east-a1", "east-a2", "east-a3"}, Start: at(0), End: at(10)}}},
		{name: "automatic evacuation with one agent of three killed",
			log:    []state.Event{ev(1, 10, 30, state.EventEvacuate, "east", "health", "ramp [0]; automatic")},
			faults: []Fault{{Kind: FaultKill, Nodes: []string{"east-a1"}, Start: at(0), End: at(10)}},
			want:   "e"},
		{name: "a drill step started twice",
			log: []state.Event{ev(1, 10, 1, state.EventDrillStepStart, "east", "d", "drill d-1 step 1/3: shift"),
				ev(2, 11, 2, state.EventDrillStepStart, "east", "d", "drill d-1 step 1/3: shift")},
			want: "g"},
		{name: "a write acknowledged by a survivor of a quorum loss",
			ops:    []*Op{op("e1", OpEvacuate, "east", 5, 6, 200, "", 10)},
			log:    evacuated,
			faults: []Fault{{Kind: FaultQuorum, Nodes: []string{"c2", "c3"}, Start: at(1), End: at(15)}},
			want:   "h"},
		{name: "writes refused clearly during a quorum loss",
			ops: []*Op{{Tag: "e1", Kind: OpEvacuate, Region: "east", Attempts: []Attempt{{Controller: "c1", Call: at(5), Return: at(15.5),
				Status: 503, Code: "unavailable", Message: "no quorum"}}}},
			faults: []Fault{{Kind: FaultQuorum, Nodes: []string{"c2", "c3"}, Start: at(1), End: at(16)}}},
		{name: "writes refused with outcome_unknown and no_leader during a quorum loss",
			ops: []*Op{{Tag: "e1", Kind: OpEvacuate, Region: "east", Attempts: []Attempt{
				{Controller: "c1", Call: at(5), Return: at(9), Status: 504, Code: "outcome_unknown", Message: "may or may not"},
				{Controller: "c1", Call: at(10), Return: at(15.5), Status: 503, Code: "no_leader", Message: "not committed"}}}},
			faults: []Fault{{Kind: FaultQuorum, Nodes: []string{"c2", "c3"}, Start: at(1), End: at(16)}}},
		{name: "a write refused without a known code during a quorum loss",
			ops: []*Op{{Tag: "e1", Kind: OpEvacuate, Region: "east", Attempts: []Attempt{{Controller: "c1", Call: at(5), Return: at(15.5),
				Status: 500, Code: "internal", Message: "boom"}}}},
			faults: []Fault{{Kind: FaultQuorum, Nodes: []string{"c2", "c3"}, Start: at(1), End: at(16)}},
			want:   "h"},
		{name: "a survivor answers a region at weight 0 in its last state",
			probes: []Probe{probe("c1", 5, 0, "east")},
			faults: []Fault{{Kind: FaultQuorum, Nodes: []string{"c2", "c3"}, Start: at(1), End: at(16)}},
			zero:   map[time.Time]map[string][]string{at(1): {"c1": {"east"}}},
			want:   "h"},
		{name: "the paused old leader acknowledged a write that is lost",
			ops:    []*Op{op("e1", OpEvacuate, "east", 2, 8, 200, "", 10)},
			faults: []Fault{{Kind: FaultOldLeader, Nodes: []string{"c1"}, Start: at(1), End: at(7)}},
			want:   "a,i"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &History{Start: at(0), End: at(60), Topo: topo(), Ops: tc.ops, Probes: tc.probes, Faults: tc.faults}
			logs := sameLogs(tc.log)
			want := map[string]bool{}
			for _, w := range strings.Split(tc.want, ",") {
				want[w] = true
			}
			if tc.want == "b" {
				logs["c3"] = nil
			}
			res := Check(h, Final{Logs: logs, Healed: at(50), Converged: at(52), ZeroWeight: tc.zero, LinTimeout: 10 * time.Second})
			for _, inv := range Invariants {
				got := len(res.Violations[inv]) > 0
				if got != want[inv] {
					t.Errorf("invariant %s: violated %v, want %v; violations: %s", inv, got, want[inv], strings.Join(res.Violations[inv], "\n"))
				}
			}
		})
	}
}

func TestConvergenceBound(t *testing.T) {
	h := &History{Start: at(0), End: at(60), Topo: topo()}
	for _, c := range []struct {
		converged time.Time
		want      bool
	}{{at(55), false}, {at(61), true}, {time.Time{}, true}} {
		res := Check(h, Final{Logs: sameLogs(nil), Healed: at(50), Converged: c.converged})
		if got := len(res.Violations["f"]) > 0; got != c.want {
			t.Errorf("converged at %v: violated %v, want %v", c.converged, got, c.want)
		}
	}
}

func TestStableControllers(t *testing.T) {
	h := &History{Topo: topo(), Faults: []Fault{
		{Kind: FaultCut, Start: at(10), End: at(20), Cuts: []Cut{{From: netip.MustParsePrefix("127.0.80.11/32"), To: netip.MustParsePrefix("127.0.80.0/24")}}},
		{Kind: FaultPause, Nodes: []string{"c3"}, Start: at(30), End: at(40)},
		{Kind: FaultQuorum, Nodes: []string{"c1", "c2"}, Start: at(50), End: at(60)},
	}}
	for _, c := range []struct {
		s    float64
		want string
	}{{5, "c1 c2 c3"}, {15, "c2 c3"}, {35, "c1 c2"}, {55, ""}, {62, ""}, {64, "c1 c2 c3"}} {
		st := h.stableControllers(at(c.s))
		var got []string
		for _, n := range []string{"c1", "c2", "c3"} {
			if st[n] {
				got = append(got, n)
			}
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("at %vs: stable %v, want %q", c.s, got, c.want)
		}
	}
}

func TestPendingConvention(t *testing.T) {
	// An evacuation with no answer that never appears in the log is
	// pending: a later successful evacuation stays linearizable.
	h := &History{Start: at(0), Topo: topo(), Ops: []*Op{op("e1", OpEvacuate, "east", 1, 2, 0, "", 0), op("e2", OpEvacuate, "east", 5, 6, 200, "", 10)}}
	log := []state.Event{ev(1, 10, 5.1, state.EventEvacuate, "east", "e2", "")}
	res, n, why := checkLinearizable(h, log, 10*time.Second)
	if res != porcupine.Ok || n != 2 {
		t.Fatalf("result %s over %d ops, want Ok over 2: %s", res, n, why)
	}
}
