package steering

import (
	"fmt"
	"sort"
	"time"

	"github.com/evac-sh/evac/controlplane/state"
)

// Observed is what a controller sees of one service in one region through
// gossip.
type Observed struct {
	// Share is the share of the region's live agents whose checks for the
	// service pass.
	Share float64
	// Known is false when no live agent of the region reports the service
	// (warming-up and stale reports do not count).
	Known bool
	// Agents of the region: alive, all known, dead (failed, confirmed by
	// memberlist from several vantage points) and left (gracefully).
	AgentsAlive int
	AgentsTotal int
	AgentsDead  int
	AgentsLeft  int
	// Updated is when this controller received the newest report behind
	// Share (zero when none).
	Updated time.Time
	// Detail names what fails, for the audit log.
	Detail string
}

// Health is the observed health: region -> service -> observation.
type Health map[string]map[string]Observed

// Input is everything Decide looks at.
type Input struct {
	State  *state.State
	Health Health
	// Capacity is the capacity the regions' agents report; it goes into
	// automatic evacuations for the capacity rule (state.minWeight).
	Capacity map[string]int
	Now      time.Time
	// WarmedUp is false for a while after this node became leader: until
	// gossip has converged, missing reports are not evidence of failure.
	WarmedUp bool
	// LeaderSince is when this node became leader. Until WarmedUp, a
	// verdict needs a report received after it: a new leader decides on
	// fresh reports, never on what it heard before (zero: no such rule).
	LeaderSince time.Time
}

// Event kinds the engine records about observation.
const (
	// EventUnobserved: every agent of a region left gracefully (none
	// died): nothing observes it, so no verdict is made about it.
	EventUnobserved = "region.unobserved"
	// EventObserved: an agent of an unobserved region is back.
	EventObserved = "region.observed"
)

// Proposal is one command the leader should propose.
type Proposal struct {
	Type state.CommandType
	Body any
	// Key identifies the decision, so that the engine proposes it once per
	// episode rather than on every tick.
	Key string
	// Automatic marks proposals whose refusal is worth recording.
	Automatic bool
}

// Decide returns the commands to propose now, in a deterministic order:
// due ramp steps, then health verdicts, then automatic evacuations.
func Decide(in Input) []Proposal {
	s := in.State
	if s == nil || s.Config == nil {
		return nil
	}
	var out []Proposal
	out = append(out, rampSteps(s, in.Now)...)
	out = append(out, observers(in)...)
	out = append(out, verdicts(in)...)
	if f, ok := massFailure(in); ok {
		// Freezing pre-empts every automatic evacuation this tick.
		return append(out, f)
	}
	out = append(out, evacuations(in)...)
	out = append(out, restores(in)...)
	return out
}

// massFailure freezes automatic action when more regions turned unhealthy
// within the flap window than max_evacuated allows: that pattern is more
// often a bad check or the observers' own fault than a real multi-region
// outage, and evacuating everything would make it worse.
func massFailure(in Input) (Proposal, bool) {
	s := in.State
	p := s.Config.Policy
	if p.Mode == state.ModeOff || s.Frozen {
		return Proposal{}, false
	}
	var recent []string
	for _, r := range s.RegionList() {
		for _, since := range s.Unhealthy[r.Name] {
			if in.Now.Sub(since) <= p.FlapWindow.D() {
				recent = append(recent, r.Name)
				break
			}
		}
	}
	if len(recent) <= *p.MaxEvacuated || len(recent) < 2 {
		return Proposal{}, false
	}
	reason := fmt.Sprintf("automatic freeze: %d regions (%v) turned unhealthy within %s, more than max_evacuated %d; "+
		"likely a bad check or an observer fault: investigate, then unfreeze", len(recent), recent, p.FlapWindow, *p.MaxEvacuated)
	if p.Mode == state.ModeShadow {
		return Proposal{Type: state.CmdRecordEvent, Body: state.RecordEvent{Kind: "shadow.freeze", Reason: reason},
			Key: fmt.Sprintf("freeze/%v", recent)}, true
	}
	return Proposal{Type: state.CmdFreeze, Body: state.Freeze{Reason: reason}, Key: fmt.Sprintf("freeze/%v", recent)}, true
}

