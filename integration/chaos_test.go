package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/integration/chaos"
)

// The chaos suite (docs/reliability.md): a cluster on 127.0.80.0/24
// (controllers) and 127.0.81-83.0/24 (regions of 3 agents with real HTTP
// backends), a nemesis injecting one fault at a time, clients writing
// through the API, a DNS prober on every controller, and a checker over
// the recorded history.
//
//	CHAOS_DURATION  how long the nemesis runs (default 75s; make chaos: 10m)
//	CHAOS_SEED      the seed (default: from the clock; printed at the start)
//	CHAOS_CONTROLLERS  3 (default) or 5
//	CHAOS_HISTORY   a file to write the history and final logs to (JSON)

const chaosBase = 80 // controllers on 127.0.80.0/24, regions on .81-.83

func chaosEnv(t *testing.T) (time.Duration, int64, int) {
	t.Helper()
	dur := 75 * time.Second
	if v := os.Getenv("CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("CHAOS_DURATION=%q: want a positive Go duration such as 10m", v)
		}
		dur = d
	}
	seed := time.Now().UnixNano() % 1_000_000_000
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: want an integer", v)
		}
		seed = s
	}
	n := 3
	if v := os.Getenv("CHAOS_CONTROLLERS"); v != "" {
		if v != "3" && v != "5" {
			t.Fatalf("CHAOS_CONTROLLERS=%q: want 3 or 5", v)
		}
		n, _ = strconv.Atoi(v)
	}
	return dur, seed, n
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func TestChaos(t *testing.T) {
	dur, seed, nCtrl := chaosEnv(t)
	nft := newChaosNFT(t)
	t.Parallel() // its own subnets and nft table; mostly waiting
	t.Logf("chaos: seed %d, duration %s, %d controllers (reproduce: CHAOS_SEED=%d CHAOS_DURATION=%s make chaos)", seed, dur, nCtrl, seed, dur)
	loadStart := loadAvg()
	regions := partRegions(chaosBase)
	// Raft between controllers goes through a delay proxy per controller.
	proxies := map[string]*delayProxy{}
	raftVia := func(id, raftAddr string) string {
		ip, _, _ := strings.Cut(raftAddr, ":")
		p := startDelayProxy(t, ip, raftAddr)
		proxies[id] = p
		return p.addr()
	}
	tc := startClusterOpts(t, clusterOpts{regions: regions, ctrlSubnet: chaosBase, controllers: nCtrl, agentsPerRegion: 3, raftVia: raftVia})
	tc.applySteering(chaosSteering(regions, ""))
	tc.putRunbook(tc.controllers[0], chaosRunbook)
	chaosWaitHealthy(t, tc, 3)

	hist := &chaos.History{Seed: seed, Start: time.Now(), Topo: chaosTopology(tc)}
	w := &chaosWorkload{tc: tc, hist: hist, regions: regions}
	nem := &chaosNemesis{t: t, tc: tc, nft: nft, rng: rand.New(rand.NewPCG(uint64(seed), 1)), hist: hist, w: w, proxies: proxies,
		zeroWeight: map[time.Time]map[string][]string{}, all: netip.MustParsePrefix(fmt.Sprintf("127.0.%d.0/22", chaosBase))}

	probeCtx, stopProbes := context.WithCancel(context.Background())
	clientCtx, stopClients := context.WithCancel(context.Background())
	var probes, clients sync.WaitGroup
	defer func() { stopClients(); stopProbes(); clients.Wait(); probes.Wait() }()
	for _, c := range tc.controllers {
		probes.Add(1)
		go func() { defer probes.Done(); w.probeDNS(probeCtx, c) }()
	}
	for i := 0; i < 3; i++ {
		rng := rand.New(rand.NewPCG(uint64(seed), uint64(100+i)))
		clients.Add(1)
		go func() { defer clients.Done(); w.runClient(clientCtx, i, rng) }()
	}

	end := time.Now().Add(dur)
	for {
		nem.inject(nem.next())
		if !time.Now().Before(end) {
			break
		}
		time.Sleep(nem.dur(2, 5))
	}
	// Every fault is healed when inject returns; the restarted processes
	// need their moment, which (f)'s bound includes. Writes still in
	// flight may land while the controllers converge.
	healed := time.Now()
	stopClients()
	converged := chaosConverge(t, tc, 60*time.Second)
	clients.Wait()
	nem.wg.Wait()
	logs := chaosFinalLogs(t, tc)
	stopProbes()
	probes.Wait()
	hist.End = time.Now()

	if path := os.Getenv("CHAOS_HISTORY"); path != "" {
		if err := writeChaosHistory(path, hist, logs); err != nil {
			t.Errorf("CHAOS_HISTORY: %v", err)
		} else {
			t.Logf("history written to %s", path)
		}
	}
	res := chaos.Check(hist, chaos.Final{Logs: logs, Healed: healed, Converged: converged, ZeroWeight: nem.zeroWeight, LinTimeout: 2 * time.Minute})
	sum := chaos.Summarize(hist, logs[tc.controllers[0].id])
	conv := "did not converge within 60s"
	if !converged.IsZero() {
		conv = fmt.Sprintf("%.1fs", converged.Sub(healed).Seconds())
	}
	table := chaos.Table(hist, res, sum, [][2]string{
		{"load average (start / end)", loadStart + " / " + loadAvg()},
		{"convergence after the final heal", conv},
	})
	t.Logf("chaos report (seed %d):\n%s", seed, table)
	if res.Failed() {
		for _, inv := range chaos.Invariants {
			vs := res.Violations[inv]
			for i, v := range vs {
				if i == 5 {
					t.Errorf("(%s) ... and %d more", inv, len(vs)-5)
					break
				}
				t.Errorf("invariant (%s) %s violated: %s", inv, chaos.InvariantTitles[inv], v)
			}
		}
		t.Errorf("chaos: violations with seed %d (reproduce: CHAOS_SEED=%d CHAOS_DURATION=%s make chaos); faults:\n%s", seed, seed, dur, faultList(hist))
	}
}

