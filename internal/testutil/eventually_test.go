package testutil

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	errNotYet := errors.New("not yet")
	tests := []struct {
		name      string
		holdAfter int32 // cond holds from this call on; 0: never
		timeout   time.Duration
		wantErr   bool
		minCalls  int32
	}{
		{name: "holds at once", holdAfter: 1, timeout: time.Second, minCalls: 1},
		{name: "holds on the fifth call", holdAfter: 5, timeout: 10 * time.Second, minCalls: 5},
		{name: "never holds", holdAfter: 0, timeout: 50 * time.Millisecond, wantErr: true, minCalls: 2},
		{name: "zero timeout still calls once", holdAfter: 1, timeout: 0, minCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			err := Poll(tc.timeout, 10*time.Millisecond, func() error {
				if n := calls.Add(1); tc.holdAfter > 0 && n >= tc.holdAfter {
					return nil
				}
				return errNotYet
			})
			if (err != nil) != tc.wantErr {
				t.Fatalf("Poll = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && (!errors.Is(err, errNotYet) || !strings.Contains(err.Error(), "not within")) {
				t.Fatalf("Poll's error %q should wrap the condition's last error and say how long it waited", err)
			}
			if calls.Load() < tc.minCalls {
				t.Fatalf("cond called %d times, want at least %d", calls.Load(), tc.minCalls)
			}
		})
	}
}

// fatalRecorder records Fatalf instead of stopping the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = format
	if len(args) > 0 {
		r.msg = args[0].(string)
	}
}

func TestWaitForReportsWhat(t *testing.T) {
	r := &fatalRecorder{TB: t}
	WaitFor(r, 20*time.Millisecond, "the moon to turn blue", func() bool { return false })
	if r.msg != "the moon to turn blue" {
		t.Fatalf("failure names %q, want the awaited condition", r.msg)
	}
	r.msg = ""
	if d := WaitFor(r, time.Second, "true", func() bool { return true }); r.msg != "" || d > time.Second {
		t.Fatalf("a holding condition failed (%q) or took %v", r.msg, d)
	}
}