// restores proposes automatic restores of regions that were evacuated
// automatically and have been healthy for auto_restore_after.
func restores(in Input) []Proposal {
	s := in.State
	p := s.Config.Policy
	if p.AutoRestoreAfter == 0 || p.Mode == state.ModeOff || s.Frozen {
		return nil
	}
	var out []Proposal
	for _, r := range s.RegionList() {
		if r.Phase != state.PhaseEvacuated || !r.Automatic || r.HealthySince.IsZero() || len(s.Unhealthy[r.Name]) > 0 ||
			in.Now.Sub(r.HealthySince) < p.AutoRestoreAfter.D() {
			continue
		}
		reason := fmt.Sprintf("automatic: %s healthy since %s (auto_restore_after %s)",
			r.Name, r.HealthySince.UTC().Format(time.RFC3339), p.AutoRestoreAfter)
		key := fmt.Sprintf("restore/%s/%d", r.Name, r.HealthySince.UnixNano())
		if p.Mode == state.ModeShadow {
			out = append(out, Proposal{Type: state.CmdRecordEvent, Key: key, Body: state.RecordEvent{
				Kind: "shadow.restore", Region: r.Name, Reason: reason, Detail: "shadow mode: this restore would have started now"}})
			continue
		}
		out = append(out, Proposal{Type: state.CmdRestore, Key: key, Automatic: true,
			Body: state.Restore{Region: r.Name, Reason: reason, Automatic: true}})
	}
	return out
}

// flapping returns how many times region was found unhealthy within the
// flap window, from the audit log.
func flapping(s *state.State, region string, now time.Time) int {
	window := s.Config.Policy.FlapWindow.D()
	n := 0
	for i := len(s.Events) - 1; i >= 0; i-- {
		e := s.Events[i]
		if now.Sub(e.Time) > window {
			break
		}
		if e.Kind == state.EventHealthLost && e.Region == region {
			n++
		}
	}
	return n
}

func rampSteps(s *state.State, now time.Time) []Proposal {
	var out []Proposal
	for _, r := range s.RegionList() {
		if r.Ramp == nil || now.Before(r.Ramp.NextAt) {
			continue
		}
		out = append(out, Proposal{
			Type: state.CmdRampStep,
			Body: state.RampStep{Region: r.Name, Step: r.Ramp.Next},
			Key:  fmt.Sprintf("step/%s/%s/%d/%d", r.Name, r.Ramp.Kind, r.Since.UnixNano(), r.Ramp.Next),
		})
	}
	return out
}

// verdict says whether the observation shows the service healthy; ok is
// false when there is no evidence either way.
func verdict(o Observed, seen bool, p state.Policy, in Input) (healthy, ok bool) {
	switch {
	case !seen:
		return false, false
	case o.Known:
		if !in.WarmedUp && o.Updated.Before(in.LeaderSince) {
			// A new leader decides on reports it received as leader.
			return false, false
		}
		return o.Share >= p.UnhealthyBelow, true
	case o.AgentsAlive == 0 && o.AgentsDead > 0 && in.WarmedUp:
		// No agent of the region is left in the pool, and some died:
		// memberlist confirmed it from other vantage points. Agents
		// that left gracefully are no evidence (see observers).
		return false, true
	}
	return false, false
}

// observers records, once per episode, that a region has no observers:
// every agent it had left gracefully and none died, so no verdict will be
// made about it (see verdict); and that it is observed again when one is
// back. The episode is read from the audit log, so a new leader neither
// repeats nor misses it.
func observers(in Input) []Proposal {
	if !in.WarmedUp {
		return nil
	}
	s := in.State
	var out []Proposal
	for _, r := range s.Config.Regions {
		var o Observed
		seen := false
		for _, svc := range s.Config.Services {
			if ob, ok := in.Health[r.Name][svc.Name]; ok {
				o, seen = ob, true
				break
			}
		}
		if !seen {
			continue
		}
		unobserved := o.AgentsAlive == 0 && o.AgentsDead == 0 && o.AgentsLeft > 0
		last, seq := lastObservation(s, r.Name)
		switch {
		case unobserved && last != EventUnobserved:
			out = append(out, Proposal{Type: state.CmdRecordEvent, Key: fmt.Sprintf("unobserved/%s/%d", r.Name, seq),
				Body: state.RecordEvent{Kind: EventUnobserved, Region: r.Name,
					Reason: fmt.Sprintf("no observers: all %d agent(s) of %s left gracefully; no health verdict on it until one is back", o.AgentsLeft, r.Name)}})
		case o.AgentsAlive > 0 && last == EventUnobserved:
			out = append(out, Proposal{Type: state.CmdRecordEvent, Key: fmt.Sprintf("observed/%s/%d", r.Name, seq),
				Body: state.RecordEvent{Kind: EventObserved, Region: r.Name,
					Reason: fmt.Sprintf("observed again: %d agent(s) of %s alive", o.AgentsAlive, r.Name)}})
		}
	}
	return out
}

