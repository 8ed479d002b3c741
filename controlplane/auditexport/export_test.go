package auditexport

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/evac-sh/evac/controlplane/state"
)

func events(from, to uint64) []state.Event {
	var out []state.Event
	for s := from; s <= to; s++ {
		out = append(out, state.Event{Seq: s, Index: s + 10, Time: time.Unix(int64(s), 0).UTC(), Actor: "t", Kind: state.EventNote})
	}
	return out
}

func readSeqs(t *testing.T, path string) []uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var seqs []uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev state.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		seqs = append(seqs, ev.Seq)
	}
	return seqs
}

func wantSeqs(t *testing.T, got []uint64, from, to uint64) {
	t.Helper()
	if len(got) != int(to-from+1) {
		t.Fatalf("exported seqs %v, want %d..%d", got, from, to)
	}
	for i, s := range got {
		if s != from+uint64(i) {
			t.Fatalf("exported seqs %v, want %d..%d", got, from, to)
		}
	}
}

func TestExportEachEventOnceAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	e, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Export(events(1, 5)); err != nil {
		t.Fatal(err)
	}
	// The replica hands overlapping batches (the whole retained log after a
	// restart, the new tail after an update): each event is written once.
	if err := e.Export(events(3, 8)); err != nil {
		t.Fatal(err)
	}
	e.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	e, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.Last() != 8 {
		t.Fatalf("Last after reopening = %d, want 8", e.Last())
	}
	if err := e.Export(events(1, 10)); err != nil {
		t.Fatal(err)
	}
	e.Close()
	wantSeqs(t, readSeqs(t, path), 1, 10)
}

func TestExportCutsTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	e, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Export(events(1, 3)); err != nil {
		t.Fatal(err)
	}
	e.Close()
	// A crash in the middle of writing event 4.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"seq":4,"index":14,"ti`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	core, logs := observer.New(zap.WarnLevel)
	e, err = Open(path, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	if e.Last() != 3 || logs.FilterMessageSnippet("torn").Len() != 1 {
		t.Fatalf("Last = %d, torn-line warnings %d; want 3 and 1", e.Last(), logs.FilterMessageSnippet("torn").Len())
	}
	if err := e.Export(events(1, 5)); err != nil {
		t.Fatal(err)
	}
	e.Close()
	wantSeqs(t, readSeqs(t, path), 1, 5)
}

func TestExportReportsGap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	core, logs := observer.New(zap.WarnLevel)
	e, err := Open(path, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Export(events(1, 2)); err != nil {
		t.Fatal(err)
	}
	// Events 3..6 rolled off this replica while it was away.
	if err := e.Export(events(7, 8)); err != nil {
		t.Fatal(err)
	}
	gaps := logs.FilterMessageSnippet("rolled off").All()
	if len(gaps) != 1 {
		t.Fatalf("%d gap errors, want 1", len(gaps))
	}
	f := gaps[0].ContextMap()
	if f["first-missing"] != uint64(3) || f["last-missing"] != uint64(6) {
		t.Fatalf("gap fields %v, want 3..6", f)
	}
}

func TestOpenRefusesForeignFile(t *testing.T) {
	for name, content := range map[string]string{
		"not json":   "hello\n",
		"no seq":     `{"kind":"x"}` + "\n",
		"no newline": string(make([]byte, tailSize+10)),
	} {
		path := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if e, err := Open(path, nil); err == nil {
			e.Close()
			t.Errorf("%s: Open accepted it", name)
		}
	}
}

func TestExportAfterCopyTruncate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	e, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Export(events(1, 3)); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil { // logrotate copytruncate
		t.Fatal(err)
	}
	if err := e.Export(events(1, 5)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || b[0] != '{' {
		t.Fatalf("after copytruncate the file starts with %q, want the next event", b[:min(len(b), 10)])
	}
	wantSeqs(t, readSeqs(t, path), 4, 5)
}
