package fsm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/state"
)

// goldenEntry is one Raft log entry of testdata/golden-v1/log.jsonl and the
// result the release that wrote it returned.
type goldenEntry struct {
	Index  uint64          `json:"index"`
	Data   []byte          `json:"data"`
	Result json.RawMessage `json:"result"`
}

// TestGoldenLogReplay replays a log written by the release before the
// upgrade-safe log (commit aa66dac, golden_gen_test.go) and requires the
// same result for every entry and the same final state, byte for byte.
func TestGoldenLogReplay(t *testing.T) {
	dir := filepath.Join("testdata", "golden-v1")
	lf, err := os.Open(filepath.Join(dir, "log.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	f := New(zap.NewNop())
	sc := bufio.NewScanner(lf)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var e goldenEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		n++
		res := f.Apply(&raft.Log{Index: e.Index, Type: raft.LogCommand, Data: e.Data})
		got, _ := res.([]byte)
		if !bytes.Equal(got, e.Result) && !sameButRenamedCode(got, e.Result) {
			t.Errorf("entry %d (%q...): result\n got %s\nwant %s", e.Index, prefix(e.Data, 60), got, e.Result)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 50 {
		t.Fatalf("only %d entries in the golden log", n)
	}
	want, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(f.State(), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if !bytes.Equal(got, want) {
		_ = os.WriteFile(filepath.Join(t.TempDir(), "state.json"), got, 0o644)
		t.Fatalf("replayed state differs from the golden state:\n%s", firstDiff(got, want))
	}
}

// renamedCodes are refusal codes this release made more precise. A code is
// the proposer's answer, not replicated state: a replay may give the new
// one, with the same index and message, while the state stays identical.
var renamedCodes = map[string][]string{
	"conflict": {state.CodeAlreadyFrozen, state.CodeNotFrozen},
}

// sameButRenamedCode reports whether two refusals differ only by a renamed code.
func sameButRenamedCode(got, want []byte) bool {
	var g, w map[string]any
	if json.Unmarshal(got, &g) != nil || json.Unmarshal(want, &w) != nil {
		return false
	}
	gc, _ := g["code"].(string)
	wc, _ := w["code"].(string)
	renamed := false
	for _, c := range renamedCodes[wc] {
		renamed = renamed || c == gc
	}
	if !renamed {
		return false
	}
	delete(g, "code")
	delete(w, "code")
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	return bytes.Equal(gb, wb)
}

func prefix(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// firstDiff shows the lines around the first difference.
func firstDiff(got, want []byte) string {
	g, w := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	for i := 0; i < len(g) && i < len(w); i++ {
		if !bytes.Equal(g[i], w[i]) {
			lo := max(0, i-3)
			return "line " + itoa(i+1) + ":\n got: " + string(bytes.Join(g[lo:min(len(g), i+3)], []byte("\n"))) +
				"\nwant: " + string(bytes.Join(w[lo:min(len(w), i+3)], []byte("\n")))
		}
	}
	return "lengths differ"
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestGoldenLogPrepared replays the golden log with every command that
// carried user input rewritten as this release proposes it (a normalised
// config, a parsed runbook, a rendered drill, a validated schedule, a fire
// with its drill rendered by the leader), and requires the final state of
// the old release: the new form of each command means what the old one did.
// Entries the API would refuse before proposing are left as they were.
func TestGoldenLogPrepared(t *testing.T) {
	dir := filepath.Join("testdata", "golden-v1")
	lf, err := os.Open(filepath.Join(dir, "log.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	f := New(zap.NewNop())
	sc := bufio.NewScanner(lf)
	sc.Buffer(nil, 1<<20)
	rewritten := map[state.CommandType]int{}
	for sc.Scan() {
		var e goldenEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		data := e.Data
		if cmd, err := state.Decode(e.Data); err == nil {
			if body, ok := prepared(t, f.State(), cmd); ok {
				data, err = state.Encode(cmd.Type, cmd.ID, cmd.Actor, cmd.Time, body)
				if err != nil {
					t.Fatal(err)
				}
				rewritten[cmd.Type]++
			}
		}
		f.Apply(&raft.Log{Index: e.Index, Type: raft.LogCommand, Data: data})
	}
	for _, typ := range []state.CommandType{state.CmdApplyConfig, state.CmdPutRunbook, state.CmdDrillStart,
		state.CmdScheduleAdd, state.CmdScheduleFire} {
		if rewritten[typ] == 0 {
			t.Errorf("no %s entry was rewritten", typ)
		}
	}
	want, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(f.State(), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if got = append(got, '\n'); !bytes.Equal(got, want) {
		t.Fatalf("state differs from the golden state:\n%s", firstDiff(got, want))
	}
}

// prepared returns cmd's body as this release's API or leader would
// propose it against st, or false to keep the entry as it is.
func prepared(t *testing.T, st *state.State, cmd state.Command) (any, bool) {
	t.Helper()
	switch cmd.Type {
	case state.CmdApplyConfig:
		var b struct {
			Config json.RawMessage `json:"config"`
		}
		if json.Unmarshal(cmd.Body, &b) != nil || len(b.Config) == 0 {
			return nil, false
		}
		c, err := state.ParseConfig(b.Config)
		if err != nil {
			return nil, false // the API answers 400
		}
		return state.NewApplyConfig(c), true
	case state.CmdPutRunbook:
		var b state.PutRunbook
		if json.Unmarshal(cmd.Body, &b) != nil {
			return nil, false
		}
		p, _, err := state.PreparePutRunbook("runbook.yaml", []byte(b.Source))
		if err != nil {
			return nil, false
		}
		return p, true
	case state.CmdDrillStart:
		var b state.DrillStart
		if json.Unmarshal(cmd.Body, &b) != nil {
			return nil, false
		}
		p, err := state.PrepareDrill(st, b)
		if err != nil {
			return nil, false
		}
		return p, true
	case state.CmdScheduleAdd:
		var b state.ScheduleAdd
		if json.Unmarshal(cmd.Body, &b) != nil || b.Validate() != nil {
			return nil, false
		}
		b.Prepared = true
		return b, true
	case state.CmdScheduleFire:
		var b state.ScheduleFire
		if json.Unmarshal(cmd.Body, &b) != nil || b.Missed > 0 || b.Skip != "" {
			return nil, false
		}
		sc, ok := st.Schedules[b.ID]
		if !ok {
			return nil, false
		}
		d, err := state.PrepareDrill(st, state.ScheduledDrill(sc, b.ScheduledTime))
		if err != nil {
			b.DrillError = err.Error()
		} else {
			b.Drill = &d
		}
		b.Prepared = true
		return b, true
	}
	return nil, false
}
