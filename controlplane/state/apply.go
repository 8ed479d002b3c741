package state

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Apply returns the state after applying cmd at Raft index index, and the
// result for its proposer. It is a pure function: same inputs, same outputs,
// on every replica. s is never modified.
func Apply(s *State, index uint64, cmd Command) (*State, Result) {
	if cmd.ID != "" && slices.Contains(s.Requests, cmd.ID) {
		n := s.shallow(index)
		return n, Result{Index: index, Duplicate: true}
	}
	n := s.shallow(index)
	a := applier{s: n, index: index, cmd: cmd}
	if err := a.apply(); err != nil {
		// Refused: only the index moves.
		r := s.shallow(index)
		return r, Result{Index: index, Error: err.Msg, Code: err.Code}
	}
	if cmd.ID != "" {
		n.rememberRequest(cmd.ID)
	}
	n.trimEvents()
	return n, Result{Index: index, Events: a.events}
}

// shallow copies the top level of s with a new index. Maps and slices are
// shared until a mutator below copies the one it changes.
func (s *State) shallow(index uint64) *State {
	n := *s
	n.Index = index
	return &n
}

func (s *State) rememberRequest(id string) {
	reqs := make([]string, recentRequests)
	copy(reqs, s.Requests)
	reqs[s.RequestPos%recentRequests] = id
	s.Requests = reqs
	s.RequestPos = (s.RequestPos + 1) % recentRequests
}

// trimEvents drops the oldest events past EventsRetained, copying so that
// older published states keep their own slice.
func (s *State) trimEvents() {
	if keep := s.EventsRetained(); len(s.Events) > keep+keep/10 {
		s.Events = slices.Clone(s.Events[len(s.Events)-keep:])
	}
}

type refusal struct{ Code, Msg string }

func refuse(code, format string, args ...any) *refusal {
	return &refusal{Code: code, Msg: fmt.Sprintf(format, args...)}
}

type applier struct {
	s      *State
	index  uint64
	cmd    Command
	events []uint64
}

// apply dispatches the command through the command table (commands.go).
// A type this binary does not know is skipped when its type byte says it
// may be (Apply's caller, the FSM, logs and counts it: Ignored) and stops
// the replica otherwise: applying a log this binary does not understand
// would let replicas diverge, so it halts until it is upgraded.
func (a *applier) apply() *refusal {
	if c := lookup(a.cmd.Type); c != nil {
		return c.apply(a)
	}
	if a.cmd.Type.Ignorable() {
		return nil
	}
	panic(fmt.Sprintf("state: %v at index %d: %v (upgrade this controller)", ErrUnknownCommand, a.index, a.cmd.Type))
}

func (a *applier) recordEvent(b RecordEvent) *refusal {
	if b.Kind == "" {
		return refuse(CodeInvalid, "event kind is required")
	}
	a.event(Event{Kind: b.Kind, Region: b.Region, Service: b.Service, Reason: b.Reason, Detail: b.Detail})
	return nil
}

func (a *applier) freezeCmd(b Freeze) *refusal   { return a.freeze(true, b) }
func (a *applier) unfreezeCmd(b Freeze) *refusal { return a.freeze(false, b) }

func (a *applier) decode(v any) *refusal {
	if err := json.Unmarshal(a.cmd.Body, v); err != nil {
		return refuse(CodeInvalid, "decode %s: %v", a.cmd.Type, err)
	}
	return nil
}

func (a *applier) event(e Event) {
	e.Seq = a.s.NextSeq
	e.Index = a.index
	e.Time = a.cmd.Time
	e.Actor = a.cmd.Actor
	a.s.NextSeq++
	// Appending may write into spare capacity shared with the previous
	// state, but only past its length, which it never reads: history is
	// linear, so no two published states extend the same prefix.
	a.s.Events = append(a.s.Events, e)
	a.events = append(a.events, e.Seq)
}

// answersChanged bumps the SOA serial: DNS answers may differ now.
func (a *applier) answersChanged() { a.s.Serial = uint32(a.index) }

