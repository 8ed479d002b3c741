package chaos

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/state"
)

// TestRecheckSavedHistory runs the checker again over a history a chaos run
// saved with CHAOS_HISTORY: CHAOS_RECHECK=/path/to/history.json go test
// -run TestRecheckSavedHistory -v ./integration/chaos/. Convergence (f) was
// measured live and is not saved, so it is not judged here.
func TestRecheckSavedHistory(t *testing.T) {
	path := os.Getenv("CHAOS_RECHECK")
	if path == "" {
		t.Skip("CHAOS_RECHECK names a history saved by CHAOS_HISTORY")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var saved struct {
		History *History
		Logs    map[string][]state.Event
	}
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	h := saved.History
	res := Check(h, Final{Logs: saved.Logs, Healed: h.End, Converged: h.End, LinTimeout: 5 * time.Minute})
	for _, inv := range Invariants {
		for _, v := range res.Violations[inv] {
			t.Errorf("(%s) %s", inv, v)
		}
	}
	t.Logf("\n%s", Table(h, res, Summarize(h, saved.Logs[h.Topo.Controllers[0].Name]), nil))
}
