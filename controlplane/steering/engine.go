package steering

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/state"
)

// Actor is the audit actor of the engine's own commands.
const Actor = "steering"

// Source gives the engine its inputs.
type Source interface {
	State() *state.State
	Health() Health
	// ReportedCapacity is the capacity each region's agents report, summed;
	// regions without reports are absent.
	ReportedCapacity() map[string]int
}

// Proposer submits a command through Raft and returns its result.
type Proposer interface {
	// id makes a retried proposal a no-op; the engine passes the decision key.
	Propose(ctx context.Context, t state.CommandType, actor, id string, body any) (state.Result, error)
}

// EngineConfig tunes the loop.
type EngineConfig struct {
	// Tick is how often the engine decides.
	Tick time.Duration
	// WarmUp is how long after gaining leadership missing reports are not
	// taken as evidence of failure, and a verdict needs a report received
	// as leader (at least the policy's detect_after).
	WarmUp time.Duration
	// Retry is how long before a proposal that did not take effect is
	// proposed again.
	Retry  time.Duration
	Logger *zap.Logger
	// Now is the clock (tests inject one).
	Now func() time.Time
}

// Engine proposes Decide's output while its Run is active.
type Engine struct {
	cfg  EngineConfig
	src  Source
	prop Proposer
	// attempted remembers when each decision key was last proposed.
	attempted map[string]time.Time
	// recorded remembers decision keys whose refusal is already in the log.
	recorded map[string]bool
	// done remembers decision keys that were applied: never proposed again.
	done map[string]bool
	// leaderSince is when Run started (this node became leader).
	leaderSince time.Time
}

// NewEngine returns an engine; call Run while this node is the leader.
func NewEngine(cfg EngineConfig, src Source, prop Proposer) *Engine {
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 5 * cfg.Tick
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Engine{cfg: cfg, src: src, prop: prop}
}

// Run decides every tick until ctx is done. The caller cancels ctx when
// leadership is lost.
func (e *Engine) Run(ctx context.Context) {
	e.attempted, e.recorded, e.done = map[string]time.Time{}, map[string]bool{}, map[string]bool{}
	start := e.cfg.Now()
	e.leaderSince = start
	t := time.NewTicker(e.cfg.Tick)
	defer t.Stop()
	e.cfg.Logger.Info("steering engine started")
	defer e.cfg.Logger.Info("steering engine stopped")
	for {
		e.Tick(ctx, e.cfg.Now().Sub(start) >= e.warmUp())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// warmUp is how long after gaining leadership the engine waits before it
// takes missing agents as evidence and decides on reports it heard before
// it led: WarmUp, or the detection window (detect_after) if longer.
func (e *Engine) warmUp() time.Duration {
	w := e.cfg.WarmUp
	if st := e.src.State(); st != nil && st.Config != nil {
		w = max(w, st.Config.Policy.DetectAfter.D())
	}
	return w
}

// Tick decides once and proposes what is due. Until warmedUp, a health
// verdict needs a report received since Run started (see Input).
func (e *Engine) Tick(ctx context.Context, warmedUp bool) {
	if e.attempted == nil {
		e.attempted, e.recorded, e.done = map[string]time.Time{}, map[string]bool{}, map[string]bool{}
	}
	now := e.cfg.Now()
	props := Decide(Input{State: e.src.State(), Health: e.src.Health(), Capacity: e.src.ReportedCapacity(),
		Now: now, WarmedUp: warmedUp, LeaderSince: e.leaderSince})
	for _, p := range props {
		if last, ok := e.attempted[p.Key]; e.done[p.Key] || ok && now.Sub(last) < e.cfg.Retry {
			continue
		}
		e.attempted[p.Key] = now
		if ctx.Err() != nil {
			return
		}
		res, err := e.prop.Propose(ctx, p.Type, Actor, "steering:"+p.Key, p.Body)
		if err != nil {
			e.cfg.Logger.Warn("steering proposal failed", zap.String("key", p.Key),
				zap.Stringer("type", p.Type), zap.Error(err))
			continue
		}
		if res.Error == "" {
			e.done[p.Key] = true
			e.cfg.Logger.Info("steering proposal applied", zap.String("key", p.Key),
				zap.Stringer("type", p.Type), zap.Uint64("index", res.Index))
			continue
		}
		e.refused(ctx, p, res)
	}
	// Forget decisions that are long done so the map stays small.
	for k, t := range e.attempted {
		if now.Sub(t) > 10*e.cfg.Retry+time.Hour {
			delete(e.attempted, k)
			delete(e.recorded, k)
			delete(e.done, k)
		}
	}
}

func (e *Engine) refused(ctx context.Context, p Proposal, res state.Result) {
	var refused *state.RefusedError
	errors.As(res.Err(), &refused)
	e.cfg.Logger.Debug("steering proposal refused", zap.String("key", p.Key), zap.String("code", res.Code),
		zap.String("error", res.Error))
	if !p.Automatic || e.recorded[p.Key] {
		return
	}
	e.recorded[p.Key] = true
	ev, _ := p.Body.(state.Evacuate)
	_, err := e.prop.Propose(ctx, state.CmdRecordEvent, Actor, "steering:blocked:"+p.Key, state.RecordEvent{
		Kind: "evacuation.blocked", Region: ev.Region, Reason: ev.Reason, Detail: res.Error,
	})
	if err != nil {
		e.cfg.Logger.Warn("record blocked evacuation failed", zap.String("key", p.Key), zap.Error(err))
	}
}
