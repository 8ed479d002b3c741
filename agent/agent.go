package agent

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/evac-sh/evac/agent/checks"
	"github.com/evac-sh/evac/gossip"
	"go.uber.org/zap"
)

// Option adjusts an Agent.
type Option func(*options)

type options struct {
	profile      string
	sourceIP     *string
	leaveTimeout time.Duration
}

// WithGossipProfile selects the gossip timings: gossip.ProfileLAN
// (default) or gossip.ProfileFast (tests, `evac dev`).
func WithGossipProfile(p string) Option { return func(o *options) { o.profile = p } }

// WithCheckSourceIP sets the address checks leave from; "" lets the kernel
// choose. By default it is the gossip IP when that is a specific address.
func WithCheckSourceIP(ip string) Option { return func(o *options) { o.sourceIP = &ip } }

// WithLeaveTimeout bounds the graceful leave when Run ends; default 3s.
func WithLeaveTimeout(d time.Duration) Option { return func(o *options) { o.leaveTimeout = d } }

// Agent runs checks and gossips their results.
type Agent struct {
	cfg    Config
	log    *zap.Logger
	opts   options
	keys   [][]byte           // gossip keyring, primary first; nil: no encryption
	signer ed25519.PrivateKey // key_file; nil: reports unsigned
	runner *checks.Runner

	mu       sync.Mutex
	ran      bool
	node     *gossip.Node
	lastPub  map[string]time.Time
	capKnown bool    // capValue holds a figure from capacity_url
	capValue float64 // last figure fetched from capacity_url
	wg       sync.WaitGroup
}

// New validates cfg, reads the gossip key file and prepares the checks.
// Nothing is bound until Run.
func New(cfg Config, logger *zap.Logger, opts ...Option) (*Agent, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	// The node names every line of this agent's, its gossip node's included
	// (gossip adds no "node" of its own: a controller's logger has one too).
	a := &Agent{cfg: cfg, log: logger.With(zap.String("node", cfg.NodeName)), opts: options{leaveTimeout: 3 * time.Second}, lastPub: map[string]time.Time{}}
	for _, o := range opts {
		o(&a.opts)
	}
	if cfg.GossipKeyFile != "" {
		keys, err := ReadKeyring(cfg.GossipKeyFile)
		if err != nil {
			return nil, err
		}
		a.keys = keys
	}
	if cfg.KeyFile != "" {
		k, err := ReadIdentity(cfg.KeyFile)
		if err != nil {
			return nil, err
		}
		a.signer = k
	}
	src := defaultSourceIP(cfg.GossipAddr)
	if a.opts.sourceIP != nil {
		src = *a.opts.sourceIP
	}
	runner, err := checks.NewRunner(checks.RunnerConfig{
		Checks:   cfg.Checks,
		SourceIP: src,
		OnChange: func(r checks.Result) { a.publish(r, true) },
		OnResult: func(r checks.Result) { a.publish(r, false) },
		Logger:   logger.Named("checks"),
	})
	if err != nil {
		return nil, err
	}
	a.runner = runner
	return a, nil
}

func defaultSourceIP(gossipAddr string) string {
	host, _, err := net.SplitHostPort(gossipAddr)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return ip.String()
	}
	return ""
}

// Run joins the gossip pool, runs the checks and publishes their results
// until ctx is done, then stops the checks and leaves the pool. It returns
// nil after a graceful stop. Run may be called once.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.ran {
		a.mu.Unlock()
		return errors.New("agent: Run called twice")
	}
	a.ran = true
	a.mu.Unlock()

	var key []byte
	var extra [][]byte
	if len(a.keys) > 0 {
		key, extra = a.keys[0], a.keys[1:]
	}
	node, err := gossip.New(gossip.Config{
		NodeName:   a.cfg.NodeName,
		Region:     a.cfg.Region,
		Role:       gossip.RoleAgent,
		BindAddr:   a.cfg.GossipAddr,
		Seeds:      a.cfg.Join,
		Key:        key,
		ExtraKeys:  extra,
		SigningKey: a.signer,
		Profile:    a.opts.profile,
		Logger:     a.log.Named("gossip"),
	})
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.node = node
	a.mu.Unlock()
	a.log.Info("agent started", zap.String("region", a.cfg.Region),
		zap.String("gossip-addr", node.LocalAddr()), zap.Int("checks", len(a.cfg.Checks)))
	if a.signer != nil {
		a.log.Info("reports are signed", zap.String("public-key", EncodePublicKey(a.signer.Public().(ed25519.PublicKey))))
	} else {
		a.log.Warn("reports are NOT signed (no key_file): controllers that enforce agent enrolment drop them; create a key with `evac agent keygen` and enrol it")
	}

	if a.cfg.CapacityURL != "" {
		a.wg.Add(1)
		go func() { defer a.wg.Done(); a.pollCapacity(ctx) }()
	}
	if err := a.runner.Start(ctx); err != nil {
		_ = node.Shutdown()
		a.wg.Wait()
		return err
	}
	<-ctx.Done()
	a.runner.Stop()
	a.wg.Wait()
	if err := node.Leave(a.opts.leaveTimeout); err != nil {
		a.log.Warn("gossip leave incomplete", zap.Error(err))
	}
	if err := node.Shutdown(); err != nil {
		a.log.Warn("gossip shutdown", zap.Error(err))
	}
	a.log.Info("agent stopped")
	return nil
}

// ReloadKeys re-reads the gossip key file and installs its keys (the first
// primary) in the running pool; see ReadKeyring for the rotation steps.
func (a *Agent) ReloadKeys() error {
	if a.cfg.GossipKeyFile == "" {
		return errors.New("agent: no gossip key file configured")
	}
	keys, err := ReadKeyring(a.cfg.GossipKeyFile)
	if err != nil {
		return err
	}
	a.mu.Lock()
	node := a.node
	a.mu.Unlock()
	if node == nil {
		return errors.New("agent: not running")
	}
	return node.SetKeys(keys)
}

// publish gossips a result: always on a state change, otherwise at most
// once per refresh interval per check.
func (a *Agent) publish(r checks.Result, changed bool) {
	key := r.Service + "/" + r.Check
	now := time.Now()
	a.mu.Lock()
	node := a.node
	// 10% slack: a check whose interval equals the refresh interval must
	// not skip every other run because of timer jitter.
	refresh := a.cfg.RefreshInterval.D() * 9 / 10
	if node == nil || (!changed && now.Sub(a.lastPub[key]) < refresh) {
		a.mu.Unlock()
		return
	}
	a.lastPub[key] = now
	a.mu.Unlock()
	node.Publish(gossip.Report{
		Service:  r.Service,
		Check:    r.Check,
		Status:   string(r.Status),
		Output:   r.Output,
		Time:     r.Time,
		Capacity: a.capacity(),
	})
}
