package gossip

import (
	"fmt"
	"testing"
)

// fakePool is n nodes' identical views of a pool: every member alive, and
// down of them dead.
func fakePool(size, down int) []*Node {
	members := make(map[string]*member, size)
	for i := 0; i < size; i++ {
		st := StateAlive
		if i < down {
			st = StateDead
		}
		name := fmt.Sprintf("n%04d", i)
		members[name] = &member{Member: Member{Name: name, Addr: fmt.Sprintf("127.0.%d.%d:7946", i/250, i%250+1), State: st}}
	}
	nodes := make([]*Node, 0, size)
	for i := down; i < size; i++ {
		name := fmt.Sprintf("n%04d", i)
		n := &Node{cfg: Config{NodeName: name}, addr: members[name].Addr, members: members, nLive: size - down}
		nodes = append(nodes, n)
	}
	return nodes
}

// TestReviveSyncers: when every node has the same view, exactly
// reviveSyncers of them push-pull with a revived member, whatever the pool
// size; in a pool smaller than that, everyone does.
func TestReviveSyncers(t *testing.T) {
	for _, size := range []int{2, 3, 4, 10, 1000} {
		nodes := fakePool(size, 0)
		for _, revived := range []string{"n0000", "n0001"} {
			addr := nodes[0].members[revived].Addr
			want := min(reviveSyncers, size-1)
			got := 0
			for _, n := range nodes {
				if n.cfg.NodeName != revived && n.syncsRevivedLocked(addr) {
					got++
				}
			}
			if got != want {
				t.Errorf("pool of %d, %s revived: %d nodes sync with it, want %d", size, revived, got, want)
			}
		}
	}
}

// TestRejoinTargetsProbability: a round tries down members with
// probability rejoinPoolTries × down/live: rarely for one false death
// among 1,000, always in a small pool or when half the pool is cut off (a
// partition).
func TestRejoinTargetsProbability(t *testing.T) {
	const rounds = 300
	tries := func(nodes []*Node) int {
		c := 0
		for i := 0; i < rounds; i++ {
			if len(nodes[i%len(nodes)].rejoinTargets()) > 0 {
				c++
			}
		}
		return c
	}
	if c := tries(fakePool(1000, 1)); c > 12 {
		t.Errorf("one dead in 1,000: %d of %d rounds tried it (expected about %d)", c, rounds, rounds*rejoinPoolTries/1000)
	}
	if c := tries(fakePool(9, 1)); c != rounds {
		t.Errorf("one dead in 9: only %d of %d rounds tried it; a small pool tries every round", c, rounds)
	}
	split := fakePool(20, 10)
	if c := tries(split); c != rounds {
		t.Errorf("half the pool down: only %d of %d rounds tried a down member", c, rounds)
	}
	for _, tg := range split[0].rejoinTargets() {
		if tg == split[0].addr {
			t.Error("rejoin targets include the node itself")
		}
	}
	if got := len(split[0].rejoinTargets()); got != rejoinDeadSample {
		t.Errorf("%d targets, want %d", got, rejoinDeadSample)
	}
}
