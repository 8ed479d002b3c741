package gossip

import (
	"bytes"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestGarbagePacketsAreRateLimited: a flood of undecryptable UDP packets to
// an encrypted node is counted packet by packet and logged as one line per
// interval, not one line per packet.
func TestGarbagePacketsAreRateLimited(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	cfg := testConfig("target")
	cfg.Logger = zap.New(core)
	cfg.Key = bytes.Repeat([]byte{7}, 32)
	n := startNode(t, cfg)

	conn, err := net.Dial("udp", n.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const flood = 2000
	garbage := bytes.Repeat([]byte{0x01, 0xff}, 40) // version byte 1, then noise: fails to decrypt
	for range flood {
		if _, err := conn.Write(garbage); err != nil {
			t.Fatal(err)
		}
	}
	// UDP may drop some on a busy machine; most arrive.
	waitFor(t, "garbage counted", 10*time.Second, func() bool { return n.GarbageInput() >= flood/2 })
	got := logs.FilterMessage(garbageMessage).Len()
	if got < 1 || got > 2 {
		t.Fatalf("%d garbage lines logged for %d packets counted, want 1 or 2", got, n.GarbageInput())
	}
	if others := logs.FilterMessageSnippet("Decrypt").Len(); others != 0 {
		t.Fatalf("%d unlimited decrypt lines", others)
	}
	first := logs.FilterMessage(garbageMessage).All()[0]
	if first.Level != zapcore.WarnLevel || !bytes.Contains([]byte(first.ContextMap()["detail"].(string)), []byte("from=")) {
		t.Fatalf("first garbage line %+v, want warn with the detail naming the source", first)
	}
}

func TestIsGarbage(t *testing.T) {
	for _, tc := range []struct {
		line    string
		garbage bool
	}{
		{"Decrypt packet failed: No installed keys could decrypt the message from=127.0.0.1:4000", true},
		{"Failed to decode ping: codec error from=127.0.0.1:4000", true},
		{"Received invalid msgType (99) from=127.0.0.1:4000", true},
		{"discarding packet with unacceptable label \"x\": from=127.0.0.1:4000", true},
		{"UDP packet too short (0 bytes) from=127.0.0.1:4000", true},
		{"Too many pending push/pull requests", true},
		{"Push/Pull with c1 failed: dial tcp 127.0.0.1:7946: connection refused", false},
		{"Failed to send gossip to 127.0.0.1:7946: write: broken pipe", false},
		{"Binding to public address without encryption!", false},
	} {
		if got := isGarbage([]byte(tc.line)); got != tc.garbage {
			t.Errorf("isGarbage(%q) = %v, want %v", tc.line, got, tc.garbage)
		}
	}
}
