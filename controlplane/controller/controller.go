package controller

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/evac-sh/evac/controlplane/api"
	"github.com/evac-sh/evac/controlplane/api/openapi"
	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/auditexport"
	"github.com/evac-sh/evac/controlplane/auth"
	"github.com/evac-sh/evac/controlplane/blocker"
	"github.com/evac-sh/evac/controlplane/drain"
	"github.com/evac-sh/evac/controlplane/drills"
	"github.com/evac-sh/evac/controlplane/fsm"
	"github.com/evac-sh/evac/controlplane/metrics"
	"github.com/evac-sh/evac/controlplane/notify"
	"github.com/evac-sh/evac/controlplane/raftnode"
	"github.com/evac-sh/evac/controlplane/spill"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/controlplane/steering"
	"github.com/evac-sh/evac/controlplane/ui"
	"github.com/evac-sh/evac/dnsserver"
	"github.com/evac-sh/evac/gossip"
	"github.com/evac-sh/evac/internal/connlimit"
	"github.com/evac-sh/evac/internal/logging"
)

// The FSM takes the log's committed tail when its node restarts.
var _ raftnode.ReplayingFSM = (*fsm.FSM)(nil)

// Config configures one controller.
type Config struct {
	NodeID   string
	DataDir  string
	RaftAddr string
	// RaftAdvertise, if set, is where the other controllers reach this
	// one's Raft (raftnode.Config.AdvertiseAddr).
	RaftAdvertise string
	GossipAddr    string
	HTTPAddr      string
	DNSAddr       string
	// DNSRateLimit limits UDP DNS responses per client subnet and second
	// (dnsserver.Config.RateLimit); 0 is off.
	DNSRateLimit int
	Bootstrap    []raftnode.Peer
	Join         []string
	GossipKey    []byte
	// GossipExtraKeys are further keys accepted during a key rotation.
	GossipExtraKeys [][]byte
	// Fast selects short Raft, gossip and steering timings (tests, `evac dev`).
	Fast bool
	// SnapshotThreshold, SnapshotInterval and TrailingLogs tune Raft
	// snapshots (raftnode.Config); zero values take raft's defaults.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// ReportStaleAfter: an agent's report not refreshed for this long is no
	// evidence; default DefaultReportStaleAfter (FastReportStaleAfter with
	// Fast).
	ReportStaleAfter time.Duration
	// Dev enables the /v1/dev fault-injection endpoints.
	Dev    api.DevHooks
	Logger *zap.Logger

	// Auth, when set, requires a bearer token from it on every API request
	// but /healthz and /readyz. Nil means no auth (evac dev, or
	// --insecure-no-auth).
	Auth *auth.Store
	// TLS, when set, serves the admin API over TLS.
	TLS *tls.Config
	// RaftTLS, when set, is mutual TLS for Raft and leader forwarding
	// (raftnode.Config.TLS).
	RaftTLS *tls.Config
	// GeoIPDB, when set, is a MaxMind DB file for the nearest policy's
	// country, continent and distance rules (geoip.go).
	GeoIPDB string

	// APIConns and DNSTCPConns cap the admin API's and DNS over TCP's live
	// connections, per client address and in all (connlimit); zero values
	// are no cap.
	APIConns    connlimit.Limits
	DNSTCPConns connlimit.Limits
	// EventsExport, if set, is a file every audit event this controller
	// applies is appended to as a JSON line (auditexport).
	EventsExport string
	// Warnings are shown in GET /v1/status (insecure settings in force,
	// e.g. --insecure-no-raft-tls).
	Warnings []string

	// DNSTSIG holds the TSIG keys for zone transfers and NOTIFY
	// (dnsserver.Config.TSIG); nil: none.
	DNSTSIG *dnsserver.Keyring

	// Edge runs this controller as an edge replica (edge.go): a Raft
	// non-voter that serves DNS and the read API from its replica,
	// forwards writes, never votes, runs none of the leader's loops and
	// does not join gossip (GossipAddr, Join and the gossip keys are
	// unused).
	Edge bool
	// DNSSEC, when set, signs the zone (dnsserver.Server.EnableDNSSEC);
	// nil: unsigned (dnssec.go).
	DNSSEC *dnsserver.DNSSECConfig
	// DNSIXFRJournal is how many zone changes the IXFR journal keeps
	// (dnsserver.Config.IXFRJournal: 0 the default, below 0 none).
	DNSIXFRJournal int
	// DNSBusyPoll is how long a UDP reader polls its empty socket before
	// it waits (dnsserver.Config.BusyPoll); 0: off.
	DNSBusyPoll time.Duration
}

