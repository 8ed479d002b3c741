package raftnode

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/evac-sh/evac/internal/testutil"
)

func TestClusterForwardFailoverMembership(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs last
	c := newCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tn := range c.nodes {
		if err := tn.node.WaitForLeader(ctx); err != nil {
			t.Fatalf("%s: %v", tn.id, err)
		}
	}
	l := c.leader(30 * time.Second)
	f := c.follower(l)
	leader, follower := c.nodes[l].node, c.nodes[f].node

	select {
	case v := <-leader.LeaderCh():
		if !v {
			t.Fatal("leader's LeaderCh delivered false")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("leader's LeaderCh delivered nothing")
	}

	// A write on a follower is forwarded and lands everywhere. Under load
	// the forward may be retried after its first attempt committed: the
	// retry is then answered "duplicate", and "a" is still there once.
	resp, idx, err := follower.Apply(ctx, []byte("a"))
	if err != nil || (string(resp) != "1" && string(resp) != "duplicate") || idx == 0 {
		t.Fatalf("forwarded apply = %q, %d, %v; want \"1\" (or \"duplicate\" after a retry), >0, nil", resp, idx, err)
	}
	c.waitFSMs("a")

	// An FSM error comes back as ErrCommandRejected, locally and forwarded,
	// without retries.
	for _, n := range []*Node{leader, follower} {
		start := time.Now()
		_, idx, err := n.Apply(ctx, []byte("reject:x"))
		if !errors.Is(err, ErrCommandRejected) || idx == 0 {
			t.Fatalf("rejected apply = %d, %v; want >0, ErrCommandRejected", idx, err)
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("rejected apply took %v: was it retried?", time.Since(start))
		}
	}

	peers, err := follower.Peers()
	if err != nil || len(peers) != 3 {
		t.Fatalf("Peers = %v, %v", peers, err)
	}
	for _, p := range peers {
		if p.Leader != (p.ID == c.nodes[l].id) || p.Suffrage != "Voter" {
			t.Fatalf("Peers: bad entry %+v (leader is %s)", p, c.nodes[l].id)
		}
	}
	if st := follower.Stats(); st.Voters != 3 || st.State != "Follower" || st.LeaderID != c.nodes[l].id || st.CommitIndex == 0 {
		t.Fatalf("follower Stats = %+v", st)
	}

	// Garbage, an idle connection and a half raft RPC on the leader's raft
	// port break nothing.
	junk := junkConns(t, c.nodes[l].addr)
	apply(t, follower, "b")
	c.waitFSMs("a", "b")
	for _, cn := range junk {
		_ = cn.Close()
	}

	// Kill the leader: a new one is elected and writes continue via any node.
	killed := c.nodes[l].id
	start := time.Now()
	oldCh := leader.LeaderCh()
	c.stop(l)
	if err := leader.Shutdown(); err != nil { // idempotent
		t.Fatalf("second Shutdown: %v", err)
	}
	for range oldCh { // drained and closed by Shutdown
	}
	if _, _, err := leader.Apply(ctx, []byte("x")); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Apply after Shutdown = %v, want ErrShutdown", err)
	}
	l = c.leader(30 * time.Second)
	t.Logf("new leader %s elected %v after %s was shut down", c.nodes[l].id, time.Since(start), killed)
	f = c.follower(l)
	apply(t, c.nodes[l].node, "c")
	apply(t, c.nodes[f].node, "d")
	c.waitFSMs("a", "b", "c", "d")

	// Membership changes forwarded from a follower: drop the dead node, add
	// a fresh one that was never bootstrapped.
	if err := c.nodes[f].node.RemoveServer(ctx, killed); err != nil {
		t.Fatalf("RemoveServer: %v", err)
	}
	j := c.addNode(t, false)
	c.start(j)
	if err := c.nodes[f].node.AddVoter(ctx, c.nodes[j].id, c.nodes[j].addr); err != nil {
		t.Fatalf("AddVoter: %v", err)
	}
	c.waitFSMs("a", "b", "c", "d")
	apply(t, c.nodes[j].node, "e")
	c.waitFSMs("a", "b", "c", "d", "e")
	peers, err = c.nodes[j].node.Peers()
	if err != nil || len(peers) != 3 {
		t.Fatalf("Peers after membership change = %+v, %v", peers, err)
	}
	for _, p := range peers {
		if p.ID == killed {
			t.Fatalf("removed server %s still in %+v", killed, peers)
		}
	}
}

