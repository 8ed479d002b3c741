package raftnode

import (
	"context"
	"fmt"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// Edge replicas (Config.Edge).
//
// An edge is a Raft non-voter that a whole fleet of points of presence can
// run: it receives the log and snapshots like any member and serves reads
// from its replica, but it never counts for quorum, so adding thirty of
// them neither slows commits nor risks the cluster's availability. What
// makes it an edge rather than an ordinary non-voter (one being caught up
// before promotion) is that it must stay one:
//
//   - It is never in the bootstrap list (Config.validate).
//   - It refuses to start when its Raft configuration lists it as a voter
//     (a data directory that belonged to a voter, or a forced promotion):
//     checkEdgeStart.
//   - It says it is an edge when probed (MemberStatus.Edge), and the
//     cluster refuses to add it as a voter or promote it (RefuseEdgeVoter),
//     even with force.
//   - Should it ever lead all the same, its LeaderCh never says so (the
//     controller runs no leader loops on it) and it hands leadership to a
//     voter at once (pumpLeadership).
//
// raft itself never asks a non-voter for its vote, and a non-voter never
// starts an election ("not part of a stable configuration or a non-voter,
// not triggering a leader election", logged once).

// IsEdge reports whether this node runs as an edge replica.
func (n *Node) IsEdge() bool { return n.cfg.Edge }

// Suffrage is this node's suffrage in its latest Raft configuration
// (Voter, Nonvoter, Staging), empty when it is not in it (not yet added,
// or removed).
func (n *Node) Suffrage() string {
	s, _ := n.HasMember(n.cfg.NodeID)
	return s
}

// checkEdgeStart refuses an edge whose configuration makes it a voter.
func (n *Node) checkEdgeStart() error {
	if !n.cfg.Edge {
		return nil
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("edge: read raft configuration: %w", err)
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == n.cfg.NodeID && s.Suffrage != raft.Nonvoter {
			return fmt.Errorf("%w: this node (%s) is a %s in its Raft configuration, but an edge never votes: remove it from the cluster (evac cluster remove %s), empty its data directory and join it again as an edge, or start it without --edge",
				ErrInvalidConfig, n.cfg.NodeID, s.Suffrage, n.cfg.NodeID)
		}
	}
	return nil
}

// edgeLeads handles an edge that became leader all the same: it hands
// leadership to a voter (raft picks the most up-to-date one).
func (n *Node) edgeLeads() {
	n.log.Error("this edge replica became the Raft leader, which it must never be; transferring leadership to a voter")
	if err := n.raft.LeadershipTransfer().Error(); err != nil {
		n.log.Error("edge: leadership transfer failed; stepping down at the next election", zap.Error(err))
	}
}

// RefuseEdgeVoter probes the server at addr and returns an error wrapping
// ErrEdge if it says it is an edge replica; a server that does not answer
// passes (the quorum check counts it as unhealthy).
func (n *Node) RefuseEdgeVoter(ctx context.Context, id, addr string) error {
	st, err := n.ProbeMember(ctx, addr)
	if err != nil || !st.Edge {
		return nil
	}
	return fmt.Errorf("%w: %s at %s runs with --edge; to make it a voter, remove it, restart it without --edge and join it again", ErrEdge, id, addr)
}
