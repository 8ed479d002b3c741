package state

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/evac-sh/evac/runbooks"
)

// Drill statuses.
const (
	DrillRunning   = "running"
	DrillSucceeded = "succeeded"
	DrillAborted   = "aborted"   // by an operator or a failed gate
	DrillPreempted = "preempted" // by an automatic evacuation of one of its regions
	DrillFailed    = "failed"    // a step could not be carried out
)

// Step phases and outcomes.
const (
	PhaseStart  = "start"
	PhaseEnd    = "end"
	OutcomePass = "pass"
	OutcomeFail = "fail"
	OutcomeDone = "done"
)

// maxFinishedDrills is how many finished drills the state keeps.
const maxFinishedDrills = 100

// Drill is one run of a runbook, replicated: each step's start and end are
// Raft commands, so a new leader carries on from the current step.
type Drill struct {
	ID             string            `json:"id"`
	Runbook        string            `json:"runbook"`
	RunbookVersion uint64            `json:"runbook_version"`
	Params         map[string]string `json:"params,omitempty"`
	Reason         string            `json:"reason,omitempty"`
	Actor          string            `json:"actor"`
	// Schedule is the schedule that started the drill, if any.
	Schedule string `json:"schedule,omitempty"`
	Status   string `json:"status"`
	// Outcome says why the drill ended the way it did.
	Outcome string       `json:"outcome,omitempty"`
	Steps   []StepRecord `json:"steps"`
	// Current is the index of the step in progress (len(Steps) when done).
	Current int `json:"current"`
	// Regions are the regions the drill holds: those its steps change.
	Regions []string `json:"regions"`
	// Before are the held regions' weights when the drill started; After
	// their weights when it ended.
	Before    map[string]int `json:"before"`
	After     map[string]int `json:"after,omitempty"`
	StartedAt time.Time      `json:"started_at"`
	EndedAt   time.Time      `json:"ended_at,omitzero"`
	// Drain is what each controller's DNS server measured after each
	// weight change that lowered a held region (drain.go).
	Drain []DrainReport `json:"drain,omitempty"`
	// BlockOn are conditions that abort the drill while they fire (a
	// scheduled drill has its schedule's).
	BlockOn []Blocker `json:"block_on,omitempty"`
}

// StepRecord is a drill's rendered step and what happened to it.
type StepRecord struct {
	runbooks.Action
	StartedAt time.Time `json:"started_at,omitzero"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	Outcome   string    `json:"outcome,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	// PrevRestoredAt is the region's RestoredAt before a restore step: a
	// drill's restore does not start the hold-down that keeps automatic
	// evacuation away from a region restored after an incident.
	PrevRestoredAt time.Time `json:"prev_restored_at,omitzero"`
}

// Running reports whether the drill is still running.
func (d Drill) Running() bool { return d.Status == DrillRunning }

// DrillIDs returns the drills' ids, newest first.
func (s *State) DrillIDs() []string {
	ids := make([]string, 0, len(s.Drills))
	for id := range s.Drills {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := s.Drills[ids[i]], s.Drills[ids[j]]
		if !a.StartedAt.Equal(b.StartedAt) {
			return a.StartedAt.After(b.StartedAt)
		}
		return ids[i] > ids[j]
	})
	return ids
}

// DrillHolding returns the running drill that holds region, if any.
func (s *State) DrillHolding(region string) (Drill, bool) {
	for _, id := range s.DrillIDs() {
		if d := s.Drills[id]; d.Running() && slices.Contains(d.Regions, region) {
			return d, true
		}
	}
	return Drill{}, false
}

func (s *State) anyDrillRunning() (string, bool) {
	for _, id := range s.DrillIDs() {
		if s.Drills[id].Running() {
			return id, true
		}
	}
	return "", false
}

var drillIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,127}$`)

// putDrill stores d in a copy of the drills map, and drops the oldest
// finished drills past maxFinishedDrills.
func (a *applier) putDrill(d Drill) {
	m := maps.Clone(a.s.Drills)
	if m == nil {
		m = map[string]Drill{}
	}
	m[d.ID] = d
	var finished []Drill
	for _, x := range m {
		if !x.Running() {
			finished = append(finished, x)
		}
	}
	if len(finished) > maxFinishedDrills {
		sort.Slice(finished, func(i, j int) bool {
			if !finished[i].EndedAt.Equal(finished[j].EndedAt) {
				return finished[i].EndedAt.Before(finished[j].EndedAt)
			}
			return finished[i].ID < finished[j].ID
		})
		for _, x := range finished[:len(finished)-maxFinishedDrills] {
			delete(m, x.ID)
		}
	}
	a.s.Drills = m
}

func (a *applier) drillStart(b DrillStart) *refusal {
	d, err := a.newDrill(b, "")
	if err != nil {
		return err
	}
	a.beginDrill(d)
	return nil
}

// newDrill checks everything about starting a drill and builds it without
// changing the state: a refusal leaves nothing behind.
func (a *applier) newDrill(b DrillStart, schedule string) (Drill, *refusal) {
	if a.s.Config == nil {
		return Drill{}, refuse(CodeNoConfig, "no steering config has been applied")
	}
	if !drillIDRE.MatchString(b.ID) {
		return Drill{}, refuse(CodeInvalid, "drill id %q is not valid", b.ID)
	}
	if _, ok := a.s.Drills[b.ID]; ok {
		return Drill{}, refuse(CodeConflict, "drill %s already exists", b.ID)
	}
	rec, ok := a.s.Runbooks[b.Runbook]
	if !ok {
		return Drill{}, refuse(CodeNotFound, "no runbook %q", b.Runbook)
	}
	if !b.Prepared {
		// Written by aa66dac or earlier: render as that release did.
		var err *refusal
		if b, err = legacyPrepare(rec, b); err != nil {
			return Drill{}, err
		}
	} else if b.RunbookVersion != rec.Version {
		return Drill{}, refuse(CodeConflict, "runbook %s changed (version %d now, the drill was rendered from version %d): try again",
			b.Runbook, rec.Version, b.RunbookVersion)
	}
	acts := b.Steps
	if b.Prepared && len(acts) == 0 {
		return Drill{}, refuse(CodeInvalid, "drill %s has no steps", b.ID)
	}
	for i, act := range acts {
		if act.Region != "" && !a.s.Config.HasRegion(act.Region) {
			return Drill{}, refuse(CodeInvalid, "runbook %s: steps[%d].%s.region: unknown region %q", b.Runbook, i, act.Kind, act.Region)
		}
	}
	for _, pre := range b.Preconditions {
		if msg := a.precondition(pre); msg != "" {
			return Drill{}, refuse(CodeRule, "precondition %s: %s", pre, msg)
		}
	}
	held := heldRegions(acts)
	before := map[string]int{}
	for _, rn := range held {
		if other, ok := a.s.DrillHolding(rn); ok {
			return Drill{}, refuse(CodeConflict, "region %s is held by running drill %s", rn, other.ID)
		}
		r := a.s.Regions[rn]
		if r.Ramp != nil {
			return Drill{}, refuse(CodeConflict, "region %s has a %s ramp in progress", rn, r.Ramp.Kind)
		}
		before[rn] = r.Weight
	}
	steps := make([]StepRecord, len(acts))
	for i, act := range acts {
		steps[i] = StepRecord{Action: act}
	}
	return Drill{
		ID: b.ID, Runbook: b.Runbook, RunbookVersion: rec.Version, Params: b.Params, Reason: b.Reason,
		Actor: a.cmd.Actor, Schedule: schedule, Status: DrillRunning, Steps: steps, Regions: held,
		Before: before, StartedAt: a.cmd.Time, BlockOn: b.BlockOn,
	}, nil
}

// heldRegions returns the regions the steps change (shift and restore), in
// order of first appearance: the regions a drill holds.
func heldRegions(steps []runbooks.Action) []string {
	var out []string
	for _, s := range steps {
		if (s.Kind == runbooks.KindShift || s.Kind == runbooks.KindRestore) && !slices.Contains(out, s.Region) {
			out = append(out, s.Region)
		}
	}
	return out
}

// PrepareDrill renders b's runbook, as stored in st, with b's parameters,
// and returns b ready to propose: Params resolved, Steps rendered, the
// runbook's version and preconditions. The error is a *RefusedError
// (CodeNotFound: no such runbook; CodeInvalid: bad parameters).
func PrepareDrill(st *State, b DrillStart) (DrillStart, error) {
	rec, ok := st.Runbooks[b.Runbook]
	if !ok {
		return b, &RefusedError{Code: CodeNotFound, Msg: fmt.Sprintf("no runbook %q", b.Runbook)}
	}
	rb, err := rec.Parse()
	if err != nil {
		return b, &RefusedError{Code: CodeInvalid, Msg: fmt.Sprintf("stored runbook %s does not parse: %v", b.Runbook, err)}
	}
	acts, err := rb.Render(b.Params)
	if err != nil {
		return b, &RefusedError{Code: CodeInvalid, Msg: fmt.Sprintf("runbook %s: %v", b.Runbook, err)}
	}
	params, _ := rb.Values(b.Params)
	b.Params, b.Steps, b.RunbookVersion, b.Preconditions, b.Prepared = params, acts, rec.Version, rb.Preconditions, true
	return b, nil
}

func (a *applier) beginDrill(d Drill) {
	a.putDrill(d)
	a.event(Event{Kind: EventDrillStart, Reason: d.Reason,
		Detail: fmt.Sprintf("drill %s: runbook %s v%d, %d steps, regions %s", d.ID, d.Runbook, d.RunbookVersion,
			len(d.Steps), strings.Join(d.Regions, ","))})
}

// precondition returns why pre does not hold, or "".
func (a *applier) precondition(pre string) string {
	switch pre {
	case runbooks.PreNotFrozen:
		if a.s.Frozen {
			return "frozen: " + a.s.FrozenReason
		}
	case runbooks.PreNoDrillRunning:
		if id, ok := a.s.anyDrillRunning(); ok {
			return "drill " + id + " is running"
		}
	case runbooks.PreAllRegionsHealthy:
		for _, r := range a.s.RegionList() {
			if n := len(a.s.Unhealthy[r.Name]); n > 0 {
				return fmt.Sprintf("%s has %d unhealthy service(s)", r.Name, n)
			}
			if r.Phase != PhaseActive {
				return fmt.Sprintf("%s is %s", r.Name, r.Phase)
			}
		}
	}
	return ""
}

func (a *applier) drillStep(b DrillStep) *refusal {
	d, ok := a.s.Drills[b.ID]
	if !ok {
		return refuse(CodeNotFound, "no drill %q", b.ID)
	}
	if !d.Running() {
		return refuse(CodeConflict, "drill %s is %s", b.ID, d.Status)
	}
	if b.Index != d.Current {
		return refuse(CodeConflict, "step %d of drill %s is not the current one (%d)", b.Index, b.ID, d.Current)
	}
	d.Steps = slices.Clone(d.Steps)
	st := d.Steps[b.Index]
	where := fmt.Sprintf("drill %s step %d/%d", d.ID, b.Index+1, len(d.Steps))
	switch b.Phase {
	case PhaseStart:
		if !st.StartedAt.IsZero() {
			return refuse(CodeConflict, "%s already started", where)
		}
		st.StartedAt = a.cmd.Time
		if st.Kind == runbooks.KindRestore {
			st.PrevRestoredAt = a.s.Regions[st.Region].RestoredAt
		}
		d.Steps[b.Index] = st
		a.event(Event{Kind: EventDrillStepStart, Region: st.Region, Reason: d.Reason, Detail: where + ": " + st.Describe()})
		// The step's effect, applied here once: this command is refused
		// if the step had started before.
		if msg := a.stepEffect(d, st, where); msg != "" {
			st.EndedAt, st.Outcome, st.Detail = a.cmd.Time, OutcomeFail, msg
			d.Steps[b.Index] = st
			a.endDrill(d, DrillFailed, where+": "+msg, "")
			return nil
		}
		a.putDrill(d)
		return nil
	case PhaseEnd:
		if st.StartedAt.IsZero() {
			return refuse(CodeConflict, "%s has not started", where)
		}
		if b.Outcome != OutcomePass && b.Outcome != OutcomeFail && b.Outcome != OutcomeDone {
			return refuse(CodeInvalid, "outcome %q must be pass, fail or done", b.Outcome)
		}
		if st.Kind == runbooks.KindRestore && b.Outcome != OutcomeFail {
			if r := a.s.Regions[st.Region]; r.Phase != PhaseActive || r.Ramp != nil {
				return refuse(CodeConflict, "%s: %s is still %s", where, st.Region, r.Phase)
			}
		}
		if r := a.s.Regions[st.Region]; st.Kind == runbooks.KindRestore && b.Outcome != OutcomeFail &&
			!r.RestoredAt.Before(st.StartedAt) && !r.RestoredAt.Equal(st.PrevRestoredAt) {
			r.RestoredAt = st.PrevRestoredAt
			a.setRegion(r)
		}
		st.EndedAt, st.Outcome, st.Detail = a.cmd.Time, b.Outcome, b.Detail
		d.Steps[b.Index] = st
		d.Current++
		detail := fmt.Sprintf("%s: %s: %s", where, st.Describe(), b.Outcome)
		if b.Detail != "" {
			detail += " (" + b.Detail + ")"
		}
		a.event(Event{Kind: EventDrillStepEnd, Region: st.Region, Reason: d.Reason, Detail: detail})
		switch {
		case b.Outcome == OutcomeFail && st.Kind == runbooks.KindGate && st.AbortOnFail:
			a.endDrill(d, DrillAborted, fmt.Sprintf("%s: gate %s failed: %s", where, st.Check, b.Detail), "")
		case b.Outcome == OutcomeFail && st.Kind == runbooks.KindRestore:
			// Someone else took the region over; leave its weight alone.
			a.endDrill(d, DrillFailed, fmt.Sprintf("%s: restore of %s failed: %s", where, st.Region, b.Detail), st.Region)
		case d.Current == len(d.Steps):
			a.endDrill(d, DrillSucceeded, "every step done", "")
		default:
			a.putDrill(d)
		}
		return nil
	}
	return refuse(CodeInvalid, "phase %q must be start or end", b.Phase)
}

// stepEffect applies what starting st changes; it returns why it could not.
func (a *applier) stepEffect(d Drill, st StepRecord, where string) string {
	reason := fmt.Sprintf("%s (%s)", where, st.Describe())
	switch st.Kind {
	case runbooks.KindShift:
		if e := a.setWeight(SetWeight{Region: st.Region, Weight: st.Weight, Reason: reason}); e != nil {
			return e.Msg
		}
	case runbooks.KindRestore:
		r := a.s.Regions[st.Region]
		if r.Phase == PhaseActive && r.Ramp == nil && r.Weight == 100 {
			return "" // nothing to restore
		}
		if r.Phase == PhaseActive && r.Ramp == nil {
			// A partial shift leaves a region active below 100: treat it as
			// evacuated so that the ordinary restore ramp applies.
			r.Phase = PhaseEvacuated
			a.setRegion(r)
		}
		if e := a.restore(Restore{Region: st.Region, Reason: reason, Ramp: st.Ramp, StepInterval: Duration(st.StepInterval)}); e != nil {
			return e.Msg
		}
	case runbooks.KindNotify:
		a.event(Event{Kind: EventDrillNotify, Reason: d.Reason, Detail: st.Message})
	}
	return ""
}

// endDrill finishes d with status. Unless it succeeded, the held regions
// other than keep go back to their weights from before the drill, ramps
// cancelled.
func (a *applier) endDrill(d Drill, status, outcome, keep string) {
	if status != DrillSucceeded {
		for _, rn := range d.Regions {
			if rn == keep {
				continue
			}
			a.resetWeight(rn, d.Before[rn], fmt.Sprintf("drill %s %s: back to the weight before it", d.ID, status))
		}
	}
	if d.Current < len(d.Steps) {
		d.Steps = slices.Clone(d.Steps)
		if st := d.Steps[d.Current]; !st.StartedAt.IsZero() && st.EndedAt.IsZero() {
			st.EndedAt, st.Outcome = a.cmd.Time, status
			d.Steps[d.Current] = st
		}
	}
	d.Status, d.Outcome, d.EndedAt = status, outcome, a.cmd.Time
	d.After = map[string]int{}
	for _, rn := range d.Regions {
		d.After[rn] = a.s.Regions[rn].Weight
	}
	a.putDrill(d)
	a.event(Event{Kind: EventDrillEnd, Reason: d.Reason, Detail: fmt.Sprintf("drill %s %s: %s", d.ID, status, outcome)})
}

// resetWeight puts a region back to weight w, cancelling any ramp.
func (a *applier) resetWeight(region string, w int, reason string) {
	r, ok := a.s.Regions[region]
	phase := PhaseActive
	if w == 0 {
		phase = PhaseEvacuated
	}
	if !ok || r.Weight == w && r.Ramp == nil && r.Phase == phase {
		return
	}
	r.Weight, r.Ramp, r.Since, r.Reason, r.Actor, r.Automatic = w, nil, a.cmd.Time, reason, a.cmd.Actor, false
	r.Phase = phase
	a.event(Event{Kind: EventWeight, Region: region, Reason: reason, Weight: &w})
	a.setRegion(r)
}

func (a *applier) drillAbort(b DrillAbort) *refusal {
	d, ok := a.s.Drills[b.ID]
	if !ok {
		return refuse(CodeNotFound, "no drill %q", b.ID)
	}
	if !d.Running() {
		return refuse(CodeConflict, "drill %s is %s", b.ID, d.Status)
	}
	a.endDrill(d, DrillAborted, "aborted by "+a.cmd.Actor+": "+b.Reason, "")
	return nil
}

// preemptDrills makes running drills give way to an evacuation of region
// (a real incident): an automatic evacuation ends every running drill, since
// the capacity they hold out may be needed now; an operator's ends the drill
// holding region, if any. The drills end as pre-empted and their regions go
// back to their weights from before them, but region, left to the incident.
func (a *applier) preemptDrills(region, reason string, all bool) {
	for _, id := range a.s.DrillIDs() {
		d := a.s.Drills[id]
		if !d.Running() || !all && !slices.Contains(d.Regions, region) {
			continue
		}
		a.endDrill(d, DrillPreempted, fmt.Sprintf("pre-empted by the evacuation of %s: %s", region, reason), region)
	}
}

// drillYield ends the running drill that holds b.Region, if any, as
// aborted: an operator is about to change the region, and a drill never
// fights an operator. Its other regions go back to their weights from
// before it; b.Region is left to the operator. With no drill holding the
// region it changes nothing (the drill may have ended meanwhile).
func (a *applier) drillYield(b DrillYield) *refusal {
	if b.Region == "" {
		return refuse(CodeInvalid, "region is required")
	}
	d, ok := a.s.DrillHolding(b.Region)
	if !ok {
		return nil
	}
	outcome := fmt.Sprintf("%s held by the drill was changed by %s (%s)", b.Region, a.cmd.Actor, b.Change)
	if b.Reason != "" {
		outcome += ": " + b.Reason
	}
	a.endDrill(d, DrillAborted, outcome, b.Region)
	return nil
}
