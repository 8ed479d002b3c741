package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/agent"
	"github.com/evac-sh/evac/gossip"
	"github.com/evac-sh/evac/internal/cli"
)

func newAgentCmd() *cobra.Command {
	var (
		configPath                   string
		region, nodeName, gossipAddr string
		join                         []string
		keyFile, identityFile        string
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
  key_file: /etc/evac/agent.key      # evac agent keygen; enrolled with evac agent enroll
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
			if fl.Changed("key-file") {
				cfg.KeyFile = identityFile
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
	fl.StringVar(&identityFile, "key-file", "", "this agent's private key (evac agent keygen), mode 0600; reports are signed with it")
	fl.BoolVar(&insecure, "insecure-no-gossip-key", false, "run without a gossip key (unencrypted, unauthenticated gossip)")
	fl.BoolVar(&fast, "fast", false, "short gossip timeouts (all nodes on one host; tests)")
	addLogFlags(fl, &logLevel, &logFormat)
	cmd.AddCommand(newAgentKeygenCmd())
	cmd.AddCommand(cli.AgentClientCommands()...)
	return cmd
}

func newAgentKeygenCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Create an agent's key pair: the private key to FILE (mode 0600), the public key printed",
		Long: `Writes a new Ed25519 private key to FILE (PEM, mode 0600; an existing file is
never overwritten) and prints its public key, which an admin enrols with
` + "`evac agent enroll NAME --region R --public-key KEY`" + `. Point the agent at FILE
with key_file in its config or --key-file.`,
		Example: `  evac agent keygen --out /etc/evac/agent.key`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageErr(errors.New("--out FILE is required"))
			}
			pub, err := agent.GenerateIdentity(out)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), agent.EncodePublicKey(pub))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the private key to (required)")
	return cmd
}
