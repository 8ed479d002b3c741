package state

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/evac-sh/evac/runbooks"
)

// maxRunbookHistory is how many earlier versions of a runbook are kept.
const maxRunbookHistory = 10

// maxRunbookSource caps a runbook's YAML.
const maxRunbookSource = 256 << 10

// RunbookRecord is a stored runbook: its current source and earlier versions.
type RunbookRecord struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Version     uint64    `json:"version"`
	Source      string    `json:"source"`
	Index       uint64    `json:"index"`
	Time        time.Time `json:"time"`
	Actor       string    `json:"actor"`
	// History holds the previous versions, oldest first.
	History []RunbookVersion `json:"history,omitempty"`
}

// RunbookVersion is one earlier version of a runbook.
type RunbookVersion struct {
	Version uint64    `json:"version"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Source  string    `json:"source"`
}

// Event kinds of runbooks, drills and schedules.
const (
	EventRunbookPut      = "runbook.put"
	EventRunbookDeleted  = "runbook.deleted"
	EventDrillStart      = "drill.start"
	EventDrillStepStart  = "drill.step.start"
	EventDrillStepEnd    = "drill.step.end"
	EventDrillNotify     = "drill.notify"
	EventDrillEnd        = "drill.end"
	EventScheduleAdded   = "schedule.added"
	EventScheduleRemoved = "schedule.removed"
	EventScheduleFired   = "schedule.fired"
	EventScheduleSkipped = "schedule.skipped"
	EventScheduleMissed  = "schedule.missed"
)

// RunbookNames returns the stored runbooks' names, sorted.
func (s *State) RunbookNames() []string {
	names := make([]string, 0, len(s.Runbooks))
	for n := range s.Runbooks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Parse parses a stored runbook's source with this release's parser (for
// the API and the leader; Apply never parses).
func (r RunbookRecord) Parse() (*runbooks.Runbook, error) {
	return runbooks.Parse(r.Name+".yaml", []byte(r.Source))
}

// PreparePutRunbook parses a runbook's source (file names it in errors)
// and returns the command that stores it, carrying what Apply records.
func PreparePutRunbook(file string, source []byte) (PutRunbook, *runbooks.Runbook, error) {
	if len(source) > maxRunbookSource {
		return PutRunbook{}, nil, fmt.Errorf("runbook is larger than %d bytes", maxRunbookSource)
	}
	rb, err := runbooks.Parse(file, source)
	if err != nil {
		return PutRunbook{}, nil, err
	}
	return PutRunbook{Source: string(source), Prepared: true, Name: rb.Name, Description: rb.Description,
		Steps: len(rb.Steps)}, rb, nil
}

func (a *applier) putRunbook(b PutRunbook) *refusal {
	if len(b.Source) > maxRunbookSource {
		return refuse(CodeInvalid, "runbook is larger than %d bytes", maxRunbookSource)
	}
	if !b.Prepared {
		// Written by aa66dac or earlier: parse as that release did.
		rb, err := legacyParseRunbook("runbook.yaml", b.Source)
		if err != nil {
			return refuse(CodeInvalid, "invalid runbook:\n%v", err)
		}
		b.Name, b.Description, b.Steps = rb.Name, rb.Description, len(rb.Steps)
	}
	if b.Name == "" {
		return refuse(CodeInvalid, "runbook name is required")
	}
	return a.storeRunbook(b)
}

func (a *applier) storeRunbook(b PutRunbook) *refusal {
	old, exists := a.s.Runbooks[b.Name]
	if exists && old.Source == b.Source {
		return nil // the same version again: nothing to record
	}
	rec := RunbookRecord{Name: b.Name, Description: b.Description, Version: 1, Source: b.Source,
		Index: a.index, Time: a.cmd.Time, Actor: a.cmd.Actor}
	if exists {
		rec.Version = old.Version + 1
		rec.History = append(slices.Clone(old.History),
			RunbookVersion{Version: old.Version, Time: old.Time, Actor: old.Actor, Source: old.Source})
		if len(rec.History) > maxRunbookHistory {
			rec.History = rec.History[len(rec.History)-maxRunbookHistory:]
		}
	}
	m := maps.Clone(a.s.Runbooks)
	if m == nil {
		m = map[string]RunbookRecord{}
	}
	m[b.Name] = rec
	a.s.Runbooks = m
	a.event(Event{Kind: EventRunbookPut, Detail: fmt.Sprintf("%s version %d, %d steps", b.Name, rec.Version, b.Steps)})
	return nil
}

func (a *applier) deleteRunbook(b DeleteRunbook) *refusal {
	if _, ok := a.s.Runbooks[b.Name]; !ok {
		return refuse(CodeNotFound, "no runbook %q", b.Name)
	}
	for _, id := range a.s.ScheduleIDs() {
		if sc := a.s.Schedules[id]; sc.Runbook == b.Name {
			return refuse(CodeConflict, "schedule %s runs runbook %s: remove the schedule first", id, b.Name)
		}
	}
	m := maps.Clone(a.s.Runbooks)
	delete(m, b.Name)
	a.s.Runbooks = m
	a.event(Event{Kind: EventRunbookDeleted, Detail: b.Name})
	return nil
}
