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
		if !bytes.Equal(got, e.Result) {
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
