package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
)

// Status returns GET /v1/status.
func (c *Client) Status(ctx context.Context) (wire.Status, error) {
	var s wire.Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, "", &s)
	return s, err
}

// Regions returns GET /v1/regions, in config order.
func (c *Client) Regions(ctx context.Context) ([]wire.Region, error) {
	var rs []wire.Region
	err := c.do(ctx, http.MethodGet, "/v1/regions", nil, "", &rs)
	return rs, err
}

// Region returns GET /v1/regions/{name}.
func (c *Client) Region(ctx context.Context, name string) (wire.Region, error) {
	var r wire.Region
	err := c.do(ctx, http.MethodGet, "/v1/regions/"+url.PathEscape(name), nil, "", &r)
	return r, err
}

// Services returns GET /v1/services.
func (c *Client) Services(ctx context.Context) ([]wire.Service, error) {
	var ss []wire.Service
	err := c.do(ctx, http.MethodGet, "/v1/services", nil, "", &ss)
	return ss, err
}

// Members returns GET /v1/members.
func (c *Client) Members(ctx context.Context) ([]wire.Member, error) {
	var ms []wire.Member
	err := c.do(ctx, http.MethodGet, "/v1/members", nil, "", &ms)
	return ms, err
}

// Config returns GET /v1/config: the current steering config and its version.
func (c *Client) Config(ctx context.Context) (wire.ConfigInfo, error) {
	var ci wire.ConfigInfo
	err := c.do(ctx, http.MethodGet, "/v1/config", nil, "", &ci)
	return ci, err
}

// ApplyConfig sends PUT /v1/config with body, a steering config in YAML or
// JSON; contentType is e.g. "application/yaml" (the default when empty) or
// "application/json".
func (c *Client) ApplyConfig(ctx context.Context, body []byte, contentType string) (wire.WriteResult, error) {
	if contentType == "" {
		contentType = "application/yaml"
	}
	var wr wire.WriteResult
	err := c.do(ctx, http.MethodPut, "/v1/config", body, contentType, &wr)
	return wr, err
}

// Evacuate sends POST /v1/regions/{region}/evacuate.
func (c *Client) Evacuate(ctx context.Context, region string, req wire.MoveRequest) (wire.WriteResult, error) {
	var wr wire.WriteResult
	err := c.Do(ctx, http.MethodPost, "/v1/regions/"+url.PathEscape(region)+"/evacuate", req, &wr)
	return wr, err
}

// Restore sends POST /v1/regions/{region}/restore.
func (c *Client) Restore(ctx context.Context, region string, req wire.MoveRequest) (wire.WriteResult, error) {
	var wr wire.WriteResult
	err := c.Do(ctx, http.MethodPost, "/v1/regions/"+url.PathEscape(region)+"/restore", req, &wr)
	return wr, err
}

// Freeze sends POST /v1/freeze: automatic changes stop until Unfreeze.
func (c *Client) Freeze(ctx context.Context, reason string) (wire.WriteResult, error) {
	var wr wire.WriteResult
	err := c.Do(ctx, http.MethodPost, "/v1/freeze", wire.FreezeRequest{Reason: reason}, &wr)
	return wr, err
}

// Unfreeze sends POST /v1/unfreeze.
func (c *Client) Unfreeze(ctx context.Context, reason string) (wire.WriteResult, error) {
	var wr wire.WriteResult
	err := c.Do(ctx, http.MethodPost, "/v1/unfreeze", wire.FreezeRequest{Reason: reason}, &wr)
	return wr, err
}

// Events returns GET /v1/events: up to limit audit events with a sequence
// number above since, oldest first. limit <= 0 leaves it to the server.
func (c *Client) Events(ctx context.Context, since uint64, limit int) ([]state.Event, error) {
	q := url.Values{}
	q.Set("since", strconv.FormatUint(since, 10))
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var evs []state.Event
	err := c.do(ctx, http.MethodGet, "/v1/events?"+q.Encode(), nil, "", &evs)
	return evs, err
}

// DevFail sends POST /v1/dev/regions/{region}/fail (`evac dev` only): the
// region's demo backend starts failing its health check.
func (c *Client) DevFail(ctx context.Context, region string) error {
	return c.Do(ctx, http.MethodPost, "/v1/dev/regions/"+url.PathEscape(region)+"/fail", nil, nil)
}

// DevHeal sends POST /v1/dev/regions/{region}/heal (`evac dev` only).
func (c *Client) DevHeal(ctx context.Context, region string) error {
	return c.Do(ctx, http.MethodPost, "/v1/dev/regions/"+url.PathEscape(region)+"/heal", nil, nil)
}

// Healthz sends GET /healthz; nil means the process serves HTTP.
func (c *Client) Healthz(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, "", nil)
}

// Readyz asks whether the controller can serve: a leader is known and a
// steering config is applied.
func (c *Client) Readyz(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, "", nil)
}
