package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/client"
)

const (
	statusJSON = `{"node_id":"c0","leader":"c1","leader_addr":"127.0.0.1:8081","is_leader":false,"term":4,
"frozen":false,"frozen_reason":"","config_version":3,"applied_index":120,"commit_index":120,"serial":17,
"raft_state":"Follower","voters":["c0","c1","c2"],"field_this_cli_does_not_know":42}`
	regionJSON = `{"name":"us-east","state":"evacuating","weight":50,"health":0.5,"agents_alive":1,"agents_total":2,
"since":"2020-01-02T03:04:05Z","reason":"INC-1 elevated 5xx","actor":"alice","automatic":false,
"ramp":{"kind":"evacuate","steps":[50,0],"next":1,"next_at":"2020-01-02T03:04:35Z"},
"services":{"api":{"share":0.5,"healthy":false,"passing":1,"reporting":2,"failing":["a1/http"]}}}`
	servicesJSON = `[{"name":"api","fqdn":"api.example.com.","policy":"weighted","ttl":30,"regions":[
{"region":"us-east","endpoints":["192.0.2.11","192.0.2.12"],"weight":50,"effective_weight":0,"healthy":false},
{"region":"us-west","endpoints":["198.51.100.11"],"weight":100,"effective_weight":100,"healthy":true}]}]`
	membersJSON = `[{"name":"a1","addr":"127.0.1.1:7946","region":"us-east","role":"agent","state":"alive",
"last_change":"2020-01-02T03:04:05Z","last_report_age_seconds":2.5,"failing":["api/http"]},
{"name":"c0","addr":"127.0.9.1:7946","region":"","role":"controller","state":"alive",
"last_change":"2020-01-02T03:04:05Z","last_report_age_seconds":-1,"failing":[]}]`
	configJSON = `{"version":3,"config":{"zone":"example.com.","ttl":30,"nameservers":{"ns1":"192.0.2.53"},
"regions":[{"name":"us-east"}],"services":[{"name":"api","policy":"weighted","ttl":30,"endpoints":{"us-east":["192.0.2.11"]}}],
"policy":{"detect_after":"30s","ramp":[50,0]}}}`
	writeJSON = `{"index":42,"events":[9,10],"duplicate":false,"region":` + regionJSON + `}`
)

const goodConfig = `zone: example.com.
nameservers: {ns1: 192.0.2.53}
regions:
  - {name: us-east}
  - {name: us-west}
services:
  - name: api
    endpoints: {us-east: [192.0.2.11], us-west: [198.51.100.11]}
`

type request struct {
	method, path, query, ctype string
	body                       string
}

// fakeAPI answers the admin API's endpoints with canned JSON and records
// the requests it gets.
type fakeAPI struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []request
	routes map[string]http.HandlerFunc
}

