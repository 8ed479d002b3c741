package raftnode

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
)

// removeTornSnapshots deletes the snapshots a crash left half-written.
// raft's FileSnapshotStore writes a snapshot into "<id>.tmp", fsyncs it and
// renames it into place; it skips a leftover .tmp directory when it lists
// snapshots but never removes it, so every kill -9 during a snapshot would
// leave one more behind (each the size of the whole state). Called before
// raft starts, when no snapshot can be in progress.
func removeTornSnapshots(raftDir string, log *zap.Logger) error {
	dir := filepath.Join(raftDir, "snapshots")
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("remove torn snapshot %s: %w", e.Name(), err)
		}
		log.Warn("removed a snapshot left half-written by a crash", zap.String("snapshot", e.Name()))
	}
	return nil
}
