package state

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const testConfigYAML = `
zone: example.com
nameservers: {ns1: 192.0.2.53}
regions:
  - {name: us-east, capacity: 100}
  - {name: us-west, capacity: 100}
  - {name: eu-west, capacity: 100}
services:
  - name: api
    endpoints:
      us-east: [192.0.2.11, 192.0.2.12]
      us-west: [198.51.100.11]
      eu-west: [203.0.113.11, "2001:db8::1"]
  - name: solo
    policy: failover
    endpoints:
      us-east: [192.0.2.21]
policy:
  detect_after: 5s
  ramp: [50, 0]
  step_interval: 10s
  max_evacuated: 1
  hold_down: 1m
  budget: {per_day: 2, cooldown: 1m}
`

// cluster drives Apply the way the FSM does, one index at a time.
type cluster struct {
	t   *testing.T
	s   *State
	now time.Time
}

func newCluster(t *testing.T, withConfig bool) *cluster {
	c := &cluster{t: t, s: Empty(), now: t0}
	if withConfig {
		cfg, err := ParseConfig([]byte(testConfigYAML))
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		c.mustApply(CmdApplyConfig, ApplyConfig{Config: cfg})
	}
	return c
}

func (c *cluster) apply(t CommandType, body any) Result {
	return c.applyID(t, "", body)
}

func (c *cluster) applyID(t CommandType, id string, body any) Result {
	c.t.Helper()
	before := c.s
	next, res, err := ApplyNext(c.s, t, id, "tester", c.now, prepare(c.s, t, body))
	if err != nil {
		c.t.Fatal(err)
	}
	if next == before {
		c.t.Fatal("Apply returned the same pointer: states must be immutable")
	}
	if res.Error != "" && (next.Serial != before.Serial || len(next.Events) != len(before.Events) ||
		!reflect.DeepEqual(next.Regions, before.Regions)) {
		c.t.Fatalf("refused command %s changed state: %s", t, res.Error)
	}
	c.s = next
	return res
}

// prepare turns a command as a user writes it into what this release
// proposes (as the API and the leader do), where it can; what they would
// refuse goes as it is, through Apply's path for entries of aa66dac.
func prepare(s *State, t CommandType, body any) any {
	switch b := body.(type) {
	case ApplyConfig:
		if b.Config != nil && !b.Normalized {
			c := *b.Config
			if c.Normalize() == nil {
				return NewApplyConfig(&c)
			}
		}
	case PutRunbook:
		if !b.Prepared {
			if p, _, err := PreparePutRunbook("runbook.yaml", []byte(b.Source)); err == nil {
				return p
			}
		}
	case DrillStart:
		if !b.Prepared {
			if p, err := PrepareDrill(s, b); err == nil {
				return p
			}
		}
	case ScheduleAdd:
		if !b.Prepared && b.Validate() == nil {
			b.Prepared = true
			return b
		}
	}
	return body
}

func (c *cluster) mustApply(t CommandType, body any) Result {
	c.t.Helper()
	res := c.apply(t, body)
	if res.Error != "" {
		c.t.Fatalf("%s refused: %s (%s)", t, res.Error, res.Code)
	}
	return res
}

func (c *cluster) region(name string) RegionState {
	c.t.Helper()
	r, ok := c.s.Region(name)
	if !ok {
		c.t.Fatalf("no region %s", name)
	}
	return r
}

