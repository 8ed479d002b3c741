package drills

import (
	"errors"
	"fmt"
	"time"

	"github.com/evac-sh/evac/controlplane/state"
)

// maxCatchUp bounds how many due times Schedule walks for one schedule.
const maxCatchUp = 100000

// Schedule returns the fire commands due now: for each schedule, its due
// times after the committed last fired time. The latest, if no more than
// grace late (a leader change), still runs, once; earlier ones are recorded
// together as missed first. loc resolves a schedule's time zone.
func Schedule(st *state.State, now time.Time, grace time.Duration, loc func(string) (*time.Location, error)) ([]Proposal, []error) {
	if st == nil {
		return nil, nil
	}
	var out []Proposal
	var errs []error
	for _, id := range st.ScheduleIDs() {
		sc := st.Schedules[id]
		l, err := loc(sc.TZ)
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule %s: time zone %q: %w", id, sc.TZ, err))
			continue
		}
		cs, err := state.ParseCron(sc.Cron)
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule %s: %w", id, err))
			continue
		}
		from := sc.LastFired
		if from.IsZero() {
			from = sc.CreatedAt
		}
		var dues []time.Time
		for due := cs.Next(from.In(l)); !due.IsZero() && !due.After(now) && len(dues) < maxCatchUp; due = cs.Next(due) {
			dues = append(dues, due)
		}
		n := len(dues)
		switch {
		case n == 0:
		case now.Sub(dues[n-1]) > grace:
			out = append(out, missed(id, dues[n-1], n))
		case n > 1:
			// Only the latest due time still runs: a burst of catch-up
			// drills helps nobody.
			out = append(out, missed(id, dues[n-2], n-1))
		default:
			out = append(out, Proposal{Type: state.CmdScheduleFire,
				Body: fire(st, sc, dues[0].UTC(), sc.InBlackout(dues[0], l)),
				Key:  fmt.Sprintf("schedule:%s:%d", id, dues[0].UnixNano())})
		}
	}
	return out, errs
}

// fire is the command that fires sc for due: with the drill it starts
// rendered here, on the leader (Apply checks it against the state at
// commit, and records why it could not be rendered as the run's reason).
func fire(st *state.State, sc state.Schedule, due time.Time, skip string) state.ScheduleFire {
	f := state.ScheduleFire{ID: sc.ID, ScheduledTime: due, Skip: skip, Prepared: true}
	if skip != "" {
		return f
	}
	// At the running-drill limit the run is skipped, with the limit as the
	// reason: decided here, on the leader, since Apply checks no counts.
	if err := st.CheckRunningDrills(); err != nil {
		f.Skip = err.Error()
		return f
	}
	d, err := state.PrepareDrill(st, state.ScheduledDrill(sc, due))
	var re *state.RefusedError
	switch {
	case errors.As(err, &re):
		f.DrillError = re.Msg
	case err != nil:
		f.DrillError = err.Error()
	default:
		f.Drill = &d
	}
	return f
}

func missed(id string, last time.Time, n int) Proposal {
	return Proposal{Type: state.CmdScheduleFire,
		Body: state.ScheduleFire{ID: id, ScheduledTime: last.UTC(), Missed: n},
		Key:  fmt.Sprintf("schedule:%s:%d:missed", id, last.UnixNano())}
}
