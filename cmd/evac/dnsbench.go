package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/dnsserver"
	"github.com/evac-sh/evac/internal/geoip"
)

// newDNSBenchCmd is `evac dnsbench`, hidden: the DNS server alone, answering
// from a state built locally from a steering file (no Raft, no API), for
// benchmarks (bench/dns.sh) and for trying the DNS behaviour.
func newDNSBenchCmd() *cobra.Command {
	var configPath, addr, weights, geoDB, dnssecKeys string
	var rateLimit int
	var busyPoll time.Duration
	var logLevel, logFormat string
	cmd := &cobra.Command{
		Use:     "dnsbench --config steering.yaml [--addr 127.0.0.1:5353] [--weights 50,30,20] [--geoip-db FILE] [--dnssec-keys DIR]",
		Short:   "Serve DNS for a steering file alone (benchmarks)",
		Example: "  evac dnsbench --config bench/zone.yaml --addr 127.0.0.1:5399 --weights 50,30,20",
		Hidden:  true,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkBusyPoll(busyPoll); err != nil {
				return usageErr(err)
			}
			st, err := benchState(configPath, weights)
			if err != nil {
				return usageErr(err)
			}
			lg, err := newLogger(cmd, logLevel, logFormat)
			if err != nil {
				return usageErr(err)
			}
			defer func() { _ = lg.Sync() }()
			s, err := newBenchServer(st, dnsserver.Config{Addr: addr, Logger: lg, RateLimit: rateLimit, BusyPoll: busyPoll}, dnssecKeys)
			if err != nil {
				return usageErr(err)
			}
			if geoDB != "" {
				db, err := geoip.Open(geoDB)
				if err != nil {
					return fmt.Errorf("--geoip-db: %w", err)
				}
				s.SetLocator(db)
			}
			if err := s.Start(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			lg.Info("serving; send SIGINT or SIGTERM to stop", zap.Uint32("serial", s.Serial()))
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return s.Shutdown(sctx)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&configPath, "config", "", "steering config file (as for evac apply)")
	fl.StringVar(&addr, "addr", "127.0.0.1:5353", "ip:port for DNS (UDP and TCP)")
	fl.StringVar(&weights, "weights", "", "traffic weights of the regions in config order, e.g. 50,30,20 (default: all 100)")
	fl.StringVar(&geoDB, "geoip-db", "", "GeoIP2/GeoLite2 database for the nearest policy, as for evac server (no SIGHUP reload here)")
	fl.StringVar(&dnssecKeys, "dnssec-keys", "", "directory of DNSSEC keys to sign the zone with (evac dnssec keygen), as for evac server (default signature periods)")
	fl.IntVar(&rateLimit, "dns-rate-limit", dnsserver.DefaultRateLimit, "UDP responses per second per client subnet, as for evac server (0: off, as bench/dns.sh runs it)")
	fl.DurationVar(&busyPoll, "dns-busy-poll", 0, "keep polling an empty UDP socket this long before sleeping, as for evac server (0: off)")
	addLogFlags(fl, &logLevel, &logFormat)
	return cmd
}

// newBenchServer is a DNS server (not started) answering from st, signing
// with the keys of the directory keysDir when it is set.
func newBenchServer(st *state.State, cfg dnsserver.Config, keysDir string) (*dnsserver.Server, error) {
	s := dnsserver.New(cfg)
	if keysDir != "" {
		ks, err := dnsserver.LoadDNSSECKeys(keysDir)
		if err != nil {
			return nil, fmt.Errorf("--dnssec-keys: %w", err)
		}
		if err := s.EnableDNSSEC(dnsserver.DNSSECConfig{Keys: ks}); err != nil {
			return nil, fmt.Errorf("--dnssec-keys: %w", err)
		}
	}
	s.Update(st)
	return s, nil
}

// benchState applies the config and the weights to an empty state, as the
// replicated log would.
func benchState(path, weights string) (*state.State, error) {
	if path == "" {
		return nil, fmt.Errorf("--config is required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := state.ParseConfig(b)
	if err != nil {
		return nil, err
	}
	st := state.Empty()
	apply := func(typ state.CommandType, body any) error {
		n, res, err := state.ApplyNext(st, typ, "", "dnsbench", time.Now().UTC(), body)
		if err != nil {
			return err
		}
		if err := res.Err(); err != nil {
			return err
		}
		st = n
		return nil
	}
	if err := apply(state.CmdApplyConfig, state.NewApplyConfig(c)); err != nil {
		return nil, err
	}
	if weights == "" {
		return st, nil
	}
	ws := strings.Split(weights, ",")
	if len(ws) != len(c.Regions) {
		return nil, fmt.Errorf("--weights: %d weights for %d regions", len(ws), len(c.Regions))
	}
	for i, w := range ws {
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil {
			return nil, fmt.Errorf("--weights: %q: %w", w, err)
		}
		if err := apply(state.CmdSetWeight, state.SetWeight{Region: c.Regions[i].Name, Weight: n, Reason: "dnsbench", Force: true}); err != nil {
			return nil, fmt.Errorf("--weights: %w", err)
		}
	}
	return st, nil
}