// junkConns opens connections to addr that misbehave: one sends garbage, one
// says nothing, one sends a raft RPC type byte and then garbage.
func junkConns(t *testing.T, addr string) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for _, payload := range [][]byte{{0xFF, 0x00, 0x13, 0x37}, nil, {0x00, 0xC1, 0xC1, 0xC1, 0xC1}} {
		cn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		if payload != nil {
			if _, err := cn.Write(payload); err != nil {
				t.Fatalf("write junk: %v", err)
			}
		}
		conns = append(conns, cn)
	}
	// The garbage connection is closed by the node straight away (EOF, or
	// a reset because it closed with our bytes unread).
	_ = conns[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(conns[0]); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("garbage connection: want EOF or reset, got %v", err)
	}
	return conns
}

func TestRestartRecoversState(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	c := newCluster(t, 3)
	l := c.leader(30 * time.Second)

	var want []string
	for i := range 20 {
		cmd := "s" + strconv.Itoa(i)
		want = append(want, cmd)
		apply(t, c.nodes[i%3].node, cmd) // via leader and followers
	}
	c.waitFSMs(want...)
	for _, tn := range c.nodes {
		if err := tn.node.raft.Snapshot().Error(); err != nil {
			t.Fatalf("snapshot %s: %v", tn.id, err)
		}
		snaps, err := os.ReadDir(filepath.Join(tn.dir, "raft", "snapshots"))
		if err != nil || len(snaps) == 0 {
			t.Fatalf("%s: no snapshot on disk: %v", tn.id, err)
		}
	}
	for i := range 10 {
		cmd := "t" + strconv.Itoa(i)
		want = append(want, cmd)
		apply(t, c.nodes[(l+i)%3].node, cmd)
	}
	c.waitFSMs(want...)

	c.stopAll()
	// A kill -9 mid-snapshot leaves "<id>.tmp" with a partial state: the
	// node restarts from the last complete snapshot and removes it.
	torn := filepath.Join(c.nodes[0].dir, "raft", "snapshots", "99-1000-1.tmp")
	if err := os.MkdirAll(torn, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(torn, "state.bin"), []byte("half a snap"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, tn := range c.nodes {
		c.start(i)
		// NewRaft restores the snapshot before returning, then replays
		// the applied tail of the log (restore.go) on the FSM goroutine.
		if got := tn.fsm.list(); tn.fsm.restores != 1 || len(got) < 20 || !equal(got, want[:len(got)]) {
			t.Fatalf("%s right after restart: %d restores, %d entries; want 1 restore and at least the 20 snapshotted", tn.id, tn.fsm.restores, len(got))
		}
	}
	if _, err := os.Stat(torn); !os.IsNotExist(err) {
		t.Fatalf("torn snapshot still there after restart: %v", err)
	}
	l = c.leader(30 * time.Second)
	c.waitFSMs(want...)
	want = append(want, "after-restart")
	apply(t, c.nodes[c.follower(l)].node, "after-restart")
	c.waitFSMs(want...)
	if st := c.nodes[l].node.Stats(); st.AppliedIndex < uint64(len(want)) || st.LastLogIndex < st.CommitIndex {
		t.Fatalf("leader Stats after restart = %+v", st)
	}
}

// TestRestartAloneServesLastState: a controller restarted while the others
// are down has its last applied state back without any leader (the chaos
// suite, seed 2, saw a restarted controller answer DNS from an empty state
// for 4 s; with a quorum lost it would have for good).
func TestRestartAloneServesLastState(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	c := newCluster(t, 3)
	c.leader(30 * time.Second)
	var want []string
	for i := range 12 {
		cmd := "s" + strconv.Itoa(i)
		want = append(want, cmd)
		apply(t, c.nodes[i%3].node, cmd)
	}
	c.waitFSMs(want...)
	// Let every node store its applied index (killed processes lose at
	// most the last appliedPersistEvery).
	time.Sleep(2 * appliedPersistEvery)
	c.stopAll()
	n := c.start(0)
	testutil.WaitFor(t, 30*time.Second, "the restarted node's FSM holds every applied entry", func() bool {
		return equal(c.nodes[0].fsm.list(), want)
	})
	if n.IsLeader() || c.nodes[0].fsm.restores != 0 {
		t.Fatalf("alone: leader %v, %d snapshot restores; want a follower replaying its log", n.IsLeader(), c.nodes[0].fsm.restores)
	}
	if st := n.Stats(); st.AppliedIndex >= uint64(len(want)) {
		t.Fatalf("raft itself applied up to %d alone: the test would not show the replay", st.AppliedIndex)
	}
	// The others come back: nothing is applied twice.
	c.start(1)
	c.start(2)
	l := c.leader(30 * time.Second)
	want = append(want, "after")
	apply(t, c.nodes[l].node, "after")
	c.waitFSMs(want...)
}

func TestApplyWithoutLeaderHonoursContext(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	// A node whose bootstrap list names an absent peer cannot elect itself.
	c := &cluster{t: t}
	c.addNode(t, true)
	c.addNode(t, true)
	t.Cleanup(c.stopAll)
	n := c.start(0)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := n.Apply(ctx, []byte("x"))
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrNoLeader) {
		t.Fatalf("Apply without leader = %v; want DeadlineExceeded wrapping ErrNoLeader", err)
	}
	if errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("Apply without leader = %v: no leader took it, the outcome is known", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("Apply took %v with a 300ms context", el)
	}
	if err := n.WaitForLeader(ctx); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("WaitForLeader = %v; want ErrNoLeader", err)
	}
	if err := n.Barrier(context.Background()); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Barrier on non-leader = %v; want ErrNotLeader", err)
	}

	// Shutdown unblocks a pending Apply with ErrShutdown.
	errCh := make(chan error, 1)
	go func() {
		_, _, err := n.Apply(context.Background(), []byte("y"))
		errCh <- err
	}()
	time.Sleep(50 * time.Millisecond)
	c.stop(0)
	select {
	case err := <-errCh:
		if !errors.Is(err, ErrShutdown) {
			t.Fatalf("Apply during Shutdown = %v; want ErrShutdown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Apply still blocked after Shutdown")
	}
}

