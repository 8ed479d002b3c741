package fsm

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/state"
)

const cfgYAML = `
zone: example.com.
nameservers: {ns1: 192.0.2.53}
regions: [{name: a}, {name: b}]
services: [{name: api, endpoints: {a: [192.0.2.1], b: [192.0.2.2]}}]
`

func applyCmd(t *testing.T, f *FSM, index uint64, typ state.CommandType, body any) state.Result {
	t.Helper()
	data, err := state.Encode(typ, "", "test", time.Unix(1700000000, 0), body)
	if err != nil {
		t.Fatal(err)
	}
	out := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data})
	b, ok := out.([]byte)
	if !ok {
		t.Fatalf("response %T, want []byte", out)
	}
	var res state.Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func TestApplySnapshotRestoreRoundTrip(t *testing.T) {
	f := New(zap.NewNop())
	notify, cancel := f.Subscribe()
	defer cancel()
	cfg, err := state.ParseConfig([]byte(cfgYAML))
	if err != nil {
		t.Fatal(err)
	}
	if res := applyCmd(t, f, 1, state.CmdApplyConfig, state.ApplyConfig{Config: cfg}); res.Error != "" {
		t.Fatal(res.Error)
	}
	select {
	case <-notify:
	default:
		t.Fatal("no notification after apply")
	}
	applyCmd(t, f, 2, state.CmdEvacuate, state.Evacuate{Region: "b", Reason: "test"})
	applyCmd(t, f, 3, state.CmdSetHealth, state.SetHealth{Region: "a", Service: "api", Healthy: false})
	applyCmd(t, f, 4, state.CmdFreeze, state.Freeze{Reason: "hold"})
	// Garbage is refused identically by every replica, never applied.
	out := f.Apply(&raft.Log{Index: 5, Type: raft.LogCommand, Data: []byte{2, '{'}})
	var res state.Result
	_ = json.Unmarshal(out.([]byte), &res)
	if res.Code != state.CodeInvalid || f.State().Index != 5 {
		t.Fatalf("garbage: %+v index %d", res, f.State().Index)
	}

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Applying after the snapshot was taken must not change what it persists.
	before := f.State()
	applyCmd(t, f, 6, state.CmdRecordEvent, state.RecordEvent{Kind: state.EventNote})
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := New(zap.NewNop())
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	got := g.State()
	want, _ := json.Marshal(before)
	have, _ := json.Marshal(got)
	if !bytes.Equal(want, have) {
		t.Fatalf("restored state differs\nwant %s\nhave %s", want, have)
	}
	if !reflect.DeepEqual(got.Regions["b"].Ramp.Steps, []int{50, 0}) || !got.Frozen || !got.IsUnhealthy("a", "api") {
		t.Fatalf("restored state lost fields: %+v", got)
	}
	// The restored replica goes on applying where the original did.
	if res := applyCmd(t, g, 6, state.CmdRecordEvent, state.RecordEvent{Kind: state.EventNote}); res.Error != "" {
		t.Fatal(res.Error)
	}
	a, _ := json.Marshal(f.State())
	b, _ := json.Marshal(g.State())
	if !bytes.Equal(a, b) {
		t.Fatal("replicas diverged after restore")
	}
}

func TestRestoreRejectsBadSnapshots(t *testing.T) {
	f := New(zap.NewNop())
	for _, in := range []string{"", "{\"format\": 99}\n{}", "{\"format\": 1}\n{\"regions\": 7}"} {
		if err := f.Restore(io.NopCloser(bytes.NewReader([]byte(in)))); err == nil {
			t.Errorf("snapshot %q accepted", in)
		}
	}
	if f.State().Index != 0 {
		t.Fatal("a failed restore changed the state")
	}
}

func TestConcurrentReadersDuringApply(t *testing.T) {
	f := New(zap.NewNop())
	cfg, _ := state.ParseConfig([]byte(cfgYAML))
	applyCmd(t, f, 1, state.CmdApplyConfig, state.ApplyConfig{Config: cfg})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 2000; i++ {
			s := f.State()
			svc := s.Config.Service("api")
			_ = s.EffectiveWeights(svc)
			_ = s.EventsSince(0, 10)
		}
	}()
	for i := uint64(2); i < 200; i++ {
		w := int(i % 100)
		applyCmd(t, f, i, state.CmdSetWeight, state.SetWeight{Region: "b", Weight: w})
	}
	<-done
}

