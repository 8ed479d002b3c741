// Package devcluster runs the whole evac system in one process on loopback,
// for `evac dev`: three controllers, two agents per region and one demo
// health backend per region whose health can be flipped.
//
// Every node binds its own loopback address, as in a real deployment, so the
// fault tools that work on per-region subnets work on the demo too:
// region i's agents and backend live on 127.0.(i+1).0/24, controllers on
// 127.0.9.0/24. The admin APIs and DNS servers listen on 127.0.0.1 at the
// ports SPEC.md names, so that `dig @127.0.0.1 -p 5353` just works.
package devcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/evac-sh/evac/agent"
	"github.com/evac-sh/evac/agent/checks"
	"github.com/evac-sh/evac/controlplane/controller"
	"github.com/evac-sh/evac/controlplane/raftnode"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/dnsserver"
)

// Options configure the dev cluster.
type Options struct {
	Regions     []string
	Controllers int
	AgentsPer   int
	HTTPPort    int // controller i serves its API on 127.0.0.1:HTTPPort+i
	DNSPort     int // and DNS on 127.0.0.1:DNSPort+i
	RaftPort    int // Raft port on every node's own address (default 7300)
	GossipPort  int // gossip port on every node's own address (default 7946)
	DataDir     string
	Logger      *zap.Logger
	// Steering, when set, is applied instead of SteeringYAML(Regions).
	Steering string
	// SubnetOffset moves every node's loopback subnet up by this much
	// (controllers on 127.0.9+off.0/24, region i on 127.0.i+1+off.0/24), so
	// that two dev systems can run side by side.
	SubnetOffset int
	// DNSSEC: sign the zone with a new key (a CSK, ECDSAP256SHA256) made
	// under DataDir/dnssec, the same on every controller.
	DNSSEC bool
}

// Cluster is a running dev system.
type Cluster struct {
	opts        Options
	Controllers []*controller.Controller
	backends    map[string]*backend
	Endpoints   map[string][]string
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	tempDir     bool
	closeOnce   sync.Once
}

// backend is a region's demo health endpoint.
type backend struct {
	healthy atomic.Bool
	srv     *http.Server
	url     string
}

// Documentation-range addresses for the demo endpoints: they appear in DNS
// answers only; nothing ever connects to them.
var docNets = []string{"192.0.2.", "198.51.100.", "203.0.113."}

// endpoints returns two documentation addresses for region i.
func endpoints(i int) []string {
	base := docNets[i%len(docNets)]
	host := 11 + 10*(i/len(docNets))
	return []string{base + strconv.Itoa(host), base + strconv.Itoa(host+1)}
}

// SteeringYAML is the dev steering config: a fast policy so a failed region
// is out of every controller's answers within seconds.
func SteeringYAML(regions []string) string {
	s := "zone: example.com.\nttl: 30\nnameservers: {ns1: 192.0.2.53}\nregions:\n"
	for _, r := range regions {
		s += regionLine(r)
	}
	// api steers by proximity (topology below); web keeps the weighted split.
	s += "services:\n"
	for _, svc := range []string{"api: nearest", "web: weighted"} {
		name, policy, _ := strings.Cut(svc, ": ")
		s += "  - name: " + name + "\n    policy: " + policy + "\n    ttl: 30\n    endpoints:\n"
		for i, r := range regions {
			eps := endpoints(i)
			s += fmt.Sprintf("      %s: [%s, %s]\n", r, eps[0], eps[1])
		}
	}
	s += topologyYAML(regions)
	s += `policy:
  unhealthy_below: 0.5
  detect_after: 5s
  ramp: [50, 0]
  restore_ramp: [50, 100]
  step_interval: 5s
  mode: auto
  max_evacuated: 1
  budget: {per_day: 100, cooldown: 10s}
  hold_down: 30s
`
	return s
}

