package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/evac-sh/evac/controlplane/api"
)

// The membership types are the API's own, so client and server cannot
// drift apart.
type (
	// Peer is an element of GET /v1/cluster/peers.
	Peer = api.Peer
	// JoinRequest is the body of POST /v1/cluster/join.
	JoinRequest = api.JoinRequest
	// MembershipRequest is the body of promote and remove.
	MembershipRequest = api.MembershipRequest
	// MembershipResult answers a membership change.
	MembershipResult = api.MembershipResult
)

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
