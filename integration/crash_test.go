package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/auth"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/client"
)

// Crash safety (issue 8, item 3): controllers are killed with SIGKILL while
// clients write, while snapshots are being written, and all at once; every
// write a client saw answered 2xx must then be in the state and the event
// log of every controller, and those event logs must be one sequence.
//
// The writes are runbook puts, each a new runbook under its own name and
// with its own Idempotency-Key: cheap, accepted in any state, and each
// leaves a record (GET /v1/runbooks) and an event (runbook.put) to look for.
// A write that failed (a dead controller, no leader, a timeout) is retried
// with the same key on another controller; only a 2xx counts as
// acknowledged. The controllers live on 127.0.90.x, each test on its own
// hosts and free ports.

// crashSerial runs the crash tests one at a time: each drives a cluster as
// hard as it will go (some 150 fsynced writes a second, snapshots of a few
// MB), and three at once on 2 cores starve the gossip of the tests running
// beside them. They still run in parallel with every other test.
var crashSerial sync.Mutex

// writeLoad is a set of clients issuing acknowledged writes until stopped.
type writeLoad struct {
	tc      *testCluster
	tokens  []string
	prefix  string
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	acked   []string
	issued  atomic.Int64
	refused atomic.Int64 // a 4xx: never expected
	// ackedDuringOutage counts writes acknowledged while a controller was
	// down (set by the test around each kill).
	outage            atomic.Bool
	ackedDuringOutage atomic.Int64
}

// crashRunbook is the runbook a write stores: a description pads it to about
// 1 KB so that the state, and each snapshot, grows with the writes.
func crashRunbook(name string) []byte {
	return fmt.Appendf(nil, "name: %s\ndescription: %s\nsteps:\n  - notify: {message: \"%s\"}\n",
		name, strings.Repeat("crash-safety padding ", 48), name)
}

// writerTokens makes one admin token per client: the API limits each token
// to 10 writes a second on each controller, which would make the clients,
// not the cluster, the bottleneck. It returns the tokens and the lines for
// the tokens file (clusterOpts.tokenLines).
func writerTokens(t *testing.T, n int) (tokens, lines []string) {
	for i := range n {
		tok, sum, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
		lines = append(lines, auth.FileLine(fmt.Sprintf("writer-%d", i), auth.RoleAdmin, sum))
	}
	return tokens, lines
}

// startWriteLoad starts one client per token. Each write stores a new
// runbook, so the cluster is first given room for thousands
// (policy.max_runbooks; the default is 64).
func startWriteLoad(tc *testCluster, prefix string, tokens []string, seed uint64) *writeLoad {
	tc.t.Helper()
	eventually(tc.t, 60*time.Second, "a steering config with room for the writes", func() error {
		c := tc.controllers[0]
		_, err := newClient(c.http).ApplyConfig(ctxT(tc.t, 10*time.Second), []byte(testSteering()+"  max_runbooks: 10000\n"), "")
		return err
	})
	w := &writeLoad{tc: tc, tokens: tokens, prefix: prefix, stop: make(chan struct{})}
	for i := range tokens {
		w.wg.Go(func() { w.worker(i, rand.New(rand.NewPCG(seed, uint64(i)))) })
	}
	return w
}

func (w *writeLoad) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

func (w *writeLoad) worker(id int, rng *rand.Rand) {
	for n := 0; !w.stopped(); n++ {
		name := fmt.Sprintf("%s-w%d-%d", w.prefix, id, n)
		src := crashRunbook(name)
		w.issued.Add(1)
		for attempt := 0; attempt < 20 && !w.stopped(); attempt++ {
			c := w.tc.controllers[rng.IntN(len(w.tc.controllers))]
			ctx, cancel := context.WithTimeout(client.WithRequestID(context.Background(), name), 5*time.Second)
			cl := client.New("http://"+c.http, w.tokens[id], client.WithTimeout(5*time.Second))
			_, err := cl.PutRunbook(ctx, name, src)
			cancel()
			if err == nil {
				w.mu.Lock()
				w.acked = append(w.acked, name)
				w.mu.Unlock()
				if w.outage.Load() {
					w.ackedDuringOutage.Add(1)
				}
				break
			}
			var apiErr *client.APIError
			if errors.As(err, &apiErr) && apiErr.Status < 500 && apiErr.Status != http.StatusTooManyRequests {
				w.refused.Add(1)
				w.tc.t.Errorf("write %s refused by %s: %v", name, c.id, err)
				break
			}
			time.Sleep(time.Duration(50+rng.IntN(100)) * time.Millisecond)
		}
	}
}