func TestApplyConfigInitialisesRegions(t *testing.T) {
	c := newCluster(t, true)
	if c.s.ConfigVersion != 1 || len(c.s.ConfigHistory) != 1 {
		t.Fatalf("version %d history %d", c.s.ConfigVersion, len(c.s.ConfigHistory))
	}
	for _, name := range []string{"us-east", "us-west", "eu-west"} {
		r := c.region(name)
		if r.Phase != PhaseActive || r.Weight != 100 {
			t.Errorf("%s: %+v", name, r)
		}
	}
	if c.s.Config.Zone != "example.com." || c.s.Config.Services[0].Policy != PolicyWeighted {
		t.Errorf("defaults not filled: %+v", c.s.Config)
	}
	if c.s.Serial == 0 || c.s.Events[0].Kind != EventConfigApplied {
		t.Errorf("serial %d events %+v", c.s.Serial, c.s.Events)
	}
	// A second apply keeps the state of regions that stay and drops the rest.
	c.mustApply(CmdSetWeight, SetWeight{Region: "us-west", Weight: 30, Reason: "drill"})
	cfg, _ := ParseConfig([]byte(strings.Replace(testConfigYAML, "  - {name: eu-west, capacity: 100}\n", "", 1)))
	if cfg != nil {
		t.Fatal("config with an endpoint in an undeclared region must not parse")
	}
	cfg, err := ParseConfig([]byte(strings.NewReplacer(
		"  - {name: eu-west, capacity: 100}\n", "",
		"      eu-west: [203.0.113.11, \"2001:db8::1\"]\n", "").Replace(testConfigYAML)))
	if err != nil {
		t.Fatal(err)
	}
	c.mustApply(CmdApplyConfig, ApplyConfig{Config: cfg})
	if _, ok := c.s.Region("eu-west"); ok {
		t.Error("eu-west survived its removal")
	}
	if w := c.region("us-west").Weight; w != 30 {
		t.Errorf("us-west weight %d after re-apply, want 30", w)
	}
	if c.s.ConfigVersion != 2 {
		t.Errorf("version %d", c.s.ConfigVersion)
	}
}

func TestCommandsBeforeConfigAreRefused(t *testing.T) {
	c := newCluster(t, false)
	for _, tc := range []struct {
		t    CommandType
		body any
	}{
		{CmdEvacuate, Evacuate{Region: "us-east", Reason: "x"}},
		{CmdRestore, Restore{Region: "us-east", Reason: "x"}},
		{CmdSetWeight, SetWeight{Region: "us-east", Weight: 1}},
		{CmdSetHealth, SetHealth{Region: "us-east", Service: "api"}},
	} {
		if res := c.apply(tc.t, tc.body); res.Code != CodeNoConfig {
			t.Errorf("%s: %+v", tc.t, res)
		}
	}
}

func TestEvacuateRampAndRestore(t *testing.T) {
	c := newCluster(t, true)
	c.mustApply(CmdEvacuate, Evacuate{Region: "eu-west", Reason: "maintenance"})
	r := c.region("eu-west")
	if r.Phase != PhaseEvacuating || r.Weight != 50 || r.Ramp == nil || r.Ramp.Next != 1 {
		t.Fatalf("after evacuate: %+v %+v", r, r.Ramp)
	}
	if !r.Ramp.NextAt.Equal(t0.Add(10 * time.Second)) {
		t.Errorf("next at %v", r.Ramp.NextAt)
	}
	// A step that is not the next one is refused: no step applies twice.
	if res := c.apply(CmdRampStep, RampStep{Region: "eu-west", Step: 0}); res.Code != CodeConflict {
		t.Errorf("stale step: %+v", res)
	}
	c.now = t0.Add(10 * time.Second)
	c.mustApply(CmdRampStep, RampStep{Region: "eu-west", Step: 1})
	r = c.region("eu-west")
	if r.Phase != PhaseEvacuated || r.Weight != 0 || r.Ramp != nil {
		t.Fatalf("after last step: %+v", r)
	}
	if res := c.apply(CmdRampStep, RampStep{Region: "eu-west", Step: 1}); res.Code != CodeConflict {
		t.Errorf("replayed step: %+v", res)
	}
	if res := c.apply(CmdEvacuate, Evacuate{Region: "eu-west", Reason: "again"}); res.Code != CodeConflict {
		t.Errorf("double evacuate: %+v", res)
	}
	c.mustApply(CmdRestore, Restore{Region: "eu-west", Reason: "done", Ramp: []int{100}})
	r = c.region("eu-west")
	if r.Phase != PhaseActive || r.Weight != 100 || !r.RestoredAt.Equal(c.now) {
		t.Fatalf("after restore: %+v", r)
	}
	kinds := []string{}
	for _, e := range c.s.Events {
		kinds = append(kinds, e.Kind)
	}
	want := []string{EventConfigApplied, EventEvacuate, EventStep, EventStep, EventEvacuated, EventRestore, EventStep, EventActive}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("events %v\nwant %v", kinds, want)
	}
	for i, e := range c.s.Events {
		if e.Seq != uint64(i+1) || e.Actor != "tester" {
			t.Errorf("event %d: %+v", i, e)
		}
	}
}

