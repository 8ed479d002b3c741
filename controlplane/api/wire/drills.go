package wire

import (
	"time"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/runbooks"
)

// Runbook is an element of GET /v1/runbooks and the body of
// GET /v1/runbooks/{name} (which adds the source and history).
type Runbook struct {
	Name          string                    `json:"name"`
	Description   string                    `json:"description,omitempty"`
	Version       uint64                    `json:"version"`
	Time          time.Time                 `json:"time"`
	Actor         string                    `json:"actor"`
	Params        map[string]runbooks.Param `json:"params"`
	Preconditions []string                  `json:"preconditions"`
	Steps         int                       `json:"steps"`
	Source        string                    `json:"source,omitempty"`
	History       []RunbookVersion          `json:"history,omitempty"`
}

// RunbookVersion is an earlier version in GET /v1/runbooks/{name}.
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

// DrillReport is GET /v1/drills/{id}: the replicated drill, each step with
// its description, and the held regions' weights now.
type DrillReport struct {
	state.Drill
	Steps []StepReport `json:"steps"`
	// Weights are the held regions' current weights on this controller.
	Weights map[string]int `json:"weights"`
	// DrainSummary condenses the drill's drain reports, for comparing runs.
	DrainSummary *state.DrainSummary `json:"drain_summary,omitempty"`
	// Timeline is every region's weight over the drill, from the audit
	// log (GET /v1/drills/{id} only); TimelineComplete is false when the
	// log no longer reaches back to the drill's start.
	Timeline         []state.WeightPoint `json:"timeline,omitempty"`
	TimelineComplete bool                `json:"timeline_complete,omitempty"`
}

// StepReport is one step of a drill report.
type StepReport struct {
	Index       int    `json:"index"`
	Description string `json:"description"`
	state.StepRecord
}

// ScheduleReport is a schedule with its next due times.
type ScheduleReport struct {
	state.Schedule
	Next []time.Time `json:"next,omitempty"`
}

// AbortRequest is the body of POST /v1/drills/{id}/abort (optional).
type AbortRequest struct {
	Reason string `json:"reason"`
}
