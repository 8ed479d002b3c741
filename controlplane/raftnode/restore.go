package raftnode

import (
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// A restarted controller must answer DNS from its last state at once
// (static stability), not from an empty state until a leader reaches it:
// with a quorum lost none ever would, and even with one, the leader's
// replication to a follower that was down backs off for seconds (the chaos
// suite, seed 2, saw a restarted controller answer REFUSED for 4 s).
// hashicorp/raft restores only the latest snapshot at start and waits to
// learn the commit index from a leader. (Its RestoreCommittedLogs option
// does not help in v1.8.0: nothing tells the log store the commit index,
// and the replayed range's configuration entries are then skipped, so a
// cluster without a snapshot forgets its peers.)
//
// So the node remembers how far its FSM got: every entry the FSM applied
// was committed, and a goroutine stores the applied index in the stable
// store every appliedPersistEvery. At start, after raft has restored the
// snapshot, New replays the local log from there up to that index into an
// FSM that can take it (ReplayingFSM). Raft applies the same entries again
// once a leader tells it the commit index; the FSM ignores those.

const appliedPersistEvery = 500 * time.Millisecond

// appliedIndexKey is the stable store key of the last applied index.
var appliedIndexKey = []byte("evac_applied_index")

// ReplayingFSM is an FSM that takes the committed tail of the local log at
// start (see restore.go): its Apply and Restore are safe to call
// concurrently with each other, Apply ignores an entry at or below
// AppliedIndex, and a snapshot carries the index it was taken at.
type ReplayingFSM interface {
	raft.FSM
	// AppliedIndex is the index of the last command entry applied.
	AppliedIndex() uint64
}

// replayCommitted applies the command entries after fsm's applied index,
// up to the applied index stored before the node stopped.
func (n *Node) replayCommitted(fsm ReplayingFSM) {
	to, err := n.wal.GetUint64(appliedIndexKey)
	if err != nil {
		n.log.Warn("stored applied index unreadable; waiting for a leader", zap.Error(err))
		return
	}
	if last, err := n.wal.LastIndex(); err == nil {
		to = min(to, last)
	}
	from := fsm.AppliedIndex() + 1
	if first, err := n.wal.FirstIndex(); err == nil {
		from = max(from, first)
	}
	if from > to {
		return
	}
	applied := 0
	for i := from; i <= to; i++ {
		var l raft.Log
		if err := n.wal.GetLog(i, &l); err != nil {
			n.log.Warn("replaying the log at start stopped", zap.Uint64("index", i), zap.Error(err))
			break
		}
		if l.Type != raft.LogCommand {
			continue
		}
		fsm.Apply(&l)
		applied++
	}
	n.log.Info("replayed the committed log at start", zap.Uint64("from", from), zap.Uint64("to", to), zap.Int("commands", applied))
}

// persistApplied stores the applied index every appliedPersistEvery until
// the node shuts down, and once more then.
func (n *Node) persistApplied() {
	t := time.NewTicker(appliedPersistEvery)
	defer t.Stop()
	var last uint64
	save := func() {
		idx := n.raft.AppliedIndex()
		if idx == last {
			return
		}
		if err := n.wal.SetUint64(appliedIndexKey, idx); err != nil {
			n.log.Warn("storing the applied index failed", zap.Uint64("index", idx), zap.Error(err))
			return
		}
		last = idx
	}
	for {
		select {
		case <-n.ctx.Done():
			save()
			return
		case <-t.C:
			save()
		}
	}
}
