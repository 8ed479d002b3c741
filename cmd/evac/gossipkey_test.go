package main

import (
	"strings"
	"testing"
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
