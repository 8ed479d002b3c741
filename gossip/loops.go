package gossip

import (
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/evac-sh/evac/internal/fnvmix"
)

// maxParallelJoins bounds concurrent join attempts in one rejoin round: an
// unreachable address costs up to memberlist's TCPTimeout.
const maxParallelJoins = 4

// background runs the first join, then the periodic rejoin and reaping.
func (n *Node) background() {
	defer n.wg.Done()
	n.rejoin(true)
	rejoin := time.NewTicker(n.tm.rejoin)
	defer rejoin.Stop()
	reap := time.NewTicker(n.tm.reap)
	defer reap.Stop()
	beat := time.NewTicker(n.tm.heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-rejoin.C:
			n.rejoin(false)
		case <-n.kick:
			n.syncRevived()
		case <-reap.C:
			n.reap()
		case <-beat.C:
			n.heartbeat()
		}
	}
}

// rejoinDeadSample is how many known members that are not alive one
// rejoin round tries, picked at random, and a round tries any only with
// probability rejoinPoolTries × down / live, at most 1: across the pool
// that is about rejoinPoolTries exchanges per down member per round,
// whatever the pool's size (Serf's reconnect rule, with its probability
// scaled up so that small pools keep trying every round). Trying down
// members every round on every node made each node push-pull the whole
// table with members it believed dead: at 1,000 nodes a few false deaths
// under load cost N times that many full exchanges and fed the overload
// that caused them. In a pool of a few dozen nodes, and after a partition
// (each side sees the other down), every node still tries every round;
// such an exchange with a falsely dead member also tells it of its death,
// so it refutes at once.
const (
	rejoinDeadSample = 2
	rejoinPoolTries  = 8
)

// rejoinTargets: seeds that are not a live member's address, plus a few
// known members that are dead or left. A healed partition re-merges through
// these, since memberlist alone does not reconnect after a long split.
func (n *Node) rejoinTargets() []string {
	seen := map[string]bool{n.addr: true}
	var down []string
	n.mu.Lock()
	live := n.nLive
	for _, m := range n.members {
		if m.Live() {
			seen[m.Addr] = true
		}
	}
	for _, m := range n.members {
		if !m.Live() && m.Name != n.cfg.NodeName && !seen[m.Addr] {
			seen[m.Addr] = true
			down = append(down, m.Addr)
		}
	}
	n.mu.Unlock()
	var targets []string
	if len(down) > 0 && rand.Float64()*float64(max(live, 1)) < float64(rejoinPoolTries*len(down)) {
		rand.Shuffle(len(down), func(i, j int) { down[i], down[j] = down[j], down[i] })
		targets = down[:min(len(down), rejoinDeadSample)]
	}
	for _, s := range n.cfg.Seeds {
		if !seen[s] {
			seen[s] = true
			targets = append(targets, s)
		}
	}
	return targets
}

func (n *Node) rejoin(first bool) {
	if n.left.Load() {
		return
	}
	targets := n.rejoinTargets()
	if len(targets) == 0 {
		return
	}
	var (
		mu     sync.Mutex
		joined []string
		failed []string
		wg     sync.WaitGroup
		sem    = make(chan struct{}, maxParallelJoins)
	)
	for _, t := range targets {
		select {
		case <-n.stop:
			return
		case sem <- struct{}{}:
		}
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			defer func() { <-sem }()
			_, err := n.ml.Join([]string{addr})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, addr)
				return
			}
			joined = append(joined, addr)
		}(t)
	}
	wg.Wait()
	switch {
	case len(joined) > 0 && (first || len(joined) > n.seedCount(joined)):
		n.log.Info("joined gossip peers", zap.Strings("joined", joined), zap.Strings("unreachable", failed))
	case len(joined) > 0:
		n.log.Debug("re-joined seeds", zap.Strings("joined", joined), zap.Strings("unreachable", failed))
	case first:
		n.log.Warn("could not join any gossip peer, will retry", zap.Strings("unreachable", failed),
			zap.Duration("retry-interval", n.tm.rejoin))
	default:
		n.log.Debug("rejoin found no peer", zap.Strings("unreachable", failed))
	}
}

// reviveSyncers is how many live members push-pull with a member that
// came back (see syncRevived).
const reviveSyncers = 3

// syncRevived push-pulls with one member that came back from dead or
// left, if this node is one of the reviveSyncers live members chosen for
// it. A member restarted without seeds is seen alive again by the others
// (it refutes their gossip about its death) yet knows nobody itself until
// a push-pull reaches it; one exchange gives it the whole membership and
// report table. When every node did this, each false death at 1,000 nodes
// ended in 1,000 full exchanges aimed at the one member that had just
// been too slow to answer a probe, which made it slow again. The choice is
// rendezvous hashing over the live members, so nodes agree on it without
// talking; if their views differ a few more or fewer sync, and a member no
// one syncs is still reached by periodic push-pull. One per kick, so a
// healed partition costs at most one exchange per node.
func (n *Node) syncRevived() {
	if n.left.Load() {
		return
	}
	n.mu.Lock()
	var target string
	for addr := range n.revived { // map order: a random pick
		if n.syncsRevivedLocked(addr) {
			target = addr
			break
		}
	}
	clear(n.revived)
	n.mu.Unlock()
	if target == "" {
		return
	}
	if _, err := n.ml.Join([]string{target}); err != nil {
		n.log.Debug("sync with revived member failed", zap.String("member-addr", target), zap.Error(err))
	}
}

// syncsRevivedLocked reports whether this node ranks among the
// reviveSyncers live members (other than the revived one) with the highest
// rendezvous score for addr.
func (n *Node) syncsRevivedLocked(addr string) bool {
	mine := rendezvous(n.cfg.NodeName, addr)
	above := 0
	for name, m := range n.members {
		if name == n.cfg.NodeName || m.Addr == addr || !m.Live() {
			continue
		}
		if rendezvous(name, addr) > mine {
			if above++; above >= reviveSyncers {
				return false
			}
		}
	}
	return true
}

// rendezvous is the score of member name for key (highest random weight
// hashing), with the hash dnsserver uses for client subnets.
func rendezvous(name, key string) uint64 {
	return fnvmix.Mix64(fnvmix.String(fnvmix.Separator(fnvmix.String(fnvmix.Offset, name)), key))
}

func (n *Node) reap() {
	now := time.Now()
	n.mu.Lock()
	m := n.reapMembersLocked(now)
	r := n.reapReportsLocked(now)
	n.mu.Unlock()
	if m+r > 0 {
		n.log.Info("reaped expired gossip state", zap.Int("members", m), zap.Int("reports", r))
		n.notify()
	}
}

// seedCount counts the configured seeds among addrs.
func (n *Node) seedCount(addrs []string) int {
	c := 0
	for _, a := range addrs {
		for _, s := range n.cfg.Seeds {
			if a == s {
				c++
				break
			}
		}
	}
	return c
}
