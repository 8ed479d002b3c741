package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/agent"
	"github.com/evac-sh/evac/agent/gossip"
)

func newAgentCmd() *cobra.Command {
	var (
		configPath                   string
		region, nodeName, gossipAddr string
		join                         []string
		keyFile                      string
		fast, insecure               bool
		logLevel, logFormat          string
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a regional agent: health checks gossiped to the controllers",
		Example: `  evac agent --config /etc/evac/agent.yaml
  evac agent --config agent.yaml --region us-east --node-name use1-a --join 10.0.0.1:7946

agent.yaml:
  region: us-east
  node_name: use1-a
  gossip_addr: 10.1.0.5:7946
  join: [10.0.0.1:7946, 10.0.0.2:7946]
  gossip_key_file: /etc/evac/gossip.key
  checks:
    - {name: http, service: api, type: http, target: "http://10.1.0.10/healthz",
       interval: 5s, timeout: 2s, rise: 2, fall: 3}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg agent.Config
			var err error
			if configPath != "" {
				if cfg, err = agent.LoadConfig(configPath); err != nil {
					return usageErr(err)
				}
			} else {
				cfg, _ = agent.ParseConfig(nil)
			}
			fl := cmd.Flags()
			if fl.Changed("region") {
				cfg.Region = region
			}
			if fl.Changed("node-name") {
				cfg.NodeName = nodeName
			}
			if fl.Changed("gossip-addr") {
				cfg.GossipAddr = gossipAddr
			}
			if fl.Changed("join") {
				cfg.Join = join
			}
			if fl.Changed("gossip-key-file") {
				cfg.GossipKeyFile = keyFile
			}
			if err := cfg.Validate(); err != nil {
				return usageErr(err)
			}
			if err := requireGossipKey(cfg.GossipKeyFile, insecure); err != nil {
				return usageErr(err)
			}
			lg, err := newLogger(cmd, logLevel, logFormat)
			if err != nil {
				return usageErr(err)
			}
			defer func() { _ = lg.Sync() }()
			if insecure && cfg.GossipKeyFile == "" {
				lg.Warn("gossip is NOT encrypted (--insecure-no-gossip-key): anyone who reaches the gossip port can join the pool and inject health reports")
			}
			var opts []agent.Option
			if fast {
				opts = append(opts, agent.WithGossipProfile(gossip.ProfileFast))
			}
			a, err := agent.New(cfg, lg, opts...)
			if err != nil {
				return usageErr(err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			lg.Info("agent starting", zap.String("region", cfg.Region), zap.String("node", cfg.NodeName),
				zap.String("gossip", cfg.GossipAddr), zap.Int("checks", len(cfg.Checks)))
			if cfg.GossipKeyFile != "" {
				stopHUP := onSIGHUP(func() {
					if err := a.ReloadKeys(); err != nil {
						lg.Error("gossip key reload failed; keeping the current keys", zap.Error(err))
						return
					}
					lg.Info("gossip keys reloaded", zap.String("file", cfg.GossipKeyFile))
				})
				defer stopHUP()
			}
			return a.Run(ctx)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&configPath, "config", "", "agent config file (YAML; checks are listed there)")
	fl.StringVar(&region, "region", "", "region this agent reports for")
	fl.StringVar(&nodeName, "node-name", "", "unique node name in the gossip pool (default: host name)")
	fl.StringVar(&gossipAddr, "gossip-addr", "", "ip:port for gossip (bound and advertised)")
	fl.StringSliceVar(&join, "join", nil, "gossip seeds host:port,... (controllers or other agents)")
	fl.StringVar(&keyFile, "gossip-key-file", "", "file holding the gossip keys, one per line, the first primary (evac keygen); SIGHUP reloads it")
	fl.BoolVar(&insecure, "insecure-no-gossip-key", false, "run without a gossip key (unencrypted, unauthenticated gossip)")
	fl.BoolVar(&fast, "fast", false, "short gossip timeouts (all nodes on one host; tests)")
	addLogFlags(fl, &logLevel, &logFormat)
	return cmd
}
