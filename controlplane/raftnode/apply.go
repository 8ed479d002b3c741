package raftnode

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

const (
	retryBackoffMin = 10 * time.Millisecond
	retryBackoffMax = 250 * time.Millisecond
	// forwardMargin is kept back from the caller's deadline when telling
	// the leader how long it may wait, so its reply arrives in time.
	forwardMargin = 50 * time.Millisecond
)

// rejectedError carries an error returned by the FSM's Apply. It matches
// ErrCommandRejected and unwraps to the FSM's error (on a follower, to an
// error with the same message).
type rejectedError struct{ err error }

func (e *rejectedError) Error() string   { return ErrCommandRejected.Error() + ": " + e.err.Error() }
func (e *rejectedError) Unwrap() []error { return []error{ErrCommandRejected, e.err} }

// Apply commits cmd through Raft and returns the FSM's response and the log
// index. On a follower the command is forwarded to the leader. Transient
// failures (no leader, leader changed, connection errors, lost leadership)
// are retried with a short backoff until ctx is done.
//
// raft.ErrLeadershipLost is ambiguous: the entry may have been committed by
// the next leader even though this attempt failed. It is retried anyway, so
// a command may be applied twice: commands must carry ids that make a
// repeat a no-op in the FSM.
//
// When Apply fails and any attempt may have appended the entry to a
// leader's log (lost leadership, a wait ended by ctx after the leader took
// the entry, a forward connection lost after the request was sent), the
// error wraps ErrOutcomeUnknown; otherwise nothing was committed (e.g.
// ErrNoLeader with ctx's error: no leader ever took it).
//
// The FSM's Apply must return []byte (already encoded) or an error; an error
// comes back wrapped in ErrCommandRejected and is not retried, anything else
// is ErrBadFSMResponse.
func (n *Node) Apply(ctx context.Context, cmd []byte) (resp []byte, index uint64, err error) {
	err = n.retry(ctx, "apply", func(ctx context.Context) error {
		resp, index, err = n.exec(ctx, fwdRequest{op: opApply, cmd: cmd})
		return err
	})
	return resp, index, err
}

// AddVoter adds (or updates) a voting member. On a follower it is forwarded
// to the leader; transient failures are retried until ctx is done.
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	if err := validateID(id); err != nil {
		return fmt.Errorf("add voter: %w: %w", ErrInvalidConfig, err)
	}
	if err := validatePeerAddr(addr); err != nil {
		return fmt.Errorf("add voter %s: %w: %w", id, ErrInvalidConfig, err)
	}
	return n.retry(ctx, "add voter "+id, func(ctx context.Context) error {
		_, _, err := n.exec(ctx, fwdRequest{op: opAddVoter, id: id, addr: addr})
		return err
	})
}

// RemoveServer removes a member. On a follower it is forwarded to the
// leader; transient failures are retried until ctx is done.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if err := validateID(id); err != nil {
		return fmt.Errorf("remove server: %w: %w", ErrInvalidConfig, err)
	}
	return n.retry(ctx, "remove server "+id, func(ctx context.Context) error {
		_, _, err := n.exec(ctx, fwdRequest{op: opRemoveServer, id: id})
		return err
	})
}

// Barrier waits until every preceding entry is applied to this node's FSM.
// Leader only (ErrNotLeader otherwise): a new leader calls it before serving
// reads that must reflect everything committed. Not retried.
func (n *Node) Barrier(ctx context.Context) error {
	ctx, cancel := n.scope(ctx)
	defer cancel()
	if n.raft.State() != raft.Leader {
		return fmt.Errorf("barrier: %w", ErrNotLeader)
	}
	if err := n.wait(ctx, n.raft.Barrier(enqueueTimeout(ctx))); err != nil {
		return n.finalError("barrier", err)
	}
	return nil
}

// exec runs req on this node if it is the leader, or forwards it.
func (n *Node) exec(ctx context.Context, req fwdRequest) ([]byte, uint64, error) {
	if n.raft.State() == raft.Leader {
		return n.execLocal(ctx, req)
	}
	addr, id := n.raft.LeaderWithID()
	if addr == "" || string(addr) == n.cfg.advertised() {
		return nil, 0, ErrNoLeader
	}
	req.timeout = forwardDefaultWait
	if d, ok := ctx.Deadline(); ok {
		req.timeout = time.Until(d) - forwardMargin
	}
	rep, err := n.fwd.roundTrip(ctx, string(addr), req)
	if err != nil {
		return nil, 0, fmt.Errorf("leader %s: %w", id, err)
	}
	if err := replyError(string(addr), rep); err != nil {
		return nil, rep.index, err
	}
	return rep.body, rep.index, nil
}

