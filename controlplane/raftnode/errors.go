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
	// ErrOutcomeUnknown means the operation's entry was (or may have been)
	// appended to a leader's log, and then leadership was lost or the wait
	// for the commit ended, so whether it committed is unknown. An error
	// that does not wrap it, from Apply, AddVoter or RemoveServer, means no
	// attempt reached a leader's log: nothing was committed. Retrying the
	// same command (with the same id) is safe and tells which.
	ErrOutcomeUnknown = errors.New("raftnode: outcome unknown (the entry may have been committed)")
)

// ambiguousError marks a failure after the entry may have been appended to
// the leader's log. It matches ErrOutcomeUnknown and unwraps to the cause.
type ambiguousError struct{ err error }

func (e *ambiguousError) Error() string   { return "outcome unknown: " + e.err.Error() }
func (e *ambiguousError) Unwrap() []error { return []error{ErrOutcomeUnknown, e.err} }

// ambiguous reports whether err leaves an operation's outcome unknown.
// raft.ErrLeadershipLost always does (raft's api.go: the entry may still
// be committed by the next leader).
func ambiguous(err error) bool {
	return errors.Is(err, ErrOutcomeUnknown) || errors.Is(err, raft.ErrLeadershipLost)
}

// afterAppend classifies err, returned while waiting for a future the
// leader accepted: raft's answers that say the entry never reached the
// log pass through; every other failure (lost leadership, shutdown, the
// wait ended by ctx) leaves the outcome unknown.
func afterAppend(err error) error {
	switch {
	case err == nil,
		errors.Is(err, raft.ErrNotLeader),
		errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrEnqueueTimeout):
		return err
	}
	return &ambiguousError{err: err}
}

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
