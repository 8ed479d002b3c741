package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/agent"
	"github.com/evac-sh/evac/controlplane/controller"
	"github.com/evac-sh/evac/controlplane/raftnode"
	"github.com/evac-sh/evac/dnsserver"
)

// Raft snapshot defaults: hashicorp/raft's own (raft.DefaultConfig).
const (
	defaultSnapshotThreshold = 8192
	defaultSnapshotInterval  = 2 * time.Minute
	defaultTrailingLogs      = 10240
)

// --dnssec-transfer values.
const (
	dnssecTransferSigned   = "signed"
	dnssecTransferUnsigned = "unsigned"
)

// serverFile is the controller's config file; every key is also a flag
// (flags win).
type serverFile struct {
	NodeID        string `yaml:"node_id"`
	DataDir       string `yaml:"data_dir"`
	RaftAddr      string `yaml:"raft_addr"`
	RaftAdvertise string `yaml:"raft_advertise_addr"`
	GossipAddr    string `yaml:"gossip_addr"`
	HTTPAddr      string `yaml:"http_addr"`
	DNSAddr       string `yaml:"dns_addr"`
	DNSRateLimit  int    `yaml:"-"`
	// DNSBusyPoll is how long a UDP reader polls an empty socket before
	// it sleeps (dnsserver.Config.BusyPoll; docs/operations.md).
	DNSBusyPoll time.Duration `yaml:"dns_busy_poll"`
	TSIGKeys    string        `yaml:"tsig_keys"`
	// DNSSEC signing (docs/dnssec.md): the key directory and the
	// signatures' validity, refresh and inception offset.
	DNSSECKeys            string        `yaml:"dnssec_keys"`
	DNSSECValidity        time.Duration `yaml:"dnssec_validity"`
	DNSSECRefresh         time.Duration `yaml:"dnssec_refresh"`
	DNSSECInceptionOffset time.Duration `yaml:"dnssec_inception_offset"`
	// DNSSECTransfer is what AXFR/IXFR give when signing: "signed" (the
	// default) or "unsigned" (docs/dnssec.md, "Zone transfers").
	DNSSECTransfer string   `yaml:"dnssec_transfer"`
	Bootstrap      string   `yaml:"bootstrap"`
	Join           []string `yaml:"join"`
	GossipKeyFile  string   `yaml:"gossip_key_file"`
	GeoIPDB        string   `yaml:"geoip_db"`
	Fast           bool     `yaml:"fast"`
	// Edge runs an edge replica: a Raft non-voter serving DNS and reads
	// (controller.Config.Edge).
	Edge bool `yaml:"edge"`
	// Raft snapshots: every SnapshotThreshold entries, checked every
	// SnapshotInterval, keeping TrailingLogs entries after each.
	SnapshotThreshold uint64        `yaml:"snapshot_threshold"`
	SnapshotInterval  time.Duration `yaml:"snapshot_interval"`
	TrailingLogs      uint64        `yaml:"snapshot_trailing_logs"`
	// InsecureNoGossipKey allows running without a gossip key.
	InsecureNoGossipKey bool   `yaml:"insecure_no_gossip_key"`
	LogLevel            string `yaml:"log_level"`
	LogFormat           string `yaml:"log_format"`
	securityFlags       `yaml:",inline"`
	joinFlags           `yaml:",inline"` // join.go
	limitFlags          `yaml:",inline"` // limits.go
}

