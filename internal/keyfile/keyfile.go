// Package keyfile refuses secret files that other users could read, as ssh
// does for private keys. Every file holding a key (the gossip keyring, TLS
// private keys, and the TSIG, DNSSEC and agent keys as they come) goes
// through CheckPrivate or ReadPrivate before it is used.
package keyfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ErrTooOpen is wrapped by the errors of CheckPrivate and ReadPrivate for a
// file readable or writable by group or others.
var ErrTooOpen = errors.New("key file is accessible by group or others")

// ModeError is a key file whose permissions let group or others in.
type ModeError struct {
	Path string
	Mode fs.FileMode
}

func (e *ModeError) Error() string {
	return fmt.Sprintf("key file %s has mode %04o: it must not be readable or writable by group or others; run: chmod 600 %s",
		e.Path, uint32(e.Mode.Perm()), e.Path)
}

func (e *ModeError) Unwrap() error { return ErrTooOpen }

// tooOpen are the permission bits a key file must not have: any access by
// group or others.
const tooOpen fs.FileMode = 0o077

// CheckPrivate returns a *ModeError (errors.Is ErrTooOpen) if the file at
// path (after symlinks) grants group or others any access, and the stat
// error if it cannot be read. 0600 and 0400 pass. Use it where a library
// reads the file itself; otherwise prefer ReadPrivate, which checks the
// file it reads.
func CheckPrivate(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return check(path, fi)
}

// ReadPrivate reads the file at path after checking, on the open file, that
// group and others have no access (see CheckPrivate).
func ReadPrivate(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := check(path, fi); err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}

func check(path string, fi fs.FileInfo) error {
	if fi.IsDir() {
		return fmt.Errorf("key file %s is a directory", path)
	}
	if fi.Mode().Perm()&tooOpen != 0 {
		return &ModeError{Path: path, Mode: fi.Mode()}
	}
	return nil
}

// ErrWritable is wrapped by CheckNotWritable's error for a file group or
// others may write.
var ErrWritable = errors.New("file is writable by group or others")

// CheckNotWritable refuses a file that is not secret but decides access,
// such as the tokens file (it holds only hashes, but whoever may write it
// may grant themselves any role): group and others must not write it.
func CheckNotWritable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w: %s has mode %04o; run: chmod go-w %s", ErrWritable, path, uint32(fi.Mode().Perm()), path)
	}
	return nil
}
