package checks

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
)

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	// Checks to run; validated by NewRunner.
	Checks []Check
	// SourceIP, if set, is the address probes leave from (net.Dialer
	// LocalAddr), e.g. the agent's own loopback address. It is not used
	// where it cannot work: a loopback source towards a non-loopback target,
	// or a source of the other address family.
	SourceIP string
	// OnChange is called when a check's damped state flips, including its
	// first result (warming up) and the end of its warm-up. Called from the
	// check's goroutine, before OnResult.
	OnChange func(Result)
	// OnResult is called after every run. Callbacks of different checks may
	// run concurrently.
	OnResult func(Result)
	// MaxStagger bounds the random delay before each check's first run:
	// 0 means the check's interval, a negative value means no delay.
	MaxStagger time.Duration
	// Logger; nil means no logging.
	Logger *zap.Logger
}

// Runner runs a set of checks, one goroutine each.
type Runner struct {
	cfg    RunnerConfig
	checks []Check
	probes []prober
	log    *zap.Logger

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	latest  map[string]Result
	wg      sync.WaitGroup
}

// NewRunner validates the checks and prepares their probes.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	if err := ValidateAll(cfg.Checks); err != nil {
		return nil, err
	}
	var src net.IP
	if cfg.SourceIP != "" {
		if src = net.ParseIP(cfg.SourceIP); src == nil {
			return nil, fmt.Errorf("source IP %q is not an IP address", cfg.SourceIP)
		}
		if src.IsUnspecified() {
			src = nil
		}
	}
	dial := &sourceDialer{src: src, resolver: net.DefaultResolver}
	r := &Runner{cfg: cfg, log: cfg.Logger, latest: make(map[string]Result)}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	for _, c := range cfg.Checks {
		c = c.WithDefaults()
		var p prober
		switch c.Type {
		case TypeHTTP:
			hp, err := newHTTPProber(c, dial)
			if err != nil {
				return nil, fmt.Errorf("check %s: %w", c.Key(), err)
			}
			p = hp
		case TypeTCP:
			p = &tcpProber{dial: dial, target: c.Target}
		case TypeDNS:
			p = newDNSProber(c, dial)
		case TypePrometheus:
			pp, err := newPromProber(c, dial)
			if err != nil {
				return nil, fmt.Errorf("check %s: %w", c.Key(), err)
			}
			p = pp
		}
		r.checks = append(r.checks, c)
		r.probes = append(r.probes, p)
	}
	return r, nil
}

// Start launches the check goroutines; they stop when ctx is done or Stop
// is called. Start may be called once.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return errors.New("checks: runner already started")
	}
	r.started = true
	ctx, r.cancel = context.WithCancel(ctx)
	for i := range r.checks {
		r.wg.Add(1)
		go r.loop(ctx, r.checks[i], r.probes[i])
	}
	return nil
}

// Stop cancels every check and waits for their goroutines to return.
// Safe to call more than once, and before Start.
func (r *Runner) Stop() {
	r.mu.Lock()
	cancel := r.cancel
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	r.wg.Wait()
}

// Results returns the latest result of every check that has run, sorted
// by service and check.
func (r *Runner) Results() []Result {
	r.mu.Lock()
	out := make([]Result, 0, len(r.latest))
	for _, res := range r.latest {
		out = append(out, res)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Check < out[j].Check
	})
	return out
}

func (r *Runner) stagger(c Check) time.Duration {
	limit := c.Interval.D()
	if r.cfg.MaxStagger < 0 {
		return 0
	}
	if r.cfg.MaxStagger > 0 && r.cfg.MaxStagger < limit {
		limit = r.cfg.MaxStagger
	}
	if limit <= 0 {
		return 0
	}
	return rand.N(limit)
}

func (r *Runner) loop(ctx context.Context, c Check, p prober) {
	defer r.wg.Done()
	d := newDamper(c.Rise, c.Fall)
	timer := time.NewTimer(r.stagger(c))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		r.runOnce(ctx, c, p, d)
		timer.Reset(c.Interval.D())
	}
}

func (r *Runner) runOnce(ctx context.Context, c Check, p prober, d *damper) {
	raw, out, latency := runProbe(ctx, p, c.Timeout.D())
	if ctx.Err() != nil {
		return // stopping: the failure is ours, not the endpoint's
	}
	state, changed := d.observe(raw)
	if pend := d.pending(); pend != "" {
		out = "(" + pend + ") " + out
	}
	res := Result{
		Check:   c.Name,
		Service: c.Service,
		Status:  state,
		Output:  CapOutput(out),
		Time:    time.Now(),
		Latency: latency,
	}
	r.mu.Lock()
	r.latest[c.Key()] = res
	r.mu.Unlock()
	if changed {
		r.log.Info("check state changed",
			zap.String("service", c.Service), zap.String("check", c.Name),
			zap.String("status", string(state)), zap.String("output", res.Output))
		if r.cfg.OnChange != nil {
			r.cfg.OnChange(res)
		}
	}
	if r.cfg.OnResult != nil {
		r.cfg.OnResult(res)
	}
}