// DNSSECKeys returns the keys of cfg.DNSSEC, nil without.
func (cfg *Config) DNSSECKeys() *dnsserver.DNSSECKeys {
	if cfg.DNSSEC == nil {
		return nil
	}
	return cfg.DNSSEC.Keys
}

// Controller is one running controller.
type Controller struct {
	cfg    Config
	logger *zap.Logger
	fsm    *fsm.FSM
	raft   *raftnode.Node
	gossip *gossip.Node
	dns    *dnsserver.Server
	dnssec dnssecCheck // dnssec.go
	http   *http.Server
	httpLn net.Listener
	engine *steering.Engine
	drills *drills.Engine
	drain  *drain.Measurer
	notify *notify.Notifier
	// spill: this controller's home-demand reports, and (leader) the
	// spill plans of regions whose weight is lowered.
	demand  *spill.Reporter
	planner *spill.Planner
	// cmdSupport caches whether every member applies a command type (spill.go).
	cmdSupport commandSupport

	// blockers evaluates block_on conditions while this node leads.
	blockers *blocker.Evaluator

	metrics *metrics.Metrics
	geo     *geoDB // nil without Config.GeoIPDB
	// authFails counts and logs refused API requests (nil without auth).
	authFails *auth.FailureLog
	// connRejects logs the connections refused over a cap.
	connRejects *logging.Limited

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Start starts a controller and returns once every listener is bound.
func Start(cfg Config) (*Controller, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	lg := cfg.Logger.With(zap.String("node", cfg.NodeID))
	c := &Controller{cfg: cfg, logger: lg, fsm: fsm.New(lg.Named("fsm"))}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	ok := false
	defer func() {
		if !ok {
			_ = c.Close(context.Background())
		}
	}()

	timing := raftnode.TimingDefault
	profile := gossip.ProfileLAN
	tick := time.Second
	if cfg.Fast {
		timing, profile, tick = raftnode.TimingFast, gossip.ProfileFast, 250*time.Millisecond
	}
	// The DNS server follows every state, including the ones Raft restores
	// and replays at start-up, but listens only once raftnode.New has
	// brought the last state back: before that it would answer from an
	// empty state (REFUSED), which the chaos suite caught on restarted
	// controllers.
	c.metrics = metrics.New(c)
	c.metrics.Registry().MustRegister(c.fsm.Collectors()...)
	// Connections refused over a cap are counted (evac_conns_rejected_total)
	// and logged at most once per interval.
	c.connRejects = logging.NewLimited(lg, zapcore.WarnLevel, "connection closed on accept: over a connection cap", 0)
	onReject := c.onReject
	c.dns = dnsserver.New(dnsserver.Config{Addr: cfg.DNSAddr, Logger: lg.Named("dns"), RateLimit: cfg.DNSRateLimit,
		TCPConns: cfg.DNSTCPConns, OnTCPReject: onReject("dns-tcp"), Observer: c.metrics.DNSObserver(), TSIG: cfg.DNSTSIG,
		IXFRJournal: cfg.DNSIXFRJournal, BusyPoll: cfg.DNSBusyPoll})
	c.metrics.Registry().MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "evac_dns_udp_busy_poll_reads_total",
		Help: "UDP reads that found queries while busy polling (--dns-busy-poll), each a sleep and wake-up saved.",
	}, func() float64 { return float64(c.dns.BusyPollReads()) }))
	if cfg.DNSSEC != nil {
		// Signed transfers wait for the first comparison of keys with
		// the leader's (dnssec.go).
		signing := *cfg.DNSSEC
		signing.AwaitKeyCheck = true
		if err := c.dns.EnableDNSSEC(signing); err != nil {
			return nil, err
		}
	}
	if cfg.GeoIPDB != "" {
		if err := c.startGeoIP(cfg.GeoIPDB); err != nil {
			return nil, err
		}
	}
	// Every state reaches DNS through the drain measurer, which starts
	// measuring a drill's lowered weight with the new answers and closes
	// each measurement at its deadline (controlplane/drain).
	c.drain = drain.NewMeasurer(cfg.NodeID, c.dns, c, lg.Named("drain"), 0)
	var export *auditexport.Exporter
	if cfg.EventsExport != "" {
		var err error
		if export, err = auditexport.Open(cfg.EventsExport, lg.Named("events-export")); err != nil {
			return nil, err
		}
	}
	exportEvents := func(st *state.State) {
		if export == nil {
			return
		}
		if err := export.Export(st.EventsSince(export.Last(), 0)); err != nil {
			lg.Error("audit events not exported; retrying with the next change", zap.Error(err))
		}
	}
	updates, unsubscribe := c.fsm.Subscribe()
	c.drain.Update(c.fsm.State())
	c.goFunc(func() {
		defer unsubscribe()
		if export != nil {
			defer export.Close()
		}
		due := time.NewTimer(time.Hour)
		defer due.Stop()
		rearm := func() {
			due.Stop()
			if next := c.drain.Next(); !next.IsZero() {
				due.Reset(time.Until(next))
			}
		}
		rearm()
		var seenEvents uint64
		for {
			select {
			case <-ctx.Done():
				c.drain.CloseAll()
				return
			case <-updates:
				st := c.fsm.State()
				c.drain.Update(st)
				exportEvents(st)
				if evs := st.EventsSince(seenEvents, 0); len(evs) > 0 {
					c.metrics.ObserveEvents(evs)
					seenEvents = evs[len(evs)-1].Seq
				}
			case <-due.C:
				c.drain.CloseDue()
			}
			rearm()
		}
	})

	var err error
	c.raft, err = raftnode.New(raftnode.Config{
		NodeID: cfg.NodeID, DataDir: cfg.DataDir, RaftAddr: cfg.RaftAddr, AdvertiseAddr: cfg.RaftAdvertise, Bootstrap: cfg.Bootstrap,
		Timing: timing, Logger: lg.Named("raft"), TLS: cfg.RaftTLS,
		SnapshotThreshold: cfg.SnapshotThreshold, SnapshotInterval: cfg.SnapshotInterval, TrailingLogs: cfg.TrailingLogs,
		Edge:          cfg.Edge,
		DNSSECKeys:    dnssecSummary(cfg.DNSSECKeys()),
		DNSSECKeyIDs:  dnssecIDs(cfg.DNSSECKeys()),
		KnownCommands: int(state.HighestCommandType()),
	}, c.fsm)
	if err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	// DNS listens only now that Raft has restored and replayed the last
	// state: a restarted controller never answers from an empty one.
	c.drain.Update(c.fsm.State())
	if err := c.dns.Start(); err != nil {
		return nil, fmt.Errorf("start DNS on %s: %w", cfg.DNSAddr, err)
	}
	c.goFunc(func() { c.drain.Run(ctx) })
	reportEvery, window := 10*time.Second, 60*time.Second
	if cfg.Fast {
		reportEvery, window = time.Second, 10*time.Second
	}
	c.demand = spill.NewReporter(cfg.NodeID, c.dns, c, lg.Named("spill"), reportEvery, window)
	c.goFunc(func() { c.demand.Run(ctx) })
	c.goFunc(func() { c.checkDNSSEC(ctx) })

	if cfg.Edge {
		// An edge judges no region: it stays out of the gossip pool, so
		// it neither probes agents nor vouches for or condemns them, and
		// builds none of the leader's engines (edge.go).
		if err := c.startAPI(); err != nil {
			return nil, err
		}
		ok = true
		return c, nil
	}
	c.gossip, err = gossip.New(gossip.Config{
		NodeName: cfg.NodeID, Region: "control", Role: gossip.RoleController, BindAddr: cfg.GossipAddr,
		Seeds: cfg.Join, Key: cfg.GossipKey, ExtraKeys: cfg.GossipExtraKeys, Profile: profile,
		Meta: map[string]string{"http": cfg.HTTPAddr, "dns": cfg.DNSAddr}, Logger: lg.Named("gossip"),
		Enrolment: enrolment{c.fsm},
	})
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.GossipAddr, err)
	}
	c.metrics.WatchAgents(c.fsm.State, c.gossip.Dropped)
	if st := c.fsm.State(); !st.AgentsEnforced() && cfg.Dev == nil { // evac dev enrols its agents itself
		lg.Warn("agent enrolment is not enforced: any holder of the gossip key can report health for any region; enrol every agent (evac agent enroll)",
			zap.String("policy", st.AgentPolicy()), zap.Int("agents-enrolled", len(st.Agents)))
	}
	c.metrics.Registry().MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "evac_gossip_garbage_total",
		Help: "Gossip packets and streams refused as undecodable, unauthenticated or malformed (logged at most once per 10 s).",
	}, func() float64 { return float64(c.gossip.GarbageInput()) }))

	c.engine = steering.NewEngine(steering.EngineConfig{
		Tick: tick, WarmUp: 10 * tick * 4, Logger: lg.Named("steering"),
	}, c, c)
	// block_on conditions are evaluated off the drill engine's tick, on
	// the leader only (leadership starts and stops the evaluator).
	c.blockers = blocker.New(blocker.Config{Interval: 5 * tick, Logger: lg.Named("blocker")},
		func() []state.Blocker { return blocker.Wanted(c.fsm.State()) })
	c.drills = drills.NewEngine(drills.Config{Tick: tick, Logger: lg.Named("drills"), Blockers: c.blockers}, c, c)
	c.notify = notify.New(notify.Config{Logger: lg.Named("notify")}, c.fsm, c)
	c.planner = spill.NewPlanner(c, c, lg.Named("spill"), tick)
	c.metrics.Registry().MustRegister(c.notify.Collectors()...)
	c.goFunc(func() { c.leadership(ctx) })
	if err := c.startAPI(); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// startAPI starts the admin API, the last step of Start (whose deferred
