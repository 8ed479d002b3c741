package state

import (
	"encoding/json"
	"strings"
	"testing"
)

func fp(f float64) *float64 { return &f }

func TestValidateBlockers(t *testing.T) {
	const am, prom = "http://127.0.0.1:9093", "http://127.0.0.1:9090"
	many := make([]Blocker, MaxBlockers+1)
	for i := range many {
		many[i] = Blocker{Alertmanager: am, Alert: "A"}
	}
	for _, tc := range []struct {
		name string
		bs   []Blocker
		want []string // substrings of the error; none: valid
	}{
		{"none", nil, nil},
		{"alert", []Blocker{{Alertmanager: am, Alert: "HighErrorRate"}}, nil},
		{"query above", []Blocker{{Prometheus: prom, Query: "sum(rate(errors_total[5m]))", Above: fp(10)}}, nil},
		{"query below", []Blocker{{Prometheus: prom + "/", Query: "sum(up)", Below: fp(0)}}, nil},
		{"empty", []Blocker{{}}, []string{"block_on[0]: set alertmanager (with alert) or prometheus"}},
		{"both kinds", []Blocker{{Alertmanager: am, Prometheus: prom}}, []string{"block_on[0]: set alertmanager or prometheus, not both"}},
		{"no alert", []Blocker{{Alertmanager: am}}, []string{"block_on[0].alert: required"}},
		{"quote in alert", []Blocker{{Alertmanager: am, Alert: `a"b`}}, []string{"block_on[0].alert:", "not a valid alert name"}},
		{"bad url", []Blocker{{Alertmanager: "127.0.0.1:9093", Alert: "A"}}, []string{"block_on[0].alertmanager:"}},
		{"url with query", []Blocker{{Alertmanager: am + "/?x=1", Alert: "A"}}, []string{"block_on[0].alertmanager:", "base URL only"}},
		{"query on alertmanager", []Blocker{{Alertmanager: am, Alert: "A", Query: "up"}}, []string{"go with prometheus"}},
		{"no query", []Blocker{{Prometheus: prom, Above: fp(1)}}, []string{"block_on[0].query: required"}},
		{"no threshold", []Blocker{{Prometheus: prom, Query: "up"}}, []string{"exactly one of above and below"}},
		{"two thresholds", []Blocker{{Prometheus: prom, Query: "up", Above: fp(1), Below: fp(0)}}, []string{"exactly one of above and below"}},
		{"alert on prometheus", []Blocker{{Prometheus: prom, Query: "up", Above: fp(1), Alert: "A"}}, []string{"block_on[0].alert: goes with alertmanager"}},
		{"second bad", []Blocker{{Alertmanager: am, Alert: "A"}, {Prometheus: "ftp://x", Query: "up", Above: fp(1)}}, []string{"block_on[1].prometheus:"}},
		{"too many", many, []string{"block_on: 11 conditions, at most 10"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateBlockers(tc.bs)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestBlockOnOmitted: a schedule or drill without block_on encodes as
// before (old snapshots and the golden log replay byte for byte).
func TestBlockOnOmitted(t *testing.T) {
	for _, v := range []any{Schedule{}, Drill{}, DrillStart{}, ScheduleAdd{}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "block_on") {
			t.Errorf("%T encodes block_on when empty: %s", v, b)
		}
	}
}

// TestScheduledDrillInheritsBlockOn: the drill a schedule starts carries
// the schedule's block_on, through the fire's Apply.
func TestScheduledDrillInheritsBlockOn(t *testing.T) {
	bo := []Blocker{{Alertmanager: "http://127.0.0.1:9093", Alert: "HighErrorRate"}}
	sc := Schedule{ID: "s", Cron: "@hourly", Runbook: "r", BlockOn: bo}
	if d := ScheduledDrill(sc, t0); len(d.BlockOn) != 1 || d.BlockOn[0] != bo[0] {
		t.Fatalf("scheduled drill's block_on %+v", d.BlockOn)
	}
}
