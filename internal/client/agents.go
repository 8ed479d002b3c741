package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/evac-sh/evac/controlplane/api/wire"
)

// Agents returns GET /v1/agents.
func (c *Client) Agents(ctx context.Context) (wire.Agents, error) {
	var out wire.Agents
	err := c.do(ctx, http.MethodGet, "/v1/agents", nil, "", &out)
	return out, err
}

// EnrollAgent sends PUT /v1/agents/{name}.
func (c *Client) EnrollAgent(ctx context.Context, name string, req wire.EnrollRequest) (wire.WriteResult, error) {
	var wr wire.WriteResult
	err := c.Do(ctx, http.MethodPut, "/v1/agents/"+url.PathEscape(name), req, &wr)
	return wr, err
}

// RevokeAgent sends DELETE /v1/agents/{name}.
func (c *Client) RevokeAgent(ctx context.Context, name, reason string) (wire.WriteResult, error) {
	var wr wire.WriteResult
	var body any
	if reason != "" {
		body = wire.RevokeRequest{Reason: reason}
	}
	err := c.Do(ctx, http.MethodDelete, "/v1/agents/"+url.PathEscape(name), body, &wr)
	return wr, err
}
