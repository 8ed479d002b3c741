package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// drillJSON renders a drill of 3 steps at step current with status.
func drillJSON(current int, status, outcome string) string {
	steps := []string{
		`{"index":0,"description":"shift us-east to 0","kind":"shift","line":5,"region":"us-east","weight":0,
"started_at":"2026-11-25T12:00:00Z","ended_at":"2026-11-25T12:00:00.25Z","outcome":"done"}`,
		`{"index":1,"description":"wait 1m0s","kind":"wait","line":6,"weight":0,"duration":"1m0s","started_at":"2026-11-25T12:00:00.5Z"}`,
		`{"index":2,"description":"restore us-east","kind":"restore","line":7,"region":"us-east","weight":0}`,
	}
	return fmt.Sprintf(`{"id":"d-1","runbook":"kong","runbook_version":2,"params":{"region":"us-east"},"reason":"game day",
"actor":"alice","status":%q,"outcome":%q,"steps":[%s],"current":%d,"regions":["us-east"],"before":{"us-east":100},
"after":{"us-east":100},"started_at":"2026-11-25T12:00:00Z","weights":{"us-east":0},"field_we_do_not_know":1,
"drain":[{"node":"c2","step":0,"region":"us-east","from":100,"to":0,"change_index":9,"change_at":"2026-11-25T12:00:00Z",
"population":200,"drained":199,"p50_ms":900,"p90_ms":1500,"p99_ms":null,"past_ttl":1,"ttl_seconds":5,"slack_ms":2000,
"closed_at":"2026-11-25T12:00:07Z","window_complete":true,
"past_ttl_resolvers":[{"subnet":"10.0.7.0/24","service":"api","last_answered":"2026-11-25T11:59:59Z","asked_after":0}]}],
"drain_summary":{"reports":1,"population":200,"p50_ms":900,"p90_ms":1500,"p99_ms":null,"past_ttl":1}}`,
		status, outcome, strings.Join(steps, ","), current)
}

