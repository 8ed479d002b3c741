package integration

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/client"
)

// TestRestartedControllerAnswersAlone: a controller restarted while the
// other two stay down (no quorum, no leader) answers DNS from its last
// state from its first answer on. The chaos suite (CHAOS_SEED=2) found a
// restarted controller answering REFUSED, from an empty state, until a
// leader's replication reached it; with the quorum lost it would have for
// good. Found and fixed in controlplane/raftnode/restore.go.
func TestRestartedControllerAnswersAlone(t *testing.T) {
	tc := startCluster(t)
	tc.applySteering(testSteering())
	tc.waitHealthy()
	c1 := tc.controllers[0]
	if out, err := tc.evac(c1, "evacuate", "us-west", "--reason", "restart test", "--ramp", "0"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	eventually(t, 20*time.Second, "us-west out of every controller's answers", func() error {
		for _, c := range tc.controllers {
			counts, err := answerRegions(c, 30)
			if err != nil {
				return err
			}
			if counts["us-west"] != 0 {
				return fmt.Errorf("%s still answers us-west: %v", c.id, counts)
			}
		}
		return nil
	})
	// Every controller stores its applied index every 500 ms.
	time.Sleep(1500 * time.Millisecond)
	for _, c := range tc.controllers {
		c.Kill()
	}
	c1.Restart()
	restarted := time.Now()
	answers := 0
	for time.Since(restarted) < 8*time.Second {
		r, err := queryA(c1.dns, "api.example.com.", fmt.Sprintf("10.9.%d.0", answers%200))
		if err != nil {
			time.Sleep(time.Millisecond) // not listening yet: ask again at once
			continue
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			t.Fatalf("%.1fs after restart, alone: rcode %s with %d answers; want its last state's answer",
				time.Since(restarted).Seconds(), dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok && regionOf(a.A.String()) == "us-west" {
				t.Fatalf("restarted alone, %s answers the evacuated us-west", c1.id)
			}
		}
		answers++
		if time.Since(restarted) > time.Second {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if answers < 10 {
		t.Fatalf("only %d DNS answers in 8 s after the restart", answers)
	}
	st, err := newClient(c1.http).Status(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if st.IsLeader || st.Leader != "" {
		t.Fatalf("alone, %s reports leader %q: the test needs it without a quorum", c1.id, st.Leader)
	}
	t.Logf("restarted alone without a leader: %d answers from its last state in 8 s (applied index %d)", answers, st.AppliedIndex)
}

// illHealth returns the health.unhealthy and freeze events in evs: after
// restarts alone, with every backend up, there must be none.
func illHealth(evs []state.Event) []string {
	var out []string
	for _, e := range evs {
		if e.Kind == state.EventHealthLost || e.Kind == state.EventFreeze {
			out = append(out, fmt.Sprintf("#%d %s %s %s (%s)", e.Seq, e.Kind, e.Region, e.Reason, e.Detail))
		}
	}
	return out
}

// auditLog reads the audit log (its first 1,000 events) from cl.
func auditLog(t *testing.T, cl *client.Client) ([]state.Event, error) {
	t.Helper()
	return cl.Events(ctxT(t, 5*time.Second), 0, 1000)
}

// waitExit waits up to d for p to exit after a signal.
func (p *proc) waitExit(d time.Duration) error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-time.After(d):
		return fmt.Errorf("%s still running %s after the signal", p.name, d)
	}
}

// regionsHealthy checks that cl sees n regions, each active, healthy with
// two agents alive.
func regionsHealthy(t *testing.T, cl *client.Client, n int) error {
	rs, err := cl.Regions(ctxT(t, 5*time.Second))
	if err != nil {
		return err
	}
	if len(rs) != n {
		return fmt.Errorf("%d regions, want %d", len(rs), n)
	}
	for _, r := range rs {
		if r.State != "active" || r.HealthShare() < 1 || r.AgentsAlive != 2 {
			return fmt.Errorf("%s: state %s, health %v, %d agents alive", r.Name, r.State, r.Health, r.AgentsAlive)
		}
	}
	return nil
}

// holdWithoutIllHealth watches cl's audit log for d and fails t at the
// first unhealthy verdict or freeze.
func holdWithoutIllHealth(t *testing.T, cl *client.Client, d time.Duration, when string) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		evs, err := auditLog(t, cl)
		if err != nil {
			continue // a leader change: ask again
		}
		if bad := illHealth(evs); len(bad) > 0 {
			t.Fatalf("%s: ill health invented with every backend up: %v", when, bad)
		}
	}
}

// TestDevRestartsInventNoIllHealth: `evac dev --data-dir X` stopped with
// SIGINT and started again, five times, never commits an unhealthy verdict
// nor freezes (it used to come back frozen: its agents stopped first and
// the leader judged every region by their absence); afterwards a failing
// backend still evacuates its region.
func TestDevRestartsInventNoIllHealth(t *testing.T) {
	t.Parallel() // free ports; evac dev's own addresses
	httpPort := freePortRun(t, 3, false)
	dnsPort := freePortRun(t, 3, true)
	raftPort, gossipPort := devPorts(t)
	dataDir := filepath.Join(t.TempDir(), "dev")
	dev := startProc(t, "dev", "dev", "--data-dir", dataDir, "--http-port", fmt.Sprint(httpPort), "--dns-port", fmt.Sprint(dnsPort),
		"--raft-port", fmt.Sprint(raftPort), "--gossip-port", fmt.Sprint(gossipPort), "--log-level", "info")
	api := fmt.Sprintf("127.0.0.1:%d", httpPort)
	cl := newClient(api)
	const cycles = 5
	for i := 1; i <= cycles+1; i++ {
		if i > 1 {
			dev.Restart()
		}
		eventually(t, 60*time.Second, fmt.Sprintf("start %d: three healthy regions with their agents", i), func() error {
			return regionsHealthy(t, cl, 3)
		})
		// The leader's warm-up (10 s with evac dev's timing) must be over
		// for the stop to be the one that used to freeze the cluster.
		holdWithoutIllHealth(t, cl, 12*time.Second, fmt.Sprintf("start %d", i))
		if st, err := cl.Status(ctxT(t, 5*time.Second)); err != nil || st.Frozen {
			t.Fatalf("start %d: status %+v, %v; want not frozen", i, st, err)
		}
		if i == cycles+1 {
			break
		}
		dev.Signal(os.Interrupt)
		if err := dev.waitExit(30 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := auditLog(t, cl)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("FIGURE evac dev: %d SIGINT restarts with one data dir, %d audit events, 0 unhealthy verdicts, 0 freezes", cycles, len(evs))

	// A backend that really fails still evacuates its region.
	resp, err := http.Post("http://"+api+"/v1/dev/regions/us-east/fail", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	failed := time.Now()
	took := eventually(t, 90*time.Second, "us-east evacuated after its backend failed", func() error {
		r, err := cl.Region(ctxT(t, 5*time.Second), "us-east")
		if err != nil {
			return err
		}
		if r.State != "evacuated" || !r.Automatic {
			return fmt.Errorf("us-east: state %s, automatic %v, reason %q", r.State, r.Automatic, r.Reason)
		}
		return nil
	})
	t.Logf("FIGURE evac dev after %d restarts: us-east evacuated %.1fs after its backend failed (%s)", cycles, took.Seconds(), time.Since(failed).Round(time.Second))
}

// TestAgentsThatLeftAreNoEvidence: every agent of one region stopped with
// SIGTERM (they leave the pool gracefully) for 90 s evacuates nothing and
// the audit log says the region has no observers; the same agents killed
// with SIGKILL and cut off from every vantage point get their region
// evacuated, as before.
func TestAgentsThatLeftAreNoEvidence(t *testing.T) {
	part := newPartition(t)
	t.Parallel() // its own subnets (127.0.111-113, controllers 127.0.119) and nft table
	tc := startPartitionCluster(t, true, 110)
	east := tc.regions[0]
	var eastAgents []*proc
	for _, a := range tc.agents {
		if strings.HasPrefix(a.name, east.name+"-") {
			eastAgents = append(eastAgents, a)
		}
	}
	leaderClient := func() (*client.Client, error) {
		l, err := tc.leader()
		if err != nil {
			return nil, err
		}
		return newClient(l.http), nil
	}

	// 1. SIGTERM: the agents leave. 90 s without an evacuation.
	for _, a := range eastAgents {
		a.Stop()
	}
	stopped := time.Now()
	const hold = 90 * time.Second
	for time.Since(stopped) < hold {
		for _, c := range tc.controllers {
			r, err := newClient(c.http).Region(ctxT(t, 5*time.Second), east.name)
			if err != nil {
				t.Fatalf("%s: %v", c.id, err)
			}
			if r.State != "active" || r.Weight != 100 || !r.Services["api"].Healthy {
				t.Fatalf("%s %.0fs after its agents left: state %s, weight %d, api healthy %v, reason %q",
					east.name, time.Since(stopped).Seconds(), r.State, r.Weight, r.Services["api"].Healthy, r.Reason)
			}
		}
		time.Sleep(2 * time.Second)
	}
	cl, err := leaderClient()
	if err != nil {
		t.Fatal(err)
	}
	evs, err := auditLog(t, cl)
	if err != nil {
		t.Fatal(err)
	}
	var unobserved []state.Event
	for _, e := range evs {
		if e.Kind == "region.unobserved" && e.Region == east.name {
			unobserved = append(unobserved, e)
		}
	}
	if len(unobserved) != 1 || !strings.Contains(unobserved[0].Reason, "no observers") {
		t.Fatalf("want one region.unobserved event for %s saying it has no observers, got %+v", east.name, unobserved)
	}
	if bad := illHealth(evs); len(bad) > 0 {
		t.Fatalf("agents that left counted as evidence: %v", bad)
	}
	t.Logf("FIGURE %s: all agents left (SIGTERM) for %s: 0 evacuations; event %q", east.name, hold, unobserved[0].Reason)

	// 2. The agents come back, then die: killed and cut off from the
	// controllers and every other region.
	for _, a := range eastAgents {
		a.Restart()
	}
	eventually(t, 60*time.Second, "the agents are back and reporting", func() error { return tc.allAgentsAlive() })
	eventually(t, 30*time.Second, east.name+" observed again", func() error {
		cl, err := leaderClient()
		if err != nil {
			return err
		}
		evs, err := auditLog(t, cl)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if e.Kind == "region.observed" && e.Region == east.name {
				return nil
			}
		}
		return fmt.Errorf("no region.observed event for %s yet", east.name)
	})
	part.Cut(subnetCIDR(tc.ctrlSubnet), subnetCIDR(east.subnet))
	for _, r := range tc.regions[1:] {
		part.Cut(subnetCIDR(east.subnet), subnetCIDR(r.subnet))
	}
	for _, a := range eastAgents {
		a.Kill()
	}
	killed := time.Now()
	took := eventually(t, 90*time.Second, east.name+" evacuated after its agents died", func() error {
		cl, err := leaderClient()
		if err != nil {
			return err
		}
		r, err := cl.Region(ctxT(t, 5*time.Second), east.name)
		if err != nil {
			return err
		}
		if r.State != "evacuated" || r.Weight != 0 || !r.Automatic {
			return fmt.Errorf("state %s weight %d automatic %v agents alive %d", r.State, r.Weight, r.Automatic, r.AgentsAlive)
		}
		return nil
	})
	t.Logf("FIGURE %s evacuated %.1fs after its agents were killed and cut off (%s)", east.name, took.Seconds(), time.Since(killed).Round(time.Second))
}

// TestDeployExampleRestarts: deploy/example/run.sh started and stopped five
// times on one directory never commits an unhealthy verdict nor freezes
// (it used to start frozen: its agents checked before the backends
// listened); afterwards killing a backend evacuates its region. It uses
// run.sh's fixed addresses, like TestDeployExample, which is not parallel:
// the two never overlap.
func TestDeployExampleRestarts(t *testing.T) {
	t.Parallel()
	dir, run := deployExample(t, "c1", "c2", "us-east-a1")
	var cl *client.Client
	const cycles = 5
	for i := 1; i <= cycles; i++ {
		if out, err := run(); err != nil {
			t.Fatalf("run.sh start %d: %v\n%s", i, err, out)
		}
		if cl == nil {
			cl = deployExampleClient(t, dir)
		}
		eventually(t, 90*time.Second, fmt.Sprintf("start %d: three healthy regions with their agents", i), func() error {
			return regionsHealthy(t, cl, 3)
		})
		holdWithoutIllHealth(t, cl, 5*time.Second, fmt.Sprintf("start %d", i))
		if st, err := cl.Status(ctxT(t, 5*time.Second)); err != nil || st.Frozen {
			t.Fatalf("start %d: status %+v, %v; want not frozen", i, st, err)
		}
		if i == cycles {
			break
		}
		if out, err := run("stop"); err != nil {
			t.Fatalf("run.sh stop %d: %v\n%s", i, err, out)
		}
	}
	t.Logf("FIGURE deploy example: %d starts and stops on one directory: 0 unhealthy verdicts, 0 freezes", cycles)

	pid, err := os.ReadFile(filepath.Join(dir, "pids", "backend-us-east.pid"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(pid)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(n, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	took := eventually(t, 120*time.Second, "us-east evacuating after its backend was killed", func() error {
		r, err := cl.Region(ctxT(t, 5*time.Second), "us-east")
		if err != nil {
			return err
		}
		if (r.State != "evacuating" && r.State != "evacuated") || !r.Automatic {
			return fmt.Errorf("us-east: state %s, automatic %v, reason %q", r.State, r.Automatic, r.Reason)
		}
		return nil
	})
	t.Logf("FIGURE deploy example after %d restarts: us-east evacuating %.1fs after its backend was killed (%s)", cycles, took.Seconds(), time.Since(killed).Round(time.Second))
}

// deployExampleClient is an admin API client of deploy/example's first
// controller: HTTPS with the example's CA, its oncall token.
func deployExampleClient(t *testing.T, dir string) *client.Client {
	t.Helper()
	ca, err := os.ReadFile(filepath.Join(dir, "tls", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	tokens, err := os.ReadFile(filepath.Join(dir, "tokens.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var oncall string
	for _, line := range strings.Split(string(tokens), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "oncall" {
			oncall = f[2]
		}
	}
	return client.New("https://127.0.19.1:8443", oncall,
		client.WithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}), client.WithTimeout(5*time.Second))
}