// execLocal runs req against the local raft, which must be the leader.
func (n *Node) execLocal(ctx context.Context, req fwdRequest) ([]byte, uint64, error) {
	timeout := enqueueTimeout(ctx)
	switch req.op {
	case opApply:
		f := n.raft.Apply(req.cmd, timeout)
		if err := afterAppend(n.wait(ctx, f)); err != nil {
			return nil, 0, err
		}
		switch r := f.Response().(type) {
		case []byte:
			return r, f.Index(), nil
		case error:
			return nil, f.Index(), &rejectedError{err: r}
		default:
			return nil, f.Index(), fmt.Errorf("%w: got %T at index %d", ErrBadFSMResponse, r, f.Index())
		}
	case opAddVoter:
		f := n.raft.AddVoter(raft.ServerID(req.id), raft.ServerAddress(req.addr), 0, timeout)
		if err := afterAppend(n.wait(ctx, f)); err != nil {
			return nil, 0, err
		}
		return nil, f.Index(), nil
	case opAddNonvoter:
		f := n.raft.AddNonvoter(raft.ServerID(req.id), raft.ServerAddress(req.addr), 0, timeout)
		if err := afterAppend(n.wait(ctx, f)); err != nil {
			return nil, 0, err
		}
		return nil, f.Index(), nil
	case opRemoveServer:
		f := n.raft.RemoveServer(raft.ServerID(req.id), 0, timeout)
		if err := afterAppend(n.wait(ctx, f)); err != nil {
			return nil, 0, err
		}
		return nil, f.Index(), nil
	default:
		return nil, 0, fmt.Errorf("unknown op %d", req.op)
	}
}

// enqueueTimeout is raft's enqueue timeout for ctx: its remaining time, or
// forwardDefaultWait without a deadline (raft.ErrEnqueueTimeout is retried).
// The wait for the result honours ctx anyway.
func enqueueTimeout(ctx context.Context) time.Duration {
	d, ok := ctx.Deadline()
	if !ok {
		return forwardDefaultWait
	}
	return max(time.Until(d), time.Millisecond)
}

// wait waits for f or ctx. raft futures cannot be cancelled, so the wait
// runs on a goroutine counted in n.waiters; it ends when raft resolves the
// future, at the latest when raft shuts down (but see Shutdown).
func (n *Node) wait(ctx context.Context, f raft.Future) error {
	if ctx.Done() == nil {
		return f.Error()
	}
	done := make(chan error, 1)
	n.waiters.Add(1)
	go func() {
		defer n.waiters.Add(-1)
		done <- f.Error()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retry calls f until it succeeds, fails with a non-retryable error, ctx
// is done or the node shuts down.
func (n *Node) retry(ctx context.Context, op string, f func(context.Context) error) error {
	if n.isShutdown() {
		return fmt.Errorf("%s: %w", op, ErrShutdown)
	}
	ctx, cancel := n.scope(ctx)
	defer cancel()
	backoff := retryBackoffMin
	var (
		last  error // the latest retryable error
		maybe bool  // an attempt may have appended the entry
	)
	for attempt := 1; ; attempt++ {
		err := f(ctx)
		if err != nil && ambiguous(err) {
			maybe = true
		}
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
			return n.gaveUp(op, attempt, ctx.Err(), last, maybe)
		case !retryable(err):
			if maybe && !ambiguous(err) && !errors.Is(err, ErrCommandRejected) {
				// An earlier attempt may have committed it.
				err = &ambiguousError{err: err}
			}
			return n.finalError(op, err)
		}
		last = err
		n.log.Debug("raft operation will be retried", zap.String("op", op), zap.Int("attempt", attempt), zap.Error(err))
		// Jitter between backoff/2 and backoff.
		t := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return n.gaveUp(op, attempt, ctx.Err(), last, maybe)
		case <-t.C:
		}
		backoff = min(2*backoff, retryBackoffMax)
	}
}

// gaveUp reports that ctx ended op, with the last retryable error if any,
// so errors.Is works for both (e.g. DeadlineExceeded and ErrNoLeader).
// When an attempt may have appended the entry (maybe), the error also
// wraps ErrOutcomeUnknown, shutdown included.
func (n *Node) gaveUp(op string, attempts int, ctxErr, last error, maybe bool) error {
	switch {
	case maybe && n.isShutdown():
		return fmt.Errorf("%s: %w: %w", op, ErrOutcomeUnknown, ErrShutdown)
	case maybe && last == nil:
		return fmt.Errorf("%s: %w: %w", op, ErrOutcomeUnknown, ctxErr)
	case maybe:
		return fmt.Errorf("%s: gave up after %d attempts: %w: %w (last error: %w)", op, attempts, ErrOutcomeUnknown, ctxErr, last)
	case n.isShutdown():
		return fmt.Errorf("%s: %w", op, ErrShutdown)
	case last == nil:
		return fmt.Errorf("%s: %w", op, ctxErr)
	default:
		return fmt.Errorf("%s: gave up after %d attempts: %w (last error: %w)", op, attempts, ctxErr, last)
	}
}

// finalError wraps err for op, reporting shutdown as ErrShutdown (an
// ambiguous err keeps matching ErrOutcomeUnknown).
func (n *Node) finalError(op string, err error) error {
	if n.isShutdown() && !errors.Is(err, ErrCommandRejected) {
		return fmt.Errorf("%s: %w (%w)", op, ErrShutdown, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