func TestSafetyRules(t *testing.T) {
	tests := []struct {
		name  string
		setup func(c *cluster)
		cmd   CommandType
		body  any
		code  string
	}{
		{"last region of a service", nil, CmdEvacuate, Evacuate{Region: "us-east", Reason: "x"}, CodeRule},
		{"last region forced", nil, CmdEvacuate, Evacuate{Region: "us-east", Reason: "x", Force: true}, ""},
		{"weight 0 on last region", nil, CmdSetWeight, SetWeight{Region: "us-east", Weight: 0}, CodeRule},
		{"other region fine", nil, CmdEvacuate, Evacuate{Region: "us-west", Reason: "x"}, ""},
		{"unknown region", nil, CmdEvacuate, Evacuate{Region: "mars", Reason: "x"}, CodeNotFound},
		{"bad ramp", nil, CmdEvacuate, Evacuate{Region: "us-west", Ramp: []int{0, 50}}, CodeInvalid},
		{"restore active", nil, CmdRestore, Restore{Region: "us-west"}, CodeConflict},
		{"bad weight", nil, CmdSetWeight, SetWeight{Region: "us-west", Weight: 101}, CodeInvalid},
		{"automatic second evacuation past max_evacuated", func(c *cluster) {
			c.mustApply(CmdEvacuate, Evacuate{Region: "us-west", Reason: "x", Automatic: true})
			c.now = c.now.Add(time.Hour)
		}, CmdEvacuate, Evacuate{Region: "eu-west", Automatic: true}, CodeRule},
		{"manual second evacuation allowed", func(c *cluster) {
			c.mustApply(CmdEvacuate, Evacuate{Region: "us-west", Reason: "x", Automatic: true})
		}, CmdEvacuate, Evacuate{Region: "eu-west"}, ""},
		{"automatic while frozen", func(c *cluster) {
			c.mustApply(CmdFreeze, Freeze{Reason: "incident"})
		}, CmdEvacuate, Evacuate{Region: "eu-west", Automatic: true}, CodeFrozen},
		{"manual while frozen", func(c *cluster) {
			c.mustApply(CmdFreeze, Freeze{Reason: "incident"})
		}, CmdEvacuate, Evacuate{Region: "eu-west"}, ""},
		{"automatic when the others are unhealthy", func(c *cluster) {
			c.mustApply(CmdSetHealth, SetHealth{Region: "us-west", Service: "api", Healthy: false})
			c.mustApply(CmdSetHealth, SetHealth{Region: "us-east", Service: "api", Healthy: false})
		}, CmdEvacuate, Evacuate{Region: "eu-west", Automatic: true}, CodeRule},
		{"automatic in hold-down", func(c *cluster) {
			c.mustApply(CmdEvacuate, Evacuate{Region: "eu-west", Ramp: []int{0}})
			c.mustApply(CmdRestore, Restore{Region: "eu-west", Ramp: []int{100}})
			c.now = c.now.Add(30 * time.Second)
		}, CmdEvacuate, Evacuate{Region: "eu-west", Automatic: true}, CodeRule},
		{"automatic after hold-down", func(c *cluster) {
			c.mustApply(CmdEvacuate, Evacuate{Region: "eu-west", Ramp: []int{0}})
			c.mustApply(CmdRestore, Restore{Region: "eu-west", Ramp: []int{100}})
			c.now = c.now.Add(2 * time.Minute)
		}, CmdEvacuate, Evacuate{Region: "eu-west", Automatic: true}, ""},
		{"automatic within cooldown", func(c *cluster) {
			c.mustApply(CmdEvacuate, Evacuate{Region: "us-west", Ramp: []int{0}, Automatic: true})
			c.mustApply(CmdRestore, Restore{Region: "us-west", Ramp: []int{100}})
			c.now = c.now.Add(30 * time.Second)
		}, CmdEvacuate, Evacuate{Region: "eu-west", Automatic: true}, CodeRule},
		{"automatic past the daily budget", func(c *cluster) {
			for i := 0; i < 2; i++ {
				c.mustApply(CmdEvacuate, Evacuate{Region: "us-west", Ramp: []int{0}, Automatic: true})
				c.mustApply(CmdRestore, Restore{Region: "us-west", Ramp: []int{100}})
				c.now = c.now.Add(2 * time.Minute)
			}
		}, CmdEvacuate, Evacuate{Region: "eu-west", Automatic: true}, CodeRule},
		{"automatic in shadow mode", func(c *cluster) {
			cfg, _ := ParseConfig([]byte(testConfigYAML + "  mode: shadow\n"))
			c.mustApply(CmdApplyConfig, ApplyConfig{Config: cfg})
		}, CmdEvacuate, Evacuate{Region: "eu-west", Automatic: true}, CodeRule},
		{"unfreeze when not frozen", nil, CmdUnfreeze, Freeze{}, CodeNotFrozen},
		{"health for unknown service", nil, CmdSetHealth, SetHealth{Region: "us-west", Service: "nope"}, CodeNotFound},
		{"empty event kind", nil, CmdRecordEvent, RecordEvent{}, CodeInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, true)
			if tc.setup != nil {
				tc.setup(c)
			}
			res := c.apply(tc.cmd, tc.body)
			if res.Code != tc.code {
				t.Fatalf("code %q (%s), want %q", res.Code, res.Error, tc.code)
			}
		})
	}
}