func (a *applier) setRegion(r RegionState) {
	regions := maps.Clone(a.s.Regions)
	if regions == nil {
		regions = map[string]RegionState{}
	}
	regions[r.Name] = r
	a.s.Regions = regions
	a.answersChanged()
}

func (a *applier) region(name string) (RegionState, *refusal) {
	if a.s.Config == nil {
		return RegionState{}, refuse(CodeNoConfig, "no steering config has been applied")
	}
	r, ok := a.s.Regions[name]
	if !ok {
		return RegionState{}, refuse(CodeNotFound, "unknown region %q", name)
	}
	return r, nil
}

// applyConfigCmd decodes an apply-config body: a normalised config
// (Normalized) is taken as it is; an older entry's is normalised by the
// frozen rules of the release that wrote it (legacy.go).
func (a *applier) applyConfigCmd() *refusal {
	var probe struct {
		Normalized bool `json:"normalized"`
	}
	if err := json.Unmarshal(a.cmd.Body, &probe); err != nil || !probe.Normalized {
		c, e := legacyConfig(a.cmd.Body, a.cmd.Type)
		if e != nil {
			return e
		}
		return a.applyConfig(c)
	}
	var b ApplyConfig
	if err := a.decode(&b); err != nil {
		return err
	}
	if b.Config == nil {
		return refuse(CodeInvalid, "config is required")
	}
	if b.Config.Policy.MaxEvacuated == nil || len(b.Config.Regions) == 0 {
		// Not what Normalize returns: refused, so that the rules below
		// always find what they read.
		return refuse(CodeInvalid, "config was not normalised")
	}
	return a.applyConfig(b.Config)
}

// applyConfig applies a normalised config c, which it keeps (c must not be
// shared with anything that may change it).
func (a *applier) applyConfig(cfg *Config) *refusal {
	c := *cfg
	regions := make(map[string]RegionState, len(c.Regions))
	var added []string
	for _, r := range c.Regions {
		if old, ok := a.s.Regions[r.Name]; ok {
			regions[r.Name] = old
			continue
		}
		regions[r.Name] = RegionState{Name: r.Name, Phase: PhaseActive, Weight: 100, Since: a.cmd.Time}
		added = append(added, r.Name)
	}
	unhealthy := map[string]map[string]time.Time{}
	for rn, svcs := range a.s.Unhealthy {
		if _, ok := regions[rn]; !ok {
			continue
		}
		for sn, since := range svcs {
			if c.Service(sn) != nil {
				if unhealthy[rn] == nil {
					unhealthy[rn] = map[string]time.Time{}
				}
				unhealthy[rn][sn] = since
			}
		}
	}
	a.startSinks(&c)
	a.s.Config = &c
	a.s.Regions = regions
	a.s.Unhealthy = unhealthy
	a.s.ConfigVersion++
	hist := append(slices.Clone(a.s.ConfigHistory), ConfigRecord{
		Version: a.s.ConfigVersion, Index: a.index, Time: a.cmd.Time, Actor: a.cmd.Actor, Config: &c,
	})
	if len(hist) > maxConfigHistory {
		hist = hist[len(hist)-maxConfigHistory:]
	}
	a.s.ConfigHistory = hist
	a.answersChanged()
	detail := fmt.Sprintf("version %d: %d regions, %d services", a.s.ConfigVersion, len(c.Regions), len(c.Services))
	if len(added) > 0 {
		detail += "; added " + strings.Join(added, ",")
	}
	a.event(Event{Kind: EventConfigApplied, Detail: detail})
	return nil
}

// targetWeight is where a region's weight is heading.
func targetWeight(r RegionState) int {
	if r.Ramp != nil {
		return r.Ramp.Target()
	}
	return r.Weight
}

