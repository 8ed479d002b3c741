package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/notify"
	"github.com/evac-sh/evac/controlplane/state"
)

// hook is a local HTTP receiver of one notification format; hold, when
// set, decides how long to keep a request before answering, and status
// what to answer.
type hook struct {
	t      *testing.T
	url    string
	srv    *http.Server
	mu     sync.Mutex
	got    []hookReq // 2xx-answered requests
	seen   int       // every request
	status func(n int, since time.Duration) int
	hold   func(n int) time.Duration
	start  time.Time
	// arrived is closed on the first request.
	arrived chan struct{}
	once    sync.Once
}

type hookReq struct {
	hdr  http.Header
	body []byte
}

func startHook(t *testing.T, ip string) *hook {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hook{t: t, url: "http://" + ln.Addr().String(), start: time.Now(), arrived: make(chan struct{})}
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = h.srv.Serve(ln) }()
	t.Cleanup(func() { _ = h.srv.Close() })
	return h
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.seen++
	n := h.seen
	hold, status := h.hold, h.status
	h.mu.Unlock()
	h.once.Do(func() { close(h.arrived) })
	if hold != nil {
		select {
		case <-time.After(hold(n)):
		case <-r.Context().Done():
			return
		}
	}
	code := http.StatusOK
	if status != nil {
		code = status(n, time.Since(h.start))
	}
	if code/100 == 2 {
		h.mu.Lock()
		h.got = append(h.got, hookReq{r.Header.Clone(), b})
		h.mu.Unlock()
	}
	w.WriteHeader(code)
}

func (h *hook) requests() []hookReq {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookReq(nil), h.got...)
}

// webhookKinds checks every delivery's signature and returns the event
// kinds by distinct Idempotency-Key, with how many times each key came.
func (h *hook) webhookKinds(secret string) (map[string]string, map[string]int, error) {
	kinds, times := map[string]string{}, map[string]int{}
	for _, r := range h.requests() {
		if !notify.Verify(secret, r.body, r.hdr.Get(notify.HeaderSignature)) {
			return nil, nil, fmt.Errorf("bad signature %q on %s", r.hdr.Get(notify.HeaderSignature), r.body)
		}
		var e state.Event
		if err := json.Unmarshal(r.body, &e); err != nil {
			return nil, nil, err
		}
		key := r.hdr.Get(notify.HeaderIdempotency)
		if key != fmt.Sprint(e.Seq) {
			return nil, nil, fmt.Errorf("Idempotency-Key %q for event %d", key, e.Seq)
		}
		kinds[key] = e.Kind
		times[key]++
	}
	return kinds, times, nil
}

// startAlertmanager runs Debian's Alertmanager on ip, sending its own
// notifications (firing and resolved) to receiver.
func startAlertmanager(t *testing.T, ip, receiver string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus-alertmanager is needed (Debian package; make test and .ci/run install it)")
		}
		t.Skip("skipping: prometheus-alertmanager is not installed (make test installs it)")
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`route: {receiver: hook, group_by: [alertname, region], group_wait: 1s, group_interval: 1s, repeat_interval: 1h}
receivers: [{name: hook, webhook_configs: [{url: %q, send_resolved: true}]}]
`, receiver)
	if err := os.WriteFile(filepath.Join(dir, "am.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("%s:%d", ip, freePort(t, ip))
	startExternal(t, "alertmanager", bin, "--config.file="+filepath.Join(dir, "am.yml"), "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	eventually(t, 60*time.Second, "alertmanager ready", func() error {
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return nil
	})
	return "http://" + addr
}

// startExternal runs a program that is not evac for the test's life.
func startExternal(t *testing.T, name, bin string, args ...string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // gone with the test binary
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		f.Close()
		if t.Failed() {
			dumpTail(t, logPath, 30)
		}
	})
}

