package raftnode

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestForwardWireRoundTrip(t *testing.T) {
	reqs := []fwdRequest{
		{op: opApply, timeout: 1500 * time.Millisecond, cmd: []byte("cmd\x00bytes")},
		{op: opApply, timeout: time.Millisecond, cmd: []byte{}},
		{op: opAddVoter, timeout: time.Second, id: "ctl-4", addr: "127.0.9.4:7301"},
		{op: opRemoveServer, timeout: time.Second, id: "ctl-2"},
		{op: opAddNonvoter, timeout: time.Second, id: "edge-1", addr: "127.0.9.5:7301"},
		{op: opStatus, timeout: ProbeTimeout},
	}
	for _, want := range reqs {
		var buf bytes.Buffer
		if err := writeFrame(&buf, encodeRequest(want)); err != nil {
			t.Fatal(err)
		}
		payload, err := readFrame(&buf)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeRequest(payload)
		if err != nil {
			t.Fatalf("decode %+v: %v", want, err)
		}
		if want.cmd == nil && got.cmd != nil && len(got.cmd) == 0 {
			got.cmd = nil
		}
		if got.op != want.op || got.timeout != want.timeout || !bytes.Equal(got.cmd, want.cmd) || got.id != want.id || got.addr != want.addr {
			t.Fatalf("round trip: got %+v, want %+v", got, want)
		}
	}
	rep := fwdReply{code: codeOK, index: 1<<40 + 7, body: []byte("resp")}
	got, err := decodeReply(encodeReply(rep))
	if err != nil || !reflect.DeepEqual(got, rep) {
		t.Fatalf("reply round trip = %+v, %v", got, err)
	}

	for _, bad := range [][]byte{nil, {opApply, 0, 0}, {9, 0, 0, 0, 1}, {opAddVoter, 0, 0, 0, 1, 50, 'x'}} {
		if _, err := decodeRequest(bad); err == nil {
			t.Errorf("decodeRequest(%v) succeeded", bad)
		}
	}
	if _, err := readFrame(bytes.NewReader([]byte{0xFF, 0xFF, 0xFF, 0xFF})); err == nil {
		t.Error("readFrame accepted a 4 GiB frame")
	}
}

func TestReplyErrors(t *testing.T) {
	tests := []struct {
		code      byte
		is        error
		retryable bool
	}{
		{codeNotLeader, ErrNotLeader, true},
		{codeLeadershipLost, raft.ErrLeadershipLost, true},
		{codeUnavailable, errUnavailable, true},
		{codeOutcomeUnknown, ErrOutcomeUnknown, true},
		{codeRejected, ErrCommandRejected, false},
		{codeBadFSMResponse, ErrBadFSMResponse, false},
	}
	for _, tt := range tests {
		err := replyError("127.0.9.1:7301", fwdReply{code: tt.code, body: []byte("msg")})
		if !errors.Is(err, tt.is) || retryable(err) != tt.retryable {
			t.Errorf("code %d: %v (retryable %v); want Is %v, retryable %v", tt.code, err, retryable(err), tt.is, tt.retryable)
		}
	}
	if err := replyError("x", fwdReply{code: codeFailed, body: []byte("boom")}); err == nil || retryable(err) {
		t.Errorf("codeFailed: %v, retryable %v", err, retryable(err))
	}
	if err := replyError("x", fwdReply{code: codeOK}); err != nil {
		t.Errorf("codeOK: %v", err)
	}
	if !retryable(&transportError{errors.New("x")}) {
		t.Error("transport errors must be retryable")
	}
	if ambiguous(replyError("x", fwdReply{code: codeUnavailable})) || ambiguous(replyError("x", fwdReply{code: codeNotLeader})) {
		t.Error("codeUnavailable and codeNotLeader say the entry was not appended")
	}
	if !ambiguous(replyError("x", fwdReply{code: codeLeadershipLost})) {
		t.Error("codeLeadershipLost must be ambiguous")
	}
}

func TestAfterAppend(t *testing.T) {
	tests := []struct {
		err     error
		unknown bool
	}{
		{nil, false},
		{raft.ErrNotLeader, false},
		{raft.ErrLeadershipTransferInProgress, false},
		{raft.ErrEnqueueTimeout, false},
		{raft.ErrLeadershipLost, true},
		{raft.ErrRaftShutdown, true},
		{raft.ErrAbortedByRestore, true},
		{context.DeadlineExceeded, true},
	}
	for _, tt := range tests {
		err := afterAppend(tt.err)
		if got := errors.Is(err, ErrOutcomeUnknown); got != tt.unknown {
			t.Errorf("afterAppend(%v) = %v: outcome unknown %v, want %v", tt.err, err, got, tt.unknown)
		}
		if tt.err != nil && !errors.Is(err, tt.err) {
			t.Errorf("afterAppend(%v) = %v: lost its cause", tt.err, err)
		}
	}
}
