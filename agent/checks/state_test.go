package checks

import (
	"strings"
	"testing"
)

func TestDamper(t *testing.T) {
	const P, F, W = StatusPassing, StatusFailing, StatusWarmingUp
	tests := []struct {
		name       string
		rise, fall int
		in         []Status
		want       []Status // damped state after each input
		changes    []bool
	}{
		{"warming up until rise passes", 3, 3, []Status{P, P, P, P}, []Status{W, W, P, P}, []bool{true, false, true, false}},
		{"warming up until rise runs, then fall failures", 3, 3, []Status{F, F, F}, []Status{W, W, F}, []bool{true, false, true}},
		{"fall<rise: failing once rise runs are done", 3, 2, []Status{F, F, F}, []Status{W, W, F}, []bool{true, false, true}},
		{"an endpoint that starts late is not condemned", 2, 2, []Status{F, P, P}, []Status{W, W, P}, []bool{true, false, true}},
		{"a flapping warm-up ends failing", 2, 2, []Status{F, P, F, P}, []Status{W, W, W, F}, []bool{true, false, false, true}},
		{"rise=1 passes at once", 1, 3, []Status{P}, []Status{P}, []bool{true}},
		{"rise=1 still needs fall failures", 1, 3, []Status{F, F, F}, []Status{W, W, F}, []bool{true, false, true}},
		{"rise=fall=1 follows input", 1, 1, []Status{P, F, P, P, F}, []Status{P, F, P, P, F}, []bool{true, true, true, false, true}},
		{"fall=3 needs three failures", 1, 3, []Status{P, F, F, F, F}, []Status{P, P, P, F, F}, []bool{true, false, false, true, false}},
		{"a pass resets the failure streak", 1, 3, []Status{P, F, F, P, F, F, F}, []Status{P, P, P, P, P, P, F}, []bool{true, false, false, false, false, false, true}},
		{"rise=2 after failing", 2, 1, []Status{P, P, F, P, P}, []Status{W, P, F, F, P}, []bool{true, true, true, false, true}},
		{"rise interrupted", 2, 1, []Status{F, F, P, F, P, P}, []Status{W, F, F, F, F, P}, []bool{true, true, false, false, false, true}},
		{"zero rise/fall mean 1", 0, 0, []Status{F, P}, []Status{F, P}, []bool{true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDamper(tt.rise, tt.fall)
			for i, in := range tt.in {
				got, changed := d.observe(in)
				if got != tt.want[i] || changed != tt.changes[i] {
					t.Fatalf("step %d: observe(%s) = %s,%v; want %s,%v", i, in, got, changed, tt.want[i], tt.changes[i])
				}
			}
		})
	}
}

func TestDamperPending(t *testing.T) {
	d := newDamper(2, 3)
	d.observe(StatusPassing)
	if p := d.pending(); p != "warming up 1/2" {
		t.Fatalf("pending %q during warm-up", p)
	}
	d.observe(StatusPassing)
	if d.pending() != "" {
		t.Fatal("no streak yet")
	}
	d.observe(StatusFailing)
	if p := d.pending(); !strings.Contains(p, "failing 1/3") {
		t.Fatalf("pending %q", p)
	}
}