// cleanup closes what it opened on failure).
func (c *Controller) startAPI() error {
	cfg, lg := c.cfg, c.logger
	var err error
	c.httpLn, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen for the API on %s: %w", cfg.HTTPAddr, err)
	}
	// The caps count raw connections, under TLS: an over-cap one is closed
	// before its handshake.
	apiLn := connlimit.Wrap(c.httpLn, cfg.APIConns, c.onReject("api"))
	c.httpLn = apiLn
	c.metrics.Registry().MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "evac_conns_rejected_total",
		Help:        "Connections closed on accept for being over a per-address or total cap (--api-max-conns*, --dns-tcp-max-conns*).",
		ConstLabels: prometheus.Labels{"listener": "api"},
	}, func() float64 { return float64(apiLn.Rejected()) }), prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "evac_conns_rejected_total",
		Help:        "Connections closed on accept for being over a per-address or total cap (--api-max-conns*, --dns-tcp-max-conns*).",
		ConstLabels: prometheus.Labels{"listener": "dns-tcp"},
	}, func() float64 { return float64(c.dns.TCPRejected()) }))
	if cfg.TLS != nil {
		c.httpLn = tls.NewListener(c.httpLn, cfg.TLS)
	}
	handler := api.NewHandler(c, api.Options{Logger: lg.Named("api"), Dev: cfg.Dev, Cluster: c.raft, Extra: func(r *mux.Router) {
		r.Handle("/metrics", c.metrics.Handler()).Methods(http.MethodGet)
		ui.Mount(r)
		openapi.Mount(r)
	}})
	if cfg.Auth != nil {
		c.authFails = auth.NewFailureLog(lg.Named("auth"), 0)
		for _, reason := range []string{auth.FailMissingToken, auth.FailUnknownToken, auth.FailForbidden} {
			c.metrics.Registry().MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name:        "evac_auth_failures_total",
				Help:        "Admin API requests refused by authentication, by reason (logged at most once per 10 s per reason).",
				ConstLabels: prometheus.Labels{"reason": reason},
			}, func() float64 { return float64(c.authFails.Total(reason)) }))
		}
		handler = auth.Middleware(cfg.Auth, auth.Options{Logger: lg.Named("auth"), Failures: c.authFails}, handler)
	}
	c.http = api.NewHTTPServer(handler, zap.NewStdLog(lg.Named("http")))
	c.goFunc(func() {
		if err := c.http.Serve(c.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			lg.Error("API server stopped", zap.Error(err))
		}
	})
	lg.Info("controller started", zap.String("raft", cfg.RaftAddr), zap.String("gossip", cfg.GossipAddr),
		zap.String("http", c.httpLn.Addr().String()), zap.String("dns", cfg.DNSAddr), zap.Bool("edge", cfg.Edge))
	return nil
}

