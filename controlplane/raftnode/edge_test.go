package raftnode

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/evac-sh/evac/internal/testutil"
)

// An edge joins as a non-voter, receives the log, says it is an edge when
// probed, cannot be made a voter through RefuseEdgeVoter, keeps its state
// with every voter gone and restarts from it; an edge whose configuration
// makes it a voter refuses to start.
func TestEdgeReplica(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	c := newCluster(t, 3)
	l := c.leader(30 * time.Second)
	apply(t, c.nodes[l].node, "a")

	e := c.addNode(t, false)
	c.edge = map[int]bool{e: true}
	edge := c.start(e)
	if !edge.IsEdge() || edge.Suffrage() != "" {
		t.Fatalf("fresh edge: IsEdge %v, Suffrage %q; want true, none", edge.IsEdge(), edge.Suffrage())
	}
	leader := c.nodes[l].node
	if err := leader.AddNonvoter(ctxFor(t, 10*time.Second), c.nodes[e].id, c.nodes[e].addr); err != nil {
		t.Fatalf("AddNonvoter(edge): %v", err)
	}
	apply(t, leader, "b")
	c.waitFSMs("a", "b")
	testutil.WaitFor(t, 30*time.Second, "the edge sees itself as a non-voter", func() bool { return edge.Suffrage() == "Nonvoter" })

	st, err := leader.ProbeMember(ctxFor(t, 10*time.Second), c.nodes[e].addr)
	if err != nil || !st.Edge || st.AppliedIndex == 0 {
		t.Fatalf("probe of the edge = %+v, %v; want edge with its applied index", st, err)
	}
	if err := leader.RefuseEdgeVoter(ctxFor(t, 10*time.Second), c.nodes[e].id, c.nodes[e].addr); !errors.Is(err, ErrEdge) {
		t.Fatalf("RefuseEdgeVoter(edge) = %v; want ErrEdge", err)
	}
	f := c.follower(l)
	if err := leader.RefuseEdgeVoter(ctxFor(t, 10*time.Second), c.nodes[f].id, c.nodes[f].addr); err != nil {
		t.Fatalf("RefuseEdgeVoter(voter) = %v; want nil", err)
	}

	// Every voter gone: the edge keeps its replica, never leads.
	for i := range c.nodes {
		if i != e {
			c.stop(i)
		}
	}
	testutil.WaitFor(t, 30*time.Second, "the edge notices the leader is gone", func() bool { id, _ := edge.Leader(); return id == "" })
	if got := c.nodes[e].fsm.list(); !equal(got, []string{"a", "b"}) || edge.IsLeader() {
		t.Fatalf("edge without voters: holds %q, leader %v", got, edge.IsLeader())
	}
	// Restarted with the voters still down, it has its state at once.
	c.stop(e)
	c.start(e)
	if got := c.nodes[e].fsm.list(); !equal(got, []string{"a", "b"}) {
		t.Fatalf("restarted edge holds %q; want a, b at once", got)
	}
	c.stop(e)

	// A voter's data directory (here: the edge made a voter behind its
	// back, bypassing RefuseEdgeVoter) does not start as an edge.
	for i := range c.nodes {
		c.start(i)
	}
	l = c.leader(30 * time.Second)
	if err := c.nodes[l].node.AddVoter(ctxFor(t, 10*time.Second), c.nodes[e].id, c.nodes[e].addr); err != nil {
		t.Fatalf("AddVoter(edge): %v", err)
	}
	testutil.WaitFor(t, 30*time.Second, "the edge learns it was made a voter", func() bool { return c.nodes[e].node.Suffrage() == "Voter" })
	c.stop(e)
	lg := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	n, err := New(c.config(e, nil, lg), &listFSM{})
	if err == nil {
		_ = n.Shutdown()
		t.Fatal("an edge listed as a voter started; want a refusal")
	}
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("edge listed as a voter: %v; want ErrInvalidConfig", err)
	}
	t.Logf("refusal: %v", err)
}

func TestEdgeNeverBootstraps(t *testing.T) {
	for _, boot := range [][]Peer{
		{{ID: "e1", Addr: "127.0.9.1:7300"}, {ID: "c2", Addr: "127.0.9.2:7300"}},
		{{ID: "c1", Addr: "127.0.9.2:7300"}, {ID: "c2", Addr: "127.0.9.3:7300"}, {ID: "x", Addr: "127.0.9.1:7300"}},
	} {
		cfg := Config{NodeID: "e1", DataDir: t.TempDir(), RaftAddr: "127.0.9.1:7300", Bootstrap: boot, Edge: true}
		if _, _, err := cfg.validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("edge in bootstrap %v: %v; want ErrInvalidConfig", boot, err)
		}
	}
	cfg := Config{NodeID: "e1", DataDir: t.TempDir(), RaftAddr: "127.0.9.1:7300", Edge: true,
		Bootstrap: []Peer{{ID: "c1", Addr: "127.0.9.2:7300"}}}
	if _, _, err := cfg.validate(); err != nil {
		t.Errorf("edge with a bootstrap list of others: %v", err)
	}
}
