package controller

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/state"
)

// exportedSeqs reads an events export file's seqs.
func exportedSeqs(path string) ([]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var seqs []uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev state.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("line %q: %w", sc.Text(), err)
		}
		seqs = append(seqs, ev.Seq)
	}
	return seqs, sc.Err()
}

// TestEventsExport: with EventsExport, every controller appends each audit
// event its replica applies, once. (Restarts, where the log is replayed and
// nothing may be exported twice, are covered by auditexport's tests.)
func TestEventsExport(t *testing.T) {
	dir := t.TempDir()
	path := func(i int) string { return filepath.Join(dir, fmt.Sprintf("events-%d.jsonl", i)) }
	c := startClusterWith(t, 3, func(i int, cfg *Config) { cfg.EventsExport = path(i) })
	ctl := c.follower()
	for i := range 3 {
		for _, p := range []string{"/v1/freeze", "/v1/unfreeze"} {
			if code := call(t, ctl, http.MethodPost, p, fmt.Sprintf(`{"reason":"export %d"}`, i), nil); code != http.StatusOK {
				t.Fatalf("%s: %d", p, code)
			}
		}
	}
	want := ctl.State().NextSeq - 1
	if want < 6 {
		t.Fatalf("only %d events after 6 writes", want)
	}
	eventually(t, 30*time.Second, func() error {
		for i := range c.ctls {
			if err := exportedAll(path(i), want); err != nil {
				return fmt.Errorf("controller %d: %w", i, err)
			}
		}
		return nil
	})
}

// exportedAll checks that the export file at path holds events 1..want,
// each once, in order.
func exportedAll(path string, want uint64) error {
	seqs, err := exportedSeqs(path)
	if err != nil {
		return err
	}
	if uint64(len(seqs)) != want {
		return fmt.Errorf("exported %v, want 1..%d", seqs, want)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			return fmt.Errorf("exported %v, want 1..%d", seqs, want)
		}
	}
	return nil
}