// lastObservation returns the kind and sequence number of the latest
// EventUnobserved or EventObserved event of region ("", 0 if none).
func lastObservation(s *state.State, region string) (string, uint64) {
	for i := len(s.Events) - 1; i >= 0; i-- {
		e := s.Events[i]
		if e.Region == region && (e.Kind == EventUnobserved || e.Kind == EventObserved) {
			return e.Kind, e.Seq
		}
	}
	return "", 0
}

func verdicts(in Input) []Proposal {
	s := in.State
	p := s.Config.Policy
	var out []Proposal
	for _, r := range s.Config.Regions {
		for _, svc := range s.Config.Services {
			if _, ok := svc.Endpoints[r.Name]; !ok {
				continue
			}
			o, seen := in.Health[r.Name][svc.Name]
			healthy, ok := verdict(o, seen, p, in)
			if !ok || healthy == !s.IsUnhealthy(r.Name, svc.Name) {
				continue
			}
			detail := o.Detail
			if !o.Known {
				detail = fmt.Sprintf("no live agent (%d known, %d dead)", o.AgentsTotal, o.AgentsDead)
			}
			out = append(out, Proposal{
				Type: state.CmdSetHealth,
				Body: state.SetHealth{Region: r.Name, Service: svc.Name, Healthy: healthy, Share: o.Share, Detail: detail},
				Key:  fmt.Sprintf("health/%s/%s/%t/%d", r.Name, svc.Name, healthy, s.Serial),
			})
		}
	}
	return out
}

func evacuations(in Input) []Proposal {
	s := in.State
	p := s.Config.Policy
	if p.Mode == state.ModeOff || s.Frozen {
		return nil
	}
	var out []Proposal
	for _, r := range s.RegionList() {
		if r.Phase == state.PhaseEvacuating || r.Phase == state.PhaseEvacuated {
			continue
		}
		since, svc, ok := unhealthyFor(s, r.Name, in)
		if !ok {
			continue
		}
		reason := fmt.Sprintf("automatic: %s unhealthy in %s since %s (detect_after %s)",
			svc, r.Name, since.UTC().Format(time.RFC3339), p.DetectAfter)
		if in.Now.Sub(since) < p.DetectAfter.D() {
			// Not sustained; but a region that keeps failing is as bad as
			// one that stays failed.
			n := flapping(s, r.Name, in.Now)
			if n < p.FlapThreshold {
				continue
			}
			reason = fmt.Sprintf("automatic: %s in %s flapping: unhealthy %d times within %s (flap_threshold %d)",
				svc, r.Name, n, p.FlapWindow, p.FlapThreshold)
		}
		key := fmt.Sprintf("evacuate/%s/%d", r.Name, since.UnixNano())
		if p.Mode == state.ModeShadow {
			out = append(out, Proposal{
				Type: state.CmdRecordEvent,
				Body: state.RecordEvent{Kind: "shadow.evacuate", Region: r.Name, Service: svc,
					Reason: reason, Detail: "shadow mode: this evacuation would have started now"},
				Key: key,
			})
			continue
		}
		out = append(out, Proposal{
			Type:      state.CmdEvacuate,
			Body:      state.Evacuate{Region: r.Name, Reason: reason, Automatic: true, Capacity: in.Capacity},
			Key:       key,
			Automatic: true,
		})
	}
	return out
}

// unhealthyFor returns the earliest time from which some service of region
// has been unhealthy in the committed state and still is in the current
// observation (a verdict about to flip back does not trigger an evacuation).
func unhealthyFor(s *state.State, region string, in Input) (time.Time, string, bool) {
	svcs := s.Unhealthy[region]
	names := make([]string, 0, len(svcs))
	for n := range svcs {
		names = append(names, n)
	}
	sort.Strings(names)
	var best time.Time
	var bestSvc string
	for _, n := range names {
		o, seen := in.Health[region][n]
		if healthy, ok := verdict(o, seen, s.Config.Policy, in); ok && healthy {
			continue
		}
		if since := svcs[n]; best.IsZero() || since.Before(best) {
			best, bestSvc = since, n
		}
	}
	return best, bestSvc, !best.IsZero()
}
