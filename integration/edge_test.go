package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/api/wire"
)

// Edge replicas (issue 15, item 1): 3 voters and EVAC_EDGES (default 30)
// edges, each its own `evac server --edge` process joining with
// --join-cluster. Committed changes reach every edge's DNS (p50/p99 logged
// as FIGURE lines), an evacuation is seen on every edge, every edge keeps
// answering with all voters killed, and a restarted edge answers at once
// from its persisted state. The leader's CPU per edge and an edge's RSS
// are logged for docs/benchmarks.md. Everything lives on 127.0.200.0/24:
// voters .11-.13, edges .101 on.

const edgeSubnet = 200

// edgeSteering has one service per policy; nearest sends 10.20.0.0/16 to
// eu-west first and everyone else to us-east first.
func edgeSteering() string {
	s := "zone: example.com.\nttl: 30\nnameservers: {ns1: 192.0.2.53}\nregions:\n"
	for _, r := range testRegions {
		s += fmt.Sprintf("  - {name: %s, capacity: 100}\n", r.name)
	}
	s += "topology:\n  nets:\n    10.20.0.0/16: [eu-west, us-east, us-west]\n  default: [us-east, us-west, eu-west]\nservices:\n"
	for _, svc := range [][2]string{{"api", "weighted"}, {"fo", "failover"}, {"near", "nearest"}, {"every", "all"}} {
		s += fmt.Sprintf("  - name: %s\n    policy: %s\n    endpoints:\n", svc[0], svc[1])
		for _, r := range testRegions {
			s += fmt.Sprintf("      %s: [%s]\n", r.name, strings.Join(r.endpoints, ", "))
		}
	}
	return s + `policy:
  unhealthy_below: 0.5
  detect_after: 2s
  ramp: [50, 0]
  step_interval: 2s
  max_evacuated: 1
  hold_down: 1s
  budget: {per_day: 100, cooldown: 1s}
`
}

// edgeCount is EVAC_EDGES, 30 by default.
func edgeCount(t *testing.T) int {
	v := os.Getenv("EVAC_EDGES")
	if v == "" {
		return 30
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 150 {
		t.Fatalf("EVAC_EDGES=%q: want 1..150", v)
	}
	return n
}

// edgeTiming is EVAC_EDGE_TIMING: fast (the default: --fast) or default.
func edgeTiming(t *testing.T) string {
	switch v := os.Getenv("EVAC_EDGE_TIMING"); v {
	case "", "fast":
		return "fast"
	case "default":
		return v
	default:
		t.Fatalf("EVAC_EDGE_TIMING=%q: want fast or default", v)
		return ""
	}
}

// startEdgeProc starts edge k (1-based) on 127.0.edgeSubnet.(100+k),
// joining through via, with extra server flags.
func (tc *testCluster) startEdgeProc(k int, via *controllerProc, extra ...string) *controllerProc {
	t := tc.t
	t.Helper()
	ip := fmt.Sprintf("127.0.%d.%d", edgeSubnet, 100+k)
	e := &controllerProc{
		id:   fmt.Sprintf("e%02d", k),
		raft: fmt.Sprintf("%s:%d", ip, freePort(t, ip)),
		http: fmt.Sprintf("%s:%d", ip, freePort(t, ip)),
		dns:  fmt.Sprintf("%s:%d", ip, freePort(t, ip)),
	}
	e.raftAdvertise = e.raft
	tokenFile := filepath.Join(tc.dir, "edge-join.token") // written once, before the first edge starts
	cert, key, err := tc.raftCA.IssuePeer(e.id, ip)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"server", "--edge", "--tokens-file", filepath.Join(tc.dir, "tokens.yaml"),
		"--node-id", e.id, "--data-dir", filepath.Join(tc.dir, e.id),
		"--raft-addr", e.raft, "--http-addr", e.http, "--dns-addr", e.dns, "--dns-rate-limit", "0",
		"--raft-tls-cert", cert, "--raft-tls-key", key, "--raft-tls-ca", tc.raftCA.CAFile,
		"--join-cluster", "http://" + via.http, "--join-token-file", tokenFile, "--fast=" + strconv.FormatBool(edgeTiming(t) == "fast"), "--log-level", "info"}, extra...)
	e.proc = startProc(t, e.id, args...)
	return e
}

