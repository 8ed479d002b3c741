//go:build goldengen

package fsm

// This generator wrote testdata/golden-v1 with the encoder and Apply of
// commit aa66dac (the release before the upgrade-safe log), and must never
// be run again: the golden files are the previous release's log and state,
// which every later release must replay to the same state
// (TestGoldenLogReplay). Bodies are raw JSON, as that release wrote them.
//
//	go test -tags goldengen -run TestGenerateGoldenLog ./controlplane/fsm/

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/state"
)

func TestGenerateGoldenLog(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f := New(zap.NewNop())
	dir := filepath.Join("testdata", "golden-v1")
	out, err := os.Create(filepath.Join(dir, "log.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	enc := json.NewEncoder(out)
	for i, e := range goldenEntries {
		now := t0.Add(time.Duration(i) * 10 * time.Second)
		var data []byte
		if e.raw != "" {
			data = []byte(e.raw)
		} else {
			data, err = state.Encode(e.typ, e.id, e.actor, now, json.RawMessage(e.body))
			if err != nil {
				t.Fatal(err)
			}
		}
		index := uint64(i + 1)
		res := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data})
		var r json.RawMessage
		if b, ok := res.([]byte); ok {
			r = b
		}
		if err := enc.Encode(goldenEntry{Index: index, Data: data, Result: r}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.MarshalIndent(f.State(), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

type genEntry struct {
	typ   state.CommandType
	id    string
	actor string
	body  string
	raw   string // undecodable bytes, as they are
}

const goldenRunbook = "name: evac-east\\nparams:\\n  region: {default: eu-west}\\n  hold: {default: 10s}\\nsteps:\\n  - shift: {region: \\\"{{ .region }}\\\", weight: 0}\\n  - wait: {duration: \\\"{{ .hold }}\\\"}\\n  - gate: {check: others_healthy, region: \\\"{{ .region }}\\\"}\\n  - restore: {region: \\\"{{ .region }}\\\", ramp: [50, 100], step_interval: 10s}\\n  - notify: {message: \\\"{{ .region }} is back\\\"}\\n"

const goldenCanary = "# canary\\nname: canary-10\\ndescription: Shift 10% away and back.\\nparams:\\n  region: {required: true}\\n  hold: {default: 5m}\\npreconditions: [not_frozen]\\nsteps:\\n  - shift: {region: \\\"{{ .region }}\\\", weight: 90}\\n  - wait: {duration: \\\"{{ .hold }}\\\"}\\n  - gate: {check: all_healthy, abort_on_fail: true}\\n  - shift: {region: \\\"{{ .region }}\\\", weight: 100}\\n"

var goldenEntries = []genEntry{
	// 1: a config as written, not normalised: Apply of that release
	// filled the defaults, lower-cased and canonicalised.
	{typ: state.CmdApplyConfig, id: "c1", actor: "ops", body: `{"config":{"zone":"Example.COM","nameservers":{"ns1":"192.0.2.53"},
	 "regions":[{"name":"us-east","capacity":100},{"name":"us-west","capacity":100},{"name":"eu-west","capacity":100}],
	 "services":[{"name":"API","endpoints":{"us-east":["192.0.2.11","192.0.2.12"],"us-west":["198.51.100.11"],"eu-west":["203.0.113.11","2001:DB8:0::1"]}},
	             {"name":"solo","policy":"failover","endpoints":{"us-east":["192.0.2.21"]}}],
	 "transfer_allow":["10.0.0.7/24"],
	 "policy":{"detect_after":"5s","ramp":[50,0],"step_interval":"10s","max_evacuated":1,"hold_down":"1m","budget":{"per_day":2,"cooldown":"1m"}}}}`},
	// 2: invalid config: refused.
	{typ: state.CmdApplyConfig, actor: "ops", body: `{"config":{"zone":"x","regions":[{"name":"A B"}]}}`},
	// 3: the same request id again: a duplicate.
	{typ: state.CmdApplyConfig, id: "c1", actor: "ops", body: `{"config":{"zone":"x"}}`},
	{typ: state.CmdPutRunbook, actor: "ops", body: `{"source":"` + goldenRunbook + `"}`},
	{typ: state.CmdPutRunbook, actor: "ops", body: `{"source":"name: bad\nsteps: [{explode: {}}]\n"}`},
	{typ: state.CmdPutRunbook, actor: "ops", body: `{"source":"` + goldenCanary + `"}`},
	// The same source again: nothing recorded.
	{typ: state.CmdPutRunbook, actor: "ops", body: `{"source":"` + goldenCanary + `"}`},
	// A drill run to success.
	{typ: state.CmdDrillStart, id: "ds1", actor: "ops", body: `{"id":"d-1","runbook":"evac-east","params":{"region":"us-west"},"reason":"game day"}`},
	{typ: state.CmdDrillStep, id: "drill:d-1:0:start", actor: "drills", body: `{"id":"d-1","index":0,"phase":"start"}`},
	{typ: state.CmdDrillStep, id: "drill:d-1:0:end", actor: "drills", body: `{"id":"d-1","index":0,"phase":"end","outcome":"done"}`},
	{typ: state.CmdDrillStep, actor: "drills", body: `{"id":"d-1","index":1,"phase":"start"}`},
	{typ: state.CmdDrillStep, actor: "drills", body: `{"id":"d-1","index":1,"phase":"end","outcome":"done"}`},
	{typ: state.CmdDrillStep, actor: "drills", body: `{"id":"d-1","index":2,"phase":"start"}`},
	{typ: state.CmdDrillStep, actor: "drills", body: `{"id":"d-1","index":2,"phase":"end","outcome":"pass","detail":"others healthy"}`},
	{typ: state.CmdDrillStep, actor: "drills", body: `{"id":"d-1","index":3,"phase":"start"}`},
	{typ: state.CmdRampStep, actor: "steering", body: `{"region":"us-west","step":1}`},
	{typ: state.CmdDrillStep, actor: "drills", body: `{"id":"d-1","index":3,"phase":"end","outcome":"pass"}`},
	{typ: state.CmdDrillStep, actor: "drills", body: `{"id":"d-1","index":4,"phase":"start"}`},
	{typ: state.CmdDrillStep, actor: "drills", body: `{"id":"d-1","index":4,"phase":"end","outcome":"done"}`},
	// Refused drills: unknown parameter, missing required one, unknown region.
	{typ: state.CmdDrillStart, actor: "ops", body: `{"id":"d-2","runbook":"evac-east","params":{"zone":"x"}}`},
	{typ: state.CmdDrillStart, actor: "ops", body: `{"id":"d-3","runbook":"canary-10"}`},
	{typ: state.CmdDrillStart, actor: "ops", body: `{"id":"d-4","runbook":"canary-10","params":{"region":"mars"}}`},
	// A drill aborted after its first step.
	{typ: state.CmdDrillStart, actor: "ops", body: `{"id":"d-5","runbook":"canary-10","params":{"region":"eu-west","hold":"1m"},"reason":"canary"}`},
	{typ: state.CmdDrillStep, actor: "drills", body: `{"id":"d-5","index":0,"phase":"start"}`},
	{typ: state.CmdDrillDrain | state.IgnoreUnknownFlag, actor: "drain", body: `{"id":"d-5","report":{"node":"c1","step":0,"region":"eu-west","from":100,"to":90,"change_index":24,"change_at":"2026-11-25T12:03:50Z","population":3,"drained":2,"p50_ms":120,"p90_ms":null,"p99_ms":null,"past_ttl":1,"past_ttl_resolvers":[{"subnet":"198.51.100.0/24","service":"api","last_answered":"2026-11-25T12:03:40Z","asked_after":0}],"ttl_seconds":30,"slack_ms":2000,"closed_at":"2026-11-25T12:04:22Z","window_complete":true}}`},
	{typ: state.CmdDrillAbort, actor: "ops", body: `{"id":"d-5","reason":"enough"}`},
	{typ: state.CmdDrillAbort, actor: "ops", body: `{"id":"d-5","reason":"again"}`},
	// Schedules: one valid, one with a bad cron, one with a bad blackout.
	{typ: state.CmdScheduleAdd, actor: "ops", body: `{"id":"nightly","cron":"*/5 * * * *","tz":"Europe/Berlin","runbook":"evac-east","params":{"region":"eu-west","hold":"1s"},"blackouts":[{"from":"22:00","to":"06:00","days":["Sat","sun"]}],"skip_if":["frozen"],"reason":"weekly"}`},
	{typ: state.CmdScheduleAdd, actor: "ops", body: `{"id":"bad","cron":"61 * * * *","runbook":"evac-east"}`},
	{typ: state.CmdScheduleAdd, actor: "ops", body: `{"id":"bad2","cron":"@hourly","runbook":"evac-east","blackouts":[{"from":"25:00","to":"06:00"}],"skip_if":["never"]}`},
	{typ: state.CmdScheduleAdd, actor: "ops", body: `{"id":"hourly","cron":"TZ=UTC @hourly","runbook":"evac-east"}`},
	// It fires: a drill starts; one due time skipped; one missed.
	{typ: state.CmdScheduleFire, actor: "drills", body: `{"id":"nightly","scheduled_time":"2026-11-25T12:05:00Z"}`},
	{typ: state.CmdScheduleFire, actor: "drills", body: `{"id":"nightly","scheduled_time":"2026-11-25T12:05:00Z"}`},
	{typ: state.CmdDrillStep, actor: "drills", body: `{"id":"s-nightly-1795608300","index":0,"phase":"start"}`},
	{typ: state.CmdScheduleFire, actor: "drills", body: `{"id":"nightly","scheduled_time":"2026-11-25T12:10:00Z","skip":"blackout 22:00-06:00"}`},
	{typ: state.CmdScheduleFire, actor: "drills", body: `{"id":"nightly","scheduled_time":"2026-11-25T12:20:00Z","missed":2}`},
	// An operator evacuates the drill's region (refused: the drill has it at 0)
	// and restores it (that release did not notice), then evacuates it: the
	// drill is pre-empted.
	{typ: state.CmdEvacuate, id: "ev1", actor: "ops", body: `{"region":"eu-west","reason":"incident","ramp":[0],"force":true}`},
	{typ: state.CmdRestore, actor: "ops", body: `{"region":"eu-west","reason":"fixed","ramp":[100]}`},
	{typ: state.CmdEvacuate, actor: "ops", body: `{"region":"eu-west","reason":"incident 2","ramp":[50,0]}`},
	// Health and an automatic evacuation through a ramp.
	{typ: state.CmdSetHealth, actor: "steering", body: `{"region":"us-west","service":"api","healthy":false,"share":0.25,"detail":"2 of 8"}`},
	{typ: state.CmdEvacuate, actor: "steering", body: `{"region":"us-west","reason":"api unhealthy","automatic":true,"capacity":{"us-east":50,"eu-west":100}}`},
	{typ: state.CmdRampStep, actor: "steering", body: `{"region":"us-west","step":1}`},
	{typ: state.CmdRampStep, actor: "steering", body: `{"region":"us-west","step":1}`},
	{typ: state.CmdSetHealth, actor: "steering", body: `{"region":"us-west","service":"api","healthy":true,"share":1}`},
	{typ: state.CmdRestore, actor: "ops", body: `{"region":"us-west","reason":"healthy again"}`},
	{typ: state.CmdRampStep, actor: "steering", body: `{"region":"us-west","step":1}`},
	{typ: state.CmdFreeze, actor: "ops", body: `{"reason":"change window"}`},
	{typ: state.CmdFreeze, actor: "ops", body: `{"reason":"again"}`},
	{typ: state.CmdUnfreeze, actor: "ops", body: `{}`},
	{typ: state.CmdSetWeight, actor: "ops", body: `{"region":"us-west","weight":40,"reason":"manual"}`},
	{typ: state.CmdSetWeight, actor: "ops", body: `{"region":"us-west","weight":140,"reason":"manual"}`},
	{typ: state.CmdRecordEvent, actor: "ops", body: `{"kind":"note","reason":"hello"}`},
	{typ: state.CmdRecordEvent, actor: "ops", body: `{"kind":""}`},
	// A second config: a region removed, the policy changed.
	{typ: state.CmdApplyConfig, actor: "ops", body: `{"config":{"zone":"example.com.","ttl":60,"nameservers":{"ns1":"192.0.2.53"},
	 "regions":[{"name":"us-east"},{"name":"us-west"}],
	 "services":[{"name":"api","endpoints":{"us-east":["192.0.2.11"],"us-west":["198.51.100.11"]}}],
	 "policy":{"mode":"shadow"}}}`},
	{typ: state.CmdScheduleRemove, actor: "ops", body: `{"id":"nightly"}`},
	{typ: state.CmdDeleteRunbook, actor: "ops", body: `{"name":"canary-10"}`},
	{typ: state.CmdDeleteRunbook, actor: "ops", body: `{"name":"canary-10"}`},
	// A type no release knows, flagged ignorable; undecodable bytes.
	{typ: state.CommandType(0x7e) | state.IgnoreUnknownFlag, actor: "future", body: `{"x":1}`},
	{raw: "\x02{not json"},
	{typ: state.CmdSetWeight, actor: "ops", body: `{"region":"us-west","weight":"heavy"}`},
}
