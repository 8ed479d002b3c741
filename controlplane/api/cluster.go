package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/raftnode"
	"github.com/evac-sh/evac/controlplane/state"
)

// Cluster is the Raft membership the API manages; *raftnode.Node
// implements it.
type Cluster interface {
	// PeerStatuses lists the latest configuration, each member probed.
	PeerStatuses(ctx context.Context) ([]raftnode.PeerStatus, error)
	// CheckQuorum refuses (raftnode.ErrBelowQuorum) a change that would
	// leave fewer healthy voters than a majority.
	CheckQuorum(ctx context.Context, change raftnode.Change, addAddr string) error
	// RefuseEdgeVoter refuses (raftnode.ErrEdge) to make the server at
	// addr a voter if it says it is an edge replica.
	RefuseEdgeVoter(ctx context.Context, id, addr string) error
	AddVoter(ctx context.Context, id, addr string) error
	AddNonvoter(ctx context.Context, id, addr string) error
	Promote(ctx context.Context, id string) error
	RemoveServer(ctx context.Context, id string) error
}

// Audit event kinds of membership changes (recorded with CmdRecordEvent).
const (
	EventClusterJoin    = "cluster.join"
	EventClusterRemove  = "cluster.remove"
	EventClusterPromote = "cluster.promote"
)

// membershipTimeout bounds a membership change (probes, the change, the
// audit event).
const membershipTimeout = 20 * time.Second

func (s *server) clusterRoutes(v prefixed) {
	v.HandleFunc("/cluster/peers", s.clusterPeers).Methods(http.MethodGet)
	v.HandleFunc("/cluster/join", s.clusterJoin).Methods(http.MethodPost)
	v.HandleFunc("/cluster/peers/{id}", s.clusterRemove).Methods(http.MethodDelete)
	v.HandleFunc("/cluster/peers/{id}/promote", s.clusterPromote).Methods(http.MethodPost)
}

// errNoCluster: the handler was built without Options.Cluster.
var errNoCluster = errors.New("this server does not manage Raft membership")

func (s *server) peers(ctx context.Context) ([]wire.Peer, error) {
	if s.opts.Cluster == nil {
		return nil, errNoCluster
	}
	sts, err := s.opts.Cluster.PeerStatuses(ctx)
	if err != nil {
		return nil, err
	}
	var commit uint64
	for _, p := range sts {
		if p.Reachable {
			commit = max(commit, p.Status.CommitIndex)
		}
	}
	out := make([]wire.Peer, 0, len(sts))
	for _, p := range sts {
		suffrage := strings.ToLower(p.Suffrage)
		peer := wire.Peer{ID: p.ID, Address: p.Addr, Suffrage: suffrage, Role: suffrage, Leader: p.Leader,
			AppliedIndex: p.Status.AppliedIndex, Reachable: p.Reachable, Healthy: p.Healthy, Error: p.Err}
		if p.Reachable {
			lag := commit - min(commit, p.Status.AppliedIndex)
			peer.Lag = &lag
			if p.Status.Edge {
				peer.Role = wire.RoleEdge
			}
		}
		out = append(out, peer)
	}
	return out, nil
}

func (s *server) clusterPeers(w http.ResponseWriter, r *http.Request) {
	ps, err := s.peers(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, wire.CodeUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ps)
}

func findPeer(ps []wire.Peer, id string) (wire.Peer, bool) {
	for _, p := range ps {
		if p.ID == id {
			return p, true
		}
	}
	return wire.Peer{}, false
}

func (s *server) clusterJoin(w http.ResponseWriter, r *http.Request) {
	var req wire.JoinRequest
	if err := decodeStrict(w, r, &req, false); err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	if !validReason(w, req.Reason, false) {
		return
	}
	voter := req.Voter == nil || *req.Voter
	if err := validMember(req.ID, req.Address); err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), membershipTimeout)
	defer cancel()
	ps, err := s.peers(ctx)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, wire.CodeUnavailable, err.Error())
		return
	}
	for _, p := range ps {
		if p.Address == req.Address && p.ID != req.ID {
			writeError(w, http.StatusConflict, state.CodeConflict,
				fmt.Sprintf("address: %s is member %s's address (remove %s first)", req.Address, p.ID, p.ID))
			return
		}
	}
	want := "nonvoter"
	if voter {
		want = "voter"
	}
	if cur, ok := findPeer(ps, req.ID); ok {
		switch {
		case cur.Address == req.Address && cur.Suffrage == want:
			writeJSON(w, http.StatusOK, wire.MembershipResult{Peers: ps}) // already so: a retried join
			return
		case cur.Suffrage == "voter" && !voter:
			writeError(w, http.StatusConflict, state.CodeConflict,
				fmt.Sprintf("id: %s is a voter; to make it a non-voter, remove it and join it again", req.ID))
			return
		}
	}
	if voter {
		// Force skips the quorum check, never this one.
		if err := s.opts.Cluster.RefuseEdgeVoter(ctx, req.ID, req.Address); err != nil {
			s.membershipFailed(w, err)
			return
		}
	}
	if voter && !req.Force {
		if err := s.opts.Cluster.CheckQuorum(ctx, raftnode.Change{AddVoter: req.ID}, req.Address); err != nil {
			s.membershipFailed(w, err)
			return
		}
	}
	if voter {
		err = s.opts.Cluster.AddVoter(ctx, req.ID, req.Address)
	} else {
		err = s.opts.Cluster.AddNonvoter(ctx, req.ID, req.Address)
	}
	if err != nil {
		s.membershipFailed(w, err)
		return
	}
	s.membershipDone(ctx, w, r, EventClusterJoin, req.Reason,
		fmt.Sprintf("%s at %s joined as %s%s", req.ID, req.Address, want, forced(req.Force)))
}

