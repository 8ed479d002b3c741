package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBlockOnWrites: POST /v1/drills and /v1/schedules take block_on,
// refuse a bad condition naming its field (and change nothing), and store
// a good one in the replicated drill or schedule.
func TestBlockOnWrites(t *testing.T) {
	b := newFSMBackend(t, baseSnapshot(t))
	h := NewHandler(b, Options{})
	do := func(method, path, body string, want int) string {
		t.Helper()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
		if w.Code != want {
			t.Fatalf("%s %s %s: %d %s, want %d", method, path, body, w.Code, w.Body, want)
		}
		return w.Body.String()
	}
	do(http.MethodPut, "/v1/runbooks/two-regions", twoRegionRunbook, http.StatusOK)
	before := b.State()
	for _, tc := range []struct {
		path, body, field string
	}{
		{"/v1/drills", `{"runbook":"two-regions","block_on":[{"alertmanager":"http://127.0.0.1:9093"}]}`, "block_on[0].alert: required"},
		{"/v1/drills", `{"runbook":"two-regions","block_on":[{"prometheus":"http://127.0.0.1:9090","query":"up"}]}`, "block_on[0]: set exactly one of above and below"},
		{"/v1/drills", `{"runbook":"two-regions","block_on":[{"alertmanager":"http://x","alert":"A","severity":"page"}]}`, `unknown field \"severity\"`},
		{"/v1/schedules", `{"id":"s","cron":"@hourly","runbook":"two-regions","block_on":[{"alertmanager":"x","alert":"A"}]}`, "block_on[0].alertmanager:"},
	} {
		if body := do(http.MethodPost, tc.path, tc.body, http.StatusBadRequest); !strings.Contains(body, tc.field) {
			t.Errorf("%s %s: %s, want %q", tc.path, tc.body, body, tc.field)
		}
	}
	if st := b.State(); st.Index != before.Index {
		t.Fatalf("a refused write changed the state: index %d, was %d", st.Index, before.Index)
	}
	do(http.MethodPost, "/v1/drills", `{"runbook":"two-regions","block_on":[{"alertmanager":"http://127.0.0.1:9093","alert":"HighErrorRate"}]}`, http.StatusCreated)
	do(http.MethodPost, "/v1/schedules", `{"id":"s","cron":"@hourly","runbook":"two-regions",`+
		`"block_on":[{"prometheus":"http://127.0.0.1:9090","query":"sum(rate(errors_total[5m]))","above":10}]}`, http.StatusCreated)
	st := b.State()
	for _, d := range st.Drills {
		if _, old := before.Drills[d.ID]; old {
			continue
		}
		if len(d.BlockOn) != 1 || d.BlockOn[0].Alert != "HighErrorRate" {
			t.Errorf("drill's block_on %+v", d.BlockOn)
		}
	}
	if bo := st.Schedules["s"].BlockOn; len(bo) != 1 || bo[0].Above == nil || *bo[0].Above != 10 {
		t.Errorf("schedule's block_on %+v", bo)
	}
	if body := do(http.MethodGet, "/v1/schedules/s", "", http.StatusOK); !strings.Contains(body, `"block_on": [`) ||
		!strings.Contains(body, `"prometheus": "http://127.0.0.1:9090"`) {
		t.Errorf("GET /v1/schedules/s: %s", body)
	}
}
