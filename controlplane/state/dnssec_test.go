package state

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func keyState(tag uint16, flags uint16) DNSSECKeyState {
	return DNSSECKeyState{ID: fmt.Sprintf("%d/13/%d/%016x", tag, flags, tag), Tag: tag, Algorithm: 13, Flags: flags}
}

var (
	testKSK    = keyState(100, 257)
	testZSK    = keyState(200, 256)
	testNewZSK = keyState(300, 256)
	testNewKSK = keyState(400, 257)
)

// keyStates renders the recorded keys as "id=state" for comparison.
func keyStates(s *State) string {
	if s.DNSSEC == nil {
		return "<none>"
	}
	var out []string
	for _, k := range s.DNSSEC.Keys {
		out = append(out, fmt.Sprintf("%d=%s", k.Tag, k.State))
	}
	return strings.Join(out, " ")
}

func TestDNSSECRollover(t *testing.T) {
	type step struct {
		cmd     CommandType
		body    any
		advance time.Duration // the clock moves before the step
		code    string        // "" when it applies
		keys    string        // the key states after the step
		phase   string        // the rollover's phase after ("" none)
	}
	record := RecordDNSSECKeys{Keys: []DNSSECKeyState{testZSK, testKSK}, Reason: "first"}
	start := func(k DNSSECKeyState) DNSSECRolloverStep {
		return DNSSECRolloverStep{Action: RolloverStart, Key: k, Wait: Duration(time.Minute), Reason: "scheduled"}
	}
	next := func(phase string) DNSSECRolloverStep {
		return DNSSECRolloverStep{Action: RolloverNext, Phase: phase, Wait: Duration(2 * time.Minute)}
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"zsk pre-publish", []step{
			{cmd: CmdDNSSECKeys, body: record, keys: "100=active 200=active"},
			{cmd: CmdDNSSECRollover, body: start(testNewZSK), keys: "100=active 200=active 300=published", phase: RolloverPublished},
			{cmd: CmdDNSSECRollover, body: next(RolloverPublished), advance: time.Minute, keys: "100=active 200=published 300=active", phase: RolloverActive},
			{cmd: CmdDNSSECRollover, body: next(RolloverActive), advance: 2 * time.Minute, keys: "100=active 300=active"},
		}},
		{"start records the keys", []step{
			{cmd: CmdDNSSECRollover, body: func() DNSSECRolloverStep {
				b := start(testNewKSK)
				b.Record = []DNSSECKeyState{testKSK, testZSK}
				return b
			}(), keys: "100=active 200=active 400=published", phase: RolloverPublished},
			{cmd: CmdDNSSECRollover, body: next(RolloverPublished), advance: time.Minute, keys: "100=published 200=active 400=active", phase: RolloverActive},
		}},
		{"wait refused, force overrides", []step{
			{cmd: CmdDNSSECKeys, body: record, keys: "100=active 200=active"},
			{cmd: CmdDNSSECRollover, body: start(testNewZSK), keys: "100=active 200=active 300=published", phase: RolloverPublished},
			{cmd: CmdDNSSECRollover, body: next(RolloverPublished), advance: 59 * time.Second, code: CodeRule, keys: "100=active 200=active 300=published", phase: RolloverPublished},
			{cmd: CmdDNSSECRollover, body: func() DNSSECRolloverStep { b := next(RolloverPublished); b.Force = true; return b }(),
				keys: "100=active 200=published 300=active", phase: RolloverActive},
		}},
		{"abort while published", []step{
			{cmd: CmdDNSSECKeys, body: record, keys: "100=active 200=active"},
			{cmd: CmdDNSSECRollover, body: start(testNewZSK), keys: "100=active 200=active 300=published", phase: RolloverPublished},
			{cmd: CmdDNSSECRollover, body: DNSSECRolloverStep{Action: RolloverAbort, Phase: RolloverPublished}, keys: "100=active 200=active"},
		}},
		{"no abort once active", []step{
			{cmd: CmdDNSSECKeys, body: record, keys: "100=active 200=active"},
			{cmd: CmdDNSSECRollover, body: start(testNewZSK), phase: RolloverPublished, keys: "100=active 200=active 300=published"},
			{cmd: CmdDNSSECRollover, body: next(RolloverPublished), advance: time.Hour, phase: RolloverActive, keys: "100=active 200=published 300=active"},
			{cmd: CmdDNSSECRollover, body: DNSSECRolloverStep{Action: RolloverAbort, Phase: RolloverActive}, code: CodeConflict, phase: RolloverActive, keys: "100=active 200=published 300=active"},
		}},
		{"stale phase refused", []step{
			{cmd: CmdDNSSECKeys, body: record, keys: "100=active 200=active"},
			{cmd: CmdDNSSECRollover, body: start(testNewZSK), phase: RolloverPublished, keys: "100=active 200=active 300=published"},
			{cmd: CmdDNSSECRollover, body: next(RolloverActive), advance: time.Hour, code: CodeConflict, phase: RolloverPublished, keys: "100=active 200=active 300=published"},
		}},
		{"refusals", []step{
			{cmd: CmdDNSSECRollover, body: start(testNewZSK), code: CodeConflict, keys: "<none>"},
			{cmd: CmdDNSSECRollover, body: next(RolloverPublished), code: CodeConflict, keys: "<none>"},
			{cmd: CmdDNSSECKeys, body: RecordDNSSECKeys{Keys: []DNSSECKeyState{testZSK}}, code: CodeInvalid, keys: "<none>"},
			{cmd: CmdDNSSECKeys, body: RecordDNSSECKeys{Keys: []DNSSECKeyState{{ID: "1/13/257/x", Tag: 1, Algorithm: 13, Flags: 257}}}, code: CodeInvalid, keys: "<none>"},
			{cmd: CmdDNSSECKeys, body: record, keys: "100=active 200=active"},
			{cmd: CmdDNSSECKeys, body: record, code: CodeConflict, keys: "100=active 200=active"},
			{cmd: CmdDNSSECRollover, body: start(testZSK), code: CodeConflict, keys: "100=active 200=active"},
			{cmd: CmdDNSSECRollover, body: start(DNSSECKeyState{ID: "500/15/256/00000000000001f4", Tag: 500, Algorithm: 15, Flags: 256}), code: CodeConflict, keys: "100=active 200=active"},
			{cmd: CmdDNSSECRollover, body: DNSSECRolloverStep{Action: "skip"}, code: CodeInvalid, keys: "100=active 200=active"},
			{cmd: CmdDNSSECRollover, body: start(testNewZSK), phase: RolloverPublished, keys: "100=active 200=active 300=published"},
			{cmd: CmdDNSSECRollover, body: start(testNewKSK), code: CodeConflict, phase: RolloverPublished, keys: "100=active 200=active 300=published"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, true)
			for i, st := range tc.steps {
				c.now = c.now.Add(st.advance)
				serial, events := c.s.Serial, len(c.s.Events)
				res := c.apply(st.cmd, st.body)
				if res.Code != st.code {
					t.Fatalf("step %d: code %q (%s), want %q", i, res.Code, res.Error, st.code)
				}
				if got := keyStates(c.s); got != st.keys {
					t.Fatalf("step %d: keys %s, want %s", i, got, st.keys)
				}
				phase := ""
				if c.s.DNSSEC != nil && c.s.DNSSEC.Rollover != nil {
					phase = c.s.DNSSEC.Rollover.Phase
				}
				if phase != st.phase {
					t.Fatalf("step %d: phase %q, want %q", i, phase, st.phase)
				}
				if st.code == "" {
					// Every applied step changes the answers (the DNSKEY
					// RRset or the signatures) and is in the audit log.
					if c.s.Serial == serial || len(c.s.Events) != events+1 {
						t.Fatalf("step %d: serial %d->%d, events %d->%d", i, serial, c.s.Serial, events, len(c.s.Events))
					}
					e := c.s.Events[len(c.s.Events)-1]
					if (e.Kind != EventDNSSECRollover && e.Kind != EventDNSSECKeys) || e.Actor != "tester" || !e.Time.Equal(c.now) {
						t.Fatalf("step %d: event %+v", i, e)
					}
				}
			}
		})
	}
}

// TestDNSSECRolloverTimes: the phase's times come from the command's
// time and the proposer's wait, never a clock.
func TestDNSSECRolloverTimes(t *testing.T) {
	c := newCluster(t, true)
	c.mustApply(CmdDNSSECKeys, RecordDNSSECKeys{Keys: []DNSSECKeyState{testZSK, testKSK}})
	c.mustApply(CmdDNSSECRollover, DNSSECRolloverStep{Action: RolloverStart, Key: testNewZSK, Wait: Duration(90 * time.Second), Reason: "r"})
	r := c.s.DNSSEC.Rollover
	if !r.Since.Equal(c.now) || !r.NotBefore.Equal(c.now.Add(90*time.Second)) || r.Old != testZSK.ID || r.New != testNewZSK.ID || r.Actor != "tester" {
		t.Fatalf("rollover %+v", r)
	}
	if res := c.apply(CmdDNSSECRollover, DNSSECRolloverStep{Action: RolloverNext, Phase: RolloverPublished}); res.Code != CodeRule || !strings.Contains(res.Error, "1m30s left") {
		t.Fatalf("early next: %+v", res)
	}
}