// checkServing refuses a change that would leave some service with no
// serving region: one with endpoints for it whose target weight is above 0
// (and, when healthy is set, that is not marked unhealthy for it).
func (a *applier) checkServing(region string, newTarget int, healthy bool) *refusal {
	if newTarget > 0 {
		return nil
	}
	for _, svc := range a.s.Config.Services {
		if _, ok := svc.Endpoints[region]; !ok {
			continue
		}
		serving := false
		for rn := range svc.Endpoints {
			if rn == region {
				continue
			}
			r := a.s.Regions[rn]
			if targetWeight(r) > 0 && (!healthy || !a.s.IsUnhealthy(rn, svc.Name)) {
				serving = true
				break
			}
		}
		if !serving {
			what := "serving"
			if healthy {
				what = "healthy serving"
			}
			return refuse(CodeRule, "refused: service %q would have no %s region left without %s", svc.Name, what, region)
		}
	}
	return nil
}

// checkAutomatic applies the rules that only automatic changes obey.
func (a *applier) checkAutomatic(region string, r RegionState) *refusal {
	p := a.s.Config.Policy
	if a.s.Frozen {
		return refuse(CodeFrozen, "automatic changes are frozen: %s", a.s.FrozenReason)
	}
	if p.Mode != ModeAuto {
		return refuse(CodeRule, "policy mode is %q: automatic changes are off", p.Mode)
	}
	out := 0
	for _, x := range a.s.Regions {
		if x.Automatic && x.Name != region && (x.Phase == PhaseEvacuating || x.Phase == PhaseEvacuated) {
			out++
		}
	}
	if max := *p.MaxEvacuated; out >= max {
		return refuse(CodeRule, "max_evacuated reached: %d region(s) already evacuated automatically (max %d)", out, max)
	}
	if !r.RestoredAt.IsZero() && a.cmd.Time.Before(r.RestoredAt.Add(p.HoldDown.D())) {
		return refuse(CodeRule, "hold-down: %s was restored at %s; no automatic evacuation before %s",
			region, r.RestoredAt.Format(time.RFC3339), r.RestoredAt.Add(p.HoldDown.D()).Format(time.RFC3339))
	}
	recent := 0
	var last time.Time
	for _, t := range a.s.AutoEvacuations {
		if t.After(a.cmd.Time.Add(-24 * time.Hour)) {
			recent++
		}
		if t.After(last) {
			last = t
		}
	}
	if recent >= p.Budget.PerDay {
		return refuse(CodeRule, "budget: %d automatic evacuation(s) in the last 24h (per_day %d)", recent, p.Budget.PerDay)
	}
	if !last.IsZero() && a.cmd.Time.Before(last.Add(p.Budget.Cooldown.D())) {
		return refuse(CodeRule, "budget: cooldown until %s", last.Add(p.Budget.Cooldown.D()).Format(time.RFC3339))
	}
	return nil
}

