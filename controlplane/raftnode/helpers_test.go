package raftnode

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/evac-sh/evac/internal/testutil"
)

// listFSM is an append-only list of byte strings. Apply answers with the
// new length as []byte; commands starting with "reject:" are refused with an
// error and not stored. It is a ReplayingFSM: entries at or below the
// applied index are ignored, and snapshots carry that index.
//
// A command is its own id, as state.Command.ID is in the real FSM: one
// already in the list is a no-op answered "duplicate". Node.Apply retries
// after raft.ErrLeadershipLost, whose outcome is ambiguous, so a write the
// old leader's term committed after all comes a second time (seen under
// CPU load: TestRestartRecoversState's FSMs held "s2" twice).
type listFSM struct {
	mu         sync.Mutex
	entries    [][]byte
	seen       map[string]bool
	index      uint64
	restores   int
	skipped    int
	duplicates int
}

var _ ReplayingFSM = (*listFSM)(nil)

func (f *listFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l.Index <= f.index {
		f.skipped++
		return []byte("skipped")
	}
	f.index = l.Index
	if bytes.HasPrefix(l.Data, []byte("reject:")) {
		return fmt.Errorf("refusing %q", l.Data)
	}
	if f.seen[string(l.Data)] {
		f.duplicates++
		return []byte("duplicate")
	}
	if f.seen == nil {
		f.seen = make(map[string]bool)
	}
	f.seen[string(l.Data)] = true
	f.entries = append(f.entries, bytes.Clone(l.Data))
	return []byte(strconv.Itoa(len(f.entries)))
}

func (f *listFSM) AppliedIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.index
}

func (f *listFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Entries are never mutated, so sharing them is safe.
	return &listSnapshot{index: f.index, entries: append([][]byte(nil), f.entries...)}, nil
}

func (f *listFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	index, k := binary.Uvarint(data)
	if k <= 0 {
		return errors.New("corrupt snapshot")
	}
	data = data[k:]
	var entries [][]byte
	for len(data) > 0 {
		n, k := binary.Uvarint(data)
		if k <= 0 || n > uint64(len(data)-k) {
			return errors.New("corrupt snapshot")
		}
		entries = append(entries, data[k:k+int(n)])
		data = data[k+int(n):]
	}
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		seen[string(e)] = true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries, f.seen, f.index = entries, seen, index
	f.restores++
	return nil
}

// counts returns how many replayed entries were skipped and how many
// repeated commands were no-ops.
func (f *listFSM) counts() (skipped, duplicates int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.skipped, f.duplicates
}

func (f *listFSM) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.entries))
	for i, e := range f.entries {
		out[i] = string(e)
	}
	return out
}

type listSnapshot struct {
	index   uint64
	entries [][]byte
}

func (s *listSnapshot) Persist(sink raft.SnapshotSink) error {
	buf := binary.AppendUvarint(nil, s.index)
	for _, e := range s.entries {
		buf = binary.AppendUvarint(buf, uint64(len(e)))
		buf = append(buf, e...)
	}
	if _, err := sink.Write(buf); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *listSnapshot) Release() {}

// testNode is one member of a test cluster.
type testNode struct {
	id, addr, dir string
	fsm           *listFSM
	node          *Node // nil while stopped
}

type cluster struct {
	t     *testing.T
	nodes []*testNode
	peers []Peer
	// tlsFor, if set, gives node i's Config.TLS.
	tlsFor func(i int) *tls.Config
	// edge lists the nodes started as edge replicas (Config.Edge).
	edge map[int]bool
}