func TestNewFailureReleasesEverything(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dir := t.TempDir()
	addr := freeAddr(t, "127.0.9.131")
	busy, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{NodeID: "solo", DataDir: dir, RaftAddr: addr, Timing: TimingFast,
		Bootstrap: []Peer{{ID: "solo", Addr: addr}}}
	if _, err := New(cfg, &listFSM{}); err == nil {
		t.Fatal("New succeeded on a busy address")
	}
	_ = busy.Close()

	// The WAL and its meta DB were closed: a new node opens the same
	// DataDir (bolt's file lock would block otherwise), bootstraps alone
	// and serves writes.
	fsm := &listFSM{}
	n, err := New(cfg, fsm)
	if err != nil {
		t.Fatalf("New after failure: %v", err)
	}
	defer n.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.Apply(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := n.Barrier(ctx); err != nil {
		t.Fatalf("Barrier on leader: %v", err)
	}
	if got := fsm.list(); !equal(got, []string{"x"}) {
		t.Fatalf("FSM = %q", got)
	}
}

// An Apply whose entry the leader appended but could not commit (its
// quorum stopped) fails with ErrOutcomeUnknown; one that no leader ever
// took (TestApplyWithoutLeaderHonoursContext) does not.
func TestApplyOutcomeUnknownAfterQuorumLoss(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	c := newCluster(t, 3)
	l := c.leader(30 * time.Second)
	apply(t, c.nodes[l].node, "before")
	for i := range c.nodes {
		if i != l {
			c.stop(i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _, err := c.nodes[l].node.Apply(ctx, []byte("lost?"))
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("Apply on a leader that lost its quorum = %v; want ErrOutcomeUnknown", err)
	}
	if errors.Is(err, ErrCommandRejected) {
		t.Fatalf("Apply = %v: not a rejection", err)
	}
}
