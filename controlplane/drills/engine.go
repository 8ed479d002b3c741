package drills

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/steering"
)

// Actor is the audit actor of the engine's commands.
const Actor = "drills"

// Config tunes the engine.
type Config struct {
	// Tick is how often the engine decides.
	Tick time.Duration
	// Retry is how long before a decision that did not take effect is
	// proposed again.
	Retry time.Duration
	// Grace is how late a scheduled run may still start (after a leader
	// change); older due times are recorded as missed.
	Grace  time.Duration
	Logger *zap.Logger
	// Blockers, if set, gives the verdicts on block_on conditions (the
	// leader's *blocker.Evaluator); without it they are not enforced.
	Blockers Blockers
	// UnknownLimit is how many evaluations in a row a running drill's
	// blocker may fail before the drill is aborted (DefaultUnknownLimit).
	UnknownLimit int
	// Now is the clock (tests inject one).
	Now func() time.Time
}

// Engine runs drills and schedules while its Run is active (on the leader).
type Engine struct {
	cfg  Config
	src  steering.Source
	prop steering.Proposer

	attempted map[string]time.Time
	mu        sync.Mutex
	locs      map[string]*time.Location
}

// NewEngine returns an engine; call Run while this node is the leader.
func NewEngine(cfg Config, src steering.Source, prop steering.Proposer) *Engine {
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 4 * cfg.Tick
	}
	if cfg.Grace <= 0 {
		cfg.Grace = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Engine{cfg: cfg, src: src, prop: prop, locs: map[string]*time.Location{}}
}

// Run decides every tick until ctx is done (leadership lost).
func (e *Engine) Run(ctx context.Context) {
	e.attempted = map[string]time.Time{}
	t := time.NewTicker(e.cfg.Tick)
	defer t.Stop()
	e.cfg.Logger.Info("drill engine started")
	defer e.cfg.Logger.Info("drill engine stopped")
	for {
		e.Tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick proposes what is due once.
func (e *Engine) Tick(ctx context.Context) {
	if e.attempted == nil {
		e.attempted = map[string]time.Time{}
	}
	now := e.cfg.Now()
	st := e.src.State()
	props, errs := Schedule(st, now, e.cfg.Grace, e.location)
	for _, err := range errs {
		e.cfg.Logger.Warn("schedule cannot be evaluated", zap.Error(err))
	}
	props = append(props, Decide(st, e.src.Health, now)...)
	if e.cfg.Blockers != nil {
		props = Block(st, props, e.cfg.Blockers.Verdict, e.cfg.UnknownLimit)
	}
	for _, p := range props {
		if last, ok := e.attempted[p.Key]; ok && now.Sub(last) < e.cfg.Retry {
			continue
		}
		e.attempted[p.Key] = now
		if ctx.Err() != nil {
			return
		}
		res, err := e.prop.Propose(ctx, p.Type, Actor, p.Key, p.Body)
		switch {
		case err != nil:
			e.cfg.Logger.Warn("drill proposal failed", zap.String("key", p.Key), zap.Error(err))
		case res.Error != "":
			e.cfg.Logger.Info("drill proposal refused", zap.String("key", p.Key), zap.String("code", res.Code),
				zap.String("error", res.Error))
		default:
			e.cfg.Logger.Info("drill proposal applied", zap.String("key", p.Key), zap.Uint64("index", res.Index),
				zap.Bool("duplicate", res.Duplicate))
		}
	}
	for k, t := range e.attempted {
		if now.Sub(t) > time.Hour {
			delete(e.attempted, k)
		}
	}
}

// location loads and caches a time zone ("" is UTC).
func (e *Engine) location(tz string) (*time.Location, error) {
	if tz == "" {
		return time.UTC, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if l, ok := e.locs[tz]; ok {
		return l, nil
	}
	l, err := time.LoadLocation(tz)
	if err != nil {
		return nil, err
	}
	e.locs[tz] = l
	return l, nil
}
