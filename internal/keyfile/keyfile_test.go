package keyfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckPrivate(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode fs.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o400, true},
		{0o700, true},
		{0o640, false},
		{0o604, false},
		{0o644, false},
		{0o620, false},
		{0o602, false},
		{0o660, false},
		{0o666, false},
		{0o610, false},
	} {
		path := filepath.Join(dir, "key-"+tc.mode.String())
		if err := os.WriteFile(path, []byte("secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tc.mode); err != nil { // umask-independent
			t.Fatal(err)
		}
		link := path + ".link"
		if err := os.Symlink(path, link); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{path, link} {
			err := CheckPrivate(p)
			b, rerr := ReadPrivate(p)
			if tc.ok {
				if err != nil || rerr != nil || string(b) != "secret" {
					t.Errorf("%s %04o: CheckPrivate %v, ReadPrivate %q, %v", p, tc.mode, err, b, rerr)
				}
				continue
			}
			for _, e := range []error{err, rerr} {
				var me *ModeError
				if !errors.Is(e, ErrTooOpen) || !errors.As(e, &me) || !strings.Contains(e.Error(), "chmod 600 "+p) {
					t.Errorf("%s %04o: %v, want a ModeError saying chmod 600", p, tc.mode, e)
				}
			}
			if b != nil {
				t.Errorf("%s %04o: ReadPrivate returned the content", p, tc.mode)
			}
		}
	}
	if err := CheckPrivate(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ReadPrivate(dir); err == nil {
		t.Error("a directory was read as a key file")
	}
}

func TestCheckNotWritable(t *testing.T) {
	dir := t.TempDir()
	for mode, ok := range map[fs.FileMode]bool{0o644: true, 0o600: true, 0o444: true, 0o664: false, 0o646: false, 0o666: false} {
		path := filepath.Join(dir, "tokens-"+mode.String())
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		err := CheckNotWritable(path)
		if ok != (err == nil) || (!ok && (!errors.Is(err, ErrWritable) || !strings.Contains(err.Error(), "chmod go-w "+path))) {
			t.Errorf("%04o: %v", mode, err)
		}
	}
}