// onReject logs a connection listener refused over a cap.
func (c *Controller) onReject(listener string) func(netip.Addr, bool) {
	return func(addr netip.Addr, perIP bool) {
		c.connRejects.Log(zap.String("listener", listener), zap.Stringer("remote-ip", addr), zap.Bool("per-ip-cap", perIP))
	}
}

func (c *Controller) goFunc(f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

// leadership runs the steering and drill engines and the notifier while
// this node leads.
func (c *Controller) leadership(ctx context.Context) {
	var run *engineRun
	defer func() { run.stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case leader, ok := <-c.raft.LeaderCh():
			if !ok {
				return // raft shut down
			}
			switch {
			case leader && run == nil:
				run = startEngine(ctx, c.engine, c.drills, c.notify, c.blockers, c.planner)
			case !leader:
				run.stop()
				run = nil
			}
		}
	}
}

// engineRun is one term of leadership's engine goroutine.
type engineRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func startEngine(ctx context.Context, engines ...interface{ Run(context.Context) }) *engineRun {
	ctx, cancel := context.WithCancel(ctx)
	r := &engineRun{cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	for _, e := range engines {
		wg.Go(func() { e.Run(ctx) })
	}
	go func() {
		defer close(r.done)
		wg.Wait()
	}()
	return r
}

// stop cancels the run and waits for it; nil is a no-op.
func (r *engineRun) stop() {
	if r == nil {
		return
	}
	r.cancel()
	<-r.done
}

// Close stops the controller. It is safe to call more than once.
func (c *Controller) Close(ctx context.Context) error {
	var errs []error
	c.once.Do(func() {
		if c.http != nil {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := c.http.Shutdown(sctx); err != nil {
				errs = append(errs, fmt.Errorf("stop API: %w", err))
			}
			cancel()
		} else if c.httpLn != nil {
			_ = c.httpLn.Close()
		}
		c.cancel()
		if c.authFails != nil {
			c.authFails.Close()
		}
		if c.connRejects != nil {
			c.connRejects.Close()
		}
		if c.gossip != nil {
			_ = c.gossip.Leave(2 * time.Second)
			if err := c.gossip.Shutdown(); err != nil {
				errs = append(errs, fmt.Errorf("stop gossip: %w", err))
			}
		}
		if c.raft != nil {
			if err := c.raft.Shutdown(); err != nil {
				errs = append(errs, fmt.Errorf("stop raft: %w", err))
			}
		}
		c.wg.Wait()
		if c.dns != nil {
			if err := c.dns.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("stop DNS: %w", err))
			}
		}
		c.logger.Info("controller stopped")
	})
	return errors.Join(errs...)
}

