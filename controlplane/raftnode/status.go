package raftnode

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Stats is a point-in-time view of the node, for status endpoints and
// logs.
type Stats struct {
	State        string // Follower, Candidate, Leader, Shutdown
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
	LastLogIndex uint64
	LeaderID     string
	LeaderAddr   string
	Voters       int // in the latest configuration, committed or not
}

// PeerInfo is one member of the latest Raft configuration.
type PeerInfo struct {
	ID       string
	Addr     string
	Suffrage string // Voter, Nonvoter, Staging
	Leader   bool
}

// IsLeader reports whether this node is the leader right now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the current leader's ID and address, empty if unknown.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// Stats returns the node's current Raft state.
func (n *Node) Stats() Stats {
	leaderAddr, leaderID := n.raft.LeaderWithID()
	s := Stats{
		State:        n.raft.State().String(),
		Term:         n.raft.CurrentTerm(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
		LastLogIndex: n.raft.LastIndex(),
		LeaderID:     string(leaderID),
		LeaderAddr:   string(leaderAddr),
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			if srv.Suffrage == raft.Voter {
				s.Voters++
			}
		}
	}
	return s
}

// Peers lists the latest Raft configuration (possibly not yet committed).
func (n *Node) Peers() ([]PeerInfo, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("get raft configuration: %w", err)
	}
	_, leaderID := n.raft.LeaderWithID()
	servers := f.Configuration().Servers
	peers := make([]PeerInfo, 0, len(servers))
	for _, srv := range servers {
		peers = append(peers, PeerInfo{
			ID:       string(srv.ID),
			Addr:     string(srv.Address),
			Suffrage: srv.Suffrage.String(),
			Leader:   srv.ID == leaderID,
		})
	}
	return peers, nil
}

// leaderPoll is how often WaitForLeader looks.
const leaderPoll = 10 * time.Millisecond

// WaitForLeader returns once any node is known as leader, or with an error
// wrapping ErrNoLeader and ctx's error when ctx is done.
func (n *Node) WaitForLeader(ctx context.Context) error {
	ctx, cancel := n.scope(ctx)
	defer cancel()
	t := time.NewTicker(leaderPoll)
	defer t.Stop()
	for {
		if addr, _ := n.raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			if n.isShutdown() {
				return fmt.Errorf("wait for leader: %w", ErrShutdown)
			}
			return fmt.Errorf("wait for leader: %w: %w", ErrNoLeader, ctx.Err())
		case <-t.C:
		}
	}
}