func TestDuplicateRequestIsNoop(t *testing.T) {
	c := newCluster(t, true)
	c.applyID(CmdSetWeight, "req-1", SetWeight{Region: "us-west", Weight: 40})
	events := len(c.s.Events)
	res := c.applyID(CmdSetWeight, "req-1", SetWeight{Region: "us-west", Weight: 40})
	if !res.Duplicate || len(c.s.Events) != events {
		t.Fatalf("retry not a no-op: %+v, events %d -> %d", res, events, len(c.s.Events))
	}
}

func TestHealthAndEffectiveWeights(t *testing.T) {
	c := newCluster(t, true)
	api := c.s.Config.Service("api")
	weights := func() map[string]int {
		m := map[string]int{}
		for _, rw := range c.s.EffectiveWeights(api) {
			m[rw.Region] = rw.Weight
		}
		return m
	}
	if got := weights(); !reflect.DeepEqual(got, map[string]int{"us-east": 100, "us-west": 100, "eu-west": 100}) {
		t.Fatalf("initial %v", got)
	}
	serial := c.s.Serial
	c.mustApply(CmdSetHealth, SetHealth{Region: "us-east", Service: "api", Healthy: false, Share: 0})
	if c.s.Serial <= serial {
		t.Error("serial did not rise on a health change")
	}
	if got := weights(); got["us-east"] != 0 || got["us-west"] != 100 {
		t.Fatalf("unhealthy us-east: %v", got)
	}
	// Same verdict again: no event, no serial change.
	n, serial := len(c.s.Events), c.s.Serial
	c.mustApply(CmdSetHealth, SetHealth{Region: "us-east", Service: "api", Healthy: false})
	if len(c.s.Events) != n || c.s.Serial != serial {
		t.Error("repeated verdict recorded")
	}
	c.mustApply(CmdSetWeight, SetWeight{Region: "us-west", Weight: 0, Reason: "x"})
	c.mustApply(CmdSetHealth, SetHealth{Region: "eu-west", Service: "api", Healthy: false})
	// Every weighted region unhealthy: health is ignored rather than answer nothing.
	if got := weights(); got["us-east"] != 100 || got["eu-west"] != 100 || got["us-west"] != 0 {
		t.Fatalf("all unhealthy: %v", got)
	}
	c.mustApply(CmdSetWeight, SetWeight{Region: "us-east", Weight: 0, Force: true})
	c.mustApply(CmdSetWeight, SetWeight{Region: "eu-west", Weight: 0, Force: true})
	if got := weights(); got["us-east"] != 1 || got["us-west"] != 1 || got["eu-west"] != 1 {
		t.Fatalf("all zero must fail open: %v", got)
	}
	c.mustApply(CmdSetHealth, SetHealth{Region: "us-east", Service: "api", Healthy: true})
	if c.s.IsUnhealthy("us-east", "api") {
		t.Error("healthy verdict not recorded")
	}
}

