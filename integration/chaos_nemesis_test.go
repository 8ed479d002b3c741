package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evac-sh/evac/integration/chaos"
)

// chaosTable is the chaos suite's nftables table; it is deleted when the
// test ends, also on failure.
const chaosTable = "evac_chaos"

// chaosNFT drops packets on lo in the INPUT hook (a drop in OUTPUT would
// make UDP sendto fail, which no real partition does): between pairs of
// prefixes (one-way: saddr . daddr), and at random (numgen) in the loss
// chain.
type chaosNFT struct{ t *testing.T }

func newChaosNFT(t *testing.T) *chaosNFT {
	t.Helper()
	needNFT(t)
	n := &chaosNFT{t: t}
	_ = exec.Command("nft", "delete", "table", "inet", chaosTable).Run() // a leftover of an earlier run
	n.nft(fmt.Sprintf(`table inet %s {
  set pairs { type ipv4_addr . ipv4_addr; flags interval; }
  chain loss { }
  chain input { type filter hook input priority -10; policy accept;
    iif "lo" ip saddr . ip daddr @pairs counter drop
    iif "lo" jump loss
  }
}`, chaosTable))
	t.Cleanup(func() {
		if out, err := exec.Command("nft", "delete", "table", "inet", chaosTable).CombinedOutput(); err != nil {
			t.Errorf("remove nft table %s: %v: %s", chaosTable, err, out)
		}
	})
	return n
}

func (n *chaosNFT) nft(script string) {
	n.t.Helper()
	runNFT(n.t, script)
}

func (n *chaosNFT) cut(cuts []chaos.Cut) {
	var els []string
	for _, c := range cuts {
		els = append(els, fmt.Sprintf("%s . %s", c.From, c.To))
	}
	n.nft(fmt.Sprintf("add element inet %s pairs { %s }", chaosTable, strings.Join(els, ", ")))
}

// loss drops pct% of UDP packets (gossip's probes and broadcasts) between
// any two addresses of within.
func (n *chaosNFT) loss(within netip.Prefix, pct int) {
	n.nft(fmt.Sprintf("add rule inet %s loss ip saddr %s ip daddr %s meta l4proto udp numgen random mod 100 < %d counter drop",
		chaosTable, within, within, pct))
}

func (n *chaosNFT) heal() {
	n.nft(fmt.Sprintf("flush set inet %s pairs\nflush chain inet %s loss", chaosTable, chaosTable))
}

// chaosNemesis injects one fault at a time, chosen from a shuffled deck of
// every kind so that even a short run sees most of them.
type chaosNemesis struct {
	t    *testing.T
	tc   *testCluster
	nft  *chaosNFT
	rng  *rand.Rand
	hist *chaos.History
	w    *chaosWorkload
	// zeroWeight is (h)'s record of each quorum loss's survivors' states.
	zeroWeight map[time.Time]map[string][]string
	deck       []string
	dealt      int
	// all is the prefix every node of the cluster lives in.
	all netip.Prefix
	// proxies delay each controller's incoming Raft traffic.
	proxies map[string]*delayProxy
	// wg counts writes the nemesis itself sends (the paused-leader
	// scenario).
	wg sync.WaitGroup
}

var nemesisKinds = []string{
	"kill-controller", "kill-leader", "kill-agents", "pause-controller", "pause-agents",
	"cut-controllers", "cut-leader-alone", "cut-controllers-region", "cut-region-isolated", "cut-one-way",
	"gossip-loss", "quorum-loss", "backend-fail", "paused-leader-writes", "raft-delay",
}

// firstKinds open the first deck, in a shuffled order, so that the short
// run in make test (75 s: about six faults) has the ones that matter most.
var firstKinds = []string{"kill-leader", "quorum-loss", "paused-leader-writes", "cut-leader-alone", "backend-fail", "cut-region-isolated"}

func (n *chaosNemesis) next() string {
	if len(n.deck) == 0 {
		var first, rest []string
		for _, k := range nemesisKinds {
			if n.dealt == 0 && slices.Contains(firstKinds, k) {
				first = append(first, k)
			} else {
				rest = append(rest, k)
			}
		}
		n.rng.Shuffle(len(first), func(i, j int) { first[i], first[j] = first[j], first[i] })
		n.rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
		n.deck = append(first, rest...)
	}
	n.dealt++
	k := n.deck[0]
	n.deck = n.deck[1:]
	return k
}

