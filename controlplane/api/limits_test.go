package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
)

// TestStateLimits: every limit of the state answers a 4xx with code
// "limit" whose message names the limit, and changes nothing.
func TestStateLimits(t *testing.T) {
	b := newFSMBackend(t, baseSnapshot(t))
	h := NewHandler(b, Options{})
	do := func(method, path, body string) (int, wire.Error) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var e wire.Error
		if rec.Code >= 400 {
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatalf("%s %s: %d with a body that is not a JSON error: %s", method, path, rec.Code, rec.Body)
			}
		}
		return rec.Code, e
	}
	refused := func(method, path, body string, status int, limit string) {
		t.Helper()
		before := stateWithoutIndex(t, b.State())
		code, e := do(method, path, body)
		if code != status || e.Code != state.CodeLimit || !strings.Contains(e.Error, limit) {
			t.Fatalf("%s %s: %d %+v, want %d with code limit naming %s", method, path, code, e, status, limit)
		}
		if stateWithoutIndex(t, b.State()) != before {
			t.Fatalf("%s %s: refused but the state changed", method, path)
		}
	}
	notify := "name: %s\nsteps:\n  - notify: {message: hi}\n"

	// Sizes: 413.
	big := fmt.Sprintf(notify, "big") + "# " + strings.Repeat("x", state.MaxRunbookBytes) + "\n"
	refused(http.MethodPut, "/v1/runbooks/big", big, http.StatusRequestEntityTooLarge, "max_runbook_bytes")
	long := strings.Repeat("x", state.MaxDrillParamBytes+1)
	refused(http.MethodPost, "/v1/drills", `{"runbook":"chaos-kong","params":{"region":"`+long+`"}}`,
		http.StatusRequestEntityTooLarge, "max_drill_param_bytes")
	refused(http.MethodPost, "/v1/schedules", `{"id":"p","cron":"@daily","runbook":"chaos-kong","params":{"region":"`+long+`"}}`,
		http.StatusRequestEntityTooLarge, "params.region")

	// Frequency: 400 by default; allowed by policy.schedule_min_interval.
	refused(http.MethodPost, "/v1/schedules", `{"id":"fast","cron":"@every 1s","runbook":"chaos-kong","params":{"region":"us-west"}}`,
		http.StatusBadRequest, "policy.schedule_min_interval")
	refused(http.MethodPost, "/v1/schedules", `{"id":"fast","cron":"*/30 * * * * *","runbook":"chaos-kong","params":{"region":"us-west"}}`,
		http.StatusBadRequest, "once every 1m0s")
	if code, e := do(http.MethodPost, "/v1/schedules", `{"id":"minutely","cron":"* * * * *","runbook":"chaos-kong","params":{"region":"us-west"}}`); code != http.StatusCreated {
		t.Fatalf("a schedule once a minute: %d %+v", code, e)
	}
	if code, e := do(http.MethodPut, "/v1/config", strings.Replace(fuzzConfig, "policy: {", "policy: {schedule_min_interval: 10s, ", 1)); code != http.StatusOK {
		t.Fatalf("put config with schedule_min_interval: %d %+v", code, e)
	}
	if code, e := do(http.MethodPost, "/v1/schedules", `{"id":"fast","cron":"*/30 * * * * *","runbook":"chaos-kong","params":{"region":"us-west"}}`); code != http.StatusCreated {
		t.Fatalf("a schedule every 30 s under schedule_min_interval 10s: %d %+v", code, e)
	}

	// Counts: 409.
	for i := len(b.State().Runbooks); i < state.MaxRunbooks; i++ {
		name := fmt.Sprintf("rb-%d", i)
		if code, e := do(http.MethodPut, "/v1/runbooks/"+name, fmt.Sprintf(notify, name)); code != http.StatusOK {
			t.Fatalf("put runbook %d: %d %+v", i, code, e)
		}
	}
	refused(http.MethodPut, "/v1/runbooks/over", fmt.Sprintf(notify, "over"), http.StatusConflict, "max_runbooks")
	for i := len(b.State().Schedules); i < state.MaxSchedules; i++ {
		body := fmt.Sprintf(`{"id":"s-%d","cron":"@daily","runbook":"rb-10"}`, i)
		if code, e := do(http.MethodPost, "/v1/schedules", body); code != http.StatusCreated {
			t.Fatalf("add schedule %d: %d %+v", i, code, e)
		}
	}
	refused(http.MethodPost, "/v1/schedules", `{"id":"over","cron":"@daily","runbook":"rb-10"}`, http.StatusConflict, "max_schedules")
	if code, e := do(http.MethodDelete, "/v1/runbooks/rb-20", ""); code != http.StatusOK {
		t.Fatalf("delete runbook: %d %+v", code, e)
	}
	if code, e := do(http.MethodPut, "/v1/runbooks/hold", "name: hold\nsteps:\n  - wait: {duration: 1h}\n"); code != http.StatusOK {
		t.Fatalf("put runbook hold: %d %+v", code, e)
	}
	for i := range state.MaxRunningDrills {
		if code, e := do(http.MethodPost, "/v1/drills", `{"runbook":"hold"}`); code != http.StatusCreated {
			t.Fatalf("start drill %d: %d %+v", i, code, e)
		}
	}
	refused(http.MethodPost, "/v1/drills", `{"runbook":"hold"}`, http.StatusConflict, "max_running_drills")
}