// HTTPAddr is the bound API address.
func (c *Controller) HTTPAddr() string { return c.httpLn.Addr().String() }

// State is the local replica's current state.
func (c *Controller) State() *state.State { return c.fsm.State() }

// RetryingError is the error of the notification being retried for sink
// now, on the leader (GET /v1/notifications).
func (c *Controller) RetryingError(sink string) string {
	if c.notify == nil { // an edge delivers no notifications
		return ""
	}
	return c.notify.RetryingError(sink)
}

// Raft is the controller's Raft node (membership: `evac server
// --join-cluster` checks it was added).
func (c *Controller) Raft() *raftnode.Node { return c.raft }

// IsLeader reports whether this node leads.
func (c *Controller) IsLeader() bool { return c.raft.IsLeader() }

// Propose implements api.Backend and steering.Proposer.
func (c *Controller) Propose(ctx context.Context, t state.CommandType, actor, id string, body any) (state.Result, error) {
	start := time.Now()
	data, err := state.Encode(t, id, actor, start, body)
	if err != nil {
		return state.Result{}, err
	}
	resp, _, err := c.raft.Apply(ctx, data)
	c.metrics.ObserveApply(time.Since(start))
	if err != nil {
		return state.Result{}, fmt.Errorf("apply %s: %w", t, err)
	}
	var res state.Result
	if err := json.Unmarshal(resp, &res); err != nil {
		return state.Result{}, fmt.Errorf("decode %s result: %w", t, err)
	}
	return res, nil
}

