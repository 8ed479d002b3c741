package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/client"
)

// previousRelease is the commit the rolling-upgrade test builds the
// previous release from: the last release whose Apply parsed user input
// (its log entries replay through controlplane/state/internal/frozenv1).
// CI clones have the full history; a clone without it fails the test.
const previousRelease = "aa66dac"

// newServerArgs are extra `evac server` flags only this release knows
// (the previous release's binary is started without them).
var newServerArgs = []string{"--insecure-no-raft-tls"}

// upgradeRegions: controllers on 127.0.110.0/24; no agents (operators,
// drills and the scheduler make the writes).
var upgradeRegions = []regionDef{
	{"us-east", 111, testRegions[0].endpoints},
	{"us-west", 112, testRegions[1].endpoints},
	{"eu-west", 113, testRegions[2].endpoints},
}

// buildPrevious builds the previous release's evac from this repository's
// history (git archive of previousRelease into a temporary directory).
func buildPrevious(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	dir := t.TempDir()
	archive := exec.Command("sh", "-c", fmt.Sprintf("git -C %q archive --format=tar %s | tar -x -C %q", root, previousRelease, dir))
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive %s (a clone with the history is needed): %v: %s", previousRelease, err, out)
	}
	bin := filepath.Join(dir, "evac-"+previousRelease)
	build := exec.Command("go", "build", "-o", bin, "./cmd/evac")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v: %s", previousRelease, err, out)
	}
	return bin
}

const upgradeSteering = `zone: example.com.
ttl: 1
nameservers: {ns1: 192.0.2.53}
regions:
  - {name: us-east, capacity: 100}
  - {name: us-west, capacity: 100}
  - {name: eu-west, capacity: 100}
services:
  - name: api
    endpoints:
      us-east: [192.0.2.11]
      us-west: [198.51.100.11]
      eu-west: [203.0.113.11]
policy: {ramp: [50, 0], restore_ramp: [50, 100], step_interval: 1s, max_evacuated: 1}
`

// upgradeRunbook's drills hold eu-west; the operators move us-east.
const upgradeRunbook = `name: upgrade-drill
params:
  weight: {default: "60"}
steps:
  - shift: {region: eu-west, weight: "{{ .weight }}"}
  - wait: {duration: 1s}
  - notify: {message: "eu-west at {{ .weight }}"}
  - restore: {region: eu-west, ramp: [80, 100], step_interval: 500ms}
`

