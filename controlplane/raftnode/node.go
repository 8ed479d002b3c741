package raftnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"go.uber.org/zap"
)

// waiterGrace bounds how long Shutdown waits for goroutines blocked on raft
// futures once raft itself has stopped. See Shutdown.
const waiterGrace = time.Second

// Node is one controller's Raft node. All methods are safe for concurrent
// use.
type Node struct {
	cfg    Config
	dnssec atomic.Pointer[dnssecKeys] // the status probe's DNSSEC keys
	log    *zap.Logger
	raft   *raft.Raft
	trans  *raft.NetworkTransport
	stream *streamLayer
	fwd    *forwardPool
	wal    *wal.WAL
	meta   *metadb.BoltMetaDB // closed by the WAL's Close, and by ours when wal.Open fails

	leaderCh chan bool // capacity 1, latest value wins; closed by Shutdown

	ctx    context.Context // cancelled when Shutdown starts
	cancel context.CancelFunc

	mu      sync.Mutex // guards closed against wg.Add
	closed  bool
	wg      sync.WaitGroup // leadership pump
	waiters atomic.Int64   // goroutines blocked on raft futures (wait)

	shutdownOnce sync.Once
	shutdownErr  error
}

// New opens (or creates) the node's Raft state under cfg.DataDir, binds
// cfg.RaftAddr and starts Raft with fsm. Call Shutdown to release
// everything. The FSM's Apply must return []byte or error (see Apply).
func New(cfg Config, fsm raft.FSM) (*Node, error) {
	if fsm == nil {
		return nil, fmt.Errorf("%w: nil FSM", ErrInvalidConfig)
	}
	addr, adv, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	cfg.Bootstrap = append([]Peer(nil), cfg.Bootstrap...)
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	hl := newHclogZap(log.Named("raft"))
	rc, err := cfg.raftConfig(hl)
	if err != nil {
		return nil, err
	}

	n := &Node{cfg: cfg, log: log, leaderCh: make(chan bool, 1)}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.SetDNSSECKeys(cfg.DNSSECKeys, cfg.DNSSECKeyIDs)
	ok := false
	defer func() {
		if !ok {
			n.closeResources()
		}
	}()

	raftDir := filepath.Join(cfg.DataDir, "raft")
	walDir := filepath.Join(raftDir, "wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft wal dir: %w", err)
	}
	if n.wal, n.meta, err = openWAL(walDir, hl.Named("wal")); err != nil {
		return nil, err
	}
	if err := removeTornSnapshots(raftDir, log); err != nil {
		return nil, err
	}
	fileSnaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, snapshotsRetained, hl.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("open raft snapshot store: %w", err)
	}
	snaps := privateSnapshots{FileSnapshotStore: fileSnaps, dir: raftDir}
	if err := makePrivate(raftDir); err != nil { // filemodes.go
		return nil, err
	}
	hasState, err := raft.HasExistingState(n.wal, n.wal, snaps)
	if err != nil {
		return nil, fmt.Errorf("check raft state: %w", err)
	}

	if n.stream, err = newStreamLayer(addr, adv, n.serveForward, log); err != nil {
		return nil, err
	}
	if cfg.TLS != nil {
		n.stream.wrapServer, n.stream.wrapClient = tlsWrappers(cfg.TLS, n.latestConfiguration, cfg.Bootstrap, log)
	}
	n.fwd = newForwardPool(n.stream)
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  n.stream,
		MaxPool: transportMaxPool,
		Timeout: transportTimeout,
		Logger:  hl.Named("transport"),
	})

	switch {
	case hasState:
		log.Info("raft state found, resuming", zap.String("data-dir", cfg.DataDir))
	case cfg.bootstrapsSelf():
		servers := make([]raft.Server, 0, len(cfg.Bootstrap))
		for _, p := range cfg.Bootstrap {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr)})
		}
		if err := raft.BootstrapCluster(rc, n.wal, n.wal, snaps, n.trans, raft.Configuration{Servers: servers}); err != nil {
			return nil, fmt.Errorf("bootstrap raft cluster: %w", err)
		}
		log.Info("raft cluster bootstrapped", zap.Int("voters", len(servers)))
	default:
		log.Info("no raft state and not in bootstrap list, waiting to be added", zap.Int("bootstrap-peers", len(cfg.Bootstrap)))
	}

	if n.raft, err = raft.NewRaft(rc, fsm, n.wal, n.wal, snaps, n.trans); err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	if err := n.checkEdgeStart(); err != nil { // edge.go
		_ = n.raft.Shutdown().Error()
		return nil, err
	}
	if rf, ok := fsm.(ReplayingFSM); ok && hasState {
		n.replayCommitted(rf) // restore.go
	}
	n.stream.serve()
	n.goFunc(n.pumpLeadership)
	n.goFunc(n.persistApplied)
	ok = true
	return n, nil
}

