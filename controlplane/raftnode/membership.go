package raftnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Membership: adding voters and non-voters, promoting, removing, and the
// quorum rule that guards those changes.
//
// Whether a change is safe depends on which voters can actually vote, which
// the Raft configuration does not say. So the node asks: every member
// answers a status probe (opStatus on the forward RPC, so it travels the
// same port and the same mutual TLS as Raft) with its log and applied
// index. A voter counts as healthy when it answers within ProbeTimeout and
// its log is within MaxHealthyLag entries of the most advanced member
// probed. A change is safe when the healthy voters of the configuration it
// leaves behind are a majority of its voters (Consul's autopilot and etcd's
// strict reconfiguration check apply the same idea).

// Sentinel errors of membership changes.
var (
	// ErrBelowQuorum means the change would leave fewer healthy voters
	// than a majority; it was not made. Forcing it skips the check.
	ErrBelowQuorum = errors.New("raftnode: the change would leave the cluster below quorum")
	// ErrUnknownPeer means no member has the given id.
	ErrUnknownPeer = errors.New("raftnode: no such member")
	// ErrEdge means the change would make an edge replica a voter; it was
	// not made, and force does not override it.
	ErrEdge = errors.New("raftnode: the member is an edge replica, which never votes")
)

const (
	// ProbeTimeout bounds one status probe of a member.
	ProbeTimeout = 2 * time.Second
	// MaxHealthyLag is how far (in log entries) a voter's log may trail
	// the most advanced member probed and still count as healthy.
	MaxHealthyLag = 1024
)

