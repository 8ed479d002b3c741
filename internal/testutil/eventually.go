// Package testutil holds the one polling helper every test in evac waits
// with: a condition checked until it holds or a deadline passes, never a
// sleep that hopes. Deadlines are meant to be generous (30 s and more for
// cluster conditions) because the tests run on a loaded 2-core machine; a
// condition that holds returns at once, so a long deadline costs nothing.
package testutil

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// MaxInterval is the longest Eventually and WaitFor go between two checks
// of a condition: they start at 5 ms and double up to it, so a condition
// that holds soon is seen soon and one that takes seconds costs few calls.
const MaxInterval = 100 * time.Millisecond

// Poll calls cond until it returns nil, and returns nil, or until timeout
// has passed, and returns cond's last error wrapped with the time waited.
// The gap between calls starts at 5 ms and doubles up to maxInterval. cond
// runs at least once, and once more at the deadline.
func Poll(timeout, maxInterval time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	gap := min(5*time.Millisecond, maxInterval)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("not within %s: %w", timeout, err)
		}
		time.Sleep(min(gap, left))
		gap = min(2*gap, maxInterval)
	}
}

// Eventually waits until cond returns nil and returns how long that took.
// Past timeout it fails t with what and cond's last error, which should say
// what was seen instead.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	if err := Poll(timeout, MaxInterval, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return time.Since(start)
}

// errFalse is the last error of a boolean condition that never held.
var errFalse = errors.New("condition still false")

// WaitFor is Eventually for a condition that is true or false.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return Eventually(t, timeout, what, func() error {
		if cond() {
			return nil
		}
		return errFalse
	})
}