// openWAL opens the raft-wal log and stable store in dir.
//
// raft-wal must be v0.4.1 or later: v0.4.0 marked the tail segment sealed
// when raft truncated the log's tail (a follower dropping entries an old
// leader never committed, the usual sequel to a leader's crash) without
// writing its index block, and the next start then failed for good with
// "sealed segment has no index block" (hashicorp/raft-wal#31). See
// TestWALTailTruncationSurvivesRestart.
func openWAL(dir string, logger hclog.Logger) (*wal.WAL, *metadb.BoltMetaDB, error) {
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(dir, wal.WithMetaStore(meta), wal.WithLogger(logger), wal.WithSegmentFiler(walSegmentFiler(dir)))
	if err != nil {
		_ = meta.Close()
		return nil, nil, fmt.Errorf("open raft wal %s: %w", dir, err)
	}
	return w, meta, nil
}

// LeaderCh delivers true when this node becomes leader and false when it
// stops being leader. It is fed from raft's own LeaderCh (not
// Config.NotifyCh, whose send blocks raft, and not an Observer): raft never
// blocks on it. The channel has capacity 1 and keeps only the latest value,
// so a slow reader sees the current state, not every flip; it may see true
// twice if leadership was lost and regained in between. Re-check IsLeader
// when in doubt. There is one channel per node: give it one reader. It is
// closed by Shutdown.
func (n *Node) LeaderCh() <-chan bool { return n.leaderCh }

func (n *Node) pumpLeadership() {
	defer close(n.leaderCh)
	src := n.raft.LeaderCh()
	for {
		select {
		case <-n.ctx.Done():
			return
		case v := <-src:
			n.log.Info("raft leadership changed", zap.Bool("leader", v))
			if v && n.cfg.Edge {
				n.edgeLeads() // edge.go: an edge's LeaderCh never says true
				continue
			}
			select {
			case n.leaderCh <- v:
			default: // replace the unread value; we are the only sender
				select {
				case <-n.leaderCh:
				default:
				}
				n.leaderCh <- v
			}
		}
	}
}

// goFunc runs f on a goroutine owned by the node, unless it is shutting
// down.
func (n *Node) goFunc(f func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

func (n *Node) isShutdown() bool { return n.ctx.Err() != nil }

// scope derives a context that is also cancelled by Shutdown.
func (n *Node) scope(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(n.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// Shutdown stops raft, closes the listener and every connection, waits for
// the node's goroutines and closes the WAL. Safe to call more than once and
// concurrently; later calls return the first call's result.
//
// One caveat comes from raft: an Apply whose entry was committed but not
// yet handed to the FSM when raft stopped never gets an answer. Its waiting
// goroutine (see wait) is given waiterGrace and then abandoned with a
// warning; the caller itself gets ErrShutdown at once.
func (n *Node) Shutdown() error {
	n.shutdownOnce.Do(func() { n.shutdownErr = n.shutdown() })
	return n.shutdownErr
}

func (n *Node) shutdown() error {
	n.log.Info("raft node shutting down")
	n.markClosed() // pending Apply calls return ErrShutdown now
	var errs []error
	if err := n.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
	}
	if err := n.closeResources(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// markClosed stops new node goroutines and cancels n.ctx.
func (n *Node) markClosed() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.cancel()
}

// closeResources releases everything New opened, in reverse order. Used by
// Shutdown after raft has stopped, and by New on failure.
func (n *Node) closeResources() error {
	n.markClosed()
	var errs []error
	if n.trans != nil {
		_ = n.trans.Close() // closes the stream layer; already done if raft ran
	}
	if n.stream != nil {
		if err := n.stream.Close(); err != nil {
			errs = append(errs, err)
		}
		n.fwd.close()
		n.stream.wait()
	}
	n.wg.Wait()
	deadline := time.Now().Add(waiterGrace)
	for n.waiters.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if k := n.waiters.Load(); k > 0 {
		n.log.Warn("raft left futures unresolved at shutdown, abandoning their waiters", zap.Int64("waiters", k))
	}
	if n.wal != nil {
		if err := n.wal.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft wal: %w", err))
		}
	}
	if n.meta != nil {
		if err := n.meta.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft wal meta db: %w", err))
		}
	}
	if n.raft == nil {
		close(n.leaderCh) // the pump never started
	}
	return errors.Join(errs...)
}