func TestEventsSince(t *testing.T) {
	c := newCluster(t, true)
	for i := 0; i < 10; i++ {
		c.mustApply(CmdRecordEvent, RecordEvent{Kind: EventNote, Reason: "n"})
	}
	if got := c.s.EventsSince(0, 0); len(got) != 11 {
		t.Fatalf("all: %d", len(got))
	}
	got := c.s.EventsSince(5, 3)
	if len(got) != 3 || got[0].Seq != 6 || got[2].Seq != 8 {
		t.Fatalf("since 5 limit 3: %+v", got)
	}
	if got := c.s.EventsSince(11, 0); len(got) != 0 {
		t.Fatalf("past end: %+v", got)
	}
}

// TestCommandTable: every numbered type is registered once, with a name of
// its own; Encode flags the ignorable ones.
func TestCommandTable(t *testing.T) {
	known := KnownCommandTypes()
	if last := known[len(known)-1]; len(known) != int(last) {
		t.Fatalf("%d types registered, want 1..%d", len(known), last)
	}
	names := map[string]CommandType{}
	for i, typ := range known {
		if typ != CommandType(i+1) {
			t.Fatalf("type %d registered, want %d: numbers are dense and appended", typ, i+1)
		}
		if other, dup := names[typ.String()]; dup || strings.HasPrefix(typ.String(), "unknown") {
			t.Fatalf("type %d named %q (also %d)", typ, typ, other)
		}
		names[typ.String()] = typ
		data, err := Encode(typ, "", "a", t0, struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		ignorable := typ == CmdDrillDrain || typ == CmdNotifyProgress || typ == CmdEnrollAgent || typ == CmdRevokeAgent ||
			typ == CmdDemandReport || typ == CmdSetSpill
		if got := CommandType(data[0]).Ignorable(); got != ignorable {
			t.Errorf("%s encoded ignorable=%v", typ, got)
		}
	}
	if Known(0x7f) || CommandType(0x7f).String() != "unknown(127)" {
		t.Fatal("type 127 known")
	}
	if (CmdDrillDrain | IgnoreUnknownFlag).String() != "drill-drain" {
		t.Fatal("the flag changes the name")
	}
}

func TestUnknownCommand(t *testing.T) {
	c := newCluster(t, true)
	// With the ignore flag an unknown type is skipped...
	if res := c.apply(CommandType(0x7f)|IgnoreUnknownFlag, struct{}{}); res.Error != "" {
		t.Fatalf("flagged unknown: %+v", res)
	}
	// ...without it the FSM stops rather than diverge.
	defer func() {
		if recover() == nil {
			t.Fatal("unknown command type did not panic")
		}
	}()
	c.apply(CommandType(0x7f), struct{}{})
}

func TestParseConfigErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"empty", "", "empty"},
		{"unknown key", "zone: a.com\nbogus: 1\n", "bogus"},
		{"no zone", "regions: [{name: a}]\n", "zone: required"},
		{"bad region", "zone: a.com\nnameservers: {ns1: 192.0.2.1}\nregions: [{name: A_B}]\nservices: [{name: x, endpoints: {A_B: [192.0.2.1]}}]\n", "regions[0].name"},
		{"bad ip", "zone: a.com\nnameservers: {ns1: 192.0.2.1}\nregions: [{name: a}]\nservices: [{name: x, endpoints: {a: [1.2.3]}}]\n", "services[0].endpoints.a[0]"},
		{"unknown endpoint region", "zone: a.com\nnameservers: {ns1: 192.0.2.1}\nregions: [{name: a}]\nservices: [{name: x, endpoints: {b: [192.0.2.1]}}]\n", "services[0].endpoints.b: unknown region"},
		{"bad policy", "zone: a.com\nnameservers: {ns1: 192.0.2.1}\nregions: [{name: a}]\nservices: [{name: x, policy: random, endpoints: {a: [192.0.2.1]}}]\n", "services[0].policy"},
		{"bad ramp", "zone: a.com\nnameservers: {ns1: 192.0.2.1}\nregions: [{name: a}]\nservices: [{name: x, endpoints: {a: [192.0.2.1]}}]\npolicy: {ramp: [50, 60]}\n", "policy.ramp"},
		{"bad duration", "zone: a.com\nnameservers: {ns1: 192.0.2.1}\nregions: [{name: a}]\nservices: [{name: x, endpoints: {a: [192.0.2.1]}}]\npolicy: {detect_after: soon}\n", "invalid duration"},
		{"bad mode", "zone: a.com\nnameservers: {ns1: 192.0.2.1}\nregions: [{name: a}]\nservices: [{name: x, endpoints: {a: [192.0.2.1]}}]\npolicy: {mode: yolo}\n", "policy.mode"},
		{"threshold", "zone: a.com\nnameservers: {ns1: 192.0.2.1}\nregions: [{name: a}]\nservices: [{name: x, endpoints: {a: [192.0.2.1]}}]\npolicy: {unhealthy_below: 2}\n", "policy.unhealthy_below"},
		{"no nameservers", "zone: a.com\nregions: [{name: a}]\nservices: [{name: x, endpoints: {a: [192.0.2.1]}}]\n", "nameservers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if _, err := ParseConfig([]byte(testConfigYAML)); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	// JSON is accepted too.
	if _, err := ParseConfig([]byte(`{"zone":"a.com","nameservers":{"ns1":"192.0.2.1"},"regions":[{"name":"a"}],"services":[{"name":"x","endpoints":{"a":["192.0.2.1"]}}]}`)); err != nil {
		t.Fatalf("json config: %v", err)
	}
}

