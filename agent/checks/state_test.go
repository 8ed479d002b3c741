package checks

import (
	"strings"
	"testing"
)

func TestDamper(t *testing.T) {
	const P, F = StatusPassing, StatusFailing
	tests := []struct {
		name       string
		rise, fall int
		in         []Status
		want       []Status // damped state after each input
		changes    []bool
	}{
		{"first result sets state (fail)", 3, 3, []Status{F}, []Status{F}, []bool{true}},
		{"first result sets state (pass)", 3, 3, []Status{P}, []Status{P}, []bool{true}},
		{"rise=fall=1 follows input", 1, 1, []Status{P, F, P, P, F}, []Status{P, F, P, P, F}, []bool{true, true, true, false, true}},
		{"fall=3 needs three failures", 1, 3, []Status{P, F, F, F, F}, []Status{P, P, P, F, F}, []bool{true, false, false, true, false}},
		{"a pass resets the failure streak", 1, 3, []Status{P, F, F, P, F, F, F}, []Status{P, P, P, P, P, P, F}, []bool{true, false, false, false, false, false, true}},
		{"rise=2 after failing", 2, 1, []Status{P, F, P, P}, []Status{P, F, F, P}, []bool{true, true, false, true}},
		{"rise interrupted", 2, 1, []Status{F, P, F, P, P}, []Status{F, F, F, F, P}, []bool{true, false, false, false, true}},
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
	if d.pending() != "" {
		t.Fatal("no streak yet")
	}
	d.observe(StatusFailing)
	if p := d.pending(); !strings.Contains(p, "failing 1/3") {
		t.Fatalf("pending %q", p)
	}
}
