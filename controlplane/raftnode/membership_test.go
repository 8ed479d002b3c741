package raftnode

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/evac-sh/evac/internal/testutil"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// A non-voter joins, catches up and is promoted; the quorum rule lets
// healthy changes through and refuses one that would leave too few healthy
// voters; removing a member works from a follower.
func TestMembershipChangesAndQuorumRule(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	c := newCluster(t, 3)
	l := c.leader(30 * time.Second)
	f := c.follower(l)
	apply(t, c.nodes[l].node, "a")

	n4 := c.addNode(t, false)
	c.start(n4)
	follower := c.nodes[f].node
	// The new node is no voter yet: adding it as a non-voter never
	// touches quorum; as a voter, 3 healthy of 4 is a majority.
	if err := follower.CheckQuorum(ctxFor(t, 10*time.Second), Change{AddVoter: c.nodes[n4].id}, c.nodes[n4].addr); err != nil {
		t.Fatalf("CheckQuorum(add a 4th voter to 3 healthy) = %v", err)
	}
	if err := follower.AddNonvoter(ctxFor(t, 10*time.Second), c.nodes[n4].id, c.nodes[n4].addr); err != nil {
		t.Fatalf("AddNonvoter: %v", err)
	}
	c.waitFSMs("a")
	// The follower learns the change as it replicates (a follower may be
	// a heartbeat behind the leader that answered AddNonvoter).
	testutil.WaitFor(t, 30*time.Second, "the follower sees the non-voter", func() bool {
		s, ok := follower.HasMember(c.nodes[n4].id)
		return ok && s == "Nonvoter"
	})
	sts, err := follower.PeerStatuses(ctxFor(t, 10*time.Second))
	if err != nil || len(sts) != 4 {
		t.Fatalf("PeerStatuses = %+v, %v", sts, err)
	}
	for _, s := range sts {
		if !s.Reachable || !s.Healthy || s.Status.ID != s.ID || s.Status.AppliedIndex == 0 {
			t.Errorf("PeerStatuses: %+v; want every member reachable, healthy, with its applied index", s)
		}
	}
	if err := c.nodes[l].node.Promote(ctxFor(t, 10*time.Second), c.nodes[n4].id); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	if s, _ := follower.HasMember(c.nodes[n4].id); s != "Voter" {
		testutil.WaitFor(t, 30*time.Second, "the promotion reaches the follower", func() bool {
			s, _ := follower.HasMember(c.nodes[n4].id)
			return s == "Voter"
		})
	}
	if err := follower.Promote(ctxFor(t, 5*time.Second), "nobody"); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("Promote(nobody) = %v; want ErrUnknownPeer", err)
	}

	// Stop two voters: of 4, 2 are healthy. Removing one of the healthy
	// ones would leave 1 of 3: refused. Removing a stopped one leaves 2
	// of 3: allowed.
	var stopped []int
	for i := range c.nodes {
		if i != l && i != n4 && len(stopped) < 2 {
			c.stop(i)
			stopped = append(stopped, i)
		}
	}
	leader := c.nodes[l].node
	err = leader.CheckQuorum(ctxFor(t, 10*time.Second), Change{RemoveID: c.nodes[n4].id}, "")
	if !errors.Is(err, ErrBelowQuorum) {
		t.Fatalf("CheckQuorum(remove a healthy voter, 2 of 4 down) = %v; want ErrBelowQuorum", err)
	}
	if err := leader.CheckQuorum(ctxFor(t, 10*time.Second), Change{RemoveID: c.nodes[stopped[0]].id}, ""); err != nil {
		t.Fatalf("CheckQuorum(remove a stopped voter) = %v", err)
	}
	if err := leader.CheckQuorum(ctxFor(t, 10*time.Second), Change{RemoveID: "nobody"}, ""); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("CheckQuorum(remove nobody) = %v; want ErrUnknownPeer", err)
	}
	// 2 of 4 voters cannot commit: the removal itself needs a quorum,
	// so bring one back first, then remove the other stopped voter.
	c.start(stopped[0])
	l = c.leader(30 * time.Second)
	if err := c.nodes[l].node.RemoveServer(ctxFor(t, 10*time.Second), c.nodes[stopped[1]].id); err != nil {
		t.Fatalf("RemoveServer: %v", err)
	}
	apply(t, c.nodes[l].node, "b")
	c.waitFSMs("a", "b")
	if _, ok := c.nodes[l].node.HasMember(c.nodes[stopped[1]].id); ok {
		t.Fatal("removed member still in the configuration")
	}
}

// Quorum lost for good: Recover turns a survivor's data directory into a
// one-voter cluster that keeps its state and takes writes.
func TestRecoverSurvivorAlone(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	c := newCluster(t, 3)
	l := c.leader(30 * time.Second)
	apply(t, c.nodes[l].node, "a")
	apply(t, c.nodes[l].node, "b")
	c.waitFSMs("a", "b")
	c.stopAll()

	survivor := c.nodes[0]
	peers := []Peer{{ID: survivor.id, Addr: survivor.addr}}
	if err := Recover(survivor.dir, peers, &listFSM{}, nil); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	n := c.start(0)
	testutil.WaitFor(t, 30*time.Second, "the survivor leads alone", n.IsLeader)
	if got := survivor.fsm.list(); !equal(got, []string{"a", "b"}) {
		t.Fatalf("state after recovery = %q; want [a b]", got)
	}
	apply(t, n, "c")
	if got := survivor.fsm.list(); !equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("state after a write = %q", got)
	}
	peersNow, err := n.Peers()
	if err != nil || len(peersNow) != 1 || peersNow[0].ID != survivor.id {
		t.Fatalf("Peers after recovery = %+v, %v", peersNow, err)
	}
	// A running node's directory is refused, not waited for.
	if err := Recover(survivor.dir, peers, &listFSM{}, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("Recover on a running node = %v; want ErrLocked", err)
	}
	if err := Recover(t.TempDir(), peers, &listFSM{}, nil); err == nil {
		t.Fatal("Recover of an empty directory succeeded")
	}
}
