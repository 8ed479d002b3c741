package checks

import "fmt"

// damper applies rise/fall flap damping. A check starts warming up: it
// has no state until it has run `rise` times, and then only once its
// latest results agree: `rise` consecutive passes make it passing, `fall`
// consecutive failures failing. A warm-up that runs rise+fall times
// without either (a flapping endpoint) ends failing: it never proved
// healthy. Afterwards the state flips only after `rise` consecutive passes
// (when failing) or `fall` consecutive failures (when passing).
//
// Why: an agent started before its endpoints listen, or restarted with the
// rest of a fleet, must not report a verdict from one early probe; the
// controllers take a warming-up report as no evidence either way.
type damper struct {
	rise, fall int
	state      Status // StatusWarmingUp until the warm-up ends
	runs       int    // observations during warm-up
	last       Status // the latest raw result
	streak     int    // consecutive raw results equal to last (warm-up), or disagreeing with state (after)
}

func newDamper(rise, fall int) *damper {
	if rise < 1 {
		rise = 1
	}
	if fall < 1 {
		fall = 1
	}
	return &damper{rise: rise, fall: fall, state: StatusWarmingUp}
}

// observe feeds one raw result and returns the damped state and whether it
// changed. The first observation counts as a change (to warming up, or
// straight to a state when rise is 1).
func (d *damper) observe(raw Status) (Status, bool) {
	if d.state == StatusWarmingUp {
		first := d.runs == 0
		d.runs++
		if raw == d.last {
			d.streak++
		} else {
			d.last, d.streak = raw, 1
		}
		switch {
		case d.runs < d.rise:
		case raw == StatusPassing && d.streak >= d.rise,
			raw != StatusPassing && d.streak >= d.fall:
			d.state, d.streak = raw, 0
			return raw, true
		case d.runs >= d.rise+d.fall:
			d.state, d.streak = StatusFailing, 0
			return StatusFailing, true
		}
		return StatusWarmingUp, first
	}
	if raw == d.state {
		d.streak = 0
		return d.state, false
	}
	d.streak++
	need := d.fall
	if raw == StatusPassing {
		need = d.rise
	}
	if d.streak >= need {
		d.state = raw
		d.streak = 0
		return raw, true
	}
	return d.state, false
}

// pending describes a warm-up ("warming up 1/2") or a streak in progress
// ("failing 1/3"), or "".
func (d *damper) pending() string {
	switch {
	case d.state == StatusWarmingUp:
		return fmt.Sprintf("warming up %d/%d", d.runs, d.rise)
	case d.streak == 0:
		return ""
	case d.state == StatusPassing:
		return fmt.Sprintf("failing %d/%d", d.streak, d.fall)
	}
	return fmt.Sprintf("passing %d/%d", d.streak, d.rise)
}
