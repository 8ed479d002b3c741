package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/controller"
	"github.com/evac-sh/evac/dnsserver"
	"github.com/evac-sh/evac/internal/connlimit"
)

// Connection caps: defaults of the --*-max-conns* flags. A total cap is
// further lowered to a quarter of the open-file limit (connlimit.CapTotal),
// so that API and DNS clients together never take the file descriptors
// Raft, its log and gossip need.
const (
	defaultAPIMaxConns         = 1024
	defaultAPIMaxConnsPerIP    = 64
	defaultDNSTCPMaxConns      = 512
	defaultDNSTCPMaxConnsPerIP = 16
)

// limitFlags are the server's resource bounds; each is also a config file
// key.
type limitFlags struct {
	APIMaxConns         int `yaml:"api_max_conns"`
	APIMaxConnsPerIP    int `yaml:"api_max_conns_per_ip"`
	DNSTCPMaxConns      int `yaml:"dns_tcp_max_conns"`
	DNSTCPMaxConnsPerIP int `yaml:"dns_tcp_max_conns_per_ip"`
	// EventsExport is a file every audit event is appended to (JSON lines).
	EventsExport string `yaml:"events_export"`
	// DNSRateLimitKey is dns_rate_limit in a config file, where 0 (off)
	// differs from absent (the default); the flag is serverFile.DNSRateLimit.
	DNSRateLimitKey *int `yaml:"dns_rate_limit"`
	// DNSIXFRJournal is --dns-ixfr-journal: how many zone changes the IXFR
	// journal keeps (0: none); DNSIXFRJournalKey is its config file key,
	// where 0 differs from absent.
	DNSIXFRJournal    int  `yaml:"-"`
	DNSIXFRJournalKey *int `yaml:"dns_ixfr_journal"`
}

func addLimitFlags(fl *pflag.FlagSet, l *limitFlags) {
	fl.IntVar(&l.APIMaxConns, "api-max-conns", defaultAPIMaxConns, "most admin API connections at once (at most a quarter of the open-file limit; 0: that quarter)")
	fl.IntVar(&l.APIMaxConnsPerIP, "api-max-conns-per-ip", defaultAPIMaxConnsPerIP, "most admin API connections at once from one client address; more are closed on accept (0: no cap)")
	fl.IntVar(&l.DNSTCPMaxConns, "dns-tcp-max-conns", defaultDNSTCPMaxConns, "most DNS-over-TCP connections at once (at most a quarter of the open-file limit; 0: that quarter)")
	fl.IntVar(&l.DNSTCPMaxConnsPerIP, "dns-tcp-max-conns-per-ip", defaultDNSTCPMaxConnsPerIP, "most DNS-over-TCP connections at once from one client address; more are closed on accept (0: no cap)")
	fl.IntVar(&l.DNSIXFRJournal, "dns-ixfr-journal", dnsserver.DefaultJournalSize, "zone changes kept for incremental zone transfers (IXFR); a secondary further behind gets the whole zone (0: no journal)")
	fl.StringVar(&l.EventsExport, "events-export", "", "append every audit event this controller applies to FILE as a JSON line, before it can roll off the log (policy.events_retained)")
}

// mergeLimits fills the limit fields not set by flags from the file (a
// key absent from the file, or 0 there, keeps the flag's value).
func mergeLimits(fl *pflag.FlagSet, dst *limitFlags, file limitFlags) {
	for name, p := range map[string][2]*int{
		"api-max-conns":            {&dst.APIMaxConns, &file.APIMaxConns},
		"api-max-conns-per-ip":     {&dst.APIMaxConnsPerIP, &file.APIMaxConnsPerIP},
		"dns-tcp-max-conns":        {&dst.DNSTCPMaxConns, &file.DNSTCPMaxConns},
		"dns-tcp-max-conns-per-ip": {&dst.DNSTCPMaxConnsPerIP, &file.DNSTCPMaxConnsPerIP},
	} {
		if !fl.Changed(name) && *p[1] != 0 {
			*p[0] = *p[1]
		}
	}
	if !fl.Changed("dns-ixfr-journal") && file.DNSIXFRJournalKey != nil {
		dst.DNSIXFRJournal = *file.DNSIXFRJournalKey
	}
	if !fl.Changed("events-export") && file.EventsExport != "" {
		dst.EventsExport = file.EventsExport
	}
}

// validate names every bad limit.
func (l limitFlags) validate() error {
	var errs []error
	for name, v := range map[string]int{"--api-max-conns": l.APIMaxConns, "--api-max-conns-per-ip": l.APIMaxConnsPerIP,
		"--dns-tcp-max-conns": l.DNSTCPMaxConns, "--dns-tcp-max-conns-per-ip": l.DNSTCPMaxConnsPerIP,
		"--dns-ixfr-journal": l.DNSIXFRJournal} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %d", name, v))
		}
	}
	return errors.Join(errs...)
}

// apply raises the open-file limit and puts the caps, lowered to fit it,
// into cfg.
func (l limitFlags) apply(cfg *controller.Config, lg *zap.Logger) {
	files, err := connlimit.RaiseFileLimit()
	if err != nil {
		lg.Warn("could not raise the open-file limit", zap.Error(err))
	}
	cfg.APIConns = connlimit.Limits{PerIP: l.APIMaxConnsPerIP, Total: connlimit.CapTotal(l.APIMaxConns, files)}
	cfg.DNSTCPConns = connlimit.Limits{PerIP: l.DNSTCPMaxConnsPerIP, Total: connlimit.CapTotal(l.DNSTCPMaxConns, files)}
	cfg.EventsExport = l.EventsExport
	cfg.DNSIXFRJournal = l.DNSIXFRJournal
	if l.DNSIXFRJournal == 0 {
		cfg.DNSIXFRJournal = -1 // none (dnsserver.Config.IXFRJournal)
	}
	if cfg.APIConns.Total < l.APIMaxConns || cfg.DNSTCPConns.Total < l.DNSTCPMaxConns {
		lg.Warn("connection caps lowered to a quarter of the open-file limit each; raise LimitNOFILE to keep them",
			zap.Uint64("open-file-limit", files), zap.Int("api-max-conns", cfg.APIConns.Total),
			zap.Int("dns-tcp-max-conns", cfg.DNSTCPConns.Total))
	}
	lg.Info("connection caps", zap.Uint64("open-file-limit", files),
		zap.Int("api-max-conns", cfg.APIConns.Total), zap.Int("api-max-conns-per-ip", cfg.APIConns.PerIP),
		zap.Int("dns-tcp-max-conns", cfg.DNSTCPConns.Total), zap.Int("dns-tcp-max-conns-per-ip", cfg.DNSTCPConns.PerIP))
}
