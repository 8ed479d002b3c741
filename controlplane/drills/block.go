package drills

import (
	"fmt"
	"slices"

	"github.com/evac-sh/evac/controlplane/blocker"
	"github.com/evac-sh/evac/controlplane/state"
)

// Blockers gives the verdict on a list of blocking conditions from what
// the leader last evaluated (*blocker.Evaluator; no I/O).
type Blockers interface {
	Verdict(bs []state.Blocker) blocker.Verdict
}

// DefaultUnknownLimit is how many evaluations in a row a running drill's
// blocker may fail before the drill is aborted.
const DefaultUnknownLimit = 3

// Block applies the blocking conditions (block_on) to the proposals of one
// tick, given the verdicts (a pure function of its inputs):
//   - a due run of a schedule whose blockers fire, or cannot be evaluated,
//     is fired as skipped, with the reason ("blocked: alert X firing");
//     one whose blockers are not evaluated yet waits (a later tick fires it,
//     within the grace period);
//   - a running drill whose blocker fires is aborted back to its starting
//     weights with the reason; one whose blocker cannot be evaluated is
//     held (its steps are not proposed), and aborted if it has not started
//     its first step yet or the blocker stayed unknown for unknownLimit
//     evaluations in a row; one whose blockers are not evaluated yet is held.
func Block(st *state.State, props []Proposal, verdict func([]state.Blocker) blocker.Verdict, unknownLimit int) []Proposal {
	if st == nil || verdict == nil {
		return props
	}
	if unknownLimit <= 0 {
		unknownLimit = DefaultUnknownLimit
	}
	held := map[string]bool{}
	var aborts []Proposal
	ids := st.DrillIDs()
	slices.Sort(ids)
	for _, id := range ids {
		d := st.Drills[id]
		if !d.Running() || len(d.BlockOn) == 0 {
			continue
		}
		v := verdict(d.BlockOn)
		notStarted := d.Current == 0 && (len(d.Steps) == 0 || d.Steps[0].StartedAt.IsZero())
		reason := ""
		switch v.State {
		case blocker.Clear:
			continue
		case blocker.Firing:
			reason = v.Reason
		case blocker.Unknown:
			switch {
			case notStarted:
				reason = v.Reason
			case v.Unknowns >= unknownLimit:
				reason = fmt.Sprintf("%s (%d evaluations in a row)", v.Reason, v.Unknowns)
			}
		}
		held[id] = true
		if reason != "" {
			aborts = append(aborts, Proposal{Type: state.CmdDrillAbort,
				Body: state.DrillAbort{ID: id, Reason: reason}, Key: "drill:" + id + ":blocked"})
		}
	}
	out := make([]Proposal, 0, len(props)+len(aborts))
	for _, p := range props {
		switch b := p.Body.(type) {
		case state.DrillStep:
			if held[b.ID] {
				continue
			}
		case state.ScheduleFire:
			sc := st.Schedules[b.ID]
			if b.Missed > 0 || b.Skip != "" || len(sc.BlockOn) == 0 {
				break
			}
			v := verdict(sc.BlockOn)
			switch v.State {
			case blocker.Pending:
				continue
			case blocker.Firing, blocker.Unknown:
				b.Skip, b.Drill, b.DrillError = v.Reason, nil, ""
				p.Body = b
			}
		}
		out = append(out, p)
	}
	return append(out, aborts...)
}
