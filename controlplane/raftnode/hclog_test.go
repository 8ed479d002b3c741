package raftnode

import (
	"errors"
	"net"
	"testing"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

type stringer struct{}

func (stringer) String() string { return "node-x" }

func TestHclogZap(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	var l hclog.Logger = newHclogZap(zap.New(core)).Named("raft")
	l = l.With("node", "n1")

	l.Info("entering leader state", "leader", stringer{}, "term", uint64(3))
	l.Info("pipelining replication", "peer", "n2")
	l.Error("failed to decode incoming command", "error", &net.OpError{Op: "read", Err: net.ErrClosed})
	l.Error("failed to heartbeat to", "error", errors.New("EOF"), "odd")
	l.Error("failed to take snapshot", "error", errors.New("disk full"))
	l.Trace("trace")

	want := []struct {
		level  zapcore.Level
		msg    string
		fields map[string]any
	}{
		{zapcore.InfoLevel, "entering leader state", map[string]any{"node": "n1", "leader": "node-x", "term": uint64(3)}},
		{zapcore.DebugLevel, "pipelining replication", map[string]any{"peer": "n2"}},
		{zapcore.DebugLevel, "failed to decode incoming command", nil},
		// One unreachable peer is a warning; other errors stay errors.
		{zapcore.WarnLevel, "failed to heartbeat to", map[string]any{"error": "EOF", "extra-value-at-end": "odd"}},
		{zapcore.ErrorLevel, "failed to take snapshot", map[string]any{"error": "disk full"}},
		{zapcore.DebugLevel, "trace", nil},
	}
	got := logs.All()
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		e := got[i]
		if e.Level != w.level || e.Message != w.msg || e.LoggerName != "raft" {
			t.Errorf("entry %d = %v %q (%s); want %v %q (raft)", i, e.Level, e.Message, e.LoggerName, w.level, w.msg)
		}
		m := e.ContextMap()
		for k, v := range w.fields {
			if m[k] != v {
				t.Errorf("entry %d field %s = %#v, want %#v", i, k, m[k], v)
			}
		}
	}

	l.SetLevel(hclog.Warn)
	l.Info("dropped")
	if logs.Len() != len(want) || l.IsInfo() || !l.IsWarn() {
		t.Error("SetLevel(Warn) did not filter Info")
	}
	if n := l.ResetNamed("wal").Name(); n != "wal" {
		t.Errorf("ResetNamed: name %q", n)
	}
}
