package checks

import "fmt"

// damper applies rise/fall flap damping. The first observation sets the
// state; afterwards the state flips only after `rise` consecutive passes
// (when failing) or `fall` consecutive failures (when passing).
type damper struct {
	rise, fall int
	state      Status // "" until the first observation
	streak     int    // consecutive observations disagreeing with state
}

func newDamper(rise, fall int) *damper {
	if rise < 1 {
		rise = 1
	}
	if fall < 1 {
		fall = 1
	}
	return &damper{rise: rise, fall: fall}
}

// observe feeds one raw result and returns the damped state and whether it
// changed (true on the first observation too).
func (d *damper) observe(raw Status) (Status, bool) {
	if d.state == "" {
		d.state = raw
		return raw, true
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

// pending describes a streak in progress ("failing 1/3"), or "".
func (d *damper) pending() string {
	if d.streak == 0 {
		return ""
	}
	if d.state == StatusPassing {
		return fmt.Sprintf("failing %d/%d", d.streak, d.fall)
	}
	return fmt.Sprintf("passing %d/%d", d.streak, d.rise)
}
