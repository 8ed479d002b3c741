package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
)

// PutRunbook sends PUT /v1/runbooks/{name} with the runbook's YAML.
func (c *Client) PutRunbook(ctx context.Context, name string, yaml []byte) (wire.WriteResult, error) {
	var wr wire.WriteResult
	err := c.do(ctx, http.MethodPut, "/v1/runbooks/"+url.PathEscape(name), yaml, "application/yaml", &wr)
	return wr, err
}

// Runbooks returns GET /v1/runbooks.
func (c *Client) Runbooks(ctx context.Context) ([]wire.Runbook, error) {
	var out []wire.Runbook
	err := c.do(ctx, http.MethodGet, "/v1/runbooks", nil, "", &out)
	return out, err
}

// Runbook returns GET /v1/runbooks/{name}.
func (c *Client) Runbook(ctx context.Context, name string) (wire.Runbook, error) {
	var out wire.Runbook
	err := c.do(ctx, http.MethodGet, "/v1/runbooks/"+url.PathEscape(name), nil, "", &out)
	return out, err
}

// DeleteRunbook sends DELETE /v1/runbooks/{name}.
func (c *Client) DeleteRunbook(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/runbooks/"+url.PathEscape(name), nil, nil)
}

// StartDrill sends POST /v1/drills.
func (c *Client) StartDrill(ctx context.Context, req wire.DrillRequest) (wire.DrillReport, error) {
	var d wire.DrillReport
	err := c.Do(ctx, http.MethodPost, "/v1/drills", req, &d)
	return d, err
}

// Drills returns GET /v1/drills, newest first.
func (c *Client) Drills(ctx context.Context) ([]wire.DrillReport, error) {
	var out []wire.DrillReport
	err := c.do(ctx, http.MethodGet, "/v1/drills", nil, "", &out)
	return out, err
}

// Drill returns GET /v1/drills/{id}.
func (c *Client) Drill(ctx context.Context, id string) (wire.DrillReport, error) {
	var d wire.DrillReport
	err := c.do(ctx, http.MethodGet, "/v1/drills/"+url.PathEscape(id), nil, "", &d)
	return d, err
}

// AbortDrill sends POST /v1/drills/{id}/abort; an empty reason is recorded
// as "no reason given".
func (c *Client) AbortDrill(ctx context.Context, id, reason string) (wire.DrillReport, error) {
	var d wire.DrillReport
	err := c.Do(ctx, http.MethodPost, "/v1/drills/"+url.PathEscape(id)+"/abort", wire.AbortRequest{Reason: reason}, &d)
	return d, err
}

// AddSchedule sends POST /v1/schedules; an empty ID is chosen by the server.
func (c *Client) AddSchedule(ctx context.Context, req state.ScheduleAdd) (wire.ScheduleReport, error) {
	var sc wire.ScheduleReport
	err := c.Do(ctx, http.MethodPost, "/v1/schedules", req, &sc)
	return sc, err
}

// Schedules returns GET /v1/schedules.
func (c *Client) Schedules(ctx context.Context) ([]wire.ScheduleReport, error) {
	var out []wire.ScheduleReport
	err := c.do(ctx, http.MethodGet, "/v1/schedules", nil, "", &out)
	return out, err
}

// Schedule returns GET /v1/schedules/{id}.
func (c *Client) Schedule(ctx context.Context, id string) (wire.ScheduleReport, error) {
	var sc wire.ScheduleReport
	err := c.do(ctx, http.MethodGet, "/v1/schedules/"+url.PathEscape(id), nil, "", &sc)
	return sc, err
}

// RemoveSchedule sends DELETE /v1/schedules/{id}.
func (c *Client) RemoveSchedule(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/schedules/"+url.PathEscape(id), nil, nil)
}
