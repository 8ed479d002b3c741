package logging

import (
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// fakeTimers is a manual clock with the timers Limited arms on it.
type fakeTimers struct {
	mu  sync.Mutex
	now time.Time
	due []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func (t *fakeTimer) Stop() bool { was := !t.stopped; t.stopped = true; return was }

func (c *fakeTimers) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeTimers) after(d time.Duration, f func()) stopper {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.due = append(c.due, t)
	return t
}

// advance moves the clock and runs the timers that fell due, in order.
func (c *fakeTimers) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var run []*fakeTimer
	keep := c.due[:0]
	for _, t := range c.due {
		if !t.at.After(c.now) {
			run = append(run, t)
		} else {
			keep = append(keep, t)
		}
	}
	c.due = keep
	c.mu.Unlock()
	for _, t := range run {
		if !t.stopped {
			t.f()
		}
	}
}

func newTestLimited(interval time.Duration) (*Limited, *fakeTimers, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.InfoLevel)
	clock := &fakeTimers{now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	l := NewLimited(zap.New(core), zapcore.WarnLevel, "request with an unknown token refused", interval)
	l.now, l.after = clock.Now, clock.after
	return l, clock, logs
}

func TestLimitedFloodIsOneLinePerInterval(t *testing.T) {
	l, clock, logs := newTestLimited(10 * time.Second)
	// 17,000 events in 3 s: the first line at once, the rest summed.
	for i := range 17000 {
		l.Log(zap.Int("i", i))
		if i%5000 == 4999 {
			clock.advance(time.Second)
		}
	}
	if logs.Len() != 1 {
		t.Fatalf("%d lines during the first interval, want 1", logs.Len())
	}
	first := logs.All()[0]
	if first.Level != zapcore.WarnLevel || first.ContextMap()["i"] != int64(0) {
		t.Fatalf("first line %+v, want the first event's fields at warn", first)
	}
	clock.advance(7 * time.Second) // the interval ends
	if logs.Len() != 2 {
		t.Fatalf("%d lines after the interval, want 2", logs.Len())
	}
	sum := logs.All()[1].ContextMap()
	last, _ := sum["last"].(map[string]any)
	if sum["suppressed"] != uint64(16999) || sum["total"] != uint64(17000) || last["i"] != int64(16999) {
		t.Fatalf("summary %v, want 16999 suppressed of 17000, last i=16999", sum)
	}
	if l.Total() != 17000 {
		t.Fatalf("Total = %d", l.Total())
	}
	// A sustained flood: one summary per interval.
	for range 5 {
		for range 100 {
			l.Log(zap.Int("i", -1))
		}
		clock.advance(10 * time.Second)
	}
	if logs.Len() != 7 {
		t.Fatalf("%d lines after 5 more intervals of flood, want 7", logs.Len())
	}
	// Quiet: no more lines, and the timer stops re-arming.
	clock.advance(30 * time.Second)
	if logs.Len() != 7 {
		t.Fatalf("%d lines after a quiet interval, want 7", logs.Len())
	}
	// The next event after a quiet interval is written at once.
	l.Log(zap.String("after", "quiet"))
	if logs.Len() != 8 || logs.All()[7].ContextMap()["after"] != "quiet" {
		t.Fatalf("an event after a quiet interval was not written at once: %d lines", logs.Len())
	}
}

func TestLimitedSparseEventsAreAllWritten(t *testing.T) {
	l, clock, logs := newTestLimited(time.Second)
	for i := range 5 {
		l.Log(zap.Int("i", i))
		clock.advance(2 * time.Second)
	}
	if logs.Len() != 5 {
		t.Fatalf("%d lines for 5 events 2 s apart with a 1 s interval, want 5", logs.Len())
	}
}

func TestLimitedCloseReportsPending(t *testing.T) {
	l, _, logs := newTestLimited(time.Minute)
	l.Log()
	l.Log()
	l.Log()
	l.Close()
	if logs.Len() != 2 || logs.All()[1].ContextMap()["suppressed"] != uint64(2) {
		t.Fatalf("after Close: %d lines %v, want the first and a summary of 2", logs.Len(), logs.All())
	}
	l.Log()
	l.Close()
	if logs.Len() != 2 || l.Total() != 4 {
		t.Fatalf("after Close events are counted (%d) but not written (%d lines)", l.Total(), logs.Len())
	}
}

// TestLimitedRealTimers runs concurrent events on the real clock: the race
// detector checks the locking, and the summary comes from time.AfterFunc.
func TestLimitedRealTimers(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	l := NewLimited(zap.New(core), zapcore.InfoLevel, "garbage", 50*time.Millisecond)
	defer l.Close()
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				l.Log(zap.String("from", "192.0.2.1:7946"))
			}
		})
	}
	wg.Wait()
	if l.Total() != 8000 {
		t.Fatalf("Total = %d, want 8000", l.Total())
	}
	// Every event is accounted for by a line (itself or a summary) once
	// the pending summaries are written.
	counted := func() uint64 {
		var n uint64
		for _, e := range logs.All() {
			if s, ok := e.ContextMap()["suppressed"].(uint64); ok {
				n += s
			} else {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for counted() != 8000 {
		if time.Now().After(deadline) {
			t.Fatalf("lines account for %d events within 10 s, want 8000", counted())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// At most one line per interval: the first, then a summary each.
	if most := int(time.Since(start)/(50*time.Millisecond)) + 2; logs.Len() > most {
		t.Fatalf("%d lines in %s, want at most %d", logs.Len(), time.Since(start), most)
	}
}