func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// cpuTicks is a process's user+system CPU time in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after its closing parenthesis (state is field 3).
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b)[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64) // utime, field 14
	s, err2 := strconv.ParseInt(f[12], 10, 64) // stime, field 15
	return u + s, errors.Join(err1, err2)
}

// cpuShares measures the processes' CPU use over one window, in cores
// (1.0: one core busy).
func cpuShares(t *testing.T, window time.Duration, pids ...int) []float64 {
	t.Helper()
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		t.Fatal("getconf CLK_TCK:", err)
	}
	hz, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatal(err)
	}
	t0 := make([]int64, len(pids))
	for i, pid := range pids {
		if t0[i], err = cpuTicks(pid); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	<-time.After(window) // a measurement window, not a wait for a condition
	shares := make([]float64, len(pids))
	for i, pid := range pids {
		t1, err := cpuTicks(pid)
		if err != nil {
			t.Fatal(err)
		}
		shares[i] = float64(t1-t0[i]) / hz / time.Since(start).Seconds()
	}
	return shares
}

// rssKiB is a process's resident set size (VmRSS).
func rssKiB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// answerRegion asks server for name (ECS subnet, "" for none) and returns
// the region of the first address answered.
func answerRegion(server, name, subnet string) (string, error) {
	r, err := queryA(server, name, subnet)
	if err != nil {
		return "", err
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		return "", fmt.Errorf("%s from %s: rcode %s, %d answers", name, server, dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	a, ok := r.Answer[0].(*dns.A)
	if !ok {
		return "", fmt.Errorf("%s from %s: %s", name, server, r.Answer[0])
	}
	return regionOf(a.A.String()), nil
}

// steeredWithout checks that server steers every policy around the
// evacuated region gone ("" when none is): weighted over 20 ECS subnets,
// failover, nearest with ECS, all.
func steeredWithout(server, gone string) error {
	first := "us-east"
	if gone == "us-east" {
		first = "us-west"
	}
	seen := map[string]bool{}
	for i := range 20 {
		reg, err := answerRegion(server, "api.example.com", fmt.Sprintf("10.9.%d.0", i))
		if err != nil {
			return err
		}
		seen[reg] = true
	}
	if seen[gone] || (gone == "" && len(seen) < 2) {
		return fmt.Errorf("%s: weighted answers from %v (evacuated: %q)", server, seen, gone)
	}
	for _, q := range []struct{ name, subnet, want string }{
		{"fo.example.com", "", first},
		{"near.example.com", "10.20.1.0", "eu-west"},
		{"near.example.com", "10.30.1.0", first},
	} {
		reg, err := answerRegion(server, q.name, q.subnet)
		if err != nil {
			return err
		}
		if reg != q.want {
			return fmt.Errorf("%s: %s (ECS %q) answered from %s, want %s", server, q.name, q.subnet, reg, q.want)
		}
	}
	r, err := queryA(server, "every.example.com", "")
	if err != nil {
		return err
	}
	want := 6
	if gone != "" {
		want = 4
	}
	if len(r.Answer) != want {
		return fmt.Errorf("%s: policy all answered %d addresses, want %d", server, len(r.Answer), want)
	}
	return nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func TestEdgeReplicas(t *testing.T) {
	t.Parallel() // its own subnet; mostly waiting
	n := edgeCount(t)
	began := time.Now()
	// EVAC_EDGE_TIMING=default runs voters and edges with production Raft
	// timing (1 s heartbeat timeout, 50 ms commit timeout) instead of
	// --fast, for the cost figures.
	var serverArgs []string
	if edgeTiming(t) == "default" {
		serverArgs = []string{"--fast=false"}
	}
	tc := startClusterOpts(t, clusterOpts{ctrlSubnet: edgeSubnet, serverArgs: serverArgs})
	voters := tc.controllers
	tc.waitLeader(voters[0])
	tc.applySteering(edgeSteering())

	leaderProc := func() *controllerProc {
		t.Helper()
		var l *controllerProc
		eventually(t, 30*time.Second, "a leader", func() error {
			st, err := newClient(voters[0].http).Status(ctxT(t, 5*time.Second))
			if err != nil {
				return err
			}
			for _, v := range voters {
				if v.id == st.Leader {
					l = v
					return nil
				}
			}
			return fmt.Errorf("leader %q", st.Leader)
		})
		return l
	}
	leader := leaderProc()
	idle := cpuShares(t, 10*time.Second, leader.pid())[0]

	// The edges join through the voters in turn.
	if err := os.WriteFile(filepath.Join(tc.dir, "edge-join.token"), []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	edgesStarted := time.Now()
	edges := make([]*controllerProc, n)
	for k := range edges {
		edges[k] = tc.startEdgeProc(k+1, voters[k%len(voters)])
	}
	eventually(t, 180*time.Second, fmt.Sprintf("%d edges in the peers list, caught up", n), func() error {
		ps, err := newClient(voters[1].http).Peers(ctxT(t, 20*time.Second))
		if err != nil {
			return err
		}
		edgesIn := 0
		for _, p := range ps {
			if p.Role == "edge" && p.Reachable && p.Lag != nil && *p.Lag <= 2 {
				edgesIn++
			}
			if strings.HasPrefix(p.ID, "e") && p.Suffrage != "nonvoter" {
				return fmt.Errorf("edge %s is a %s", p.ID, p.Suffrage)
			}
		}
		if edgesIn != n {
			return fmt.Errorf("%d of %d edges listed, reachable and caught up", edgesIn, n)
		}
		return nil
	})
	t.Logf("FIGURE %d edges joined and caught up %s after the first started", n, time.Since(edgesStarted).Round(time.Second))
	for _, e := range edges {
		eventually(t, 60*time.Second, e.id+" answers every policy", func() error { return steeredWithout(e.dns, "") })
	}
	// `evac cluster peers` shows the role and the lag; `evac status` on an
	// edge says it is one.
	out, err := tc.evac(voters[0], "cluster", "peers")
	if err != nil || !strings.Contains(out, "LAG") || strings.Count(out, " edge ") != n {
		t.Fatalf("evac cluster peers: %v\n%s", err, out)
	}
	out, err = tc.evac(edges[0], "status")
	if err != nil || !strings.Contains(out, "ROLE") || !strings.Contains(out, "edge (a non-voting replica") {
		t.Fatalf("evac status on an edge: %v\n%s", err, out)
	}

	// Cost: the leader's CPU with the edges idle, and the edges' memory.
	leader = leaderProc()
	shares := cpuShares(t, 10*time.Second, leader.pid(), edges[n/2].pid())
	withEdges := shares[0]
	var rss []int
	for _, e := range edges {
		kib, err := rssKiB(e.pid())
		if err != nil {
			t.Fatal(err)
		}
		rss = append(rss, kib)
	}
	slices.Sort(rss)
	t.Logf("FIGURE leader CPU idle (%s Raft timing): %.1f%% of a core with no edge, %.1f%% with %d edges: %.2f%% per edge",
		edgeTiming(t), 100*idle, 100*withEdges, n, 100*(withEdges-idle)/float64(n))
	t.Logf("FIGURE edge RSS (VmRSS): median %d KiB, max %d KiB over %d edges; one edge's CPU idle: %.1f%% of a core",
		rss[len(rss)/2], rss[len(rss)-1], n, 100*shares[1])

	// Committed changes reach every edge's DNS: us-east out and back in,
	// 20 times; every edge polls its failover answer every 10 ms.
	const changes = 20
	var lat []time.Duration
	api := newClient(voters[0].http)
	busy := time.Duration(0)
	for i := range changes {
		evac := i%2 == 0
		want := "us-west"
		if !evac {
			want = "us-east"
		}
		var mu sync.Mutex
		got := make([]time.Duration, 0, n)
		var wg sync.WaitGroup
		start := time.Now()
		deadline := start.Add(30 * time.Second)
		var err error
		if evac {
			_, err = api.Evacuate(ctxT(t, 30*time.Second), "us-east", wire.MoveRequest{Reason: "edge propagation", Ramp: []int{0}, Force: true})
		} else {
			_, err = api.Restore(ctxT(t, 30*time.Second), "us-east", wire.MoveRequest{Reason: "edge propagation", Ramp: []int{100}})
		}
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		for _, e := range edges {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					if reg, err := answerRegion(e.dns, "fo.example.com", ""); err == nil && reg == want {
						mu.Lock()
						got = append(got, time.Since(start))
						mu.Unlock()
						return
					}
					<-time.After(10 * time.Millisecond) // poll interval, not a wait on a condition
				}
				t.Errorf("change %d: %s never answered %s within 30s", i, e.id, want)
			})
		}
		wg.Wait()
		lat = append(lat, got...)
		busy += time.Since(start)
		// The next move needs the region settled (evacuated or active).
		eventually(t, 30*time.Second, "us-east settled", func() error {
			r, err := api.Region(ctxT(t, 5*time.Second), "us-east")
			if err != nil {
				return err
			}
			if r.State != "evacuated" && r.State != "active" {
				return fmt.Errorf("us-east %s", r.State)
			}
			return nil
		})
	}
	slices.Sort(lat)
	p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
	t.Logf("FIGURE change to edge DNS (write sent -> answer changed, %d changes x %d edges = %d samples, 10 ms polls): p50 %s, p99 %s, max %s",
		changes, n, len(lat), p50.Round(time.Millisecond), p99.Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	if p99 > 5*time.Second {
		t.Errorf("p99 %s from a committed change to every edge's DNS; target 1 s", p99)
	}

	// An evacuation with the default ramp, through the CLI: seen on every
	// edge, every policy.
	if out, err := tc.evac(voters[1], "evacuate", "us-east", "--reason", "edge evacuation", "--force"); err != nil {
		t.Fatalf("evac evacuate: %v\n%s", err, out)
	}
	for _, e := range edges {
		eventually(t, 60*time.Second, e.id+" steers around us-east", func() error { return steeredWithout(e.dns, "us-east") })
	}

	// Static stability: kill -9 every voter; every edge keeps answering.
	for _, v := range voters {
		v.Kill()
	}
	eventually(t, 30*time.Second, "the edges notice the voters are gone", func() error {
		st, err := newClient(edges[n-1].http).Status(ctxT(t, 5*time.Second))
		if err != nil {
			return err
		}
		if st.Leader != "" {
			return fmt.Errorf("%s still follows %s", edges[n-1].id, st.Leader)
		}
		return nil
	})
	for _, e := range edges {
		if err := steeredWithout(e.dns, "us-east"); err != nil {
			t.Errorf("with every voter gone: %v", err)
		}
		if err := newClient(e.http).Readyz(ctxT(t, 5*time.Second)); err != nil {
			t.Errorf("%s not ready with every voter gone: %v", e.id, err)
		}
	}

	// A restarted edge, voters still down, answers from its persisted
	// state at once.
	e := edges[0]
	e.Kill()
	restarted := time.Now()
	e.Restart()
	eventually(t, 30*time.Second, e.id+" answers after its restart", func() error { return steeredWithout(e.dns, "us-east") })
	t.Logf("FIGURE restarted edge answers steered DNS %s after its start, with every voter down", time.Since(restarted).Round(time.Millisecond))
	t.Logf("FIGURE TestEdgeReplicas with %d edges: %s in all (%s polling changes)", n, time.Since(began).Round(time.Second), busy.Round(time.Second))
}
