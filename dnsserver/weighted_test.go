package dnsserver

import (
	"math"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/state"
)

func TestWeightedSplit(t *testing.T) {
	srv := startServer(t, withWeights(t, configured(t, testConfig()), 50, 30, 20))
	const n = 10000
	counts := map[string]int{}
	for _, r := range regionsFor(t, srv, n) {
		counts[r]++
	}
	for i, want := range []float64{0.50, 0.30, 0.20} {
		got := float64(counts[regionNames[i]]) / n
		if math.Abs(got-want) > 0.03 {
			t.Errorf("%s: %.3f of %d subnets, want %.2f ± 0.03", regionNames[i], got, n, want)
		}
		t.Logf("%s: %.4f (weight %.2f)", regionNames[i], got, want)
	}
}

func TestWeightedStableAcrossServers(t *testing.T) {
	st := withWeights(t, configured(t, testConfig()), 50, 30, 20)
	a, b := startServer(t, st), startServer(t, st)
	ra, rb := regionsFor(t, a, 2000), regionsFor(t, b, 2000)
	for i := range ra {
		if ra[i] != rb[i] {
			t.Fatalf("%s: server A answered %s, server B %s", ecsSubnet(i), ra[i], rb[i])
		}
	}
	// The hash is part of the contract: controllers of different versions
	// must agree. These were computed once; a change here moves clients.
	golden := map[int]string{0: "us-east", 2: "us-west", 4: "us-east", 9: "us-west", 14: "eu-west", 15: "eu-west"}
	for i, want := range golden {
		if ra[i] != want {
			t.Errorf("%s: %s, want %s (did the subnet hash change?)", ecsSubnet(i), ra[i], want)
		}
	}
}

func TestWeightChangeMovesOnlyItsClients(t *testing.T) {
	const n = 3000
	st := withWeights(t, configured(t, testConfig()), 50, 30, 20)
	srv := startServer(t, st)
	before := regionsFor(t, srv, n)

	for _, tc := range []struct {
		region      string
		weight, was int
	}{{"eu-west", 60, 20}, {"us-east", 10, 50}, {"us-west", 0, 30}} {
		t.Run(tc.region, func(t *testing.T) {
			st = apply(t, st, state.CmdSetWeight, state.SetWeight{Region: tc.region, Weight: tc.weight, Reason: "test"})
			srv.Update(st)
			after := regionsFor(t, srv, n)
			moved := 0
			for i := range after {
				if before[i] == after[i] {
					continue
				}
				moved++
				if before[i] != tc.region && after[i] != tc.region {
					t.Fatalf("%s moved %s -> %s when only %s's weight changed", ecsSubnet(i), before[i], after[i], tc.region)
				}
				if tc.weight == 0 && after[i] == tc.region {
					t.Fatalf("%s sent to evacuated %s", ecsSubnet(i), tc.region)
				}
			}
			if moved == 0 {
				t.Fatal("no client moved")
			}
			t.Logf("%d of %d subnets moved", moved, n)

			// Restoring the weight brings every client back where it was.
			st = apply(t, st, state.CmdSetWeight, state.SetWeight{Region: tc.region, Weight: tc.was, Reason: "test"})
			srv.Update(st)
			for i, r := range regionsFor(t, srv, n) {
				if r != before[i] {
					t.Fatalf("%s: %s after restoring %s, was %s", ecsSubnet(i), r, tc.region, before[i])
				}
			}
		})
	}
}

func TestEvacuatedRegionNeverAnswered(t *testing.T) {
	st := withWeights(t, configured(t, testConfig()), 100, 0, 100)
	srv := startServer(t, st)
	for i, r := range regionsFor(t, srv, 1000) {
		if r == "us-west" {
			t.Fatalf("%s: answered from evacuated us-west", ecsSubnet(i))
		}
	}
	r := exchange(t, "udp", srv.udp, query("all.example.com.", dns.TypeA))
	if regs := answerRegions(r); len(regs) != 2 || len(r.Answer) != 4 {
		t.Errorf("all: %v", r.Answer)
	}

	// Failover moves on when the first region is evacuated.
	srv.Update(withWeights(t, configured(t, testConfig()), 0))
	r = exchange(t, "udp", srv.udp, query("fo.example.com.", dns.TypeA))
	if regs := answerRegions(r); len(regs) != 1 || regs[0] != "us-west" {
		t.Errorf("failover with us-east evacuated answered %v", regs)
	}
}

func TestUnhealthyRegionSkipped(t *testing.T) {
	st := configured(t, testConfig())
	for _, svc := range []string{"api", "fo", "all"} {
		st = apply(t, st, state.CmdSetHealth, state.SetHealth{Region: "us-east", Service: svc, Healthy: false, Share: 0.1})
	}
	srv := startServer(t, st)
	for i, r := range regionsFor(t, srv, 1000) {
		if r == "us-east" {
			t.Fatalf("%s: answered from unhealthy us-east", ecsSubnet(i))
		}
	}
	r := exchange(t, "udp", srv.udp, query("fo.example.com.", dns.TypeA))
	if regs := answerRegions(r); len(regs) != 1 || regs[0] != "us-west" {
		t.Errorf("failover answered %v, want us-west", regs)
	}
	r = exchange(t, "udp", srv.udp, query("all.example.com.", dns.TypeAAAA))
	if regs := answerRegions(r); len(regs) != 2 || regs[0] == "us-east" || regs[1] == "us-east" {
		t.Errorf("all answered %v", regs)
	}
	// The unmarked service is untouched.
	r = exchange(t, "tcp", srv.tcp, query("big.example.com.", dns.TypeA))
	if regs := answerRegions(r); len(regs) != 3 {
		t.Errorf("big answered %v", regs)
	}
}

func TestPickSplitAndMonotonicity(t *testing.T) {
	// The same properties as above over many more subnets, in process.
	mk := func(ws ...float64) []region {
		out := make([]region, len(ws))
		for i, w := range ws {
			out[i] = region{name: regionNames[i], weight: w, seed: regionSeed(regionNames[i])}
		}
		return out
	}
	const n = 200000
	regs := mk(50, 30, 20)
	counts := make([]int, 3)
	for i := range n {
		k := makeKey(netipFrom(i), 24)
		counts[pick(regs, k.bytes())]++
	}
	for i, want := range []float64{0.5, 0.3, 0.2} {
		if got := float64(counts[i]) / n; math.Abs(got-want) > 0.01 {
			t.Errorf("%s: %.4f, want %.2f", regionNames[i], got, want)
		}
	}
}

// netipFrom returns an address in the i-th /24.
func netipFrom(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(i >> 16), byte(i >> 8), byte(i), 7})
}