func newFake(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{routes: map[string]http.HandlerFunc{}}
	for k, body := range map[string]string{
		"GET /v1/status":                    statusJSON,
		"GET /v1/regions":                   "[" + regionJSON + "]",
		"GET /v1/regions/us-east":           regionJSON,
		"GET /v1/services":                  servicesJSON,
		"GET /v1/members":                   membersJSON,
		"GET /v1/config":                    configJSON,
		"PUT /v1/config":                    `{"index":50,"events":[11],"duplicate":false,"version":4}`,
		"POST /v1/regions/us-east/evacuate": writeJSON,
		"POST /v1/regions/us-east/restore":  writeJSON,
		"POST /v1/freeze":                   `{"index":43,"events":[12],"duplicate":false}`,
		"POST /v1/unfreeze":                 `{"index":44,"events":[13],"duplicate":false}`,
		"POST /v1/dev/regions/us-east/fail": `{}`,
		"POST /v1/dev/regions/us-east/heal": `{}`,
		"GET /healthz":                      `{"status":"ok"}`,
	} {
		f.routes[k] = func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) }
	}
	f.routes["GET /v1/events"] = func(w http.ResponseWriter, r *http.Request) {
		since, _ := strconv.Atoi(r.URL.Query().Get("since"))
		io.WriteString(w, eventsAfter(since, 3))
	}
	f.routes["GET /readyz"] = func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":"no steering config applied","code":"not_ready"}`)
	}
	f.routes["POST /v1/regions/eu-west/evacuate"] = func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, `{"error":"eu-west is the last serving region","code":"rule"}`)
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), string(b)})
		h := f.routes[r.Method+" "+r.URL.Path]
		f.mu.Unlock()
		if h == nil {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"no such endpoint","code":"not_found"}`)
			return
		}
		h(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// eventsAfter renders the events with seq in (since, upTo].
func eventsAfter(since, upTo int) string {
	var evs []string
	for s := since + 1; s <= upTo; s++ {
		evs = append(evs, fmt.Sprintf(`{"seq":%d,"index":%d,"time":"2020-01-02T03:04:%02dZ","actor":"alice","kind":"region.step","region":"us-east","weight":%d,"reason":"step %d"}`, s, 100+s, s, 100-s, s))
	}
	return "[" + strings.Join(evs, ",") + "]"
}

func (f *fakeAPI) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newRoot builds a fresh evac root the way cmd/evac does.
func newRoot() *cobra.Command {
	root := &cobra.Command{Use: "evac", Short: "regional failover control plane"}
	AddClientCommands(root)
	dev := &cobra.Command{Use: "dev", Short: "run the whole system in one process"}
	dev.AddCommand(DevClientCommands()...)
	root.AddCommand(dev)
	return root
}

// run executes evac with args under ctx and returns its exit status and
// output.
func run(ctx context.Context, t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb syncBuffer
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(""))
	code = ExecuteContext(ctx, root)
	return code, out.String(), errb.String()
}

func clearEnv(t *testing.T) {
	t.Setenv(EnvAddr, "")
	t.Setenv(EnvToken, "")
}

func TestReadCommands(t *testing.T) {
	clearEnv(t)
	f := newFake(t)
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		want []string // substrings of stdout
	}{
		{[]string{"status"}, []string{"NODE", "c0", "Follower (term 4)", "c1 (127.0.0.1:8081)", "applied 120, commit 120", "c0, c1, c2"}},
		{[]string{"regions"}, []string{"NAME", "STATE", "WEIGHT", "HEALTH", "AGENTS", "SINCE", "REASON",
			"us-east", "evacuating", "50%", "1/2", " ago", "INC-1 elevated 5xx"}},
		{[]string{"regions", "us-east"}, []string{"us-east", "last change by alice", "evacuate ramp 50 -> 0: next step 2/2 (weight 0)",
			"SERVICE", "api", "1/2", "a1/http"}},
		{[]string{"services"}, []string{"SERVICE", "EFFECTIVE", "api.example.com.", "weighted", "us-west", "198.51.100.11", "192.0.2.11,192.0.2.12"}},
		{[]string{"members"}, []string{"NAME", "LAST REPORT", "a1", "2s ago", "never", "api/http", "controller"}},
		{[]string{"config"}, []string{"# evac steering config, version 3", "zone: example.com.", "detect_after: 30s"}},
		{[]string{"events", "--since", "1"}, []string{"SEQ", "KIND", "region.step", "2020-01-02T03:04:02Z", "step 3"}},
	} {
		code, out, errs := run(ctx, t, append(tc.args, "--addr", f.URL)...)
		if code != 0 || errs != "" {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, errs)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, out)
			}
		}
	}
	// events --since 1 printed seq 2 and 3, not 1.
	_, out, _ := run(ctx, t, "events", "--since", "1", "--addr", f.URL)
	if strings.Contains(out, "step 1 ") || strings.Count(out, "region.step") != 2 {
		t.Errorf("events --since 1:\n%s", out)
	}
}

// -o json prints the server's body, including fields the CLI does not know.
func TestJSONOutput(t *testing.T) {
	clearEnv(t)
	f := newFake(t)
	t.Setenv(EnvAddr, f.URL) // the environment stands in for --addr
	code, out, errs := run(context.Background(), t, "status", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var got, want map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	json.Unmarshal([]byte(statusJSON), &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("status -o json = %v, want %v", got, want)
	}
	code, out, _ = run(context.Background(), t, "regions", "--output=json")
	var rs []wire.Region
	if code != 0 || json.Unmarshal([]byte(out), &rs) != nil || len(rs) != 1 || rs[0].Weight != 50 {
		t.Errorf("regions -o json: exit %d\n%s", code, out)
	}
}

func TestWriteCommands(t *testing.T) {
	clearEnv(t)
	f := newFake(t)
	ctx := context.Background()
	for _, tc := range []struct {
		args     []string
		path     string
		body     string
		wantOut  string
		wantCode int
	}{
		{[]string{"evacuate", "us-east", "--reason", "INC-1", "--ramp", "75, 25,0", "--step-interval", "1m", "--force"},
			"/v1/regions/us-east/evacuate", `{"reason":"INC-1","ramp":[75,25,0],"step_interval":"1m0s","force":true}`,
			"evacuation of us-east started (index 42, events 9,10)", 0},
		{[]string{"evacuate", "us-east", "--reason", "check", "--dry-run"},
			"/v1/regions/us-east/evacuate", `{"reason":"check","dry_run":true}`, "dry run: evacuation of us-east would be accepted", 0},
		{[]string{"restore", "us-east", "--reason", "fixed", "--ramp", "50,100"},
			"/v1/regions/us-east/restore", `{"reason":"fixed","ramp":[50,100]}`, "restore of us-east started", 0},
		{[]string{"freeze", "--reason", "bogus health"}, "/v1/freeze", `{"reason":"bogus health"}`, "cluster frozen (index 43, events 12)", 0},
		{[]string{"unfreeze"}, "/v1/unfreeze", `{"reason":""}`, "cluster unfrozen", 0},
		{[]string{"dev", "fail", "us-east"}, "/v1/dev/regions/us-east/fail", "", "us-east: demo backend now fails", 0},
		{[]string{"dev", "heal", "us-east"}, "/v1/dev/regions/us-east/heal", "", "us-east: demo backend now passes", 0},
	} {
		n := len(f.requests())
		code, out, errs := run(ctx, t, append(tc.args, "--addr", f.URL)...)
		if code != tc.wantCode || !strings.Contains(out, tc.wantOut) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", tc.args, code, out, errs)
		}
		reqs := f.requests()[n:]
		if len(reqs) != 1 || reqs[0].method != "POST" || reqs[0].path != tc.path || reqs[0].body != tc.body {
			t.Errorf("%v: requests %+v, want one POST %s %s", tc.args, reqs, tc.path, tc.body)
		}
	}
}

func TestExitCodes(t *testing.T) {
	clearEnv(t)
	f := newFake(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	for _, tc := range []struct {
		args       []string
		code       int
		stderr     string // substring
		noRequests bool
	}{
		{[]string{"status"}, 0, "", false},
		{[]string{"keygen"}, 0, "", true},
		{[]string{"status", "--help"}, 0, "", true},
		{[]string{"-o", "json", "--addr", "ADDR", "status"}, 0, "", false},
		// A failed request: the server's error, once.
		{[]string{"evacuate", "eu-west", "--reason", "x"}, 1, "error: eu-west is the last serving region (rule, HTTP 409)\n", false},
		{[]string{"regions", "nowhere"}, 1, "error: no such endpoint (not_found, HTTP 404)\n", false},
		{[]string{"status", "--addr", closed}, 1, "connection refused", true},
		{[]string{"healthz"}, 1, "error: no steering config applied (not_ready, HTTP 503)", false},
		// Bad usage: nothing sent.
		{[]string{"status", "--bogus"}, 2, "error: unknown flag: --bogus", true},
		{[]string{"bogus"}, 2, `error: unknown command "bogus" for "evac"`, true},
		{[]string{"status", "extra"}, 2, "error: unknown command", true},
		{[]string{"regions", "a", "b"}, 2, "accepts at most 1 arg", true},
		{[]string{"evacuate", "us-east"}, 2, "error: --reason is required", true},
		{[]string{"evacuate", "us-east", "--reason", "  "}, 2, "--reason is required", true},
		{[]string{"evacuate", "--reason", "x"}, 2, "REGION is required", true},
		{[]string{"evacuate", "us-east", "--reason", "x", "--ramp", "50,x"}, 2, `"x" is not a whole number`, true},
		{[]string{"evacuate", "us-east", "--reason", "x", "--ramp", "50,10"}, 2, "last step must be 0", true},
		{[]string{"restore", "us-east", "--reason", "x", "--ramp", "50,0"}, 2, "moves away from 100", true},
		{[]string{"evacuate", "us-east", "--reason", "x", "--step-interval", "soon"}, 2, "--step-interval", true},
		{[]string{"restore", "us-east", "--reason", "x", "--force"}, 2, "unknown flag: --force", true},
		{[]string{"freeze"}, 2, "--reason is required", true},
		{[]string{"status", "-o", "yaml"}, 2, "-o must be table or json", true},
		{[]string{"events", "--limit", "many"}, 2, "invalid argument", true},
		{[]string{"apply"}, 2, "-f FILE is required", true},
		{[]string{"apply", "-f", filepath.Join(t.TempDir(), "missing.yaml")}, 2, "no such file", true},
		{[]string{"dev", "fail"}, 2, "REGION is required", true},
	} {
		n := len(f.requests())
		args := append([]string(nil), tc.args...)
		if i := slices.Index(args, "ADDR"); i >= 0 {
			args[i] = f.URL
		} else if !slices.Contains(args, "--addr") {
			args = append(args, "--addr", f.URL)
		}
		code, _, errs := run(context.Background(), t, args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, errs)
		}
		if !strings.Contains(errs, tc.stderr) || strings.Count(errs, "error:") > 1 {
			t.Errorf("%v: stderr %q, want one error containing %q", tc.args, errs, tc.stderr)
		}
		if tc.code == 2 && !strings.Contains(errs, "--help' for usage") {
			t.Errorf("%v: stderr %q lacks the usage hint", tc.args, errs)
		}
		if got := len(f.requests()) - n; tc.noRequests && got != 0 {
			t.Errorf("%v: sent %d requests, want none", tc.args, got)
		}
	}
}

func TestApplyFile(t *testing.T) {
	clearEnv(t)
	f := newFake(t)
	dir := t.TempDir()

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(goodConfig, "198.51.100.11", "not-an-ip", 1)), 0o644)
	code, _, errs := run(context.Background(), t, "apply", "-f", bad, "--addr", f.URL)
	if code != 2 || !strings.Contains(errs, "services[0].endpoints.us-west[0]") || !strings.Contains(errs, bad) {
		t.Errorf("apply bad file: exit %d, stderr %q", code, errs)
	}
	unknownKey := filepath.Join(dir, "typo.yaml")
	os.WriteFile(unknownKey, []byte(goodConfig+"polcy: {}\n"), 0o644)
	if code, _, errs = run(context.Background(), t, "apply", "-f", unknownKey, "--addr", f.URL); code != 2 || !strings.Contains(errs, "polcy") {
		t.Errorf("apply file with an unknown key: exit %d, stderr %q", code, errs)
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("apply with bad files sent %d requests", n)
	}

	good := filepath.Join(dir, "steering.yaml")
	os.WriteFile(good, []byte(goodConfig), 0o644)
	code, out, errs := run(context.Background(), t, "apply", "-f", good, "--addr", f.URL)
	if code != 0 || !strings.Contains(out, "config version 4 applied (index 50)") {
		t.Errorf("apply good file: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	reqs := f.requests()
	if len(reqs) != 1 || reqs[0].method != "PUT" || reqs[0].path != "/v1/config" ||
		reqs[0].ctype != "application/yaml" || reqs[0].body != goodConfig {
		t.Errorf("apply sent %+v", reqs)
	}
}

func TestEventsFollowStopsOnCancel(t *testing.T) {
	clearEnv(t)
	f := newFake(t)
	var (
		mu     sync.Mutex
		sinces []int
	)
	caughtUp := make(chan struct{})
	var once sync.Once
	// Events 1..2 exist at first; 3 appears on the third poll.
	f.routes["GET /v1/events"] = func(w http.ResponseWriter, r *http.Request) {
		since, _ := strconv.Atoi(r.URL.Query().Get("since"))
		mu.Lock()
		sinces = append(sinces, since)
		polls := len(sinces)
		mu.Unlock()
		upTo := 2
		if polls >= 3 {
			upTo = 3
		}
		if since >= 3 {
			once.Do(func() { close(caughtUp) })
		}
		io.WriteString(w, eventsAfter(since, upTo))
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	root := newRoot()
	root.SetArgs([]string{"events", "--follow", "--addr", f.URL})
	root.SetOut(&out)
	root.SetErr(&errb)
	done := make(chan int)
	go func() { done <- ExecuteContext(ctx, root) }()

	select {
	case <-caughtUp:
	case <-time.After(20 * time.Second):
		t.Fatalf("follow never polled past seq 3; output:\n%s", out.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("events --follow exited %d after cancel; stderr %q", code, errb.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("events --follow did not stop when its context was cancelled")
	}
	got := out.String()
	if strings.Count(got, "SEQ") != 1 {
		t.Errorf("header printed %d times", strings.Count(got, "SEQ"))
	}
	for s := 1; s <= 3; s++ {
		if n := strings.Count(got, fmt.Sprintf("step %d\n", s)); n != 1 {
			t.Errorf("event %d printed %d times:\n%s", s, n, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if sinces[0] != 0 || sinces[1] != 2 || sinces[len(sinces)-1] != 3 {
		t.Errorf("polled with since = %v", sinces)
	}
}

func TestEventsFollowJSONLines(t *testing.T) {
	clearEnv(t)
	f := newFake(t)
	polled := make(chan struct{})
	var once sync.Once
	f.routes["GET /v1/events"] = func(w http.ResponseWriter, r *http.Request) {
		since, _ := strconv.Atoi(r.URL.Query().Get("since"))
		if since >= 3 {
			once.Do(func() { close(polled) })
		}
		io.WriteString(w, eventsAfter(since, 3))
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-polled; cancel() }()
	code, out, errs := run(ctx, t, "events", "-f", "--limit", "2", "-o", "json", "--addr", f.URL)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 JSON lines, got:\n%s", out)
	}
	for i, l := range lines {
		var e struct{ Seq int }
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Seq != i+1 {
			t.Errorf("line %d = %q (%v)", i, l, err)
		}
	}
}

func TestParseRamp(t *testing.T) {
	for _, tc := range []struct {
		in     string
		target int
		want   []int
		err    string
	}{
		{"50,0", 0, []int{50, 0}, ""},
		{"0", 0, []int{0}, ""},
		{" 75 , 25 ,0", 0, []int{75, 25, 0}, ""},
		{"50,100", 100, []int{50, 100}, ""},
		{"", 0, nil, "not a whole number"},
		{"50,,0", 0, nil, "not a whole number"},
		{"50;0", 0, nil, "not a whole number"},
		{"150,0", 0, nil, "not within 0..100"},
		{"-5,0", 0, nil, "not within 0..100"},
		{"20,50,0", 0, nil, "moves away from 0"},
		{"50", 0, nil, "last step must be 0"},
		{"50,0", 100, nil, "moves away from 100"},
	} {
		got, err := ParseRamp(tc.in, tc.target)
		if tc.err == "" && (err != nil || !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("ParseRamp(%q, %d) = %v, %v; want %v", tc.in, tc.target, got, err, tc.want)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseRamp(%q, %d) error = %v; want one containing %q", tc.in, tc.target, err, tc.err)
		}
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("disk full"), 1},
		{&client.APIError{Status: 500, Message: "boom"}, 1},
		{fmt.Errorf("wrapped: %w", &client.ConnError{Method: "GET", URL: "x", Err: errors.New("refused")}), 1},
		{Usagef("bad"), 2},
		{fmt.Errorf("ctx: %w", Usagef("bad")), 2},
		{errors.New(`unknown command "x" for "evac"`), 2},
		{errors.New(`required flag(s) "node-id" not set`), 2},
		{&ExitError{Code: 3, Err: errors.New("x")}, 3},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// Commands added by others (cmd/evac's server, agent, dev) get the same
// treatment: cobra's argument errors are usage errors, runtime errors exit 1.
func TestExecuteForeignCommands(t *testing.T) {
	root := newRoot()
	root.AddCommand(&cobra.Command{Use: "server", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return errors.New("listen tcp: address in use") }})
	var errb bytes.Buffer
	root.SetErr(&errb)
	root.SetOut(io.Discard)
	root.SetArgs([]string{"server"})
	if code := ExecuteContext(context.Background(), root); code != 1 || errb.String() != "error: listen tcp: address in use\n" {
		t.Errorf("runtime failure: exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	root.SetArgs([]string{"server", "x"})
	if code := ExecuteContext(context.Background(), root); code != 2 {
		t.Errorf("extra argument: exit %d, stderr %q", code, errb.String())
	}
}

func TestKeygen(t *testing.T) {
	_, out, _ := run(context.Background(), t, "keygen")
	_, out2, _ := run(context.Background(), t, "keygen")
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if err != nil || len(key) != 32 || out == out2 {
		t.Errorf("keygen printed %q (%d bytes, %v), then %q", out, len(key), err, out2)
	}
}

func TestEveryCommandDocumented(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			// dev itself is cmd/evac's; its fail and heal are ours.
			if sub.Name() != "dev" && (sub.Short == "" || sub.Example == "") {
				t.Errorf("%s lacks Short or Example", sub.CommandPath())
			}
			walk(sub)
		}
	}
	walk(newRoot())
}

func TestAge(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, "-"},
		{now, "0s ago"},
		{now.Add(-12*time.Second - 400*time.Millisecond), "12s ago"},
		{now.Add(-3*time.Minute - 12*time.Second), "3m12s ago"},
		{now.Add(-2*time.Hour - 5*time.Minute - 9*time.Second), "2h5m ago"},
		{now.Add(-76 * time.Hour), "3d4h ago"},
		{now.Add(25 * time.Second), "in 25s"},
	} {
		if got := age(tc.t, now); got != tc.want {
			t.Errorf("age(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
}

func TestRampLine(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rp := &state.Ramp{Kind: "evacuate", Steps: []int{50, 0}, Next: 1, NextAt: now.Add(25 * time.Second)}
	if got, want := rampLine(rp, now), "evacuate ramp 50 -> 0: next step 2/2 (weight 0) in 25s"; got != want {
		t.Errorf("rampLine = %q, want %q", got, want)
	}
	rp.NextAt = now.Add(-3 * time.Second)
	if got := rampLine(rp, now); !strings.HasSuffix(got, "overdue by 3s") {
		t.Errorf("rampLine overdue = %q", got)
	}
	if got := rampLine(nil, now); got != "" {
		t.Errorf("rampLine(nil) = %q", got)
	}
}

// A freeze while frozen, or an unfreeze while not frozen, is the operator's
// intent already holding: exit 0 and say nothing changed; any other refusal
// still fails.
func TestFreezeAlreadyInState(t *testing.T) {
	clearEnv(t)
	f := newFake(t)
	f.routes["POST /v1/freeze"] = func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, `{"error":"already frozen: INC-1","code":"already_frozen"}`)
	}
	f.routes["POST /v1/unfreeze"] = func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, `{"error":"not frozen","code":"not_frozen"}`)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		args    []string
		wantOut string
	}{
		{[]string{"freeze", "--reason", "again"}, "cluster already frozen: INC-1; nothing changed"},
		{[]string{"unfreeze"}, "cluster not frozen; nothing changed"},
		{[]string{"-o", "json", "unfreeze"}, `"changed": false`},
	} {
		code, out, errs := run(ctx, t, append(tc.args, "--addr", f.URL)...)
		if code != 0 || !strings.Contains(out, tc.wantOut) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 0 and %q", tc.args, code, out, errs, tc.wantOut)
		}
	}
	f.routes["POST /v1/freeze"] = func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, `{"error":"no steering config applied","code":"no_config"}`)
	}
	if code, _, _ := run(ctx, t, "freeze", "--reason", "x", "--addr", f.URL); code != 1 {
		t.Errorf("freeze refused for another reason: exit %d, want 1", code)
	}
}

// --watch follows the region until its ramp is done (exit 0), and a ramp
// that ends elsewhere (someone restored it) exits 1.
func TestMoveWatch(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	done := `{"name":"us-east","state":"evacuated","weight":0,"health":0,"since":"2020-01-02T03:05:05Z","reason":"INC-1","actor":"alice","ramp":null}`
	undone := `{"name":"us-east","state":"active","weight":100,"health":1,"since":"2020-01-02T03:05:05Z","reason":"fixed","actor":"bob","ramp":null}`
	for _, tc := range []struct {
		end      string
		wantCode int
		wantOut  string
	}{
		{done, 0, "us-east is evacuated at weight 0"},
		{undone, 1, "the ramp of us-east ended at weight 100, not 0: fixed (by bob)"},
	} {
		f := newFake(t)
		var gets atomic.Int32
		f.routes["GET /v1/regions/us-east"] = func(w http.ResponseWriter, _ *http.Request) {
			if gets.Add(1) == 1 {
				io.WriteString(w, regionJSON)
				return
			}
			io.WriteString(w, tc.end)
		}
		code, out, errs := run(ctx, t, "--addr", f.URL, "evacuate", "us-east", "--reason", "INC-1", "--watch")
		if code != tc.wantCode || !strings.Contains(out, tc.wantOut) || !strings.Contains(out, "us-east  evacuating  weight 50") {
			t.Errorf("watch ending %s: exit %d, stdout %q, stderr %q", tc.end, code, out, errs)
		}
	}
}

// A freeze heads `evac regions` and `evac status` with its reason, author
// and age; a region a drill holds says so, with the step and the time to
// the next.
func TestLoudState(t *testing.T) {
	clearEnv(t)
	f := newFake(t)
	since := time.Now().Add(-12 * time.Minute).UTC().Format(time.RFC3339)
	next := time.Now().Add(19 * time.Second).UTC().Format(time.RFC3339Nano)
	f.routes["GET /v1/status"] = func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"node_id":"c1","leader":"c1","is_leader":true,"term":3,"frozen":true,"frozen_reason":"INC-9 bogus health",
"frozen_by":"alice","frozen_since":"`+since+`","config_version":2,"voters":[]}`)
	}
	f.routes["GET /v1/regions"] = func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `[{"name":"us-east","state":"evacuated","weight":0,"health":1,"agents_alive":2,"agents_total":2,
"since":"`+since+`","reason":"drill","ramp":null,"services":{},
"drill":{"id":"d-1","runbook":"kong","step":2,"steps":3,"step_kind":"wait","next_at":"`+next+`"}}]`)
	}
	ctx := context.Background()
	code, out, errs := run(ctx, t, "--addr", f.URL, "regions")
	for _, want := range []string{"FROZEN: INC-9 bogus health (since 12m", "by alice)", "evacuated (drill)",
		"us-east: held by drill d-1 (runbook kong), step 2/3 wait, next in 1"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("regions: exit %d, missing %q:\n%s%s", code, want, out, errs)
		}
	}
	code, out, _ = run(ctx, t, "--addr", f.URL, "status")
	if code != 0 || !strings.Contains(out, "YES: INC-9 bogus health (since 12m") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
}