// Stop stops the clients and returns the names of the acknowledged writes.
func (w *writeLoad) Stop() []string {
	close(w.stop)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.acked...)
}

func (w *writeLoad) ackedSoFar() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// progress waits until n more writes are acknowledged: a fault is then
// injected under a load that runs, however slowly a loaded machine lets it
// (a fixed time let too few writes through for the test to mean much).
func (w *writeLoad) progress(what string, n int) {
	w.tc.t.Helper()
	from := w.ackedSoFar()
	eventually(w.tc.t, 60*time.Second, fmt.Sprintf("%d writes acknowledged %s", n, what), func() error {
		if got := w.ackedSoFar(); got < from+n {
			return fmt.Errorf("%d acknowledged, waiting for %d", got, from+n)
		}
		return nil
	})
}

// waitLeader waits until c answers and names a leader.
func (tc *testCluster) waitLeader(c *controllerProc) {
	tc.t.Helper()
	eventually(tc.t, 30*time.Second, c.id+" names a leader", func() error {
		if c.Exited() {
			tc.t.Fatalf("%s is not running (its log is printed at the end)", c.id)
		}
		st, err := newClient(c.http).Status(ctxT(tc.t, 3*time.Second))
		if err != nil {
			return err
		}
		if st.Leader == "" {
			return errors.New("no leader")
		}
		return nil
	})
}

// allEvents pages through a controller's whole event log.
func allEvents(t *testing.T, c *controllerProc) ([]state.Event, error) {
	var out []state.Event
	var since uint64
	for {
		evs, err := newClient(c.http).Events(ctxT(t, 10*time.Second), since, 10000)
		if err != nil {
			return nil, err
		}
		out = append(out, evs...)
		if len(evs) < 10000 {
			return out, nil
		}
		since = evs[len(evs)-1].Seq
	}
}

// eventKey is what must be the same for one event on every controller.
func eventKey(e state.Event) string {
	return fmt.Sprintf("%d/%d/%s/%s/%s", e.Seq, e.Index, e.Kind, e.Detail, e.Time.UTC().Format(time.RFC3339Nano))
}

// checkAcked waits until every controller's state holds every acknowledged
// write, with its one runbook.put event, and the controllers' event logs are
// one gap-free sequence, the same on all.
func (tc *testCluster) checkAcked(acked []string) {
	t := tc.t
	t.Helper()
	eventually(t, 60*time.Second, "every acknowledged write on every controller, one event log", func() error {
		var first []string
		for _, c := range tc.controllers {
			rbs, err := newClient(c.http).Runbooks(ctxT(t, 10*time.Second))
			if err != nil {
				return fmt.Errorf("%s: %w", c.id, err)
			}
			have := make(map[string]bool, len(rbs))
			for _, rb := range rbs {
				have[rb.Name] = true
			}
			evs, err := allEvents(t, c)
			if err != nil {
				return fmt.Errorf("%s: %w", c.id, err)
			}
			put := map[string]int{}
			keys := make([]string, len(evs))
			for i, e := range evs {
				if e.Seq != uint64(i+1) {
					return fmt.Errorf("%s: event %d has seq %d: the log has a gap", c.id, i, e.Seq)
				}
				if e.Kind == state.EventRunbookPut {
					name, _, _ := strings.Cut(e.Detail, " ")
					put[name]++
				}
				keys[i] = eventKey(e)
			}
			var missing []string
			for _, n := range acked {
				if !have[n] || put[n] != 1 {
					missing = append(missing, fmt.Sprintf("%s (stored %v, %d events)", n, have[n], put[n]))
				}
			}
			if len(missing) > 0 {
				sort.Strings(missing)
				return fmt.Errorf("%s lacks %d of %d acknowledged writes, e.g. %v", c.id, len(missing), len(acked), missing[:min(3, len(missing))])
			}
			if first == nil {
				first = keys
				continue
			}
			if len(keys) != len(first) {
				return fmt.Errorf("%s has %d events, %s has %d", c.id, len(keys), tc.controllers[0].id, len(first))
			}
			for i := range keys {
				if keys[i] != first[i] {
					return fmt.Errorf("event %d differs: %s has %s, %s has %s", i+1, c.id, keys[i], tc.controllers[0].id, first[i])
				}
			}
		}
		return nil
	})
}