// TestRollingUpgrade: two controllers of the previous release and one of
// this one form a cluster and take writes through every controller (so
// commands in both releases' forms), drills (started by hand and by a
// schedule) and an evacuation with its ramp; then the controllers of the
// previous release are upgraded one by one, under writes. Every
// controller, old or new, ends with the same state and audit log: the old
// ones while the cluster is mixed, all of them at the end (the upgraded
// ones having replayed the log written by both releases).
func TestRollingUpgrade(t *testing.T) {
	t.Parallel()
	oldBin := buildPrevious(t)
	dir := t.TempDir()
	tokens := writeTokens(t, filepath.Join(dir, "tokens.yaml"))
	keyFile := keygen(t, dir)
	var ctrls []*controllerProc
	var peers, seeds []string
	for i := range 3 {
		ip := fmt.Sprintf("127.0.110.%d", i+11)
		c := &controllerProc{id: fmt.Sprintf("c%d", i+1), raft: fmt.Sprintf("%s:%d", ip, freePort(t, ip)),
			gossip: fmt.Sprintf("%s:%d", ip, freePort(t, ip)), http: fmt.Sprintf("%s:%d", ip, freePort(t, ip)),
			dns: fmt.Sprintf("%s:%d", ip, freePort(t, ip))}
		c.raftAdvertise = c.raft
		peers, seeds = append(peers, c.id+"="+c.raft), append(seeds, c.gossip)
		ctrls = append(ctrls, c)
	}
	args := func(c *controllerProc, upgraded bool) []string {
		a := []string{"server", "--tokens-file", tokens, "--node-id", c.id, "--data-dir", filepath.Join(dir, c.id),
			"--raft-addr", c.raft, "--gossip-addr", c.gossip, "--http-addr", c.http, "--dns-addr", c.dns,
			"--bootstrap", strings.Join(peers, ","), "--join", strings.Join(seeds, ","),
			"--gossip-key-file", keyFile, "--fast", "--log-level", "debug"}
		if upgraded {
			a = append(a, newServerArgs...)
		}
		return a
	}
	// c1 and c2 run the previous release, c3 this one.
	for i, c := range ctrls {
		if i < 2 {
			c.proc = startProcBin(t, oldBin, c.id, args(c, false)...)
		} else {
			c.proc = startProc(t, c.id, args(c, true)...)
		}
	}
	tc := &testCluster{t: t, regions: upgradeRegions, controllers: ctrls, dir: dir, keyFile: keyFile, seeds: seeds}
	for _, c := range ctrls {
		tc.waitLeader(c)
	}
	cl := func(i int) *client.Client { return newClient(ctrls[i].http) }
	retry := func(what string, f func(ctx context.Context) error) {
		t.Helper()
		eventually(t, 45*time.Second, what, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return f(ctx)
		})
	}

	// The config through an old controller, the runbook through the new one.
	retry("config applied", func(ctx context.Context) error {
		_, err := cl(0).ApplyConfig(ctx, []byte(upgradeSteering), "application/yaml")
		return err
	})
	retry("runbook stored", func(ctx context.Context) error {
		_, err := cl(2).PutRunbook(ctx, "upgrade-drill", []byte(upgradeRunbook))
		return err
	})

	writes := startUpgradeWrites(t, ctrls)
	isOld := func(id string) bool { return id == "c1" || id == "c2" }
	first, err := cl(2).Status(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// Twice while mixed: under the leader elected first, then under one of
	// the other release (the leader's drill engine, scheduler and steering
	// engine propose too).
	for round, leaderOld := range []bool{isOld(first.Leader), !isOld(first.Leader)} {
		tc.leadBy(func(id string) bool { return isOld(id) == leaderOld })
		// Drills started through an old and the new controller, each run
		// to its end by the leader.
		for _, i := range []int{0, 2} {
			tc.runDrill(cl(i), map[string]string{"weight": fmt.Sprint(50 + 10*i + round)})
		}
		// An evacuation through an old controller, its restore through the new.
		tc.evacuateAndRestore(cl(round), cl(2), "us-east")
		// Scheduled drills, the schedule added through an old controller.
		tc.scheduledDrills(cl(1-round), fmt.Sprintf("mixed-%d", round))
	}
	writes.pause()
	// Mixed: the old controllers' state and log are the new one's.
	tc.converged("mixed cluster")

	writes.resume()

	// Upgrade the old controllers one at a time, under writes.
	for i := range 2 {
		c := ctrls[i]
		c.Stop()
		c.proc.bin, c.proc.args = "", args(c, true)
		c.Restart()
		tc.waitLeader(c)
		retry(c.id+" caught up", func(ctx context.Context) error {
			st, err := newClient(c.http).Status(ctx)
			if err != nil {
				return err
			}
			ref, err := cl(2).Status(ctx)
			if err != nil {
				return err
			}
			if st.AppliedIndex+50 < ref.AppliedIndex {
				return fmt.Errorf("applied %d, c3 %d", st.AppliedIndex, ref.AppliedIndex)
			}
			return nil
		})
		tc.runDrill(cl(i), nil)
	}
	tc.evacuateAndRestore(cl(1), cl(0), "us-east")
	// Every controller now knows policy.schedule_min_interval (the previous
	// release's parser refuses the key): allow the 2-second schedules.
	retry("schedules every 2 s allowed", func(ctx context.Context) error {
		_, err := cl(0).ApplyConfig(ctx, []byte(strings.Replace(upgradeSteering, "max_evacuated: 1}",
			"max_evacuated: 1, schedule_min_interval: 1s}", 1)), "application/yaml")
		return err
	})
	tc.scheduledDrills(cl(0), "upgraded")
	acked := writes.stop()
	if len(acked) < 10 {
		t.Fatalf("only %d writes acknowledged", len(acked))
	}
	digest := tc.converged("upgraded cluster")
	// Every acknowledged write is there.
	rbs, err := cl(0).Runbooks(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, rb := range rbs {
		have[rb.Name] = true
	}
	for _, name := range acked {
		if !have[name] {
			t.Errorf("acknowledged runbook %s missing", name)
		}
	}
	t.Logf("%d writes acknowledged; final state digest %s", len(acked), digest)
}

// leadBy restarts the leader until a controller for which want is true
// leads.
func (tc *testCluster) leadBy(want func(id string) bool) {
	t := tc.t
	t.Helper()
	for attempt := 0; ; attempt++ {
		var leader string
		eventually(t, 45*time.Second, "a leader", func() error {
			for _, c := range tc.controllers {
				st, err := newClient(c.http).Status(ctxT(t, 5*time.Second))
				if err == nil && st.Leader != "" {
					leader = st.Leader
					return nil
				}
			}
			return errors.New("no leader")
		})
		if want(leader) {
			t.Logf("%s leads", leader)
			return
		}
		if attempt == 10 {
			t.Fatalf("leadership never moved away from %s", leader)
		}
		for _, c := range tc.controllers {
			if c.id == leader {
				c.Stop()
				eventually(t, 45*time.Second, "a new leader", func() error {
					for _, o := range tc.controllers {
						if o == c {
							continue
						}
						if st, err := newClient(o.http).Status(ctxT(t, 5*time.Second)); err == nil && st.Leader != "" && st.Leader != leader {
							return nil
						}
					}
					return errors.New("none yet")
				})
				c.Restart()
				tc.waitLeader(c)
			}
		}
	}
}

// runDrill starts a drill of upgrade-drill through c and waits for it to
// succeed.
func (tc *testCluster) runDrill(c *client.Client, params map[string]string) {
	t := tc.t
	t.Helper()
	var id string
	eventually(t, 45*time.Second, "drill started", func() error {
		d, err := c.StartDrill(ctxT(t, 10*time.Second), wire.DrillRequest{Runbook: "upgrade-drill", Params: params, Reason: "upgrade test"})
		id = d.ID
		return err
	})
	eventually(t, 60*time.Second, "drill "+id+" succeeded", func() error {
		d, err := c.Drill(ctxT(t, 10*time.Second), id)
		if err != nil {
			return err
		}
		if d.Status != state.DrillSucceeded {
			return fmt.Errorf("%s at step %d: %s", d.Status, d.Current, d.Outcome)
		}
		return nil
	})
}

// evacuateAndRestore evacuates region through a (ramp [50, 0], stepped by
// the leader) and restores it through b, each to its end.
func (tc *testCluster) evacuateAndRestore(a, b *client.Client, region string) {
	t := tc.t
	t.Helper()
	for _, step := range []struct {
		c      *client.Client
		evac   bool
		phase  string
		weight int
	}{{a, true, "evacuated", 0}, {b, false, "active", 100}} {
		eventually(t, 45*time.Second, region+" "+step.phase, func() error {
			r, err := step.c.Region(ctxT(t, 10*time.Second), region)
			if err != nil {
				return err
			}
			if string(r.State) == step.phase && r.Weight == step.weight {
				return nil
			}
			if step.evac && r.State == "active" {
				_, err = step.c.Evacuate(ctxT(t, 10*time.Second), region, wire.MoveRequest{Reason: "upgrade test"})
			} else if !step.evac && r.State == "evacuated" {
				_, err = step.c.Restore(ctxT(t, 10*time.Second), region, wire.MoveRequest{Reason: "upgrade test"})
			}
			if err != nil {
				return err
			}
			return fmt.Errorf("%s at %d", r.State, r.Weight)
		})
	}
}

// scheduledDrills adds a schedule due every 2 s through c, waits for it to
// start a drill that succeeds and to have fired twice, then removes it.
func (tc *testCluster) scheduledDrills(c *client.Client, id string) {
	t := tc.t
	t.Helper()
	eventually(t, 45*time.Second, "schedule added", func() error {
		_, err := c.AddSchedule(ctxT(t, 10*time.Second), state.ScheduleAdd{ID: id, Cron: "*/2 * * * * *", Runbook: "upgrade-drill",
			SkipIf: []string{state.SkipDrillRunning}, Reason: "upgrade test"})
		if err != nil && strings.Contains(err.Error(), "already exists") {
			return nil
		}
		return err
	})
	eventually(t, 60*time.Second, "schedule "+id+" started a drill that succeeded", func() error {
		sc, err := c.Schedule(ctxT(t, 10*time.Second), id)
		if err != nil {
			return err
		}
		for _, run := range sc.Runs {
			if run.Drill == "" {
				continue
			}
			d, err := c.Drill(ctxT(t, 10*time.Second), run.Drill)
			if err == nil && d.Status == state.DrillSucceeded && len(sc.Runs) >= 2 {
				return nil
			}
		}
		return fmt.Errorf("%d runs", len(sc.Runs))
	})
	eventually(t, 45*time.Second, "schedule removed", func() error {
		err := c.RemoveSchedule(ctxT(t, 10*time.Second), id)
		if err != nil && strings.Contains(err.Error(), "no schedule") {
			return nil
		}
		return err
	})
	// The last run's drill, if any, ends before the cluster is compared.
	eventually(t, 60*time.Second, "no drill running", func() error {
		ds, err := c.Drills(ctxT(t, 10*time.Second))
		if err != nil {
			return err
		}
		for _, d := range ds {
			if d.Status == state.DrillRunning {
				return fmt.Errorf("drill %s running", d.ID)
			}
		}
		return nil
	})
}

// converged waits until every controller has applied the same index and
// holds the same replicated state and audit log, and returns its digest.
func (tc *testCluster) converged(what string) string {
	t := tc.t
	t.Helper()
	var digest string
	eventually(t, 90*time.Second, what+": every controller has the same state and audit log", func() error {
		var first string
		var firstIndex uint64
		for i, c := range tc.controllers {
			idx, d, err := replicaDigest(t, c)
			if err != nil {
				return fmt.Errorf("%s: %w", c.id, err)
			}
			if i == 0 {
				first, firstIndex = d, idx
				continue
			}
			if idx != firstIndex || d != first {
				return fmt.Errorf("%s: index %d digest %.12s; %s: index %d digest %.12s", tc.controllers[0].id, firstIndex, first, c.id, idx, d)
			}
		}
		digest = first
		return nil
	})
	return digest
}

// replicaDigest is a digest of a controller's replicated state as its API
// shows it: the config and its version, the regions' state, weight,
// reason and actor, every event in full, the drills, runbooks and
// schedules (without what the controller computes from its own clock or
// gossip view); and its applied index. The applied index is read before
// and after: a digest taken while the index moved is refused.
func replicaDigest(t *testing.T, c *controllerProc) (uint64, string, error) {
	cl := newClient(c.http)
	ctx := ctxT(t, 10*time.Second)
	before, err := cl.Status(ctx)
	if err != nil {
		return 0, "", err
	}
	h := sha256.New()
	part := 0
	add := func(v any) {
		b, _ := json.Marshal(v)
		h.Write(b)
		h.Write([]byte{'\n'})
		if dir := os.Getenv("EVAC_UPGRADE_DUMP"); dir != "" { // a failing comparison's parts, to diff by hand
			_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.json", c.id, part)), b, 0o644)
		}
		part++
	}
	add([]any{before.ConfigVersion, before.Serial, before.Frozen})
	// Decoded and encoded again: releases may order the fields differently.
	var cfg any
	if err := cl.Do(ctx, http.MethodGet, "/v1/config", nil, &cfg); err != nil {
		return 0, "", err
	}
	add(cfg)
	regions, err := cl.Regions(ctx)
	if err != nil {
		return 0, "", err
	}
	sort.Slice(regions, func(i, j int) bool { return regions[i].Name < regions[j].Name })
	for _, r := range regions {
		add([]any{r.Name, r.State, r.Weight, r.Reason, r.Since})
	}
	evs, err := allEvents(t, c)
	if err != nil {
		return 0, "", err
	}
	if len(evs) == 0 {
		return 0, "", errors.New("no events")
	}
	add(evs)
	var drills, runbooks json.RawMessage
	if err := cl.Do(ctx, http.MethodGet, "/v1/drills", nil, &drills); err != nil {
		return 0, "", err
	}
	add(drills)
	if err := cl.Do(ctx, http.MethodGet, "/v1/runbooks", nil, &runbooks); err != nil {
		return 0, "", err
	}
	add(runbooks)
	var schedules []state.Schedule // without the next due times
	if err := cl.Do(ctx, http.MethodGet, "/v1/schedules", nil, &schedules); err != nil {
		return 0, "", err
	}
	add(schedules)
	after, err := cl.Status(ctx)
	if err != nil {
		return 0, "", err
	}
	if after.AppliedIndex != before.AppliedIndex {
		return 0, "", fmt.Errorf("applied index moved from %d to %d", before.AppliedIndex, after.AppliedIndex)
	}
	return after.AppliedIndex, hex.EncodeToString(h.Sum(nil)), nil
}

// upgradeWrites stores runbooks through every controller in turn (so in
// both releases' forms) and records the acknowledged ones.
type upgradeWrites struct {
	t      *testing.T
	ctrls  []*controllerProc
	paused atomic.Bool
	done   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	acked  []string
	// idle is signalled by the writer when it sees paused.
	idle chan struct{}
}

func startUpgradeWrites(t *testing.T, ctrls []*controllerProc) *upgradeWrites {
	w := &upgradeWrites{t: t, ctrls: ctrls, done: make(chan struct{}), idle: make(chan struct{}, 1)}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for n := 0; ; n++ {
			select {
			case <-w.done:
				return
			case <-time.After(150 * time.Millisecond):
			}
			if w.paused.Load() {
				select {
				case w.idle <- struct{}{}:
				default:
				}
				continue
			}
			name := fmt.Sprintf("w-%d", n)
			c := ctrls[n%len(ctrls)]
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := newClient(c.http).PutRunbook(ctx, name, crashRunbook(name))
			cancel()
			if err == nil {
				w.mu.Lock()
				w.acked = append(w.acked, name)
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

// pause returns once the writer has no write in flight.
func (w *upgradeWrites) pause() {
	w.paused.Store(true)
	select {
	case <-w.idle:
	default:
	}
	<-w.idle
}

func (w *upgradeWrites) resume() { w.paused.Store(false) }

func (w *upgradeWrites) stop() []string {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.acked...)
}