// apply --dry-run prints the diff against the config in force and sends no
// write; the same config again says unchanged; a put the server finds
// unchanged says so.
func TestApplyDryRunAndUnchanged(t *testing.T) {
	clearEnv(t)
	f := newFake(t)
	ctx := context.Background()
	dir := t.TempDir()
	good := filepath.Join(dir, "steering.yaml")
	if err := os.WriteFile(good, []byte(goodConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(ctx, t, "--addr", f.URL, "apply", "-f", good, "--dry-run")
	for _, want := range []string{"--- config version 3 (in force)", "+++ " + good + " (normalised)", "+    - name: us-west",
		"dry run: nothing applied"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("dry run: exit %d, missing %q:\n%s%s", code, want, out, errs)
		}
	}
	for _, r := range f.requests() {
		if r.method != "GET" {
			t.Errorf("a dry run sent %s %s", r.method, r.path)
		}
	}
	// The config in force, as the server has it, is unchanged.
	cfg, err := state.ParseConfig([]byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"version": 4, "config": cfg})
	f.routes["GET /v1/config"] = func(w http.ResponseWriter, _ *http.Request) { w.Write(b) }
	if code, out, _ = run(ctx, t, "--addr", f.URL, "apply", "-f", good, "--dry-run"); code != 0 ||
		!strings.Contains(out, "unchanged: "+good+" is config version 4 (in force)") {
		t.Errorf("dry run of the config in force: exit %d\n%s", code, out)
	}
	f.routes["PUT /v1/config"] = func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"index":60,"version":4,"unchanged":true}`)
	}
	if code, out, _ = run(ctx, t, "--addr", f.URL, "apply", "-f", good); code != 0 ||
		!strings.Contains(out, "unchanged: "+good+" is config version 4, in force; nothing applied") {
		t.Errorf("apply of the config in force: exit %d\n%s", code, out)
	}
}

// Shell completion offers the controller's regions, running drills and -o
// values.
func TestDynamicCompletion(t *testing.T) {
	clearEnv(t)
	f := newFake(t)
	f.routes["GET /v1/drills"] = func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "["+drillJSON(1, "running", "")+"]")
	}
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"__complete", "--addr", f.URL, "evacuate", ""}, "us-east\tevacuating"},
		{[]string{"__complete", "--addr", f.URL, "drill", "abort", ""}, "d-1\tkong running"},
		{[]string{"__complete", "--addr", f.URL, "regions", "-o", ""}, "json\t"},
	} {
		code, out, errs := run(ctx, t, tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", tc.args, code, out, errs, tc.want)
		}
	}
}

// Event rows keep their columns whatever the values: a region/service pair,
// a long kind or actor never pushes the next column out of line.
func TestEventColumnsAlign(t *testing.T) {
	var b strings.Builder
	printEventHeader(&b)
	for _, e := range []state.Event{
		{Seq: 1, Kind: "region.evacuate", Region: "us-east", Actor: "alice"},
		{Seq: 22, Kind: "health.unhealthy", Region: "us-east", Service: "api", Actor: "steering"},
		{Seq: 333, Kind: "region.unobserved-and-more", Region: "a-very-long-region-name-indeed", Service: "api", Actor: "someone-with-a-long-name"},
	} {
		printEvent(&b, e)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	col := strings.Index(lines[0], "WEIGHT")
	for _, l := range lines[1:] {
		if r := []rune(l); len(r) <= col || r[col-1] != ' ' || r[col] == ' ' {
			t.Errorf("WEIGHT column not at %d in %q", col, l)
		}
	}
}

// `evac cluster peers` shows each member's role and lag ("-" when it did
// not answer); `evac status` explains an edge's role.
func TestPeersRoleAndLag(t *testing.T) {
	zero, behind := uint64(0), uint64(7)
	var buf bytes.Buffer
	err := peerTable(&buf, []wire.Peer{
		{ID: "c1", Address: "10.0.0.1:7300", Suffrage: "voter", Role: "voter", Leader: true, AppliedIndex: 90, Lag: &zero, Reachable: true, Healthy: true},
		{ID: "e1", Address: "10.8.0.5:7300", Suffrage: "nonvoter", Role: "edge", AppliedIndex: 83, Lag: &behind, Reachable: true, Healthy: true},
		{ID: "e2", Address: "10.8.0.6:7300", Suffrage: "nonvoter", Role: "nonvoter", Error: "probe: timeout"},
		{ID: "old", Address: "10.0.0.9:7300", Suffrage: "voter"}, // a server from before roles
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	for i, want := range [][]string{
		{"ID", "ADDRESS", "ROLE", "LEADER", "APPLIED", "LAG", "HEALTHY", "ERROR"},
		{"c1", "10.0.0.1:7300", "voter", "yes", "90", "0", "yes", "-"},
		{"e1", "10.8.0.5:7300", "edge", "no", "83", "7", "yes", "-"},
		{"e2", "10.8.0.6:7300", "nonvoter", "no", "-", "-", "no", "probe:", "timeout"},
		{"old", "10.0.0.9:7300", "voter", "no", "-", "-", "no", "-"},
	} {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("line %d = %q; want %q", i, got, want)
		}
	}
	if got := roleLine("edge"); !strings.HasPrefix(got, "edge (a non-voting replica") {
		t.Errorf("roleLine(edge) = %q", got)
	}
	if got := roleLine("voter"); got != "voter" {
		t.Errorf("roleLine(voter) = %q", got)
	}
}
