package dnsserver

import (
	"fmt"
	"math"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/state"
)

// withSpill stores plan as the state's spill plan (through Apply).
func withSpill(t testing.TB, st *state.State, plan state.SpillPlan) *state.State {
	t.Helper()
	return apply(t, st, state.CmdSetSpill, state.SetSpill{Plan: plan})
}

// TestNearestSpillAcceptShare: with us-east evacuated and its plan letting
// us-west accept a share of us-east's clients, that share (±3%) of
// us-east's clients get us-west and the rest their third choice, eu-west;
// the same clients on a second server; no client homed elsewhere moves.
func TestNearestSpillAcceptShare(t *testing.T) {
	base := configured(t, nearestConfig())
	out := withWeights(t, base, 0, 100, 100)
	for _, tc := range []struct {
		accept float64
	}{{1}, {0.4}, {0}} {
		t.Run(fmt.Sprint(tc.accept), func(t *testing.T) {
			st := withSpill(t, out, state.SpillPlan{Region: "us-east", Weight: 0, Moving: 10,
				Flows: []state.SpillFlow{{To: "us-west", Share: tc.accept, Accept: tc.accept}, {To: "eu-west", Share: 1 - tc.accept, Accept: 1}}})
			s, s2 := New(Config{}), New(Config{})
			s.Update(st)
			s2.Update(st)
			before := New(Config{})
			before.Update(out)
			const n = 4000
			got := map[string]int{}
			for i := range n {
				sub := fmt.Sprintf("10.%d.%d.0/24", 64+i/256, i%256) // in 10.64/10: us-east's
				r, _ := nearAnswer(t, s, sub)
				if r2, _ := nearAnswer(t, s2, sub); r2 != r {
					t.Fatalf("%s: %s on one server, %s on another", sub, r, r2)
				}
				got[r]++
			}
			if got["us-east"] != 0 {
				t.Fatalf("us-east answered %d times while evacuated", got["us-east"])
			}
			if share := float64(got["us-west"]) / n; math.Abs(share-tc.accept) > 0.03 {
				t.Errorf("us-west took %.3f of us-east's clients, want %.2f±0.03 (%v)", share, tc.accept, got)
			}
			// Clients homed in us-west and eu-west keep their answer.
			for i := range 500 {
				for _, sub := range []string{fmt.Sprintf("10.2.%d.0/24", i%256), fmt.Sprintf("10.3.%d.0/24", i%256)} {
					a, _ := nearAnswer(t, before, sub)
					b, _ := nearAnswer(t, s, sub)
					if a != b {
						t.Fatalf("%s (homed elsewhere) moved from %s to %s", sub, a, b)
					}
				}
			}
		})
	}
}

// TestNearestSpillScope: an accept share below 1 decides per client
// subnet, so the ECS scope is the key's, not the matched network's.
func TestNearestSpillScope(t *testing.T) {
	st := withWeights(t, configured(t, nearestConfig()), 0, 100, 100)
	st = withSpill(t, st, state.SpillPlan{Region: "us-east", Weight: 0,
		Flows: []state.SpillFlow{{To: "us-west", Share: 0.5, Accept: 0.5}}})
	s := New(Config{})
	s.Update(st)
	if _, scope := nearAnswer(t, s, "10.1.2.0/24"); scope != 24 {
		t.Fatalf("scope %d, want 24", scope)
	}
}

// TestDemandCounts: answers count by (service, home, next); Flows takes
// differences of two readings of the same table; a config with other
// nearest services starts a new table.
func TestDemandCounts(t *testing.T) {
	st := configured(t, nearestConfig())
	s := New(Config{})
	s.Update(st)
	d0 := s.Demand()
	for i := range 10 {
		nearAnswer(t, s, fmt.Sprintf("10.1.%d.0/24", i)) // fast + general: 2 answers
	}
	nearAnswer(t, s, "10.5.0.0/24") // list [eu-west]: no next
	nearAnswer(t, s, "10.2.0.0/24")
	d1 := s.Demand()
	got := map[string]uint64{}
	for _, f := range d1.Flows(&d0) {
		got[f.Service+"/"+f.Home+">"+f.Next] = f.Answers
	}
	want := map[string]uint64{"near/us-east>us-west": 20, "near/eu-west>": 2, "near/us-west>us-east": 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("flows %v, want %v", got, want)
	}
	// A weight change keeps the table (and its counts).
	s.Update(withWeights(t, st, 50, 100, 100))
	if d2 := s.Demand(); d2.Table != d1.Table || len(d2.Flows(&d1)) != 0 {
		t.Fatalf("the table changed with a weight, or counted without answers")
	}
	// The weighted service is not counted.
	q, _ := withEDNS(query("api.example.com.", dns.TypeA), 1232, "10.1.0.0/24").Pack()
	s.fast(q, netip.MustParseAddrPort("192.0.2.1:53"), nil, &seen{})
	if d3 := s.Demand(); len(d3.Flows(&d1)) != 0 {
		fl := d3.Flows(&d1)
		t.Fatalf("weighted answers counted: %v", fl)
	}
}

// TestNearestSpillNoAllocation: counting and accept shares keep the answer
// path at 0 allocations.
func TestNearestSpillNoAllocation(t *testing.T) {
	st := withWeights(t, configured(t, nearestConfig()), 0, 100, 100)
	st = withSpill(t, st, state.SpillPlan{Region: "us-east", Weight: 0,
		Flows: []state.SpillFlow{{To: "us-west", Share: 0.5, Accept: 0.5}}})
	s := New(Config{})
	s.Update(st)
	pkt, _ := withEDNS(query("near.example.com.", dns.TypeA), 1232, "10.1.9.0/24").Pack()
	from := netip.MustParseAddrPort("192.0.2.99:5300")
	out := make([]byte, 0, packBufSize)
	var sn seen
	if n := testing.AllocsPerRun(500, func() { s.fast(pkt, from, out, &sn) }); n != 0 {
		t.Fatalf("%v allocations per answer", n)
	}
}