// crashSeed is the test's random seed, logged so a run can be repeated.
func crashSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return seed
}

func sleepRand(rng *rand.Rand, lo, hi time.Duration) {
	time.Sleep(lo + time.Duration(rng.Int64N(int64(hi-lo))))
}

// TestCrashDuringWrites kills the leader, then a follower, twice each with
// kill -9 while 4 clients write, restarting each after a moment.
func TestCrashDuringWrites(t *testing.T) {
	t.Parallel()
	crashSerial.Lock()
	defer crashSerial.Unlock()
	seed := crashSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	tokens, lines := writerTokens(t, 4)
	tc := startClusterOpts(t, clusterOpts{ctrlSubnet: 90, ctrlHost: 11, tokenLines: lines})
	tc.waitLeader(tc.controllers[0])
	load := startWriteLoad(tc, "apply", tokens, seed)
	kills := map[string]int{}
	for round := range 4 {
		sleepRand(rng, 500*time.Millisecond, 1500*time.Millisecond)
		load.progress(fmt.Sprintf("before kill %d", round+1), 25)
		var leader *controllerProc
		eventually(t, 30*time.Second, "a leader", func() (err error) {
			leader, err = tc.leader()
			return err
		})
		victim, role := leader, "leader"
		if round%2 == 1 {
			victim, role = tc.controllers[(indexOf(tc, leader)+1+rng.IntN(2))%3], "follower"
		}
		before := load.ackedSoFar()
		load.outage.Store(true)
		victim.Kill()
		kills[role]++
		sleepRand(rng, 300*time.Millisecond, time.Second)
		victim.Restart()
		tc.waitLeader(victim)
		load.outage.Store(false)
		t.Logf("round %d: killed the %s %s after %d acknowledged writes", round, role, victim.id, before)
	}
	load.progress("after the last restart", 20)
	acked := load.Stop()
	t.Logf("writes: %d issued, %d acknowledged (%d while a controller was down), %d refused; kills: %v",
		load.issued.Load(), len(acked), load.ackedDuringOutage.Load(), load.refused.Load(), kills)
	if len(acked) < 100 {
		t.Fatalf("only %d writes acknowledged: the load did not run", len(acked))
	}
	tc.checkAcked(acked)
}

func indexOf(tc *testCluster, c *controllerProc) int {
	for i, d := range tc.controllers {
		if d == c {
			return i
		}
	}
	return -1
}

// logWatch follows a process's log file for a line.
type logWatch struct {
	path string
	off  int64
}

func newLogWatch(t *testing.T, path string) *logWatch {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return &logWatch{path: path, off: st.Size()}
}