// Start brings up the dev system and returns once a leader has applied the
// steering config.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if len(opts.Regions) == 0 {
		opts.Regions = []string{"us-east", "us-west", "eu-west"}
	}
	if len(opts.Regions) > 8 {
		return nil, errors.New("at most 8 regions in dev mode")
	}
	for _, r := range opts.Regions {
		if !state.ValidName(r) {
			return nil, fmt.Errorf("region %q must be a lower-case DNS label", r)
		}
	}
	if opts.Controllers == 0 {
		opts.Controllers = 3
	}
	if opts.AgentsPer == 0 {
		opts.AgentsPer = 2
	}
	if opts.HTTPPort == 0 {
		opts.HTTPPort = 8080
	}
	if opts.RaftPort == 0 {
		opts.RaftPort = 7300
	}
	if opts.GossipPort == 0 {
		opts.GossipPort = 7946
	}
	if opts.DNSPort == 0 {
		opts.DNSPort = 5353
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	c := &Cluster{opts: opts, backends: map[string]*backend{}, Endpoints: map[string][]string{}}
	if c.opts.DataDir == "" {
		dir, err := os.MkdirTemp("", "evac-dev-")
		if err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		c.opts.DataDir, c.tempDir = dir, true
	}
	runCtx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	lg := opts.Logger

	for i, r := range opts.Regions {
		c.Endpoints[r] = endpoints(i)
		b, err := startBackend(fmt.Sprintf("127.0.%d.100:0", i+1+opts.SubnetOffset))
		if err != nil {
			return nil, fmt.Errorf("start demo backend for %s: %w", r, err)
		}
		c.backends[r] = b
	}

	var signing *dnsserver.DNSSECConfig
	if opts.DNSSEC {
		dir := filepath.Join(c.opts.DataDir, "dnssec")
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			if _, err := dnsserver.GenerateDNSSECKeys(dir, "example.com", "", false); err != nil {
				return nil, fmt.Errorf("dnssec keys: %w", err)
			}
		}
		ks, err := dnsserver.LoadDNSSECKeys(dir)
		if err != nil {
			return nil, err
		}
		signing = &dnsserver.DNSSECConfig{Keys: ks}
	}
	var peers []raftnode.Peer
	var seeds []string
	for i := 0; i < opts.Controllers; i++ {
		ip := fmt.Sprintf("127.0.%d.%d", 9+opts.SubnetOffset, i+1)
		peers = append(peers, raftnode.Peer{ID: fmt.Sprintf("c%d", i+1), Addr: fmt.Sprintf("%s:%d", ip, opts.RaftPort)})
		seeds = append(seeds, fmt.Sprintf("%s:%d", ip, opts.GossipPort))
	}
	for i := 0; i < opts.Controllers; i++ {
		ip := fmt.Sprintf("127.0.%d.%d", 9+opts.SubnetOffset, i+1)
		ctl, err := controller.Start(controller.Config{
			NodeID: peers[i].ID, DataDir: fmt.Sprintf("%s/%s", c.opts.DataDir, peers[i].ID),
			RaftAddr: peers[i].Addr, GossipAddr: fmt.Sprintf("%s:%d", ip, opts.GossipPort),
			HTTPAddr:  fmt.Sprintf("127.0.0.1:%d", opts.HTTPPort+i),
			DNSAddr:   fmt.Sprintf("127.0.0.1:%d", opts.DNSPort+i),
			Bootstrap: peers, Join: seeds, Fast: true, Dev: c, Logger: lg, DNSSEC: signing,
		})
		if err != nil {
			return nil, fmt.Errorf("start controller %s: %w", peers[i].ID, err)
		}
		c.Controllers = append(c.Controllers, ctl)
	}

	if err := c.applyConfig(ctx); err != nil {
		return nil, err
	}
	// Every agent has its own key, enrolled before it starts, so the dev
	// cluster runs as a real one should: only enrolled agents count.
	keys, err := c.enrollAgents(ctx)
	if err != nil {
		return nil, err
	}
	for i, r := range opts.Regions {
		for k := 0; k < opts.AgentsPer; k++ {
			ip := fmt.Sprintf("127.0.%d.%d", i+1+opts.SubnetOffset, k+1)
			name := agentName(r, k)
			cfg := agent.Config{
				Region: r, NodeName: name, KeyFile: keys[name], GossipAddr: fmt.Sprintf("%s:%d", ip, opts.GossipPort), Join: seeds,
				Checks: []checks.Check{{
					Name: "http", Service: "api", Type: checks.TypeHTTP, Target: c.backends[r].url,
					Interval: checks.Duration(time.Second), Timeout: checks.Duration(500 * time.Millisecond),
					Rise: 2, Fall: 2,
				}, {
					Name: "http", Service: "web", Type: checks.TypeHTTP, Target: c.backends[r].url,
					Interval: checks.Duration(time.Second), Timeout: checks.Duration(500 * time.Millisecond),
					Rise: 2, Fall: 2,
				}},
				RefreshInterval: checks.Duration(5 * time.Second),
			}
			a, err := agent.New(cfg, lg, agent.WithGossipProfile("fast"))
			if err != nil {
				return nil, fmt.Errorf("start agent %s: %w", cfg.NodeName, err)
			}
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				if err := a.Run(runCtx); err != nil {
					lg.Error("dev agent stopped", zap.String("agent", cfg.NodeName), zap.Error(err))
				}
			}()
		}
	}

	ok = true
	return c, nil
}