// TestNotifications: a real cluster delivers an evacuation and its restore
// to a signed webhook, Slack, PagerDuty and a real Alertmanager, exactly
// once each by Idempotency-Key, across a kill -9 of the leader in the middle
// of a delivery; a receiver answering 500 for a minute gets both events
// afterwards; a receiver that never answers does not slow the evacuation.
func TestNotifications(t *testing.T) {
	t.Parallel()
	const ip = "127.0.131.200"
	ops, chat, pager, flaky, amHook := startHook(t, ip), startHook(t, ip), startHook(t, ip), startHook(t, ip), startHook(t, ip)
	pager.status = func(int, time.Duration) int { return http.StatusAccepted }
	flaky.status = func(_ int, since time.Duration) int {
		if since < time.Minute {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
	ops.hold = func(n int) time.Duration {
		if n == 1 {
			return 4 * time.Second // the leader is killed while this one is held
		}
		return 0
	}
	am := startAlertmanager(t, ip, amHook.url+"/am")
	hole, err := net.Listen("tcp", ip+":0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hole.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()

	tc := startClusterOpts(t, clusterOpts{ctrlSubnet: 131})
	for _, c := range tc.controllers { // the kill below needs all three up
		tc.waitLeader(c)
	}
	steering := testSteering() + fmt.Sprintf(`notifications:
  - {name: ops, type: webhook, url: %q, secret: ops-secret, events: [region.evacuate, region.active]}
  - {name: chat, type: slack, url: "%s/services/T0/B0/XYZ", events: [region.evacuate, region.active]}
  - {name: pager, type: pagerduty, url: "%s/v2/enqueue", routing_key: rk-1}
  - {name: am, type: alertmanager, url: %q}
  - {name: flaky, type: webhook, url: %q, secret: flaky-secret, events: [region.evacuate, region.active]}
  - {name: hole, type: webhook, url: "http://%s/", secret: h, events: [region.evacuate, region.step, region.active], timeout: 2s}
`, ops.url, chat.url, pager.url, am, flaky.url, hole.Addr())
	cl := newClient(tc.controllers[0].http)
	if _, err := cl.ApplyConfig(ctxT(t, 30*time.Second), []byte(steering), ""); err != nil {
		t.Fatal(err)
	}
	// Reads never show a secret.
	cfgYAML, err := tc.evac(tc.controllers[0], "config")
	if err != nil || strings.Contains(cfgYAML, "ops-secret") || strings.Contains(cfgYAML, "rk-1") || strings.Contains(cfgYAML, "XYZ") {
		t.Fatalf("config read shows a secret (err %v):\n%s", err, cfgYAML)
	}

	start := time.Now()
	if _, err := cl.Evacuate(ctxT(t, 30*time.Second), "us-east", wire.MoveRequest{Reason: "INC-7", Ramp: []int{50, 0}, StepInterval: state.Duration(time.Second)}); err != nil {
		t.Fatal(err)
	}
	// Kill the leader while it waits on ops' answer to the evacuation.
	select {
	case <-ops.arrived:
	case <-time.After(60 * time.Second):
		t.Fatal("no delivery reached the webhook")
	}
	leader, err := tc.leader()
	if err != nil {
		t.Fatal(err)
	}
	leader.Kill()
	t.Logf("killed the leader %s while its webhook delivery was held", leader.id)
	var survivor *controllerProc
	for _, c := range tc.controllers {
		if c != leader {
			survivor = c
			break
		}
	}
	tc.waitLeader(survivor)
	sc := newClient(survivor.http)
	eventually(t, 60*time.Second, "us-east evacuated", func() error {
		r, err := sc.Region(ctxT(t, 5*time.Second), "us-east")
		if err != nil {
			return err
		}
		if r.State != state.PhaseEvacuated {
			return fmt.Errorf("us-east %s at %d", r.State, r.Weight)
		}
		return nil
	})
	t.Logf("us-east evacuated %s after the request, a leader kill included, with a blackholed sink", time.Since(start).Round(time.Millisecond))
	leader.Restart()
	// Alertmanager has the alert firing.
	eventually(t, 60*time.Second, "alertmanager fires EvacRegionOut for us-east", func() error {
		return amAlert(am, "EvacRegionOut", "us-east", true)
	})
	if _, err := sc.Restore(ctxT(t, 30*time.Second), "us-east", wire.MoveRequest{Reason: "fixed", Ramp: []int{100}}); err != nil {
		t.Fatal(err)
	}

	// Every receiver ends with the evacuation and the restore, once each by key.
	wantKinds := func(h *hook, secret string) error {
		kinds, times, err := h.webhookKinds(secret)
		if err != nil {
			return err
		}
		var ks []string
		for _, k := range kinds {
			ks = append(ks, k)
		}
		if len(kinds) != 2 || !strings.Contains(strings.Join(ks, ","), state.EventEvacuate) || !strings.Contains(strings.Join(ks, ","), state.EventActive) {
			return fmt.Errorf("kinds by key %v (times %v)", kinds, times)
		}
		return nil
	}
	eventually(t, 60*time.Second, "ops webhook has both events", func() error { return wantKinds(ops, "ops-secret") })
	_, times, _ := ops.webhookKinds("ops-secret")
	t.Logf("ops deliveries by key: %v (a key twice is the redelivery after the kill)", times)
	eventually(t, 60*time.Second, "slack has both messages", func() error {
		var texts []string
		for _, r := range chat.requests() {
			var m struct{ Text string }
			if err := json.Unmarshal(r.body, &m); err != nil {
				return err
			}
			texts = append(texts, m.Text)
		}
		all := strings.Join(texts, "\n")
		if !strings.Contains(all, "us-east: region.evacuate by ci-admin: INC-7") || !strings.Contains(all, "us-east: region.active") {
			return fmt.Errorf("slack got %q", texts)
		}
		return nil
	})
	eventually(t, 60*time.Second, "pagerduty trigger then resolve", func() error {
		var actions []string
		for _, r := range pager.requests() {
			var ev struct {
				RoutingKey  string `json:"routing_key"`
				EventAction string `json:"event_action"`
				DedupKey    string `json:"dedup_key"`
			}
			if err := json.Unmarshal(r.body, &ev); err != nil {
				return err
			}
			if ev.RoutingKey != "rk-1" || ev.DedupKey != "evac/example.com/region/us-east" {
				return fmt.Errorf("pagerduty event %s", r.body)
			}
			if len(actions) == 0 || actions[len(actions)-1] != ev.EventAction {
				actions = append(actions, ev.EventAction)
			}
		}
		if strings.Join(actions, ",") != "trigger,resolve" {
			return fmt.Errorf("actions %v", actions)
		}
		return nil
	})
	eventually(t, 60*time.Second, "alertmanager resolved the alert and notified its receiver", func() error {
		if err := amAlert(am, "EvacRegionOut", "us-east", false); err != nil {
			return err
		}
		var statuses []string
		for _, r := range amHook.requests() {
			var m struct{ Status string }
			if err := json.Unmarshal(r.body, &m); err != nil {
				return err
			}
			statuses = append(statuses, m.Status)
		}
		if !strings.Contains(strings.Join(statuses, ","), "firing") || !strings.Contains(strings.Join(statuses, ","), "resolved") {
			return fmt.Errorf("alertmanager's receiver got %v", statuses)
		}
		return nil
	})
	// The flaky receiver answered 500 for a minute, then takes both.
	eventually(t, 3*time.Minute, "flaky webhook has both events after its minute of 500s", func() error { return wantKinds(flaky, "flaky-secret") })
	out, err := tc.evac(survivor, "notifications")
	if err != nil || !strings.Contains(out, "flaky") {
		t.Fatalf("evac notifications: %v\n%s", err, out)
	}
	t.Logf("evac notifications:\n%s", out)
	ns, err := sc.Notifications(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.Name == "hole" {
			if n.Delivered != 0 || n.Pending == 0 {
				t.Errorf("blackholed sink: %+v", n)
			}
			continue
		}
		if n.Failed != 0 || n.Pending != 0 {
			t.Errorf("sink %s: %+v", n.Name, n)
		}
	}
}

// amAlert checks Alertmanager's view of alert name for region: active, or
// not active (resolved or gone).
func amAlert(am, name, region string, active bool) error {
	resp, err := http.Get(am + "/api/v2/alerts?active=true&silenced=false&inhibited=false")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var alerts []struct {
		Labels map[string]string `json:"labels"`
		Status struct {
			State string `json:"state"`
		} `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil {
		return err
	}
	found := false
	for _, a := range alerts {
		found = found || (a.Labels["alertname"] == name && a.Labels["region"] == region)
	}
	switch {
	case active && !found:
		return errors.New("not active in alertmanager")
	case !active && found:
		return errors.New("still active in alertmanager")
	}
	return nil
}
