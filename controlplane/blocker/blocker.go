// Package blocker evaluates the blocking conditions (block_on) of
// schedules and drills on the leader: an Alertmanager alert that is active,
// unsilenced and uninhibited, or a Prometheus query past its threshold.
//
// The Evaluator does the I/O in goroutines of its own, off the drill
// engine's tick: Run refreshes every wanted blocker each Interval, each
// query bounded by Timeout, and caches the results; the engine only reads
// the cache (Verdict). Results belong to one term of leadership: Run clears
// them when it returns, so a new leader starts from "pending".
package blocker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/promquery"
)

// State is what is known of a blocker.
type State int

const (
	// Pending: not evaluated yet in this term (or its last result is stale).
	Pending State = iota
	// Clear: evaluated, not firing.
	Clear
	// Firing: evaluated, firing.
	Firing
	// Unknown: could not be evaluated (unreachable, error, timeout, no value).
	Unknown
)

func (s State) String() string {
	return [...]string{"pending", "clear", "firing", "unknown"}[s]
}

// Result is one evaluation of a blocker.
type Result struct {
	State State
	// Detail says what was seen ("alert HighErrorRate firing (2 alerts)",
	// "query ... = 12 > 10", or the error).
	Detail string
	// Unknowns is how many evaluations in a row could not be made.
	Unknowns int
	At       time.Time
}

// Verdict is the combined state of a list of blockers.
type Verdict struct {
	// State: Firing if any fires; else Unknown if any is unknown; else
	// Pending if any is not evaluated yet; else Clear.
	State State
	// Reason names the first firing (or unknown) blocker, for the report:
	// "blocked: alert HighErrorRate firing".
	Reason string
	// Unknowns is the longest run of failed evaluations among the unknown
	// blockers.
	Unknowns int
}

// Config tunes an Evaluator.
type Config struct {
	// Interval is how often each blocker is evaluated (default 5s).
	Interval time.Duration
	// Timeout bounds one evaluation (default 5s); evaluations of one
	// blocker never overlap.
	Timeout time.Duration
	// Stale is how old a result may be before it counts as pending
	// (default 3 Intervals + Timeout).
	Stale time.Duration
	// Transport is the HTTP transport (default: no proxy, no keep-alive).
	Transport http.RoundTripper
	Logger    *zap.Logger
	// Now is the clock (tests inject one).
	Now func() time.Time
}

// Evaluator evaluates the blockers want returns and caches the results.
type Evaluator struct {
	cfg  Config
	want func() []state.Blocker
	hc   *http.Client

	mu      sync.Mutex
	entries map[string]*entry
}

type entry struct {
	b        state.Blocker
	res      Result
	started  time.Time
	inFlight bool
}

// New returns an evaluator of the blockers want returns (those of every
// schedule and running drill in the committed state).
func New(cfg Config, want func() []state.Blocker) *Evaluator {
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Stale <= 0 {
		cfg.Stale = 3*cfg.Interval + cfg.Timeout
	}
	if cfg.Transport == nil {
		cfg.Transport = &http.Transport{Proxy: nil, DisableKeepAlives: true}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Evaluator{cfg: cfg, want: want, hc: &http.Client{Transport: cfg.Transport},
		entries: map[string]*entry{}}
}

// Run evaluates the wanted blockers until ctx is done (leadership lost),
// then waits for its evaluations to return and forgets every result.
func (e *Evaluator) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		e.mu.Lock()
		e.entries = map[string]*entry{}
		e.mu.Unlock()
	}()
	poll := min(e.cfg.Interval, time.Second)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		for _, en := range e.due() {
			wg.Go(func() { e.evaluate(ctx, en) })
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// due marks the wanted blockers whose evaluation is due as in flight and
// returns them; it forgets the blockers no longer wanted.
func (e *Evaluator) due() []*entry {
	now := e.cfg.Now()
	wanted := map[string]state.Blocker{}
	for _, b := range e.want() {
		wanted[b.Key()] = b
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range e.entries {
		if _, ok := wanted[k]; !ok {
			delete(e.entries, k)
		}
	}
	var out []*entry
	for k, b := range wanted {
		en, ok := e.entries[k]
		if !ok {
			en = &entry{b: b}
			e.entries[k] = en
		}
		if en.inFlight || !en.started.IsZero() && now.Sub(en.started) < e.cfg.Interval {
			continue
		}
		en.inFlight, en.started = true, now
		out = append(out, en)
	}
	return out
}

func (e *Evaluator) evaluate(ctx context.Context, en *entry) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	st, detail := Evaluate(ctx, e.hc, e.cfg.Transport, en.b, e.cfg.Now())
	if ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled) {
		// Leadership lost mid-query: nothing learnt.
		e.mu.Lock()
		en.inFlight = false
		e.mu.Unlock()
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	prev := en.res
	en.inFlight = false
	en.res = Result{State: st, Detail: detail, At: e.cfg.Now()}
	if st == Unknown {
		en.res.Unknowns = prev.Unknowns + 1
	}
	if prev.State != st {
		e.cfg.Logger.Info("blocker changed", zap.String("blocker", en.b.String()),
			zap.Stringer("from", prev.State), zap.Stringer("to", st), zap.String("detail", detail))
	}
}

// Result returns the cached result of b (State Pending if none or stale).
func (e *Evaluator) Result(b state.Blocker) Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	en, ok := e.entries[b.Key()]
	if !ok || en.res.At.IsZero() || e.cfg.Now().Sub(en.res.At) > e.cfg.Stale {
		return Result{State: Pending}
	}
	return en.res
}