func newServerCmd() *cobra.Command {
	var f serverFile
	var configPath string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a controller (Raft member, DNS server, admin API)",
		Example: `  evac server --node-id c1 --data-dir /var/lib/evac \
    --raft-addr 10.0.0.1:7300 --gossip-addr 10.0.0.1:7946 \
    --http-addr 10.0.0.1:8080 --dns-addr 10.0.0.1:53 \
    --bootstrap c1=10.0.0.1:7300,c2=10.0.0.2:7300,c3=10.0.0.3:7300 \
    --join 10.0.0.2:7946,10.0.0.3:7946 --gossip-key-file /etc/evac/gossip.key
  evac server --config /etc/evac/server.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath != "" {
				var file serverFile
				if err := loadYAMLStrict(configPath, &file); err != nil {
					return usageErr(err)
				}
				mergeFlags(cmd.Flags(), &f, file)
			}
			cfg, err := f.controllerConfig()
			if err != nil {
				return usageErr(err)
			}
			lg, err := newLogger(cmd, f.LogLevel, f.LogFormat)
			if err != nil {
				return usageErr(err)
			}
			defer func() { _ = lg.Sync() }()
			cfg.Logger = lg
			f.limitFlags.apply(&cfg, lg)
			if err := f.securityFlags.apply(&cfg, lg, cmd.ErrOrStderr()); err != nil {
				return usageErr(err)
			}
			defer reloadOnSIGHUP(cfg.Auth, lg)()
			if f.TSIGKeys != "" {
				kr, err := dnsserver.LoadKeyring(f.TSIGKeys, lg.Named("tsig"))
				if err != nil {
					return usageErr(fmt.Errorf("--tsig-keys: %w", err))
				}
				cfg.DNSTSIG = kr
				lg.Info("TSIG keys loaded", zap.String("file", f.TSIGKeys), zap.Strings("keys", kr.Names()))
				// Reload logs its own errors and keeps the last good keys.
				defer onSIGHUP(func() { _ = kr.Reload() })()
			}
			if f.DNSSECKeys != "" {
				ks, err := dnsserver.LoadDNSSECKeys(f.DNSSECKeys)
				if err != nil {
					return usageErr(fmt.Errorf("--dnssec-keys: %w", err))
				}
				cfg.DNSSEC = &dnsserver.DNSSECConfig{Keys: ks, Validity: f.DNSSECValidity,
					Refresh: f.DNSSECRefresh, InceptionOffset: f.DNSSECInceptionOffset,
					UnsignedTransfers: f.DNSSECTransfer == dnssecTransferUnsigned}
				lg.Info("DNSSEC keys loaded", zap.String("dir", f.DNSSECKeys), zap.Strings("keys", ks.Describe()))
			}
			if f.GossipKeyFile == "" && !f.Edge {
				lg.Warn(warnNoGossipKey)
				cfg.Warnings = append(cfg.Warnings, warnNoGossipKey)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			adv := cfg.RaftAdvertise
			if adv == "" {
				adv = cfg.RaftAddr
			}
			j, err := f.joinFlags.newJoiner(cfg.NodeID, adv, f.Edge, lg) // join.go
			if err != nil {
				return usageErr(err)
			}
			c, err := controller.Start(cfg)
			if err != nil {
				return err
			}
			stopJoin := func() {}
			if j != nil {
				stopJoin = j.start(ctx, func() bool {
					s, ok := c.Raft().HasMember(cfg.NodeID)
					return ok && (!f.Edge || s == "Nonvoter")
				})
			}
			if f.DNSSECKeys != "" {
				// ReloadDNSSECKeys logs its errors, keeps the keys in force and
				// says why in GET /v1/status.
				defer onSIGHUP(func() { _ = c.ReloadDNSSECKeys() })()
			}
			if f.GeoIPDB != "" {
				stopGeoHUP := onSIGHUP(func() { _ = c.ReloadGeoIP(ctx) }) // logs, metrics, status and an event say how it went
				defer stopGeoHUP()
			}
			if f.GossipKeyFile != "" {
				stopHUP := onSIGHUP(func() {
					keys, err := agent.ReadKeyring(f.GossipKeyFile)
					if err == nil {
						err = c.SetGossipKeys(keys)
					}
					if err != nil {
						lg.Error("gossip key reload failed; keeping the current keys", zap.Error(err))
						return
					}
					lg.Info("gossip keys reloaded", zap.String("file", f.GossipKeyFile), zap.Int("keys", len(keys)))
				})
				defer stopHUP()
			}
			lg.Info("serving; send SIGINT or SIGTERM to stop", zap.String("http", c.HTTPAddr()))
			<-ctx.Done()
			stopJoin()
			return c.Close(context.Background())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&configPath, "config", "", "YAML file with the keys below (node_id, data_dir, ...); flags win")
	fl.StringVar(&f.NodeID, "node-id", "", "this controller's stable Raft ID")
	fl.StringVar(&f.DataDir, "data-dir", "", "directory for the Raft log and snapshots")
	fl.StringVar(&f.RaftAddr, "raft-addr", "127.0.0.1:7300", "ip:port for Raft (bound, and advertised unless --raft-advertise-addr)")
	fl.StringVar(&f.RaftAdvertise, "raft-advertise-addr", "", "ip:port the other controllers reach this one's Raft at, when not --raft-addr (a proxy in between)")
	fl.StringVar(&f.GossipAddr, "gossip-addr", "127.0.0.1:7946", "ip:port for gossip (bound and advertised)")
	fl.StringVar(&f.HTTPAddr, "http-addr", "127.0.0.1:8080", "ip:port for the admin API")
	fl.StringVar(&f.DNSAddr, "dns-addr", "127.0.0.1:5353", "ip:port for DNS (UDP and TCP)")
	fl.IntVar(&f.DNSRateLimit, "dns-rate-limit", dnsserver.DefaultRateLimit, "UDP DNS responses per second to each client /24 or /56; over it, drop or send TC (0: off)")
	fl.DurationVar(&f.DNSBusyPoll, "dns-busy-poll", 0, "keep polling an empty UDP socket this long before sleeping (up to 1ms; Linux): lower DNS latency for up to a core of CPU (0: off)")
	fl.StringVar(&f.TSIGKeys, "tsig-keys", "", "YAML file of TSIG keys for zone transfers and NOTIFY: keys: [{name, algorithm, secret}] (evac tsig keygen); mode 600; SIGHUP reloads it")
	fl.StringVar(&f.DNSSECKeys, "dnssec-keys", "", "directory of DNSSEC keys to sign the zone with (evac dnssec keygen), the same on every controller; private keys mode 600; SIGHUP reloads it")
	fl.DurationVar(&f.DNSSECValidity, "dnssec-validity", dnsserver.DefaultSignatureValidity, "how long a DNSSEC signature is valid from its inception")
	fl.DurationVar(&f.DNSSECRefresh, "dnssec-refresh", 0, "re-sign when less than this validity is left (0: half the validity)")
	fl.DurationVar(&f.DNSSECInceptionOffset, "dnssec-inception-offset", dnsserver.DefaultInceptionOffset, "how far before signing a signature's validity starts (clock skew)")
	fl.StringVar(&f.DNSSECTransfer, "dnssec-transfer", dnssecTransferSigned, "what zone transfers give secondaries when the server signs: signed (DNSKEY, NSEC, RRSIG; the serial moves with each signing period) or unsigned (for secondaries that sign themselves)")
	fl.StringVar(&f.Bootstrap, "bootstrap", "", "initial voters id=host:port,... (the same list on every node)")
	fl.StringSliceVar(&f.Join, "join", nil, "gossip seeds host:port,...")
	fl.StringVar(&f.GossipKeyFile, "gossip-key-file", "", "file holding the gossip keys, one per line, the first primary (evac keygen); SIGHUP reloads it")
	fl.StringVar(&f.GeoIPDB, "geoip-db", "", "GeoIP2/GeoLite2 (Country or City) database for the nearest policy's country, continent and distance rules; SIGHUP reloads it")
	fl.BoolVar(&f.InsecureNoGossipKey, "insecure-no-gossip-key", false, "run without a gossip key (unencrypted, unauthenticated gossip)")
	fl.BoolVar(&f.Fast, "fast", false, "short Raft/gossip timeouts (all nodes on one host; tests)")
	fl.BoolVar(&f.Edge, "edge", false, "run an edge replica: a Raft non-voter that serves steered DNS and the read API from its own replica, forwards writes, never votes, runs no leader loops and joins no gossip (with --join-cluster)")
	fl.Uint64Var(&f.SnapshotThreshold, "snapshot-threshold", defaultSnapshotThreshold, "take a Raft snapshot (and compact the log) after this many new log entries")
	fl.DurationVar(&f.SnapshotInterval, "snapshot-interval", defaultSnapshotInterval, "how often to check --snapshot-threshold (a random wait of 1 to 2 times this)")
	fl.Uint64Var(&f.TrailingLogs, "snapshot-trailing-logs", defaultTrailingLogs, "log entries kept after a snapshot, so a lagging follower catches up without a snapshot transfer")
	addSecurityFlags(fl, &f.securityFlags)
	addJoinFlags(fl, &f.joinFlags)
	addLimitFlags(fl, &f.limitFlags)
	addLogFlags(fl, &f.LogLevel, &f.LogFormat)
	return cmd
}

// mergeFlags fills every field of dst whose flag was not set on the command
// line from the config file.
func mergeFlags(fl *pflag.FlagSet, dst *serverFile, file serverFile) {
	set := func(name string, apply func()) {
		if !fl.Changed(name) {
			apply()
		}
	}
	str := func(name string, d *string, v string) {
		if v != "" {
			set(name, func() { *d = v })
		}
	}
	str("node-id", &dst.NodeID, file.NodeID)
	str("data-dir", &dst.DataDir, file.DataDir)
	str("raft-addr", &dst.RaftAddr, file.RaftAddr)
	str("raft-advertise-addr", &dst.RaftAdvertise, file.RaftAdvertise)
	str("gossip-addr", &dst.GossipAddr, file.GossipAddr)
	str("http-addr", &dst.HTTPAddr, file.HTTPAddr)
	str("dns-addr", &dst.DNSAddr, file.DNSAddr)
	str("bootstrap", &dst.Bootstrap, file.Bootstrap)
	if file.DNSRateLimitKey != nil {
		set("dns-rate-limit", func() { dst.DNSRateLimit = *file.DNSRateLimitKey })
	}
	str("gossip-key-file", &dst.GossipKeyFile, file.GossipKeyFile)
	str("geoip-db", &dst.GeoIPDB, file.GeoIPDB)
	str("tsig-keys", &dst.TSIGKeys, file.TSIGKeys)
	str("dnssec-keys", &dst.DNSSECKeys, file.DNSSECKeys)
	str("dnssec-transfer", &dst.DNSSECTransfer, file.DNSSECTransfer)
	for name, d := range map[string]struct{ dst, v *time.Duration }{
		"dnssec-validity":         {&dst.DNSSECValidity, &file.DNSSECValidity},
		"dnssec-refresh":          {&dst.DNSSECRefresh, &file.DNSSECRefresh},
		"dnssec-inception-offset": {&dst.DNSSECInceptionOffset, &file.DNSSECInceptionOffset},
		"dns-busy-poll":           {&dst.DNSBusyPoll, &file.DNSBusyPoll},
	} {
		if *d.v != 0 {
			set(name, func() { *d.dst = *d.v })
		}
	}
	str("log-level", &dst.LogLevel, file.LogLevel)
	str("log-format", &dst.LogFormat, file.LogFormat)
	if len(file.Join) > 0 {
		set("join", func() { dst.Join = file.Join })
	}
	if file.Fast {
		set("fast", func() { dst.Fast = true })
	}
	if file.Edge {
		set("edge", func() { dst.Edge = true })
	}
	if file.SnapshotThreshold != 0 {
		set("snapshot-threshold", func() { dst.SnapshotThreshold = file.SnapshotThreshold })
	}
	if file.SnapshotInterval != 0 {
		set("snapshot-interval", func() { dst.SnapshotInterval = file.SnapshotInterval })
	}
	if file.TrailingLogs != 0 {
		set("snapshot-trailing-logs", func() { dst.TrailingLogs = file.TrailingLogs })
	}
	mergeSecurity(fl, &dst.securityFlags, file.securityFlags)
	mergeJoin(fl, &dst.joinFlags, file.joinFlags)
	mergeLimits(fl, &dst.limitFlags, file.limitFlags)
	if file.InsecureNoGossipKey {
		set("insecure-no-gossip-key", func() { dst.InsecureNoGossipKey = true })
	}
}

func (f serverFile) controllerConfig() (controller.Config, error) {
	var errs []error
	if f.NodeID == "" {
		errs = append(errs, errors.New("--node-id is required"))
	}
	if f.DataDir == "" {
		errs = append(errs, errors.New("--data-dir is required"))
	}
	// Zero (a config file without the key) means raft's default.
	if f.SnapshotInterval != 0 && f.SnapshotInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("--snapshot-interval: must be at least 10ms, got %s", f.SnapshotInterval))
	}
	if f.DNSSECKeys != "" {
		if err := (dnsserver.DNSSECConfig{Keys: &dnsserver.DNSSECKeys{Keys: []*dnsserver.DNSSECKey{{}}}, Validity: f.DNSSECValidity,
			Refresh: f.DNSSECRefresh, InceptionOffset: f.DNSSECInceptionOffset}).Check(); err != nil {
			errs = append(errs, fmt.Errorf("--dnssec-validity, --dnssec-refresh, --dnssec-inception-offset: %w", err))
		}
	}
	switch f.DNSSECTransfer {
	case "", dnssecTransferSigned, dnssecTransferUnsigned: // "": the default, signed
	default:
		errs = append(errs, fmt.Errorf("--dnssec-transfer: %q is neither %s nor %s", f.DNSSECTransfer, dnssecTransferSigned, dnssecTransferUnsigned))
	}
	if f.DNSRateLimit < 0 {
		errs = append(errs, fmt.Errorf("--dns-rate-limit: must not be negative, got %d", f.DNSRateLimit))
	}
	if err := checkBusyPoll(f.DNSBusyPoll); err != nil {
		errs = append(errs, err)
	}
	if err := f.limitFlags.validate(); err != nil {
		errs = append(errs, err)
	}
	peers, err := raftnode.ParsePeers(f.Bootstrap)
	if err != nil {
		errs = append(errs, fmt.Errorf("--bootstrap: %w", err))
	}
	listeners := map[string]string{"--raft-addr": f.RaftAddr, "--gossip-addr": f.GossipAddr,
		"--http-addr": f.HTTPAddr, "--dns-addr": f.DNSAddr}
	if f.Edge {
		delete(listeners, "--gossip-addr") // unused: an edge joins no gossip
	}
	addrs := map[string]string{}
	for flag, a := range listeners {
		if other, dup := addrs[a]; dup && flag != "--dns-addr" && other != "--dns-addr" {
			errs = append(errs, fmt.Errorf("%s and %s must differ (both %s)", flag, other, a))
		}
		addrs[a] = flag
	}
	var keys [][]byte
	if f.Edge {
		// An edge judges no region, so it stays out of the gossip pool;
		// a gossip setting would suggest otherwise.
		if len(f.Join) > 0 {
			errs = append(errs, errors.New("--join: an edge replica (--edge) does not join gossip; drop --join (it reaches the cluster with --join-cluster)"))
		}
		if f.GossipKeyFile != "" {
			errs = append(errs, errors.New("--gossip-key-file: an edge replica (--edge) does not join gossip; drop the gossip key"))
		}
		if peers, _ := raftnode.ParsePeers(f.Bootstrap); len(peers) > 0 {
			for _, p := range peers {
				if p.ID == f.NodeID {
					errs = append(errs, fmt.Errorf("--bootstrap: lists this node %q, but an edge replica (--edge) is never a voter: leave it out and use --join-cluster", f.NodeID))
				}
			}
		}
	} else if err := requireGossipKey(f.GossipKeyFile, f.InsecureNoGossipKey); err != nil {
		errs = append(errs, err)
	} else if f.GossipKeyFile != "" {
		keys, err = agent.ReadKeyring(f.GossipKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--gossip-key-file: %w", err))
		}
	}
	if len(errs) > 0 {
		return controller.Config{}, errors.Join(errs...)
	}
	var key []byte
	var extra [][]byte
	if len(keys) > 0 {
		key, extra = keys[0], keys[1:]
	}
	join := make([]string, 0, len(f.Join))
	for _, j := range f.Join {
		if j = strings.TrimSpace(j); j != "" {
			join = append(join, j)
		}
	}
	return controller.Config{
		NodeID: f.NodeID, DataDir: filepath.Clean(f.DataDir), RaftAddr: f.RaftAddr, RaftAdvertise: f.RaftAdvertise, GossipAddr: f.GossipAddr,
		HTTPAddr: f.HTTPAddr, DNSAddr: f.DNSAddr, DNSRateLimit: f.DNSRateLimit, DNSBusyPoll: f.DNSBusyPoll, Bootstrap: peers, Join: join,
		GossipKey: key, GossipExtraKeys: extra, Fast: f.Fast, GeoIPDB: f.GeoIPDB, Edge: f.Edge,
		SnapshotThreshold: f.SnapshotThreshold, SnapshotInterval: f.SnapshotInterval, TrailingLogs: f.TrailingLogs,
	}, nil
}

// checkBusyPoll refuses a --dns-busy-poll the server would clamp: a typo
// such as 1s would otherwise silently become 1ms.
func checkBusyPoll(d time.Duration) error {
	if d < 0 || d > dnsserver.MaxBusyPoll {
		return fmt.Errorf("--dns-busy-poll: must be between 0 (off) and %v, got %v", dnsserver.MaxBusyPoll, d)
	}
	return nil
}
