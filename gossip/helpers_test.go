package gossip

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/internal/testutil"
)

// TestMain checks for leaked goroutines. memberlist's own goroutines (a
// probe waiting for its ack timer) end up to a probe interval after
// Shutdown returns, so leaks are polled for a few seconds.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := goleak.Find()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintln(os.Stderr, "goleak:", err)
				code = 1
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	os.Exit(code)
}

// testLogger is silent unless EVAC_TEST_LOG is set: memberlist goroutines
// may log after a test ends, which a zaptest logger would turn into a panic.
func testLogger() *zap.Logger {
	if os.Getenv("EVAC_TEST_LOG") != "" {
		l, _ := zap.NewDevelopment()
		return l
	}
	return zap.NewNop()
}

func testConfig(name string) Config {
	return Config{NodeName: name, Region: "r1", Role: RoleAgent, BindAddr: "127.0.0.1:0",
		Profile: ProfileFast, Logger: testLogger()}
}

func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", cfg.NodeName, err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	return n
}

// startCluster starts count nodes, all seeded with the first, and waits
// until every node sees every other alive.
func startCluster(t *testing.T, count int, mod func(i int, c *Config)) []*Node {
	t.Helper()
	var nodes []*Node
	for i := 0; i < count; i++ {
		cfg := testConfig(fmt.Sprintf("n%d", i))
		if i > 0 {
			cfg.Seeds = []string{nodes[0].LocalAddr()}
		}
		if mod != nil {
			mod(i, &cfg)
		}
		nodes = append(nodes, startNode(t, cfg))
	}
	waitFor(t, "every node sees all alive", 10*time.Second, func() bool {
		for _, n := range nodes {
			if liveCount(n) != count {
				return false
			}
		}
		return true
	})
	return nodes
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	return testutil.WaitFor(t, timeout, what, cond)
}

func liveCount(n *Node) int {
	c := 0
	for _, m := range n.Members() {
		if m.Live() {
			c++
		}
	}
	return c
}

func memberState(n *Node, name string) MemberState {
	for _, m := range n.Members() {
		if m.Name == name {
			return m.State
		}
	}
	return ""
}

func findReport(n *Node, origin, service, check string) (Report, bool) {
	for _, r := range n.Reports() {
		if r.Origin == origin && r.Service == service && r.Check == check {
			return r, true
		}
	}
	return Report{}, false
}

func hasSeq(n *Node, origin, service, check string, seq uint64) bool {
	r, ok := findReport(n, origin, service, check)
	return ok && r.Seq == seq
}

// published returns the report last published by n for service/check.
func published(t *testing.T, n *Node, service, check string) Report {
	t.Helper()
	r, ok := findReport(n, n.Name(), service, check)
	if !ok {
		t.Fatalf("%s has no own report %s/%s", n.Name(), service, check)
	}
	return r
}