func (a *applier) evacuate(b Evacuate) *refusal {
	r, err := a.region(b.Region)
	if err != nil {
		return err
	}
	if r.Phase == PhaseEvacuating || r.Phase == PhaseEvacuated {
		return refuse(CodeConflict, "region %s is already %s", b.Region, r.Phase)
	}
	// Drills give way before the rules are checked (a refusal undoes it).
	a.preemptDrills(b.Region, b.Reason, b.Automatic)
	p := a.s.Config.Policy
	ramp := slices.Clone(b.Ramp)
	if len(ramp) == 0 {
		ramp = slices.Clone(p.Ramp)
	}
	if e := checkRamp(ramp, 0); e != nil {
		return refuse(CodeInvalid, "ramp: %v", e)
	}
	interval := b.StepInterval
	if interval == 0 {
		interval = p.StepInterval
	}
	if b.Automatic {
		if e := a.checkAutomatic(b.Region, r); e != nil {
			return e
		}
		if e := a.checkServing(b.Region, 0, true); e != nil {
			return e
		}
	} else if !b.Force {
		if e := a.checkServing(b.Region, 0, false); e != nil {
			return e
		}
	}
	// Capacity: the regions taking the traffic must be able to carry it.
	floor, why := a.s.minWeight(b.Region, b.Capacity)
	switch {
	case floor == 0:
	case b.Automatic:
		// Shift only what fits, and say why.
		if floor >= r.Weight {
			return refuse(CodeRule, "%s", why)
		}
		for i := range ramp {
			ramp[i] = max(ramp[i], floor)
		}
		a.event(Event{Kind: "capacity.limited", Region: b.Region, Reason: b.Reason, Detail: why})
	case !b.Force:
		return refuse(CodeRule, "refused: %s (use force to override)", why)
	default:
		a.event(Event{Kind: "capacity.override", Region: b.Region, Reason: b.Reason, Detail: why + "; forced"})
	}
	if b.Automatic {
		evs := append(slices.Clone(a.s.AutoEvacuations), a.cmd.Time)
		// Keep only what the budget can still look at.
		keep := 0
		for keep < len(evs) && evs[keep].Before(a.cmd.Time.Add(-48*time.Hour)) {
			keep++
		}
		a.s.AutoEvacuations = evs[keep:]
	}
	detail := fmt.Sprintf("ramp %v every %s", ramp, interval)
	if b.Force {
		detail += "; forced past safety rules"
	}
	if b.Automatic {
		detail += "; automatic"
	}
	a.event(Event{Kind: EventEvacuate, Region: b.Region, Reason: b.Reason, Detail: detail})
	r.Phase = PhaseEvacuating
	r.Since = a.cmd.Time
	r.Reason = b.Reason
	r.Actor = a.cmd.Actor
	r.Automatic = b.Automatic
	r.Ramp = &Ramp{Kind: "evacuate", Steps: slices.Clone(ramp), Interval: interval}
	a.step(r)
	return nil
}

func (a *applier) restore(b Restore) *refusal {
	r, err := a.region(b.Region)
	if err != nil {
		return err
	}
	if r.Phase == PhaseActive || r.Phase == PhaseRestoring {
		return refuse(CodeConflict, "region %s is already %s", b.Region, r.Phase)
	}
	if b.Automatic && a.s.Frozen {
		return refuse(CodeFrozen, "automatic changes are frozen: %s", a.s.FrozenReason)
	}
	p := a.s.Config.Policy
	ramp := b.Ramp
	if len(ramp) == 0 {
		ramp = p.RestoreRamp
	}
	if e := checkRamp(ramp, 100); e != nil {
		return refuse(CodeInvalid, "ramp: %v", e)
	}
	interval := b.StepInterval
	if interval == 0 {
		interval = p.StepInterval
	}
	detail := fmt.Sprintf("ramp %v every %s", ramp, interval)
	if b.Automatic {
		detail += "; automatic"
	}
	a.event(Event{Kind: EventRestore, Region: b.Region, Reason: b.Reason, Detail: detail})
	r.Phase = PhaseRestoring
	r.Since = a.cmd.Time
	r.Reason = b.Reason
	r.Actor = a.cmd.Actor
	r.Automatic = false
	r.Ramp = &Ramp{Kind: "restore", Steps: slices.Clone(ramp), Interval: interval}
	a.step(r)
	return nil
}

func (a *applier) rampStep(b RampStep) *refusal {
	r, err := a.region(b.Region)
	if err != nil {
		return err
	}
	if r.Ramp == nil || r.Ramp.Next != b.Step {
		return refuse(CodeConflict, "step %d of %s is not the next one (already applied or ramp ended)", b.Step, b.Region)
	}
	a.step(r)
	return nil
}