// Verdict combines the cached results of bs (no I/O).
func (e *Evaluator) Verdict(bs []state.Blocker) Verdict {
	if e == nil || len(bs) == 0 {
		return Verdict{State: Clear}
	}
	results := make([]Result, len(bs))
	for i, b := range bs {
		results[i] = e.Result(b)
	}
	return Combine(bs, results)
}

// Combine is Verdict over given results (a pure function, for tests).
func Combine(bs []state.Blocker, results []Result) Verdict {
	v := Verdict{State: Clear}
	for i, r := range results {
		switch r.State {
		case Firing:
			return Verdict{State: Firing, Reason: "blocked: " + r.Detail}
		case Unknown:
			if v.State != Unknown {
				v.State, v.Reason = Unknown, fmt.Sprintf("blocked: %s cannot be evaluated: %s", bs[i], r.Detail)
			}
			v.Unknowns = max(v.Unknowns, r.Unknowns)
		case Pending:
			if v.State == Clear {
				v.State = Pending
			}
		}
	}
	return v
}

// Evaluate evaluates one blocker now (I/O, bounded by ctx).
func Evaluate(ctx context.Context, hc *http.Client, rt http.RoundTripper, b state.Blocker, now time.Time) (State, string) {
	if b.Alertmanager != "" {
		return alert(ctx, hc, b)
	}
	return query(ctx, rt, b, now)
}

// gettableAlert is the part of Alertmanager's v2 GettableAlert read here.
type gettableAlert struct {
	Labels map[string]string `json:"labels"`
	Status struct {
		State       string   `json:"state"`
		SilencedBy  []string `json:"silencedBy"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
}

func alert(ctx context.Context, hc *http.Client, b state.Blocker) (State, string) {
	q := url.Values{}
	q.Set("active", "true")
	q.Set("silenced", "false")
	q.Set("inhibited", "false")
	q.Set("unprocessed", "false")
	q.Set("filter", fmt.Sprintf("alertname=%q", b.Alert))
	u := strings.TrimRight(b.Alertmanager, "/") + "/api/v2/alerts?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Unknown, "alertmanager " + b.Alertmanager + ": " + err.Error()
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return Unknown, describe(ctx, "alertmanager "+b.Alertmanager, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return Unknown, describe(ctx, "alertmanager "+b.Alertmanager, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Unknown, fmt.Sprintf("alertmanager %s: HTTP %d: %s", b.Alertmanager, resp.StatusCode, strings.TrimSpace(string(body[:min(len(body), 200)])))
	}
	var alerts []gettableAlert
	if err := json.Unmarshal(body, &alerts); err != nil {
		return Unknown, fmt.Sprintf("alertmanager %s: not a list of alerts: %v", b.Alertmanager, err)
	}
	n := 0
	for _, a := range alerts {
		// The filter asked for these only; check anyway (a proxy or an
		// older server may ignore a parameter).
		if a.Labels["alertname"] == b.Alert && a.Status.State == "active" &&
			len(a.Status.SilencedBy) == 0 && len(a.Status.InhibitedBy) == 0 {
			n++
		}
	}
	if n == 0 {
		return Clear, "alert " + b.Alert + " not firing"
	}
	return Firing, fmt.Sprintf("alert %s firing (%d active at %s)", b.Alert, n, b.Alertmanager)
}

func query(ctx context.Context, rt http.RoundTripper, b state.Blocker, now time.Time) (State, string) {
	what := "prometheus " + b.Prometheus
	cl, err := promquery.New(b.Prometheus, rt)
	if err != nil {
		return Unknown, what + ": " + err.Error()
	}
	v, warn, err := cl.Value(ctx, b.Query, now)
	if err != nil {
		return Unknown, describe(ctx, what, err)
	}
	val := promquery.Format(v)
	switch {
	case b.Above != nil && v > *b.Above:
		return Firing, fmt.Sprintf("query %s = %s, above %s%s", b.Query, val, promquery.Format(*b.Above), warn)
	case b.Below != nil && v < *b.Below:
		return Firing, fmt.Sprintf("query %s = %s, below %s%s", b.Query, val, promquery.Format(*b.Below), warn)
	}
	return Clear, fmt.Sprintf("query %s = %s%s", b.Query, val, warn)
}

func describe(ctx context.Context, what string, err error) string {
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return what + ": timeout"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return what + ": " + err.Error()
}

// Wanted returns the blockers of every schedule and running drill in st,
// each once: what the leader keeps evaluated.
func Wanted(st *state.State) []state.Blocker {
	if st == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []state.Blocker
	add := func(bs []state.Blocker) {
		for _, b := range bs {
			if k := b.Key(); !seen[k] {
				seen[k] = true
				out = append(out, b)
			}
		}
	}
	for _, id := range st.ScheduleIDs() {
		add(st.Schedules[id].BlockOn)
	}
	for _, id := range st.DrillIDs() {
		if d := st.Drills[id]; d.Running() {
			add(d.BlockOn)
		}
	}
	return out
}