// TestReplayedEntriesApplyOnce: entries at or below the applied index (the
// log tail raftnode replays at start, which raft applies again once a
// leader tells it the commit index) change nothing the second time.
func TestReplayedEntriesApplyOnce(t *testing.T) {
	f := New(zap.NewNop())
	cfg, err := state.ParseConfig([]byte(cfgYAML))
	if err != nil {
		t.Fatal(err)
	}
	applyCmd(t, f, 3, state.CmdApplyConfig, state.ApplyConfig{Config: cfg})
	applyCmd(t, f, 5, state.CmdFreeze, state.Freeze{Reason: "hold"})
	before := f.State()
	for _, tc := range []struct {
		index uint64
		typ   state.CommandType
		body  any
	}{
		{3, state.CmdApplyConfig, state.ApplyConfig{Config: cfg}},
		{4, state.CmdEvacuate, state.Evacuate{Region: "b", Reason: "replayed"}},
		{5, state.CmdFreeze, state.Freeze{Reason: "hold"}},
	} {
		if res := applyCmd(t, f, tc.index, tc.typ, tc.body); !res.Duplicate || res.Error != "" {
			t.Errorf("index %d again: %+v, want a duplicate", tc.index, res)
		}
	}
	if f.State() != before || f.AppliedIndex() != 5 {
		t.Fatalf("replayed entries changed the state (applied index %d)", f.AppliedIndex())
	}
	if res := applyCmd(t, f, 6, state.CmdEvacuate, state.Evacuate{Region: "b", Reason: "new"}); res.Duplicate || res.Error != "" || len(res.Events) == 0 {
		t.Fatalf("the next entry: %+v", res)
	}
}

// TestUnknownCommandTypes: a newer release's command flagged ignorable is
// skipped, logged and counted; one that is not stops the FSM (a panic)
// before it changes anything, rather than letting replicas diverge.
func TestUnknownCommandTypes(t *testing.T) {
	f := New(zap.NewNop())
	cfg, err := state.ParseConfig([]byte(cfgYAML))
	if err != nil {
		t.Fatal(err)
	}
	applyCmd(t, f, 1, state.CmdApplyConfig, state.NewApplyConfig(cfg))
	before := f.State()
	res := applyCmd(t, f, 2, state.CommandType(0x70)|state.IgnoreUnknownFlag, map[string]int{"x": 1})
	if res.Error != "" || len(res.Events) != 0 {
		t.Fatalf("ignorable unknown: %+v", res)
	}
	if f.AppliedIndex() != 2 || len(f.State().Events) != len(before.Events) || f.State().Serial != before.Serial {
		t.Fatal("an ignored command changed the state")
	}
	if n := counterValue(t, f, "112"); n != 1 {
		t.Fatalf("ignored counter %v, want 1", n)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("an unknown command type that may not be skipped did not stop the FSM")
			}
		}()
		applyCmd(t, f, 3, state.CommandType(0x70), map[string]int{"x": 1})
	}()
	if f.AppliedIndex() != 2 {
		t.Fatalf("applied index %d after the stop, want 2", f.AppliedIndex())
	}
	// Known types are never counted, whatever their flag.
	applyCmd(t, f, 3, state.CmdRecordEvent|state.IgnoreUnknownFlag, state.RecordEvent{Kind: "note"})
	if n := counterValue(t, f, "112"); n != 1 {
		t.Fatalf("ignored counter %v after a known type, want 1", n)
	}
	ch := make(chan prometheus.Metric, 10)
	f.ignored.Collect(ch)
	if len(ch) != 1 {
		t.Fatalf("%d ignored series, want 1", len(ch))
	}
}

func counterValue(t *testing.T, f *FSM, typ string) float64 {
	t.Helper()
	var m dto.Metric
	if err := f.ignored.WithLabelValues(typ).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