func TestHealthIgnoredOutsideAutoMode(t *testing.T) {
	for _, mode := range []string{"shadow", "off"} {
		c := newCluster(t, false)
		cfg, err := ParseConfig([]byte(testConfigYAML + "  mode: " + mode + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		c.mustApply(CmdApplyConfig, ApplyConfig{Config: cfg})
		c.mustApply(CmdSetHealth, SetHealth{Region: "us-east", Service: "api", Healthy: false})
		for _, rw := range c.s.EffectiveWeights(c.s.Config.Service("api")) {
			if rw.Weight != 100 {
				t.Fatalf("mode %s: %s has effective weight %d; answers must follow the weights alone", mode, rw.Region, rw.Weight)
			}
		}
	}
}

func TestHealthySince(t *testing.T) {
	c := newCluster(t, true)
	c.mustApply(CmdSetHealth, SetHealth{Region: "us-east", Service: "api", Healthy: false})
	c.mustApply(CmdSetHealth, SetHealth{Region: "us-east", Service: "solo", Healthy: false})
	c.now = c.now.Add(time.Minute)
	c.mustApply(CmdSetHealth, SetHealth{Region: "us-east", Service: "api", Healthy: true})
	if r := c.region("us-east"); !r.HealthySince.IsZero() {
		t.Fatal("healthy since set while solo is still unhealthy")
	}
	c.now = c.now.Add(time.Minute)
	c.mustApply(CmdSetHealth, SetHealth{Region: "us-east", Service: "solo", Healthy: true})
	if r := c.region("us-east"); !r.HealthySince.Equal(c.now) {
		t.Fatalf("healthy since %v, want %v", r.HealthySince, c.now)
	}
}

func TestApplyNextLeavesItsInputAlone(t *testing.T) {
	c := newCluster(t, true)
	before := c.s
	next, res, err := ApplyNext(before, CmdEvacuate, "w1", "tester", t0, Evacuate{Region: "eu-west", Reason: "test"})
	if err != nil || res.Error != "" {
		t.Fatalf("evacuate: %v %s", err, res.Error)
	}
	was, _ := before.Region("eu-west")
	now, _ := next.Region("eu-west")
	if next.Index != before.Index+1 || was.Phase == now.Phase {
		t.Fatalf("next state: index %d (was %d), phase %s (was %s)", next.Index, before.Index, now.Phase, was.Phase)
	}
	if _, _, err := ApplyNext(before, CmdEvacuate, "", "tester", t0, func() {}); err == nil {
		t.Fatal("a body that cannot be encoded was accepted")
	}
}
