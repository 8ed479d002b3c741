package client

import (
	"context"
	"net/http"
	"net/url"
)

// Peer is an element of GET /v1/cluster/peers (api.Peer on the wire).
type Peer struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	// Suffrage is voter or nonvoter.
	Suffrage     string `json:"suffrage"`
	Leader       bool   `json:"leader"`
	AppliedIndex uint64 `json:"applied_index"`
	// Reachable: it answered a status probe over its Raft port; Healthy:
	// also within 1024 log entries of the most advanced member.
	Reachable bool   `json:"reachable"`
	Healthy   bool   `json:"healthy"`
	Error     string `json:"error,omitempty"`
}

// JoinRequest is the body of POST /v1/cluster/join (api.JoinRequest).
type JoinRequest struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	// Voter: nil or true joins as a voter, false as a non-voter.
	Voter  *bool  `json:"voter,omitempty"`
	Force  bool   `json:"force,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// MembershipRequest is the body of promote and remove
// (api.MembershipRequest).
type MembershipRequest struct {
	Force  bool   `json:"force,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// MembershipResult answers a membership change (api.MembershipResult).
type MembershipResult struct {
	Changed    bool   `json:"changed"`
	Event      uint64 `json:"event,omitempty"`
	AuditError string `json:"audit_error,omitempty"`
	Peers      []Peer `json:"peers"`
}

// CodeBelowQuorum is the error code of a membership change refused because
// it would leave the cluster below quorum (HTTP 409); Force overrides.
const CodeBelowQuorum = "below_quorum"

// Peers returns GET /v1/cluster/peers: the Raft members, each probed.
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	var ps []Peer
	err := c.do(ctx, http.MethodGet, "/v1/cluster/peers", nil, "", &ps)
	return ps, err
}

// Join sends POST /v1/cluster/join: adds a voter or a non-voter (or changes
// a member's address). Joining as what one already is changes nothing.
func (c *Client) Join(ctx context.Context, req JoinRequest) (MembershipResult, error) {
	var res MembershipResult
	err := c.Do(ctx, http.MethodPost, "/v1/cluster/join", req, &res)
	return res, err
}

// Promote sends POST /v1/cluster/peers/{id}/promote: a non-voter becomes a
// voter.
func (c *Client) Promote(ctx context.Context, id string, req MembershipRequest) (MembershipResult, error) {
	var res MembershipResult
	err := c.Do(ctx, http.MethodPost, "/v1/cluster/peers/"+url.PathEscape(id)+"/promote", req, &res)
	return res, err
}

// RemovePeer sends DELETE /v1/cluster/peers/{id}.
func (c *Client) RemovePeer(ctx context.Context, id string, req MembershipRequest) (MembershipResult, error) {
	var res MembershipResult
	err := c.Do(ctx, http.MethodDelete, "/v1/cluster/peers/"+url.PathEscape(id), req, &res)
	return res, err
}