func (s *server) clusterPromote(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	var req wire.MembershipRequest
	if err := decodeStrict(w, r, &req, true); err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	if !validReason(w, req.Reason, false) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), membershipTimeout)
	defer cancel()
	ps, err := s.peers(ctx)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, wire.CodeUnavailable, err.Error())
		return
	}
	cur, ok := findPeer(ps, id)
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, state.CodeNotFound, fmt.Sprintf("no member %q", id))
		return
	case cur.Suffrage == "voter":
		writeJSON(w, http.StatusOK, wire.MembershipResult{Peers: ps})
		return
	case cur.Role == wire.RoleEdge:
		s.membershipFailed(w, fmt.Errorf("%w: %s at %s runs with --edge; to make it a voter, remove it, restart it without --edge and join it again", raftnode.ErrEdge, id, cur.Address))
		return
	}
	if !req.Force {
		if err := s.opts.Cluster.CheckQuorum(ctx, raftnode.Change{AddVoter: id}, cur.Address); err != nil {
			s.membershipFailed(w, err)
			return
		}
	}
	if err := s.opts.Cluster.Promote(ctx, id); err != nil {
		s.membershipFailed(w, err)
		return
	}
	s.membershipDone(ctx, w, r, EventClusterPromote, req.Reason, fmt.Sprintf("%s at %s promoted to voter%s", id, cur.Address, forced(req.Force)))
}

func (s *server) clusterRemove(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	var req wire.MembershipRequest
	if err := decodeStrict(w, r, &req, true); err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	q := r.URL.Query()
	if v := q.Get("force"); v != "" {
		f, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, state.CodeInvalid, fmt.Sprintf("force: %q is not a boolean", v))
			return
		}
		req.Force = req.Force || f
	}
	if v := q.Get("reason"); v != "" && req.Reason == "" {
		req.Reason = v
	}
	if !validReason(w, req.Reason, false) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), membershipTimeout)
	defer cancel()
	ps, err := s.peers(ctx)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, wire.CodeUnavailable, err.Error())
		return
	}
	cur, ok := findPeer(ps, id)
	if !ok {
		writeError(w, http.StatusNotFound, state.CodeNotFound, fmt.Sprintf("no member %q", id))
		return
	}
	if cur.Suffrage == "voter" && !req.Force {
		if err := s.opts.Cluster.CheckQuorum(ctx, raftnode.Change{RemoveID: id}, ""); err != nil {
			s.membershipFailed(w, err)
			return
		}
	}
	if err := s.opts.Cluster.RemoveServer(ctx, id); err != nil {
		s.membershipFailed(w, err)
		return
	}
	s.membershipDone(ctx, w, r, EventClusterRemove, req.Reason, fmt.Sprintf("%s at %s (%s) removed%s", id, cur.Address, cur.Suffrage, forced(req.Force)))
}

func forced(f bool) string {
	if f {
		return " (forced past the quorum check)"
	}
	return ""
}

// validMember checks a joining member's id and Raft address, naming the
// field.
func validMember(id, addr string) error {
	return raftnode.ValidatePeer(id, addr)
}

// membershipFailed answers a refused or failed membership change.
func (s *server) membershipFailed(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, raftnode.ErrBelowQuorum):
		writeError(w, http.StatusConflict, wire.CodeBelowQuorum, err.Error()+"; force overrides")
	case errors.Is(err, raftnode.ErrEdge):
		writeError(w, http.StatusConflict, wire.CodeEdge, err.Error())
	case errors.Is(err, raftnode.ErrUnknownPeer):
		writeError(w, http.StatusNotFound, state.CodeNotFound, err.Error())
	case errors.Is(err, raftnode.ErrInvalidConfig):
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
	default:
		s.proposeFailed(w, state.CmdRecordEvent, err)
	}
}

// membershipDone records the change in the audit log, naming the actor, and
// answers with the new membership.
func (s *server) membershipDone(ctx context.Context, w http.ResponseWriter, r *http.Request, kind, reason, detail string) {
	out := wire.MembershipResult{Changed: true}
	id, err := requestID(r, state.CmdRecordEvent)
	if err == nil {
		var res state.Result
		res, err = s.b.Propose(ctx, state.CmdRecordEvent, actor(r), id, state.RecordEvent{Kind: kind, Reason: reason, Detail: detail})
		if err == nil && res.Error != "" {
			err = errors.New(res.Error)
		}
		if err == nil && len(res.Events) > 0 {
			out.Event = res.Events[0]
			_ = s.b.WaitApplied(ctx, res.Index)
		}
	}
	if err != nil {
		s.logger.Warn("membership changed but its audit event was not recorded", zap.String("kind", kind), zap.String("detail", detail), zap.Error(err))
		out.AuditError = err.Error()
	}
	if out.Peers, err = s.peers(ctx); err != nil {
		out.Peers = []wire.Peer{}
	}
	writeJSON(w, http.StatusOK, out)
}