// freeAddr returns ip:port with a port the kernel just handed out on ip.
func freeAddr(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("find free port on %s: %v", ip, err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newCluster starts n bootstrapped nodes on 127.0.9.(101..), each on its
// own loopback address, and shuts them down at cleanup.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{t: t}
	for range n {
		c.addNode(t, true)
	}
	for i := range c.nodes {
		c.start(i)
	}
	t.Cleanup(c.stopAll)
	return c
}

// addNode allocates a node; inBootstrap adds it to the bootstrap list.
func (c *cluster) addNode(t *testing.T, inBootstrap bool) int {
	i := len(c.nodes)
	tn := &testNode{
		id:   fmt.Sprintf("ctl-%d", i+1),
		addr: freeAddr(t, fmt.Sprintf("127.0.9.%d", 101+i)),
		dir:  filepath.Join(t.TempDir(), fmt.Sprintf("ctl-%d", i+1)),
	}
	c.nodes = append(c.nodes, tn)
	if inBootstrap {
		c.peers = append(c.peers, Peer{ID: tn.id, Addr: tn.addr})
	}
	return i
}

// start (re)starts node i from its DataDir with a fresh FSM.
func (c *cluster) start(i int) *Node {
	c.t.Helper()
	tn := c.nodes[i]
	tn.fsm = &listFSM{}
	var boot []Peer
	if i < len(c.peers) {
		boot = c.peers
	}
	lg := zaptest.NewLogger(c.t, zaptest.Level(zap.InfoLevel)).With(zap.String("node-id", tn.id))
	n, err := New(c.config(i, boot, lg), tn.fsm)
	if err != nil {
		c.t.Fatalf("start %s: %v", tn.id, err)
	}
	tn.node = n
	return n
}

// config is node i's Config.
func (c *cluster) config(i int, boot []Peer, lg *zap.Logger) Config {
	tn := c.nodes[i]
	return Config{
		NodeID:    tn.id,
		DataDir:   tn.dir,
		RaftAddr:  tn.addr,
		Bootstrap: boot,
		Timing:    TimingFast,
		Logger:    lg,
		TLS:       c.tlsConfig(i),
		Edge:      c.edge[i],
	}
}

func (c *cluster) tlsConfig(i int) *tls.Config {
	if c.tlsFor == nil {
		return nil
	}
	return c.tlsFor(i)
}

func (c *cluster) stop(i int) {
	c.t.Helper()
	if n := c.nodes[i].node; n != nil {
		if err := n.Shutdown(); err != nil {
			c.t.Errorf("shutdown %s: %v", c.nodes[i].id, err)
		}
		c.nodes[i].node = nil
	}
}

func (c *cluster) stopAll() {
	for i := range c.nodes {
		c.stop(i)
	}
}

// leader waits until exactly one running node says it is leader and the
// others agree, and returns its index.
func (c *cluster) leader(timeout time.Duration) int {
	c.t.Helper()
	idx := -1
	testutil.WaitFor(c.t, timeout, "a single agreed leader", func() bool {
		idx = -1
		for i, tn := range c.nodes {
			if tn.node != nil && tn.node.IsLeader() {
				if idx >= 0 {
					return false
				}
				idx = i
			}
		}
		if idx < 0 {
			return false
		}
		for _, tn := range c.nodes {
			if tn.node == nil {
				continue
			}
			if id, _ := tn.node.Leader(); id != c.nodes[idx].id {
				return false
			}
		}
		return true
	})
	return idx
}

// follower returns the index of a running node other than leader.
func (c *cluster) follower(leader int) int {
	for i, tn := range c.nodes {
		if i != leader && tn.node != nil {
			return i
		}
	}
	c.t.Fatal("no running follower")
	return -1
}

// waitFSMs waits until every running node's FSM holds exactly want; on a
// timeout the failure shows what each node holds instead.
func (c *cluster) waitFSMs(want ...string) {
	c.t.Helper()
	testutil.Eventually(c.t, 30*time.Second, fmt.Sprintf("all FSMs hold %d entries %q...", len(want), want[:min(3, len(want))]), func() error {
		for _, tn := range c.nodes {
			if tn.node == nil {
				continue
			}
			if got := tn.fsm.list(); !equal(got, want) {
				skipped, dups := tn.fsm.counts()
				return fmt.Errorf("%s holds %d entries %q (applied index %d, %d replays skipped, %d duplicates)", tn.id, len(got), got, tn.fsm.AppliedIndex(), skipped, dups)
			}
		}
		return nil
	})
	for _, tn := range c.nodes {
		if tn.node == nil {
			continue
		}
		if _, dups := tn.fsm.counts(); dups > 0 {
			c.t.Logf("%s: %d retried command(s) were no-ops (each would be there twice without ids)", tn.id, dups)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func apply(t *testing.T, n *Node, cmd string) (string, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, idx, err := n.Apply(ctx, []byte(cmd))
	if err != nil {
		t.Fatalf("apply %q: %v", cmd, err)
	}
	return string(resp), idx
}
