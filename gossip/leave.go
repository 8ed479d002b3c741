package gossip

import (
	"errors"
	"time"

	"go.uber.org/zap"
)

var errLeaveAfterShutdown = errors.New("gossip: leave after shutdown")

// Leave intents. memberlist's event delegate gets the same NotifyLeave for
// a member that left and one that failed (v0.7.0 never fills Node.State),
// so, as Serf does, a leaving node first broadcasts an intent; members
// marked leaving are recorded as left when memberlist drops them, and a
// member already dead when its intent arrives becomes left.

// Leave broadcasts that this node is leaving and waits up to timeout for
// the message to go out; other members then show it as left. The rejoin
// loop stops. Call Shutdown afterwards. Safe to call more than once.
func (n *Node) Leave(timeout time.Duration) error {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	if n.shutdown {
		return errLeaveAfterShutdown
	}
	if n.left.Swap(true) {
		return nil
	}
	n.log.Info("leaving gossip pool")
	deadline := time.Now().Add(timeout)
	n.mu.Lock()
	l := wireLeave{Node: n.cfg.NodeName, Seq: n.nextSeqLocked()}
	n.mu.Unlock()
	n.signLeave(&l)
	b := &namedBroadcast{name: "leave\x00" + l.Node, msg: encodeLeave(l), done: make(chan struct{})}
	n.queue.QueueBroadcast(b)
	err := n.ml.Leave(timeout)
	if n.live.Load() > 1 {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case <-b.done:
		case <-t.C:
		}
	}
	return err
}

// handleLeave processes a broadcast leave intent; on first receipt it is
// applied and re-broadcast.
func (n *Node) handleLeave(raw []byte) {
	l, err := decodeLeave(raw)
	if err != nil {
		n.log.Debug("dropped undecodable leave intent", zap.Error(err))
		return
	}
	if l.Node == n.cfg.NodeName {
		return
	}
	if reason := n.admitLeave(l, time.Now()); reason != "" {
		n.dropped("leave intent", l.Node, reason)
		return
	}
	n.mu.Lock()
	fresh := n.applyLeaveLocked(l, time.Now())
	n.mu.Unlock()
	if !fresh {
		return
	}
	n.queue.QueueBroadcast(&namedBroadcast{name: "leave\x00" + l.Node, msg: append([]byte(nil), raw...)})
	n.notify()
}

// applyLeaveLocked records an intent newer than any seen for that member.
func (n *Node) applyLeaveLocked(l wireLeave, now time.Time) bool {
	if l.Node == n.cfg.NodeName || l.Seq <= n.leaves[l.Node] {
		return false
	}
	n.leaves[l.Node], n.lvSig[l.Node] = l.Seq, l.Sig
	m, ok := n.members[l.Node]
	if !ok {
		return true
	}
	if m.Live() {
		m.leaving = true
	} else if m.State == StateDead {
		m.State = StateLeft
		m.LastChange = now
		n.log.Info("member left", n.memberFields(m)...)
	}
	return true
}

// leftIntentsLocked lists the intents of members currently left, for
// push-pull: a node that missed the broadcast still learns they left.
func (n *Node) leftIntentsLocked() []wireLeave {
	var out []wireLeave
	for name, seq := range n.leaves {
		if m, ok := n.members[name]; ok && m.State == StateLeft {
			out = append(out, wireLeave{Node: name, Seq: seq, Sig: n.lvSig[name]})
		}
	}
	return out
}
