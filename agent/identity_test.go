package agent

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIdentityFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.key")
	pub, err := GenerateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	priv, err := ReadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if !priv.Public().(ed25519.PublicKey).Equal(pub) {
		t.Fatal("read key does not match the generated one")
	}
	if _, err := GenerateIdentity(path); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("overwrote an existing key: %v", err)
	}
	for _, tc := range []struct {
		mode os.FileMode
		want string
	}{{0o640, "chmod 600"}, {0o604, "chmod 600"}, {0o400, ""}} {
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		_, err := ReadIdentity(path)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Fatalf("mode %04o: %v", tc.mode, err)
		}
	}
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadIdentity(bad); err == nil || !strings.Contains(err.Error(), "evac agent keygen") {
		t.Fatalf("bad key file: %v", err)
	}
}