// waitFor polls the log (every millisecond, to act within a snapshot's
// lifetime) until text appears past the last position, or timeout.
func (lw *logWatch) waitFor(text string, timeout time.Duration) bool {
	f, err := os.Open(lw.path)
	if err != nil {
		return false
	}
	defer f.Close()
	deadline := time.Now().Add(timeout)
	var pending []byte
	buf := make([]byte, 64<<10)
	for time.Now().Before(deadline) {
		n, _ := f.ReadAt(buf, lw.off)
		if n == 0 {
			time.Sleep(time.Millisecond)
			continue
		}
		lw.off += int64(n)
		pending = append(pending, buf[:n]...)
		if bytes.Contains(pending, []byte(text)) {
			return true
		}
		if i := bytes.LastIndexByte(pending, '\n'); i >= 0 {
			pending = pending[i+1:]
		}
	}
	return false
}

// tornSnapshots lists the half-written snapshot directories of c.
func (tc *testCluster) tornSnapshots(c *controllerProc) []string {
	dirs, _ := filepath.Glob(filepath.Join(tc.dir, c.id, "raft", "snapshots", "*.tmp"))
	return dirs
}

// TestCrashDuringSnapshots makes every controller snapshot every 40 entries
// (checked every 100 ms, keeping 20) and, 8 times, kills one with kill -9 the
// moment its log says a snapshot is being created; the state is ~1 KB per
// write, so a snapshot of a few MB is often still being written. The
// controller must restart from its last whole snapshot (and the log), drop
// the torn one, and lose no acknowledged write.
func TestCrashDuringSnapshots(t *testing.T) {
	t.Parallel()
	crashSerial.Lock()
	defer crashSerial.Unlock()
	seed := crashSeed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	tokens, lines := writerTokens(t, 4)
	tc := startClusterOpts(t, clusterOpts{ctrlSubnet: 90, ctrlHost: 21, tokenLines: lines, serverArgs: []string{
		"--snapshot-threshold", "40", "--snapshot-interval", "100ms", "--snapshot-trailing-logs", "20"}})
	tc.waitLeader(tc.controllers[0])
	load := startWriteLoad(tc, "snap", tokens, seed)
	kills, torn, missed := 0, 0, 0
	for round := range 8 {
		victim := tc.controllers[rng.IntN(3)]
		lw := newLogWatch(t, victim.logPath)
		if !lw.waitFor("creating new snapshot", 15*time.Second) {
			missed++
			t.Logf("round %d: %s started no snapshot within 15s; killing it anyway", round, victim.id)
		}
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		load.outage.Store(true)
		victim.Kill()
		kills++
		half := tc.tornSnapshots(victim)
		if len(half) > 0 {
			torn++
		}
		t.Logf("round %d: killed %s, %d acknowledged writes so far, half-written snapshots left: %d",
			round, victim.id, load.ackedSoFar(), len(half))
		sleepRand(rng, 200*time.Millisecond, 800*time.Millisecond)
		victim.Restart()
		tc.waitLeader(victim)
		load.outage.Store(false)
		for _, d := range half {
			if _, err := os.Stat(d); err == nil {
				t.Errorf("%s: torn snapshot %s still there after the restart", victim.id, filepath.Base(d))
			}
		}
	}
	time.Sleep(time.Second)
	acked := load.Stop()
	t.Logf("writes: %d issued, %d acknowledged (%d while a controller was down), %d refused; "+
		"%d kills, %d of them left a half-written snapshot, %d without a snapshot seen starting",
		load.issued.Load(), len(acked), load.ackedDuringOutage.Load(), load.refused.Load(), kills, torn, missed)
	if len(acked) < 100 {
		t.Fatalf("only %d writes acknowledged: the load did not run", len(acked))
	}
	tc.checkAcked(acked)
	restored, installed, removed := 0, 0, 0
	for _, c := range tc.controllers {
		snaps, _ := filepath.Glob(filepath.Join(tc.dir, c.id, "raft", "snapshots", "*", "meta.json"))
		if len(snaps) == 0 {
			t.Errorf("%s has no complete snapshot: the test did not exercise snapshots", c.id)
		}
		b, _ := os.ReadFile(c.logPath)
		restored += bytes.Count(b, []byte("state restored from snapshot"))
		installed += bytes.Count(b, []byte("Installed remote snapshot"))
		removed += bytes.Count(b, []byte("removed a snapshot left half-written"))
	}
	t.Logf("snapshots restored (on restart or sent by the leader): %d, of them sent by the leader: %d; torn snapshots removed on restart: %d",
		restored, installed, removed)
	if restored == 0 {
		t.Error("no restart restored a snapshot: the test did not exercise recovery from one")
	}
}

