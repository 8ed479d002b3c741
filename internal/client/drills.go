package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/runbooks"
)

// Runbook is an element of GET /v1/runbooks; GET /v1/runbooks/{name} adds
// Source and History.
type Runbook struct {
	Name          string                    `json:"name"`
	Description   string                    `json:"description"`
	Version       uint64                    `json:"version"`
	Time          time.Time                 `json:"time"`
	Actor         string                    `json:"actor"`
	Params        map[string]runbooks.Param `json:"params"`
	Preconditions []string                  `json:"preconditions"`
	Steps         int                       `json:"steps"`
	Source        string                    `json:"source"`
	History       []RunbookVersion          `json:"history"`
}

// RunbookVersion is an earlier version of a runbook.
type RunbookVersion struct {
	Version uint64    `json:"version"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
}

// DrillRequest is the body of POST /v1/drills.
type DrillRequest struct {
	Runbook string            `json:"runbook"`
	Params  map[string]string `json:"params,omitempty"`
	Reason  string            `json:"reason,omitempty"`
	// BlockOn are conditions that abort the drill while they fire.
	BlockOn []state.Blocker `json:"block_on,omitempty"`
}

// Drill is GET /v1/drills/{id}: the drill's steps with their start and end
// times and outcomes, the held regions' weights before, after and now.
type Drill struct {
	state.Drill
	Steps   []DrillStep    `json:"steps"`
	Weights map[string]int `json:"weights"`
	// DrainSummary is the worst of the drill's drain reports.
	DrainSummary *state.DrainSummary `json:"drain_summary,omitempty"`
	// Timeline is every region's weight over the drill (GET
	// /v1/drills/{id} only).
	Timeline         []state.WeightPoint `json:"timeline,omitempty"`
	TimelineComplete bool                `json:"timeline_complete,omitempty"`
}

// DrillStep is one step of a drill.
type DrillStep struct {
	Index       int    `json:"index"`
	Description string `json:"description"`
	state.StepRecord
}

// Schedule is an element of GET /v1/schedules: the schedule, its recent runs
// and its next due times.
type Schedule struct {
	state.Schedule
	Next []time.Time `json:"next"`
}

// PutRunbook sends PUT /v1/runbooks/{name} with the runbook's YAML.
func (c *Client) PutRunbook(ctx context.Context, name string, yaml []byte) (WriteResult, error) {
	var wr WriteResult
	err := c.do(ctx, http.MethodPut, "/v1/runbooks/"+url.PathEscape(name), yaml, "application/yaml", &wr)
	return wr, err
}

// Runbooks returns GET /v1/runbooks.
func (c *Client) Runbooks(ctx context.Context) ([]Runbook, error) {
	var out []Runbook
	err := c.do(ctx, http.MethodGet, "/v1/runbooks", nil, "", &out)
	return out, err
}

// Runbook returns GET /v1/runbooks/{name}.
func (c *Client) Runbook(ctx context.Context, name string) (Runbook, error) {
	var out Runbook
	err := c.do(ctx, http.MethodGet, "/v1/runbooks/"+url.PathEscape(name), nil, "", &out)
	return out, err
}

// DeleteRunbook sends DELETE /v1/runbooks/{name}.
func (c *Client) DeleteRunbook(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/runbooks/"+url.PathEscape(name), nil, nil)
}

// StartDrill sends POST /v1/drills.
func (c *Client) StartDrill(ctx context.Context, req DrillRequest) (Drill, error) {
	var d Drill
	err := c.Do(ctx, http.MethodPost, "/v1/drills", req, &d)
	return d, err
}

// Drills returns GET /v1/drills, newest first.
func (c *Client) Drills(ctx context.Context) ([]Drill, error) {
	var out []Drill
	err := c.do(ctx, http.MethodGet, "/v1/drills", nil, "", &out)
	return out, err
}

// Drill returns GET /v1/drills/{id}.
func (c *Client) Drill(ctx context.Context, id string) (Drill, error) {
	var d Drill
	err := c.do(ctx, http.MethodGet, "/v1/drills/"+url.PathEscape(id), nil, "", &d)
	return d, err
}

// AbortDrill sends POST /v1/drills/{id}/abort; an empty reason is recorded
// as "no reason given".
func (c *Client) AbortDrill(ctx context.Context, id, reason string) (Drill, error) {
	var d Drill
	err := c.Do(ctx, http.MethodPost, "/v1/drills/"+url.PathEscape(id)+"/abort", reasonBody{reason}, &d)
	return d, err
}

// AddSchedule sends POST /v1/schedules; an empty ID is chosen by the server.
func (c *Client) AddSchedule(ctx context.Context, req state.ScheduleAdd) (Schedule, error) {
	var sc Schedule
	err := c.Do(ctx, http.MethodPost, "/v1/schedules", req, &sc)
	return sc, err
}

// Schedules returns GET /v1/schedules.
func (c *Client) Schedules(ctx context.Context) ([]Schedule, error) {
	var out []Schedule
	err := c.do(ctx, http.MethodGet, "/v1/schedules", nil, "", &out)
	return out, err
}

// Schedule returns GET /v1/schedules/{id}.
func (c *Client) Schedule(ctx context.Context, id string) (Schedule, error) {
	var sc Schedule
	err := c.do(ctx, http.MethodGet, "/v1/schedules/"+url.PathEscape(id), nil, "", &sc)
	return sc, err
}

// RemoveSchedule sends DELETE /v1/schedules/{id}.
func (c *Client) RemoveSchedule(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/schedules/"+url.PathEscape(id), nil, nil)
}