func (n *chaosNemesis) dur(lo, hi int) time.Duration {
	return time.Duration(lo*1000+n.rng.IntN((hi-lo)*1000+1)) * time.Millisecond
}

func ctrlPrefix(c *controllerProc) netip.Prefix {
	ip, _, _ := strings.Cut(c.raft, ":")
	return netip.PrefixFrom(netip.MustParseAddr(ip), 32)
}

func regionPrefix(r regionDef) netip.Prefix {
	return netip.MustParsePrefix(subnetCIDR(r.subnet))
}

func both(a, b netip.Prefix) []chaos.Cut {
	return []chaos.Cut{{From: a, To: b}, {From: b, To: a}}
}

// chaosLeader returns the controller the others name as leader, or nil.
func chaosLeader(tc *testCluster, skip *controllerProc) *controllerProc {
	for _, c := range tc.controllers {
		if c == skip {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := newClient(c.http).Status(ctx)
		cancel()
		if err != nil || st.Leader == "" {
			continue
		}
		for _, d := range tc.controllers {
			if d.id == st.Leader && d != skip {
				return d
			}
		}
	}
	return nil
}

// agentsOf returns the agent processes of region r.
func (n *chaosNemesis) agentsOf(r regionDef) []*proc {
	var out []*proc
	for _, a := range n.tc.agents {
		if strings.HasPrefix(a.name, r.name+"-") {
			out = append(out, a)
		}
	}
	return out
}

// inject runs one fault of kind to its end and records it.
func (n *chaosNemesis) inject(kind string) {
	tc := n.tc
	f := chaos.Fault{Name: kind, Start: time.Now()}
	randCtrl := func() *controllerProc { return tc.controllers[n.rng.IntN(len(tc.controllers))] }
	randRegion := func() regionDef { return tc.regions[n.rng.IntN(len(tc.regions))] }
	hold := n.dur(4, 12)
	switch kind {
	case "kill-controller", "kill-leader":
		c := randCtrl()
		if kind == "kill-leader" {
			c = leaderOr(tc, c)
		}
		f.Kind, f.Nodes = chaos.FaultKill, []string{c.id}
		f.Start = time.Now()
		c.Kill()
		time.Sleep(hold)
		f.End = time.Now()
		c.Restart()
	case "kill-agents", "pause-agents":
		r := randRegion()
		agents := n.agentsOf(r)
		n.rng.Shuffle(len(agents), func(i, j int) { agents[i], agents[j] = agents[j], agents[i] })
		agents = agents[:1+n.rng.IntN(len(agents))]
		for _, a := range agents {
			f.Nodes = append(f.Nodes, a.name)
		}
		kill := kind == "kill-agents"
		f.Kind = chaos.FaultPause
		if kill {
			f.Kind = chaos.FaultKill
		}
		f.Start = time.Now()
		for _, a := range agents {
			halt(a, kill)
		}
		time.Sleep(hold)
		f.End = time.Now()
		for _, a := range agents {
			resume(a, kill)
		}
	case "pause-controller":
		c := randCtrl()
		f.Kind, f.Nodes = chaos.FaultPause, []string{c.id}
		f.Start = time.Now()
		c.Signal(syscall.SIGSTOP)
		time.Sleep(hold)
		f.End = time.Now()
		c.Signal(syscall.SIGCONT)
	case "cut-controllers", "cut-leader-alone", "cut-controllers-region", "cut-region-isolated", "cut-one-way":
		f.Kind = chaos.FaultCut
		f.Cuts, f.Detail = n.cutsFor(kind)
		if kind == "cut-region-isolated" {
			// Long enough for every node to declare the region's agents
			// dead (7-10 s) and for detect_after: it should be evacuated.
			hold = n.dur(14, 24)
		}
		f.Start = time.Now()
		n.nft.cut(f.Cuts)
		time.Sleep(hold)
		n.nft.heal()
		f.End = time.Now()
	case "gossip-loss":
		f.Kind, f.Loss = chaos.FaultLoss, 10+n.rng.IntN(21)
		f.Start = time.Now()
		n.nft.loss(n.all, f.Loss)
		time.Sleep(n.dur(8, 20))
		n.nft.heal()
		f.End = time.Now()
	case "quorum-loss":
		n.quorumLoss(&f)
	case "backend-fail":
		r := randRegion()
		f.Kind, f.Region = chaos.FaultBackend, r.name
		f.Start = time.Now()
		tc.backends[r.name].healthy.Store(false)
		time.Sleep(n.dur(8, 16))
		tc.backends[r.name].healthy.Store(true)
		f.End = time.Now()
	case "paused-leader-writes":
		n.pausedLeaderWrites(&f)
	case "raft-delay":
		// Every controller's incoming Raft traffic, or one's (the
		// leader's, half the time), held for 20-250 ms.
		d := time.Duration(20+n.rng.IntN(231)) * time.Millisecond
		f.Kind, f.Detail = chaos.FaultDelay, d.String()
		targets := tc.controllers
		if fallback := randCtrl(); n.rng.IntN(2) == 0 {
			targets = []*controllerProc{leaderOr(tc, fallback)}
		}
		for _, c := range targets {
			f.Nodes = append(f.Nodes, c.id)
		}
		f.Start = time.Now()
		for _, c := range targets {
			n.proxies[c.id].setDelay(d)
		}
		time.Sleep(hold)
		for _, c := range targets {
			n.proxies[c.id].setDelay(0)
		}
		f.End = time.Now()
	}
	n.hist.AddFault(f)
	n.t.Logf("nemesis: %s", f)
}

// quorumLoss kills or pauses all but a minority of the controllers for
// 14-18 s, recording each survivor's regions at weight 0 at its start and
// end for (h), and sends each survivor a write once the loss is 2 s old
// (the API gives up on Raft after 10 s: the answer comes within the loss).
func (n *chaosNemesis) quorumLoss(f *chaos.Fault) {
	tc := n.tc
	f.Kind = chaos.FaultQuorum
	order := n.rng.Perm(len(tc.controllers))
	down := len(tc.controllers)/2 + 1
	kill := n.rng.IntN(2) == 0
	var victims, survivors []*controllerProc
	for k, i := range order {
		if k < down {
			victims = append(victims, tc.controllers[i])
			f.Nodes = append(f.Nodes, tc.controllers[i].id)
		} else {
			survivors = append(survivors, tc.controllers[i])
		}
	}
	f.Detail = "paused"
	if kill {
		f.Detail = "killed"
	}
	f.Start = time.Now()
	for _, c := range victims {
		halt(c.proc, kill)
	}
	hold := n.dur(14, 18)
	before := zeroWeightRegions(survivors)
	time.Sleep(time.Until(f.Start.Add(chaos.QuorumGrace)))
	seq := int(f.Start.UnixMilli() % 1000000)
	var writes sync.WaitGroup
	for k, c := range survivors {
		n.goWrite(&writes, &chaos.Op{Tag: fmt.Sprintf("chaos no-quorum-%d-%d", seq, k), Client: 98, Kind: chaos.OpEvacuate,
			Region: tc.regions[n.rng.IntN(len(tc.regions))].name}, c)
	}
	time.Sleep(time.Until(f.Start.Add(hold)))
	writes.Wait()
	after := zeroWeightRegions(survivors)
	zw := map[string][]string{}
	for id, rs := range before {
		if a, ok := after[id]; ok && strings.Join(a, ",") == strings.Join(rs, ",") {
			zw[id] = rs
		}
	}
	n.zeroWeight[f.Start] = zw
	f.End = time.Now()
	for _, c := range victims {
		resume(c.proc, kill)
	}
}

// cutsFor draws the cuts of a partition fault of kind, and names what it
// cuts off.
func (n *chaosNemesis) cutsFor(kind string) ([]chaos.Cut, string) {
	tc := n.tc
	ctrlNet := netip.MustParsePrefix(subnetCIDR(tc.ctrlSubnet))
	r := tc.regions[n.rng.IntN(len(tc.regions))]
	switch kind {
	case "cut-controllers":
		i := n.rng.IntN(len(tc.controllers))
		j := (i + 1 + n.rng.IntN(len(tc.controllers)-1)) % len(tc.controllers)
		return both(ctrlPrefix(tc.controllers[i]), ctrlPrefix(tc.controllers[j])), ""
	case "cut-leader-alone":
		l := leaderOr(tc, tc.controllers[n.rng.IntN(len(tc.controllers))])
		var cuts []chaos.Cut
		for _, c := range tc.controllers {
			if c != l {
				cuts = append(cuts, both(ctrlPrefix(l), ctrlPrefix(c))...)
			}
		}
		for _, r := range tc.regions {
			cuts = append(cuts, both(ctrlPrefix(l), regionPrefix(r))...)
		}
		return cuts, l.id
	case "cut-controllers-region":
		return both(ctrlNet, regionPrefix(r)), r.name
	case "cut-region-isolated":
		cuts := both(ctrlNet, regionPrefix(r))
		for _, o := range tc.regions {
			if o.name != r.name {
				cuts = append(cuts, both(regionPrefix(o), regionPrefix(r))...)
			}
		}
		return cuts, r.name
	default: // cut-one-way: from one controller or region to another
		var ends []netip.Prefix
		for _, c := range tc.controllers {
			ends = append(ends, ctrlPrefix(c))
		}
		for _, r := range tc.regions {
			ends = append(ends, regionPrefix(r))
		}
		i := n.rng.IntN(len(ends))
		j := (i + 1 + n.rng.IntN(len(ends)-1)) % len(ends)
		return []chaos.Cut{{From: ends[i], To: ends[j]}}, ""
	}
}

// leaderOr returns the leader, or fallback when none is known. (Random
// draws happen whether or not a leader is found, so that a seed gives the
// same schedule.)
func leaderOr(tc *testCluster, fallback *controllerProc) *controllerProc {
	if l := chaosLeader(tc, nil); l != nil {
		return l
	}
	return fallback
}

// halt kills (kill -9) or pauses (SIGSTOP) p; resume undoes it.
func halt(p *proc, kill bool) {
	if kill {
		p.Kill()
	} else {
		p.Signal(syscall.SIGSTOP)
	}
}

func resume(p *proc, kill bool) {
	if kill {
		p.Restart()
	} else {
		p.Signal(syscall.SIGCONT)
	}
}

// goWrite sends op's one attempt to c on a goroutine counted in wg and
// records it.
func (n *chaosNemesis) goWrite(wg *sync.WaitGroup, op *chaos.Op, c *controllerProc) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		op.Attempts = append(op.Attempts, n.w.attempt(op, c))
		n.hist.AddOp(op)
	}()
}