// TestCrashFullCluster kills all three controllers at once, twice while
// clients write and once when quiet, and restarts them: everything
// acknowledged survives, and the quiet cluster comes back exactly as it was.
func TestCrashFullCluster(t *testing.T) {
	t.Parallel()
	crashSerial.Lock()
	defer crashSerial.Unlock()
	seed := crashSeed(t)
	rng := rand.New(rand.NewPCG(seed, 2))
	tokens, lines := writerTokens(t, 4)
	tc := startClusterOpts(t, clusterOpts{ctrlSubnet: 90, ctrlHost: 31, tokenLines: lines, serverArgs: []string{
		"--snapshot-threshold", "200", "--snapshot-interval", "500ms"}})
	tc.waitLeader(tc.controllers[0])
	load := startWriteLoad(tc, "full", tokens, seed)
	for round := range 2 {
		sleepRand(rng, time.Second, 2*time.Second)
		load.progress(fmt.Sprintf("before full-cluster kill %d", round+1), 40)
		before := load.ackedSoFar()
		load.outage.Store(true)
		var wg sync.WaitGroup
		for _, c := range tc.controllers {
			wg.Go(c.Kill)
		}
		wg.Wait()
		t.Logf("round %d: killed all 3 controllers after %d acknowledged writes", round, before)
		sleepRand(rng, 200*time.Millisecond, time.Second)
		for _, c := range tc.controllers {
			c.Restart()
		}
		for _, c := range tc.controllers {
			tc.waitLeader(c)
		}
		load.outage.Store(false)
	}
	load.progress("after the last restart", 20)
	acked := load.Stop()
	t.Logf("writes: %d issued, %d acknowledged (%d while the cluster was down or electing), %d refused; 3 full-cluster kills",
		load.issued.Load(), len(acked), load.ackedDuringOutage.Load(), load.refused.Load())
	if len(acked) < 100 {
		t.Fatalf("only %d writes acknowledged: the load did not run", len(acked))
	}
	tc.checkAcked(acked)

	// A quiet cluster killed whole comes back exactly as it was: the same
	// event log, to the last field, and the same runbooks.
	before, err := allEvents(t, tc.controllers[0])
	if err != nil {
		t.Fatal(err)
	}
	rbsBefore, err := newClient(tc.controllers[0].http).Runbooks(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, c := range tc.controllers {
		wg.Go(c.Kill)
	}
	wg.Wait()
	for _, c := range tc.controllers {
		c.Restart()
	}
	for _, c := range tc.controllers {
		tc.waitLeader(c)
	}
	eventually(t, 30*time.Second, "the same state after a full restart", func() error {
		for _, c := range tc.controllers {
			after, err := allEvents(t, c)
			if err != nil {
				return err
			}
			if len(after) != len(before) {
				return fmt.Errorf("%s has %d events, %d before the restart", c.id, len(after), len(before))
			}
			for i := range after {
				if eventKey(after[i]) != eventKey(before[i]) || after[i].Actor != before[i].Actor || after[i].Reason != before[i].Reason {
					return fmt.Errorf("%s: event %d is %+v, was %+v", c.id, i+1, after[i], before[i])
				}
			}
			rbs, err := newClient(c.http).Runbooks(ctxT(t, 10*time.Second))
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(rbs, rbsBefore) {
				return fmt.Errorf("%s: %d runbooks, %d before the restart (or they differ)", c.id, len(rbs), len(rbsBefore))
			}
		}
		return nil
	})
}
