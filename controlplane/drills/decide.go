package drills

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/controlplane/steering"
	"github.com/evac-sh/evac/runbooks"
)

// Proposal is one command the leader should propose; Key identifies the
// decision and, prefixed, is the command's id.
type Proposal struct {
	Type state.CommandType
	Body any
	Key  string
}

// Decide returns the next command of every running drill, in drill id order.
// health is called only when a gate is due.
func Decide(st *state.State, health func() steering.Health, now time.Time) []Proposal {
	if st == nil || st.Config == nil {
		return nil
	}
	ids := st.DrillIDs()
	sort.Strings(ids)
	var out []Proposal
	for _, id := range ids {
		d := st.Drills[id]
		if !d.Running() || d.Current >= len(d.Steps) {
			continue
		}
		if p, ok := next(st, health, d, now); ok {
			out = append(out, p)
		}
	}
	return out
}

func next(st *state.State, health func() steering.Health, d state.Drill, now time.Time) (Proposal, bool) {
	i := d.Current
	step := d.Steps[i]
	if step.StartedAt.IsZero() {
		return stepProposal(d.ID, i, state.PhaseStart, "", ""), true
	}
	switch step.Kind {
	case runbooks.KindShift, runbooks.KindNotify:
		return stepProposal(d.ID, i, state.PhaseEnd, state.OutcomeDone, ""), true
	case runbooks.KindWait:
		if now.Before(step.StartedAt.Add(step.Duration.D())) {
			return Proposal{}, false
		}
		return stepProposal(d.ID, i, state.PhaseEnd, state.OutcomeDone, ""), true
	case runbooks.KindGate:
		ok, detail := Gate(st, health(), d, step.Action)
		outcome := state.OutcomePass
		if !ok {
			outcome = state.OutcomeFail
		}
		return stepProposal(d.ID, i, state.PhaseEnd, outcome, detail), true
	case runbooks.KindRestore:
		r := st.Regions[step.Region]
		switch {
		case r.Phase == state.PhaseActive && r.Ramp == nil:
			return stepProposal(d.ID, i, state.PhaseEnd, state.OutcomePass, fmt.Sprintf("%s active at %d", r.Name, r.Weight)), true
		case r.Ramp == nil || r.Ramp.Kind != "restore":
			return stepProposal(d.ID, i, state.PhaseEnd, state.OutcomeFail,
				fmt.Sprintf("%s is %s, no longer restoring", r.Name, r.Phase)), true
		}
		return Proposal{}, false // the steering engine steps the ramp
	}
	return Proposal{}, false
}

func stepProposal(id string, index int, phase, outcome, detail string) Proposal {
	return Proposal{
		Type: state.CmdDrillStep,
		Body: state.DrillStep{ID: id, Index: index, Phase: phase, Outcome: outcome, Detail: detail},
		// An end's outcome is not in the key: whichever is proposed first
		// is the step's only end.
		Key: fmt.Sprintf("drill:%s:%d:%s", id, index, phase),
	}
}

// Gate evaluates a gate step: the regions it checks must have no service
// marked unhealthy in the committed state, and none the controller's live
// view finds below unhealthy_below (or without a live agent).
func Gate(st *state.State, health steering.Health, d state.Drill, a runbooks.Action) (bool, string) {
	var regions []string
	switch a.Check {
	case runbooks.CheckRegionHealthy:
		regions = []string{a.Region}
	case runbooks.CheckAllHealthy:
		regions = st.Config.RegionNames()
	case runbooks.CheckOthersHealthy:
		except := d.Regions
		if a.Region != "" {
			except = []string{a.Region}
		}
		for _, r := range st.Config.RegionNames() {
			if !slices.Contains(except, r) {
				regions = append(regions, r)
			}
		}
	default:
		return false, "unknown check " + a.Check
	}
	var bad []string
	for _, r := range regions {
		if why := unhealthy(st, health, r); why != "" {
			bad = append(bad, why)
		}
	}
	if len(bad) > 0 {
		return false, strings.Join(bad, "; ")
	}
	return true, fmt.Sprintf("%s: %s healthy", a.Check, strings.Join(regions, ","))
}

// unhealthy says why region is unhealthy, or "".
func unhealthy(st *state.State, health steering.Health, region string) string {
	var why []string
	for _, svc := range st.Config.Services {
		if _, ok := svc.Endpoints[region]; !ok {
			continue
		}
		if st.IsUnhealthy(region, svc.Name) {
			why = append(why, svc.Name+" marked unhealthy")
			continue
		}
		o, seen := health[region][svc.Name]
		switch {
		case !seen:
		case o.Known && o.Share < st.Config.Policy.UnhealthyBelow:
			why = append(why, fmt.Sprintf("%s passing in %.0f%% of agents", svc.Name, o.Share*100))
		case !o.Known && o.AgentsDead > 0 && o.AgentsAlive == 0:
			why = append(why, svc.Name+" has no live agent")
		}
	}
	if len(why) == 0 {
		return ""
	}
	return region + ": " + strings.Join(why, ", ")
}
