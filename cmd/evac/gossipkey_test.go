package main

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evac-sh/evac/internal/keyfile"
)

func TestRequireGossipKey(t *testing.T) {
	if err := requireGossipKey("", false); err == nil || !strings.Contains(err.Error(), "--gossip-key-file is required") {
		t.Fatalf("no key, not insecure: %v", err)
	}
	if err := requireGossipKey("k", true); err == nil {
		t.Fatal("key file and insecure together accepted")
	}
	if err := requireGossipKey("k", false); err != nil {
		t.Fatal(err)
	}
	if err := requireGossipKey("", true); err != nil {
		t.Fatal(err)
	}
}

func TestServerRefusesWithoutKey(t *testing.T) {
	f := serverFile{NodeID: "c1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:1", GossipAddr: "127.0.0.1:2",
		HTTPAddr: "127.0.0.1:3", DNSAddr: "127.0.0.1:4"}
	if _, err := f.controllerConfig(); err == nil || !strings.Contains(err.Error(), "--gossip-key-file is required") {
		t.Fatalf("got %v", err)
	}
	f.InsecureNoGossipKey = true
	if _, err := f.controllerConfig(); err != nil {
		t.Fatal(err)
	}
}

// TestServerRefusesOpenGossipKey: a gossip key file that group or others
// may read is refused with the chmod to run; at 0600 it is taken.
func TestServerRefusesOpenGossipKey(t *testing.T) {
	dir := t.TempDir()
	key := writeFile(t, filepath.Join(dir, "gossip.key"), base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n")
	f := serverFile{NodeID: "c1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:1", GossipAddr: "127.0.0.1:2",
		HTTPAddr: "127.0.0.1:3", DNSAddr: "127.0.0.1:4", GossipKeyFile: key}
	if _, err := f.controllerConfig(); err != nil {
		t.Fatalf("0600 key: %v", err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(key, mode); err != nil {
			t.Fatal(err)
		}
		_, err := f.controllerConfig()
		if !errors.Is(err, keyfile.ErrTooOpen) || !strings.Contains(err.Error(), "chmod 600 "+key) {
			t.Fatalf("%04o key: %v", mode, err)
		}
	}
}
