package raftnode

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// raftFileModes lists every file and directory under dir with its mode.
func raftFileModes(t *testing.T, dir string) map[string]fs.FileMode {
	t.Helper()
	modes := map[string]fs.FileMode{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		modes[rel] = fi.Mode()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return modes
}

// checkPrivate fails for anything under dir that group or others may
// access, and returns how many files it checked.
func checkPrivate(t *testing.T, dir string) (files int) {
	t.Helper()
	for path, m := range raftFileModes(t, dir) {
		want := fs.FileMode(0o600)
		if m.IsDir() {
			want = 0o700
		} else {
			files++
		}
		if m.Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", path, m.Perm(), want)
		}
	}
	return files
}

// TestRaftFilesPrivate: with a umask of 0 (the libraries' own modes show
// in full: raft-wal 0644, snapshots 0666 and 0755), the WAL, its meta
// database and every snapshot are 0600 in 0700 directories, including
// files an older release left wider, fixed at the next start.
func TestRaftFilesPrivate(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })

	c := newCluster(t, 1)
	c.leader(10 * time.Second)
	for i := range 20 {
		apply(t, c.nodes[0].node, "e"+strconv.Itoa(i))
	}
	if err := c.nodes[0].node.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	apply(t, c.nodes[0].node, "after-snapshot")
	raftDir := filepath.Join(c.nodes[0].dir, "raft")
	snaps, _ := filepath.Glob(filepath.Join(raftDir, "snapshots", "*", "state.bin"))
	segs, _ := filepath.Glob(filepath.Join(raftDir, "wal", "*.wal"))
	if len(snaps) != 1 || len(segs) == 0 {
		t.Fatalf("snapshots %v, wal segments %v: want one snapshot and a segment", snaps, segs)
	}
	if n := checkPrivate(t, raftDir); n < 4 {
		t.Fatalf("checked %d files, want the wal segment, its meta db and a snapshot's two files", n)
	}

	// An older release's wide modes are narrowed at the next start.
	c.stop(0)
	for path := range raftFileModes(t, raftDir) {
		p := filepath.Join(raftDir, path)
		mode := fs.FileMode(0o644)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			mode = 0o755
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	c.start(0)
	c.leader(10 * time.Second)
	apply(t, c.nodes[0].node, "restarted")
	checkPrivate(t, raftDir)
}