// step applies the next step of r's ramp and finishes the ramp on its last.
func (a *applier) step(r RegionState) {
	ramp := *r.Ramp
	w := ramp.Steps[ramp.Next]
	if ramp.Kind == "evacuate" {
		w = min(w, r.Weight) // an evacuation never raises a weight
	} else {
		w = max(w, r.Weight)
	}
	r.Weight = w
	ramp.Next++
	ramp.NextAt = a.cmd.Time.Add(ramp.Interval.D())
	a.event(Event{Kind: EventStep, Region: r.Name, Reason: r.Reason,
		Detail: fmt.Sprintf("%s step %d of %d", ramp.Kind, ramp.Next, len(ramp.Steps)), Weight: &w})
	if ramp.Next < len(ramp.Steps) {
		r.Ramp = &ramp
		a.setRegion(r)
		return
	}
	r.Ramp = nil
	r.Since = a.cmd.Time
	if ramp.Kind == "evacuate" {
		r.Phase = PhaseEvacuated
		a.event(Event{Kind: EventEvacuated, Region: r.Name, Reason: r.Reason, Weight: &w})
	} else {
		r.Phase = PhaseActive
		r.RestoredAt = a.cmd.Time
		a.event(Event{Kind: EventActive, Region: r.Name, Reason: r.Reason, Weight: &w})
	}
	a.setRegion(r)
}

func (a *applier) setWeight(b SetWeight) *refusal {
	r, err := a.region(b.Region)
	if err != nil {
		return err
	}
	if b.Weight < 0 || b.Weight > 100 {
		return refuse(CodeInvalid, "weight %d is not within 0..100", b.Weight)
	}
	if !b.Force {
		if e := a.checkServing(b.Region, b.Weight, false); e != nil {
			return e
		}
	}
	r.Weight = b.Weight
	r.Ramp = nil
	r.Since = a.cmd.Time
	r.Reason = b.Reason
	r.Actor = a.cmd.Actor
	r.Automatic = false
	switch {
	case b.Weight == 0:
		r.Phase = PhaseEvacuated
	default:
		r.Phase = PhaseActive
	}
	w := b.Weight
	a.event(Event{Kind: EventWeight, Region: b.Region, Reason: b.Reason, Weight: &w})
	a.setRegion(r)
	return nil
}

func (a *applier) setHealth(b SetHealth) *refusal {
	if _, err := a.region(b.Region); err != nil {
		return err
	}
	if a.s.Config.Service(b.Service) == nil {
		return refuse(CodeNotFound, "unknown service %q", b.Service)
	}
	if a.s.IsUnhealthy(b.Region, b.Service) == !b.Healthy {
		return nil // no change: nothing to record
	}
	unhealthy := maps.Clone(a.s.Unhealthy)
	if unhealthy == nil {
		unhealthy = map[string]map[string]time.Time{}
	}
	svcs := maps.Clone(unhealthy[b.Region])
	if svcs == nil {
		svcs = map[string]time.Time{}
	}
	kind := EventHealthRegained
	if b.Healthy {
		delete(svcs, b.Service)
	} else {
		svcs[b.Service] = a.cmd.Time
		kind = EventHealthLost
	}
	unhealthy[b.Region] = svcs
	a.s.Unhealthy = unhealthy
	r := a.s.Regions[b.Region]
	switch {
	case !b.Healthy:
		r.HealthySince = time.Time{}
	case len(svcs) == 0:
		r.HealthySince = a.cmd.Time
	}
	a.setRegion(r)
	a.answersChanged()
	detail := fmt.Sprintf("share %.2f", b.Share)
	if b.Detail != "" {
		detail += "; " + b.Detail
	}
	a.event(Event{Kind: kind, Region: b.Region, Service: b.Service, Detail: detail})
	return nil
}

func (a *applier) freeze(on bool, b Freeze) *refusal {
	if on == a.s.Frozen {
		if on {
			return refuse(CodeAlreadyFrozen, "already frozen: %s", a.s.FrozenReason)
		}
		return refuse(CodeNotFrozen, "not frozen")
	}
	a.s.Frozen = on
	kind := EventUnfreeze
	a.s.FrozenReason, a.s.FrozenBy = "", ""
	if on {
		kind = EventFreeze
		a.s.FrozenReason, a.s.FrozenBy = b.Reason, a.cmd.Actor
	}
	a.event(Event{Kind: kind, Reason: b.Reason})
	return nil
}