// WaitApplied waits until the local replica has applied index.
func (c *Controller) WaitApplied(ctx context.Context, index uint64) error {
	updates, cancel := c.fsm.Subscribe()
	defer cancel()
	for c.fsm.State().Index < index {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for index %d (at %d): %w", index, c.fsm.State().Index, ctx.Err())
		case <-updates:
		}
	}
	return nil
}

// Ready reports whether this controller can serve writes and answers. An
// edge is ready once its replica has a config, leader or not: it exists to
// answer DNS when the voters cannot (static stability), and a load
// balancer's readiness check must not take it out then.
func (c *Controller) Ready() error {
	if c.cfg.Edge {
		if c.fsm.State().Config == nil {
			return errors.New("edge replica: no steering config replicated yet")
		}
		return nil
	}
	if id, _ := c.raft.Leader(); id == "" {
		return errors.New("no Raft leader known")
	}
	if c.fsm.State().Config == nil {
		return errors.New("no steering config applied")
	}
	return nil
}

// Status implements api.Backend.
func (c *Controller) Status() wire.Status {
	st := c.fsm.State()
	rs := c.raft.Stats()
	return wire.Status{
		NodeID: c.cfg.NodeID, Leader: rs.LeaderID, LeaderAddr: rs.LeaderAddr, IsLeader: rs.State == "Leader",
		Term: rs.Term, Frozen: st.Frozen, FrozenReason: st.FrozenReason, FrozenBy: st.FrozenBy, FrozenSince: st.FrozenSince(),
		ConfigVersion: st.ConfigVersion, AppliedIndex: st.Index, CommitIndex: rs.CommitIndex, Serial: st.Serial, SOASerial: c.dns.Serial(), RaftState: rs.State,
		Voters: c.voters(), GeoIP: c.geoStatus(), Warnings: c.warnings(), Role: c.role(), DNSSEC: c.dnssecStatus(),
	}
}

func (c *Controller) voters() []wire.Voter {
	peers, err := c.raft.Peers()
	if err != nil {
		c.logger.Debug("read raft configuration", zap.Error(err))
		return []wire.Voter{}
	}
	out := make([]wire.Voter, 0, len(peers))
	for _, p := range peers {
		if p.Suffrage == "Voter" {
			out = append(out, wire.Voter{ID: p.ID, Addr: p.Addr, Leader: p.Leader})
		}
	}
	return out
}