// applyConfig waits for a leader and applies the dev steering config unless
// the data dir already holds one.
func (c *Cluster) applyConfig(ctx context.Context) error {
	yaml := c.opts.Steering
	if yaml == "" {
		yaml = SteeringYAML(c.opts.Regions)
	}
	cfg, err := state.ParseConfig([]byte(yaml))
	if err != nil {
		return fmt.Errorf("dev steering config: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		ctl := c.Controllers[0]
		if ctl.State().Config != nil {
			return nil
		}
		res, err := ctl.Propose(ctx, state.CmdApplyConfig, "evac-dev", "dev-initial-config", state.NewApplyConfig(cfg))
		if err == nil {
			if res.Error != "" {
				return fmt.Errorf("apply dev steering config: %s", res.Error)
			}
			if err := putShippedRunbooks(ctx, ctl); err != nil {
				return err
			}
			return ctl.WaitApplied(ctx, res.Index)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no leader to apply the dev steering config: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func startBackend(addr string) (*backend, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	b := &backend{url: "http://" + ln.Addr().String() + "/health"}
	b.healthy.Store(true)
	b.srv = &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if b.healthy.Load() {
				_, _ = w.Write([]byte("ok\n"))
				return
			}
			http.Error(w, "failing (evac dev fail)", http.StatusServiceUnavailable)
		}),
	}
	go func() { _ = b.srv.Serve(ln) }()
	return b, nil
}

// FailRegion makes region's demo backend fail its health check.
func (c *Cluster) FailRegion(region string) error { return c.setHealthy(region, false) }

// HealRegion makes region's demo backend pass again.
func (c *Cluster) HealRegion(region string) error { return c.setHealthy(region, true) }

func (c *Cluster) setHealthy(region string, ok bool) error {
	b, found := c.backends[region]
	if !found {
		return fmt.Errorf("unknown region %q", region)
	}
	b.healthy.Store(ok)
	c.opts.Logger.Info("demo backend flipped", zap.String("region", region), zap.Bool("healthy", ok))
	return nil
}

// BackendURL is the health URL of region's demo backend.
func (c *Cluster) BackendURL(region string) string { return c.backends[region].url }

// DataDir is where the controllers keep their state.
func (c *Cluster) DataDir() string { return c.opts.DataDir }

// Close stops everything and removes a temporary data dir. Controllers
// stop first, then agents, then backends: a leader outliving the agents
// would watch them leave and, before the rule that left agents are no
// evidence, committed "no live agent" for every region, so the cluster
// came back frozen on the next start with the same --data-dir.
func (c *Cluster) Close() {
	c.closeOnce.Do(func() {
		// Stop the controllers together: one by one, the survivors would
		// spend the shutdown electing leaders and logging failed heartbeats.
		var wg sync.WaitGroup
		for _, ctl := range c.Controllers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = ctl.Close(context.Background())
			}()
		}
		wg.Wait()
		if c.cancel != nil {
			c.cancel()
		}
		c.wg.Wait()
		for _, b := range c.backends {
			_ = b.srv.Close()
		}
		if c.tempDir {
			_ = os.RemoveAll(c.opts.DataDir)
		}
	})
}
