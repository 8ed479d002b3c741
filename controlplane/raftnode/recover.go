package raftnode

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/raft-wal/metadb"
	"go.uber.org/zap"
)

// ErrLocked means another process (a running controller) holds the data
// directory.
var ErrLocked = errors.New("raftnode: the data directory is in use (is the controller still running?)")

// Recover rewrites the Raft state under dataDir so that the node starts in
// a cluster whose voters are exactly peers: hashicorp/raft's RecoverCluster,
// for a quorum lost for good. It is an offline operation: the controller
// must be stopped (ErrLocked otherwise). fsm must be a fresh FSM of the
// kind the controller runs: the latest snapshot and every entry of the
// local log after it are applied to it (entries the old cluster may not
// have committed included, as RecoverCluster documents), and a new
// snapshot of the result carries the new configuration; the log is then
// emptied. Run it with the same peers on every surviving member, or on one
// and join the others afresh.
func Recover(dataDir string, peers []Peer, fsm raft.FSM, log *zap.Logger) (err error) {
	if log == nil {
		log = zap.NewNop()
	}
	if len(peers) == 0 {
		return fmt.Errorf("%w: recover needs at least one peer", ErrInvalidConfig)
	}
	servers := make([]raft.Server, 0, len(peers))
	for _, p := range peers {
		if err := validateID(p.ID); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		if err := validatePeerAddr(p.Addr); err != nil {
			return fmt.Errorf("%w: peer %s: %w", ErrInvalidConfig, p.ID, err)
		}
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr)})
	}
	raftDir := filepath.Join(dataDir, "raft")
	walDir := filepath.Join(raftDir, "wal")
	if _, err := os.Stat(walDir); err != nil {
		return fmt.Errorf("no raft state under %s: %w", dataDir, err)
	}
	if err := checkUnlocked(filepath.Join(walDir, metadb.FileName)); err != nil {
		return err
	}
	hl := newHclogZap(log.Named("raft"))
	w, meta, err := openWAL(walDir, hl.Named("wal"))
	if err != nil {
		return err
	}
	defer func() {
		err = errors.Join(err, w.Close(), meta.Close())
	}()
	if err := removeTornSnapshots(raftDir, log); err != nil {
		return err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, snapshotsRetained, hl.Named("snapshots"))
	if err != nil {
		return fmt.Errorf("open raft snapshot store: %w", err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(peers[0].ID) // only validated: RecoverCluster runs no server
	rc.Logger = hl
	_, trans := raft.NewInmemTransport("")
	defer func() { _ = trans.Close() }()
	if err := raft.RecoverCluster(rc, fsm, w, w, snaps, trans, raft.Configuration{Servers: servers}); err != nil {
		return fmt.Errorf("recover raft cluster in %s: %w", dataDir, err)
	}
	log.Info("raft configuration recovered", zap.String("data-dir", dataDir), zap.Int("voters", len(servers)))
	return nil
}

// checkUnlocked fails with ErrLocked if another process holds path's
// flock (bolt's lock on the WAL's meta DB, held by a running node), rather
// than waiting for it forever as bolt would.
func checkUnlocked(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("%s: %w", path, ErrLocked)
		}
		return fmt.Errorf("lock %s: %w", path, err)
	}
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