// zeroWeightRegions reads each controller's own view of the regions at
// weight 0.
func zeroWeightRegions(cs []*controllerProc) map[string][]string {
	out := map[string][]string{}
	for _, c := range cs {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		rs, err := newClient(c.http).Regions(ctx)
		cancel()
		if err != nil {
			continue
		}
		zero := []string{}
		for _, r := range rs {
			if r.Weight == 0 {
				zero = append(zero, r.Name)
			}
		}
		out[c.id] = zero
	}
	return out
}

// pausedLeaderWrites is (i)'s targeted scenario: pause the leader, send it
// writes (they wait in its socket backlog), let the others elect a new
// leader and take a conflicting write, then resume the old leader and let
// it answer.
func (n *chaosNemesis) pausedLeaderWrites(f *chaos.Fault) {
	tc := n.tc
	f.Kind = chaos.FaultOldLeader
	old := chaosLeader(tc, nil)
	if old == nil {
		old = tc.controllers[0]
	}
	f.Nodes = []string{old.id}
	f.Start = time.Now()
	old.Signal(syscall.SIGSTOP)
	const client = 99
	seq := int(f.Start.UnixMilli() % 1000000)
	for k := 0; k < 2; k++ {
		r := tc.regions[n.rng.IntN(len(tc.regions))].name
		kind := chaos.OpEvacuate
		if k == 1 {
			kind = chaos.OpRestore
		}
		n.goWrite(&n.wg, &chaos.Op{Tag: fmt.Sprintf("chaos old-leader-%d-%d", seq, k), Client: client, Kind: kind, Region: r}, old)
	}
	deadline := time.Now().Add(15 * time.Second)
	var nl *controllerProc
	for time.Now().Before(deadline) {
		if nl = chaosLeader(tc, old); nl != nil && nl != old {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	r := tc.regions[n.rng.IntN(len(tc.regions))].name
	if nl != nil && nl != old {
		f.Detail = "new leader " + nl.id
		op := &chaos.Op{Tag: fmt.Sprintf("chaos new-leader-%d", seq), Client: client, Kind: chaos.OpEvacuate, Region: r}
		op.Attempts = append(op.Attempts, n.w.attempt(op, nl))
		n.hist.AddOp(op)
	} else {
		f.Detail = "no new leader within 15s"
	}
	f.End = time.Now()
	old.Signal(syscall.SIGCONT)
	n.wg.Wait()
}