func TestDrillCommands(t *testing.T) {
	clearEnv(t)
	f := newFake(t)
	var gets atomic.Int32
	f.routes["POST /v1/drills"] = func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, drillJSON(0, "running", ""))
	}
	// The watched drill moves on with each GET and ends on the third.
	f.routes["GET /v1/drills/d-1"] = func(w http.ResponseWriter, _ *http.Request) {
		switch n := gets.Add(1); {
		case n < 3:
			io.WriteString(w, drillJSON(int(n), "running", ""))
		default:
			io.WriteString(w, drillJSON(3, "aborted", "aborted by alice: enough"))
		}
	}
	f.routes["GET /v1/drills"] = func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "["+drillJSON(1, "running", "")+"]")
	}
	f.routes["POST /v1/drills/d-1/abort"] = func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, drillJSON(1, "aborted", "aborted by alice: enough"))
	}
	ctx := context.Background()

	code, out, errOut := run(ctx, t, "--addr", f.URL, "drill", "start", "kong", "--param", "region=us-east",
		"--param", "hold=5m", "--reason", "game day", "--watch")
	if code != 1 || !strings.Contains(out, "drill d-1 started: runbook kong v2, 3 steps, regions us-east") ||
		!strings.Contains(out, "step 2 of 3: wait  (wait 1m0s)") || !strings.Contains(out, "weights: us-east 0 (before 100)") ||
		!strings.Contains(out, "drill d-1 aborted: aborted by alice: enough") || !strings.Contains(out, "[") {
		t.Fatalf("watch: exit %d\n%s\n%s", code, out, errOut)
	}
	var body struct {
		Runbook string
		Params  map[string]string
		Reason  string
	}
	for _, r := range f.requests() {
		if r.method == "POST" && r.path == "/v1/drills" {
			if err := json.Unmarshal([]byte(r.body), &body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if body.Runbook != "kong" || body.Params["region"] != "us-east" || body.Params["hold"] != "5m" || body.Reason != "game day" {
		t.Errorf("request body %+v", body)
	}

	code, out, _ = run(ctx, t, "--addr", f.URL, "drill", "show", "d-1")
	for _, want := range []string{"drill d-1: runbook kong v2", "region us-east: weight before 100, after 100, now 0",
		"shift us-east to 0", "250ms", "params: region=us-east", "us-east 100->0 at", "c2", "200", "900ms / 1.5s / never",
		"10.0.7.0/24"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("show: exit %d, missing %q:\n%s", code, want, out)
		}
	}
	code, out, _ = run(ctx, t, "--addr", f.URL, "drill", "list")
	if code != 0 || !strings.Contains(out, "d-1") || !strings.Contains(out, "2/3") || !strings.Contains(out, "900ms / 1.5s / never") {
		t.Errorf("list: %d\n%s", code, out)
	}
	code, out, _ = run(ctx, t, "--addr", f.URL, "drill", "abort", "d-1", "--reason", "enough")
	if code != 0 || !strings.Contains(out, "drill d-1 aborted; weights: us-east 0 (before 100)") {
		t.Errorf("abort: %d\n%s", code, out)
	}

	// Without an ID, abort names the running drills and aborts nothing.
	before := len(f.requests())
	code, _, errOut = run(ctx, t, "--addr", f.URL, "drill", "abort", "--reason", "enough")
	if code != 2 || !strings.Contains(errOut, "d-1  (runbook kong, step 2/3)") {
		t.Errorf("abort without ID: exit %d, stderr %q", code, errOut)
	}
	for _, r := range f.requests()[before:] {
		if r.method != "GET" {
			t.Errorf("abort without ID sent %s %s", r.method, r.path)
		}
	}

	for _, args := range [][]string{
		{"drill", "start", "kong", "--param", "region"},
		{"drill", "start", "kong", "--param", "a=1", "--param", "a=2"},
		{"drill", "start"},
		{"schedule", "add", "--cron", "every day", "--runbook", "kong"},
		{"schedule", "add", "--cron", "* * * * *"},
		{"schedule", "add", "--cron", "* * * * *", "--runbook", "kong", "--tz", "Mars/Olympus"},
		{"schedule", "add", "--cron", "* * * * *", "--runbook", "kong", "--blackout", "22:00"},
	} {
		before := len(f.requests())
		if code, _, errOut := run(ctx, t, append([]string{"--addr", f.URL}, args...)...); code != 2 || len(f.requests()) != before {
			t.Errorf("%v: exit %d (%s), want 2 and no request", args, code, errOut)
		}
	}
}

func TestScheduleAndRunbookCommands(t *testing.T) {
	clearEnv(t)
	f := newFake(t)
	sched := `{"id":"tick","cron":"*/10 * * * * *","runbook":"kong","params":{"region":"us-east"},"actor":"alice",
"created_at":"2026-11-25T12:00:00Z","next":["2026-11-25T12:00:10Z"],
"runs":[{"scheduled":"2026-11-25T12:00:10Z","time":"2026-11-25T12:00:10.2Z","outcome":"skipped","reason":"skip_if frozen: change"}]}`
	f.routes["POST /v1/schedules"] = func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, sched)
	}
	f.routes["GET /v1/schedules"] = func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "["+sched+"]") }
	f.routes["DELETE /v1/schedules/tick"] = func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"index":9}`) }
	f.routes["PUT /v1/runbooks/kong"] = func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"index":7,"version":3}`)
	}
	ctx := context.Background()
	code, out, errOut := run(ctx, t, "--addr", f.URL, "schedule", "add", "--id", "tick", "--cron", "*/10 * * * * *",
		"--runbook", "kong", "--param", "region=us-east", "--tz", "Europe/Paris", "--blackout", "22:00-06:00@sat,sun",
		"--skip-if", "frozen,drill_running")
	if code != 0 || !strings.Contains(out, "schedule tick added") {
		t.Fatalf("add: %d %s %s", code, out, errOut)
	}
	var body struct {
		ID, Cron, TZ, Runbook string
		Params                map[string]string
		Blackouts             []struct {
			From, To string
			Days     []string
		}
		SkipIf []string `json:"skip_if"`
	}
	reqs := f.requests()
	if err := json.Unmarshal([]byte(reqs[len(reqs)-1].body), &body); err != nil {
		t.Fatal(err)
	}
	if body.TZ != "Europe/Paris" || len(body.Blackouts) != 1 || body.Blackouts[0].From != "22:00" ||
		len(body.Blackouts[0].Days) != 2 || len(body.SkipIf) != 2 || body.Params["region"] != "us-east" {
		t.Errorf("schedule request %+v", body)
	}
	code, out, _ = run(ctx, t, "--addr", f.URL, "schedule", "list")
	if code != 0 || !strings.Contains(out, "skipped: skip_if frozen: change") {
		t.Errorf("list: %d\n%s", code, out)
	}
	if code, out, _ = run(ctx, t, "--addr", f.URL, "schedule", "rm", "tick"); code != 0 || !strings.Contains(out, "removed") {
		t.Errorf("rm: %d %s", code, out)
	}

	dir := t.TempDir()
	good := filepath.Join(dir, "kong.yaml")
	os.WriteFile(good, []byte("name: kong\nsteps:\n  - wait: {duration: 1s}\n"), 0o644)
	if code, out, errOut := run(ctx, t, "--addr", f.URL, "runbook", "put", good); code != 0 || !strings.Contains(out, "version 3") {
		t.Errorf("put: %d %s %s", code, out, errOut)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("name: kong\nsteps:\n  - wait: {duration: soon}\n"), 0o644)
	before := len(f.requests())
	code, _, errOut = run(ctx, t, "--addr", f.URL, "runbook", "put", bad)
	if code != 2 || !strings.Contains(errOut, "bad.yaml:3: steps[0].wait.duration") || len(f.requests()) != before {
		t.Errorf("put bad: %d %s", code, errOut)
	}
}