// writeChaosHistory saves the history and the final logs as JSON, for
// looking into a failed run.
func writeChaosHistory(path string, h *chaos.History, logs map[string][]state.Event) error {
	b, err := json.MarshalIndent(struct {
		History *chaos.History
		Logs    map[string][]state.Event
	}{h, logs}, "", " ")
	if err != nil {
		return fmt.Errorf("encode history: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write history: %w", err)
	}
	return nil
}

func faultList(h *chaos.History) string {
	var b strings.Builder
	for _, f := range h.Faults {
		b.WriteString("  " + f.String() + "\n")
	}
	return b.String()
}

// chaosTopology describes the cluster to the checker.
func chaosTopology(tc *testCluster) chaos.Topology {
	var topo chaos.Topology
	for _, c := range tc.controllers {
		ip, _, _ := strings.Cut(c.raft, ":")
		topo.Controllers = append(topo.Controllers, chaos.Node{Name: c.id, IP: netip.MustParseAddr(ip)})
	}
	for _, r := range tc.regions {
		rt := chaos.RegionTopo{Name: r.name, Subnet: regionPrefix(r)}
		for _, a := range tc.agents {
			if k, ok := strings.CutPrefix(a.name, r.name+"-a"); ok {
				rt.Agents = append(rt.Agents, chaos.Node{Name: a.name, IP: netip.MustParseAddr(fmt.Sprintf("127.0.%d.%s", r.subnet, k))})
			}
		}
		topo.Regions = append(topo.Regions, rt)
	}
	return topo
}

// chaosWaitHealthy waits until every controller sees every region healthy
// with all its agents alive, and answers DNS.
func chaosWaitHealthy(t *testing.T, tc *testCluster, agents int) {
	t.Helper()
	eventually(t, 90*time.Second, "every region healthy with every agent alive on every controller", func() error {
		for _, c := range tc.controllers {
			rs, err := newClient(c.http).Regions(ctxTimeout(5 * time.Second))
			if err != nil {
				return err
			}
			for _, r := range rs {
				if r.AgentsAlive != agents || r.HealthShare() < 1 || r.Weight != 100 {
					return fmt.Errorf("%s sees %s with %d agents alive, health %v, weight %d", c.id, r.Name, r.AgentsAlive, r.Health, r.Weight)
				}
			}
			if _, err := answerRegions(c, 3); err != nil {
				return err
			}
		}
		return nil
	})
}

// chaosFingerprint is what must be equal on every controller for them to
// have converged: every region's state and weight, the SOA serial, the
// config version and the freeze.
func chaosFingerprint(c *controllerProc) (string, error) {
	cl := newClient(c.http)
	st, err := cl.Status(ctxTimeout(3 * time.Second))
	if err != nil {
		return "", err
	}
	rs, err := cl.Regions(ctxTimeout(3 * time.Second))
	if err != nil {
		return "", err
	}
	fp := fmt.Sprintf("serial %d config %d frozen %v", st.Serial, st.ConfigVersion, st.Frozen)
	for _, r := range rs {
		fp += fmt.Sprintf("; %s %s %d", r.Name, r.State, r.Weight)
	}
	return fp, nil
}

// chaosConverge returns when every controller first showed the same
// fingerprint, or the zero time after limit.
func chaosConverge(t *testing.T, tc *testCluster, limit time.Duration) time.Time {
	deadline := time.Now().Add(limit)
	last := ""
	for time.Now().Before(deadline) {
		fps := map[string]bool{}
		var all []string
		ok := true
		for _, c := range tc.controllers {
			fp, err := chaosFingerprint(c)
			if err != nil {
				ok = false
				all = append(all, c.id+": "+err.Error())
				continue
			}
			fps[fp] = true
			all = append(all, c.id+": "+fp)
		}
		if ok && len(fps) == 1 {
			return time.Now()
		}
		last = strings.Join(all, "\n  ")
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("controllers did not converge within %s:\n  %s", limit, last)
	return time.Time{}
}

// chaosFinalLogs reads every controller's whole audit log, retrying for a
// few seconds until they have the same length (a follower may be one
// heartbeat behind).
func chaosFinalLogs(t *testing.T, tc *testCluster) map[string][]state.Event {
	var logs map[string][]state.Event
	for try := 0; try < 25; try++ {
		logs = map[string][]state.Event{}
		lengths := map[int]bool{}
		for _, c := range tc.controllers {
			var all []state.Event
			var since uint64
			for {
				evs, err := newClient(c.http).Events(ctxTimeout(5*time.Second), since, 10000)
				if err != nil {
					t.Logf("events from %s: %v", c.id, err)
					break
				}
				all = append(all, evs...)
				if len(evs) < 10000 {
					break
				}
				since = evs[len(evs)-1].Seq
			}
			logs[c.id] = all
			lengths[len(all)] = true
		}
		if len(lengths) == 1 {
			break
		}
		time.Sleep(400 * time.Millisecond)
	}
	return logs
}
