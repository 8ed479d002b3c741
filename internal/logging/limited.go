package logging

import (
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// DefaultInterval is how often a Limited logger writes at most one line.
const DefaultInterval = 10 * time.Second

// Limited logs one kind of event that a remote party can cause at will (a
// refused token, an undecodable packet) without letting a flood of them
// flood the log: it counts every event (Total, for a metric) and writes at
// most one line per interval. The first event after a quiet interval is
// written at once with its own fields; the events that follow within the
// interval are summed into one line at the interval's end, with the count
// ("suppressed"), the running total and the fields of the last one. A
// flood thus costs one line per interval, and its end is always reported.
type Limited struct {
	log      *zap.Logger
	level    zapcore.Level
	msg      string
	interval time.Duration
	now      func() time.Time
	after    func(time.Duration, func()) stopper

	total atomic.Uint64

	mu         sync.Mutex
	quietUntil time.Time // events before this are summed, not written
	suppressed uint64
	last       []zap.Field
	timer      stopper // the pending summary, nil if none
	closed     bool
}

type stopper interface{ Stop() bool }

// NewLimited returns a logger of events with message msg at level,
// writing at most one line per interval (DefaultInterval if 0).
func NewLimited(log *zap.Logger, level zapcore.Level, msg string, interval time.Duration) *Limited {
	if log == nil {
		log = zap.NewNop()
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Limited{log: log, level: level, msg: msg, interval: interval, now: time.Now,
		after: func(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) }}
}

// Log counts one event; fields describe it (Log keeps the slice).
func (l *Limited) Log(fields ...zap.Field) {
	l.total.Add(1)
	now := l.now()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	if !now.Before(l.quietUntil) && l.suppressed == 0 {
		// First event of a new interval: write it now, and sum what
		// follows until the interval ends.
		l.quietUntil = now.Add(l.interval)
		l.mu.Unlock()
		if ce := l.log.Check(l.level, l.msg); ce != nil {
			ce.Write(append(fields, zap.String("log-limit", "at most one line per "+l.interval.String()))...)
		}
		return
	}
	l.suppressed++
	l.last = fields
	if l.timer == nil {
		l.timer = l.after(max(l.quietUntil.Sub(now), 0), l.flush)
	}
	l.mu.Unlock()
}

// flush writes the summary of the events summed since the last line, and
// keeps summing for another interval if there were any.
func (l *Limited) flush() {
	l.mu.Lock()
	l.timer = nil
	n, last := l.suppressed, l.last
	l.suppressed, l.last = 0, nil
	if l.closed || n == 0 {
		l.mu.Unlock()
		return
	}
	l.quietUntil = l.now().Add(l.interval)
	l.timer = l.after(l.interval, l.flush)
	l.mu.Unlock()
	l.writeSummary(n, last)
}

func (l *Limited) writeSummary(n uint64, last []zap.Field) {
	if ce := l.log.Check(l.level, l.msg); ce != nil {
		fs := append([]zap.Field{zap.Uint64("suppressed", n), zap.Duration("interval", l.interval),
			zap.Uint64("total", l.total.Load()), zap.Namespace("last")}, last...)
		ce.Write(fs...)
	}
}

// Total is how many events were counted.
func (l *Limited) Total() uint64 { return l.total.Load() }

// Close writes the summary of events not yet reported and stops the timer;
// later events are counted but not logged. It is idempotent.
func (l *Limited) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	n, last := l.suppressed, l.last
	l.suppressed, l.last = 0, nil
	l.mu.Unlock()
	if n > 0 {
		l.writeSummary(n, last)
	}
}
