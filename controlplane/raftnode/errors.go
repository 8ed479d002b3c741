package raftnode

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/hashicorp/raft"
)

// Sentinel errors. Every error returned by this package wraps one of these
// (or a raft or context sentinel) with context; test them with errors.Is.
var (
	// ErrNoLeader means no leader is known right now (an election is under
	// way or this node cannot reach a quorum).
	ErrNoLeader = errors.New("raftnode: no leader")
	// ErrNotLeader means the operation needs the leader and this node, or the
	// node a request was forwarded to, is not it.
	ErrNotLeader = errors.New("raftnode: not the leader")
	// ErrShutdown means the node has been shut down.
	ErrShutdown = errors.New("raftnode: node is shut down")
	// ErrCommandRejected wraps an error returned by the FSM's Apply. The
	// entry is committed (at the returned index) but the state machine
	// refused it; retrying will not help.
	ErrCommandRejected = errors.New("raftnode: command rejected by the state machine")
	// ErrBadFSMResponse means the FSM's Apply returned something other than
	// []byte or error: a programming error in the FSM.
	ErrBadFSMResponse = errors.New("raftnode: FSM Apply must return []byte or error")
	// ErrInvalidConfig wraps every configuration and peer-list error.
	ErrInvalidConfig = errors.New("raftnode: invalid config")
)

// transportError marks a failure to reach or talk to the leader over the
// forward RPC. It is retryable: the leader may have moved or restarted.
type transportError struct{ err error }

func (e *transportError) Error() string { return "forward transport: " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// errUnavailable is what a forwarded request reports when the leader it
// reached could not serve it for a transient reason (shutting down, queue
// full, its own deadline hit).
var errUnavailable = errors.New("raftnode: leader temporarily unavailable")

// retryable reports whether an operation that failed with err may succeed
// on another attempt, possibly against another leader.
//
// raft.ErrLeadershipLost is retryable but ambiguous: the entry may have been
// committed by the new leader anyway. Commands carry ids so that applying
// one twice is a no-op in the FSM.
func retryable(err error) bool {
	var te *transportError
	switch {
	case err == nil:
		return false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.Is(err, ErrNoLeader),
		errors.Is(err, ErrNotLeader),
		errors.Is(err, errUnavailable),
		errors.Is(err, raft.ErrNotLeader),
		errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrEnqueueTimeout),
		errors.Is(err, raft.ErrAbortedByRestore):
		return true
	case errors.As(err, &te),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET):
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}
