package state

import (
	"reflect"
	"testing"
)

// FuzzParseConfig: any input either fails with an error or gives a config
// that survives a round trip through YAML unchanged.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(testConfigYAML))
	// What deploy/example/run.sh writes, and the README's records and
	// secondaries.
	f.Add([]byte(`zone: example.com.
ttl: 30
nameservers: {ns1: 192.0.2.53}
regions:
  - {name: us-east, capacity: 100}
  - {name: us-west, capacity: 100}
  - {name: eu-west, capacity: 100}
services:
  - name: api
    policy: weighted
    ttl: 30
    endpoints:
      us-east: [192.0.2.11, 192.0.2.12]
      us-west: [198.51.100.11, 198.51.100.12]
      eu-west: [203.0.113.11, 203.0.113.12]
policy: {unhealthy_below: 0.5, detect_after: 20s, ramp: [50, 0], step_interval: 20s, mode: auto, max_evacuated: 1}
records:
  - {name: "@", type: TXT, value: "v=spf1 -all"}
secondaries: ["192.0.2.60:53"]
transfer_allow: [10.0.0.0/24]
`))
	f.Add([]byte(`{"zone":"a.com","nameservers":{"ns1":"192.0.2.1"},"regions":[{"name":"a"}],"services":[{"name":"x","endpoints":{"a":["192.0.2.1"]}}]}`))
	f.Add([]byte("zone: a.com\npolicy: {ramp: [50, 0], detect_after: 1s}\n"))
	f.Add([]byte(topoBase + `topology:
  nets: {10.1.2.3/16: [us-east, eu-west], "2001:DB8:20::1/48": [eu-west]}
  countries: {de: [eu-west, us-east]}
  continents: {na: [us-east]}
  default: [us-east, eu-west]
`))
	f.Add([]byte("&a [*a]"))
	f.Add([]byte("regions: [{name: a, capacity: -1}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("marshal a valid config: %v", err)
		}
		again, err := ParseConfig(out)
		if err != nil {
			t.Fatalf("re-parse of a valid config failed: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, again)
		}
	})
}

// FuzzApply: a command of a known type with any body never panics, and a
// refused command changes nothing but the applied index.
func FuzzApply(f *testing.F) {
	for _, tc := range []struct {
		t    CommandType
		body string
	}{
		{CmdEvacuate, `{"region":"us-west","reason":"x","ramp":[50,0]}`},
		{CmdRestore, `{"region":"us-west","ramp":[100]}`},
		{CmdRampStep, `{"region":"us-west","step":1}`},
		{CmdSetWeight, `{"region":"eu-west","weight":-5}`},
		{CmdSetHealth, `{"region":"us-east","service":"api","healthy":false}`},
		{CmdFreeze, `{"reason":"x"}`},
		{CmdRecordEvent, `{"kind":"note"}`},
		{CmdApplyConfig, `{"config":{"zone":"x"}}`},
		{CmdEvacuate, `{"region":"us-west","capacity":{"us-east":1},"ramp":[]}`},
		{CmdApplyConfig, `{"config":{"zone":"x.","regions":[{"name":"a"}],"policy":{"max_evacuated":1}},"normalized":true}`},
		{CmdPutRunbook, `{"source":"x","prepared":true,"name":"r","steps":1}`},
		{CmdDrillStart, `{"id":"d-1","runbook":"r","prepared":true,"steps":[{"kind":"shift","region":"us-west","weight":500}]}`},
		{CmdScheduleAdd, `{"id":"s","cron":"nonsense","runbook":"r","prepared":true}`},
		{CmdScheduleFire, `{"id":"s","scheduled_time":"2026-11-25T12:00:00Z","prepared":true,"drill":{"id":"x"}}`},
		{CmdDrillYield, `{"region":"us-west","change":"restore"}`},
	} {
		f.Add(uint8(tc.t), []byte(tc.body))
	}
	base := func(t *testing.T) *State {
		c := newCluster(t, true)
		return c.s
	}
	f.Fuzz(func(t *testing.T, typ uint8, body []byte) {
		known := KnownCommandTypes()
		ct := known[(int(typ)+len(known)-1)%len(known)] // known types only: 1..n
		s := base(t)
		cmd := Command{Type: ct, Time: t0, Actor: "fuzz", Body: body}
		next, res := Apply(s, s.Index+1, cmd)
		if res.Error != "" {
			if next.Serial != s.Serial || len(next.Events) != len(s.Events) || !reflect.DeepEqual(next.Regions, s.Regions) {
				t.Fatalf("refused %s changed the state", ct)
			}
			return
		}
		for _, r := range next.RegionList() {
			if r.Weight < 0 || r.Weight > 100 {
				t.Fatalf("%s left %s at weight %d", ct, r.Name, r.Weight)
			}
		}
	})
}
