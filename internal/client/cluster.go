package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/evac-sh/evac/controlplane/api/wire"
)

// Peers returns GET /v1/cluster/peers: the Raft members, each probed.
func (c *Client) Peers(ctx context.Context) ([]wire.Peer, error) {
	var ps []wire.Peer
	err := c.do(ctx, http.MethodGet, "/v1/cluster/peers", nil, "", &ps)
	return ps, err
}

// Join sends POST /v1/cluster/join: adds a voter or a non-voter (or changes
// a member's address). Joining as what one already is changes nothing.
func (c *Client) Join(ctx context.Context, req wire.JoinRequest) (wire.MembershipResult, error) {
	var res wire.MembershipResult
	err := c.Do(ctx, http.MethodPost, "/v1/cluster/join", req, &res)
	return res, err
}

// Promote sends POST /v1/cluster/peers/{id}/promote: a non-voter becomes a
// voter.
func (c *Client) Promote(ctx context.Context, id string, req wire.MembershipRequest) (wire.MembershipResult, error) {
	var res wire.MembershipResult
	err := c.Do(ctx, http.MethodPost, "/v1/cluster/peers/"+url.PathEscape(id)+"/promote", req, &res)
	return res, err
}

// RemovePeer sends DELETE /v1/cluster/peers/{id}.
func (c *Client) RemovePeer(ctx context.Context, id string, req wire.MembershipRequest) (wire.MembershipResult, error) {
	var res wire.MembershipResult
	err := c.Do(ctx, http.MethodDelete, "/v1/cluster/peers/"+url.PathEscape(id), req, &res)
	return res, err
}
