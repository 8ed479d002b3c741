package raftnode

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// File modes of the Raft state. The log and the snapshots hold every
// command ever applied (tokens' names, runbooks, webhook secrets in the
// steering config), so nothing under DataDir/raft is for other users.
// The libraries that write it choose wider modes: raft-wal creates segment
// files 0644 and its bbolt meta database 0644, and raft's
// FileSnapshotStore creates its directories 0755 and its files with
// os.Create (0666 less the umask). Rather than depend on the process's
// umask, the node sets the modes itself: DataDir/raft and every directory
// below it 0700, every file 0600, at start (which also fixes the state of
// older releases), as raft-wal creates each segment (privateVFS), and as
// each snapshot is completed (privateSnapshots). A file briefly has the
// library's mode while it is created, inside a 0700 directory.
const (
	privateDirMode  fs.FileMode = 0o700
	privateFileMode fs.FileMode = 0o600
)

// makePrivate sets dir and every directory below it to 0700 and every
// regular file to 0600, where they are wider.
func makePrivate(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		want := privateFileMode
		switch {
		case d.IsDir():
			want = privateDirMode
		case !d.Type().IsRegular():
			return nil // symlinks and the like: leave them
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&^want == 0 {
			return nil
		}
		if err := os.Chmod(path, want); err != nil {
			return fmt.Errorf("restrict raft file mode: %w", err)
		}
		return nil
	})
}

// walSegmentFiler is raft-wal's segment filer over privateVFS.
func walSegmentFiler(dir string) types.SegmentFiler {
	return segment.NewFiler(dir, privateVFS{walfs.New()})
}

// privateVFS is raft-wal's file system with new segment files made 0600.
type privateVFS struct{ types.VFS }

func (v privateVFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	f, err := v.VFS.Create(dir, name, size)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(filepath.Join(dir, name), privateFileMode); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("restrict wal segment mode: %w", err)
	}
	return f, nil
}

// privateSnapshots wraps raft's FileSnapshotStore (rooted at dir, the
// parent of its "snapshots" directory) so that each completed snapshot's
// directory is 0700 and its files 0600.
type privateSnapshots struct {
	*raft.FileSnapshotStore
	dir string
}

func (s privateSnapshots) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.FileSnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	return &privateSink{SnapshotSink: sink, dir: filepath.Join(s.dir, "snapshots", sink.ID())}, nil
}

type privateSink struct {
	raft.SnapshotSink
	dir string // where Close moves the snapshot
}

func (s *privateSink) Close() error {
	if err := s.SnapshotSink.Close(); err != nil {
		return err
	}
	return makePrivate(s.dir)
}