// MemberStatus is what a member says about itself when probed.
type MemberStatus struct {
	ID           string `json:"id"`
	State        string `json:"state"` // Follower, Candidate, Leader, Shutdown
	Term         uint64 `json:"term"`
	LastIndex    uint64 `json:"last_index"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	LeaderID     string `json:"leader_id,omitempty"`
	// Edge: the member runs as an edge replica (Config.Edge), a non-voter
	// that must never be made a voter.
	Edge bool `json:"edge,omitempty"`
	// DNSSECKeys is the member's DNSSEC key set: key tags and a
	// fingerprint of the public keys ("" without keys; Config.DNSSECKeys).
	DNSSECKeys string `json:"dnssec_keys,omitempty"`
	// DNSSECKeyIDs are the ids of the member's DNSSEC keys (absent from
	// releases before key rollovers).
	DNSSECKeyIDs []string `json:"dnssec_key_ids,omitempty"`
	// KnownCommands is the highest command type the member's FSM applies
	// (Config.KnownCommands; 0 from a release that does not say).
	KnownCommands int `json:"known_commands,omitempty"`
}

// PeerStatus is one member of the latest configuration with the result of
// probing it.
type PeerStatus struct {
	PeerInfo
	// Reachable: it answered the probe (Status is then its answer).
	Reachable bool
	Status    MemberStatus
	// Err says why the probe failed.
	Err string
	// Healthy: reachable and within MaxHealthyLag of the most advanced
	// member probed.
	Healthy bool
}

// Change is a membership change to check against the quorum rule.
type Change struct {
	// AddVoter adds (or promotes) a voter with this id; RemoveID removes a
	// member. One of the two.
	AddVoter string
	RemoveID string
}

// status is this node's MemberStatus.
func (n *Node) status() MemberStatus {
	_, leaderID := n.raft.LeaderWithID()
	return MemberStatus{
		ID:            n.cfg.NodeID,
		State:         n.raft.State().String(),
		Term:          n.raft.CurrentTerm(),
		LastIndex:     n.raft.LastIndex(),
		CommitIndex:   n.raft.CommitIndex(),
		AppliedIndex:  n.raft.AppliedIndex(),
		LeaderID:      string(leaderID),
		Edge:          n.cfg.Edge,
		DNSSECKeys:    n.dnssec.Load().summary,
		DNSSECKeyIDs:  n.dnssec.Load().ids,
		KnownCommands: n.cfg.KnownCommands,
	}
}

// MembersApply reports whether every member of the latest configuration
// answered a probe saying its FSM applies command type t. An unreachable
// member, or one of a release that does not say, counts as not applying
// it: the caller holds the command back.
func (n *Node) MembersApply(ctx context.Context, t int) bool {
	ps, err := n.PeerStatuses(ctx)
	if err != nil || len(ps) == 0 {
		return false
	}
	for _, p := range ps {
		if !p.Reachable || p.Status.KnownCommands < t {
			return false
		}
	}
	return true
}

// ProbeMember asks the member at addr (its Raft address) for its status.
func (n *Node) ProbeMember(ctx context.Context, addr string) (MemberStatus, error) {
	if addr == n.cfg.advertised() {
		return n.status(), nil
	}
	ctx, cancel := n.scope(ctx)
	defer cancel()
	rep, err := n.fwd.roundTrip(ctx, addr, fwdRequest{op: opStatus, timeout: ProbeTimeout})
	if err != nil {
		return MemberStatus{}, fmt.Errorf("probe %s: %w", addr, err)
	}
	if rep.code != codeOK {
		return MemberStatus{}, fmt.Errorf("probe %s: %s", addr, rep.body)
	}
	var st MemberStatus
	if err := json.Unmarshal(rep.body, &st); err != nil {
		return MemberStatus{}, fmt.Errorf("probe %s: bad answer: %w", addr, err)
	}
	return st, nil
}

// PeerStatuses lists the latest configuration and probes every member
// (concurrently, each within ProbeTimeout).
func (n *Node) PeerStatuses(ctx context.Context) ([]PeerStatus, error) {
	peers, err := n.Peers()
	if err != nil {
		return nil, err
	}
	return n.probeAll(ctx, peers, nil), nil
}

// probeAll probes peers and, if extra is set, the server extra too (a
// voter about to be added), and marks the healthy ones.
func (n *Node) probeAll(ctx context.Context, peers []PeerInfo, extra *PeerInfo) []PeerStatus {
	all := make([]PeerStatus, 0, len(peers)+1)
	for _, p := range peers {
		all = append(all, PeerStatus{PeerInfo: p})
	}
	if extra != nil {
		all = append(all, PeerStatus{PeerInfo: *extra})
	}
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i := range all {
		wg.Go(func() {
			st, err := n.ProbeMember(ctx, all[i].Addr)
			if err != nil {
				all[i].Err = err.Error()
				return
			}
			all[i].Reachable, all[i].Status = true, st
		})
	}
	wg.Wait()
	var most uint64
	for _, p := range all {
		if p.Reachable {
			most = max(most, p.Status.LastIndex)
		}
	}
	for i, p := range all {
		all[i].Healthy = p.Reachable && most-p.Status.LastIndex <= MaxHealthyLag
	}
	return all
}

// CheckQuorum probes the members and returns an error wrapping
// ErrBelowQuorum if, after change, the healthy voters would not be a
// majority of the voters. A voter being added is probed at addAddr.
func (n *Node) CheckQuorum(ctx context.Context, change Change, addAddr string) error {
	peers, err := n.Peers()
	if err != nil {
		return err
	}
	var extra *PeerInfo
	if change.AddVoter != "" && !slices.ContainsFunc(peers, func(p PeerInfo) bool { return p.ID == change.AddVoter }) {
		extra = &PeerInfo{ID: change.AddVoter, Addr: addAddr, Suffrage: raft.Nonvoter.String()}
	}
	if change.RemoveID != "" && !slices.ContainsFunc(peers, func(p PeerInfo) bool { return p.ID == change.RemoveID }) {
		return fmt.Errorf("remove %s: %w", change.RemoveID, ErrUnknownPeer)
	}
	all := n.probeAll(ctx, peers, extra)
	voters, healthy := 0, 0
	var down []string
	for _, p := range all {
		voter := p.Suffrage == raft.Voter.String()
		switch p.ID {
		case change.AddVoter:
			voter = true
		case change.RemoveID:
			voter = false
		}
		if !voter {
			continue
		}
		voters++
		if p.Healthy {
			healthy++
		} else {
			down = append(down, p.ID)
		}
	}
	need := voters/2 + 1
	if healthy < need {
		return fmt.Errorf("%w: %d voters after the change need %d healthy, %d are (not healthy: %v; healthy = answers a probe within %s and trails the most advanced member by at most %d entries)",
			ErrBelowQuorum, voters, need, healthy, down, ProbeTimeout, MaxHealthyLag)
	}
	return nil
}

// AddNonvoter adds (or updates) a non-voting member: it receives the log
// and serves reads but does not count for quorum. On a follower it is
// forwarded to the leader; transient failures are retried until ctx is
// done.
func (n *Node) AddNonvoter(ctx context.Context, id, addr string) error {
	if err := validateID(id); err != nil {
		return fmt.Errorf("add non-voter: %w: %w", ErrInvalidConfig, err)
	}
	if err := validatePeerAddr(addr); err != nil {
		return fmt.Errorf("add non-voter %s: %w: %w", id, ErrInvalidConfig, err)
	}
	return n.retry(ctx, "add non-voter "+id, func(ctx context.Context) error {
		_, _, err := n.exec(ctx, fwdRequest{op: opAddNonvoter, id: id, addr: addr})
		return err
	})
}

// Promote makes the non-voter id a voter, at its current address.
func (n *Node) Promote(ctx context.Context, id string) error {
	peers, err := n.Peers()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(peers, func(p PeerInfo) bool { return p.ID == id })
	if i < 0 {
		return fmt.Errorf("promote %s: %w", id, ErrUnknownPeer)
	}
	return n.AddVoter(ctx, id, peers[i].Addr)
}

// HasMember reports whether id is in the latest configuration, and as
// what (Voter, Nonvoter).
func (n *Node) HasMember(id string) (suffrage string, ok bool) {
	peers, err := n.Peers()
	if err != nil {
		return "", false
	}
	for _, p := range peers {
		if p.ID == id {
			return p.Suffrage, true
		}
	}
	return "", false
}

// ValidatePeer checks a member's id and Raft address (host:port), naming
// the field in the error.
func ValidatePeer(id, addr string) error {
	if err := validateID(id); err != nil {
		return fmt.Errorf("id: %w", err)
	}
	if err := validatePeerAddr(addr); err != nil {
		return fmt.Errorf("address: %w", err)
	}
	return nil
}

// dnssecKeys is what the status probe says of the node's DNSSEC keys.
type dnssecKeys struct {
	summary string
	ids     []string
}

// SetDNSSECKeys replaces what the status probe says of this node's DNSSEC
// keys (Config.DNSSECKeys, Config.DNSSECKeyIDs), after a reload.
func (n *Node) SetDNSSECKeys(summary string, ids []string) {
	n.dnssec.Store(&dnssecKeys{summary: summary, ids: slices.Clone(ids)})
}
