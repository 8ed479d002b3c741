package main

import (
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/controller"
	"github.com/evac-sh/evac/dnsserver"
)

// TestLimitDefaultsAndFile: response-rate limiting is on by default, a
// config file's dns_rate_limit: 0 turns it off, and the connection caps and
// the events export come from flags or the file (flags win).
func TestLimitDefaultsAndFile(t *testing.T) {
	cmd := newServerCmd()
	if err := cmd.Flags().Parse([]string{"--api-max-conns-per-ip", "5"}); err != nil {
		t.Fatal(err)
	}
	var f serverFile
	// The flag values bound by newServerCmd are in its closure; read the
	// defaults back through the flag set.
	if got := cmd.Flags().Lookup("dns-rate-limit").DefValue; got != "100" || dnsserver.DefaultRateLimit != 100 {
		t.Fatalf("--dns-rate-limit default %s, want 100", got)
	}
	for name, want := range map[string]string{"api-max-conns": "1024", "api-max-conns-per-ip": "64",
		"dns-tcp-max-conns": "512", "dns-tcp-max-conns-per-ip": "16", "events-export": ""} {
		if got := cmd.Flags().Lookup(name).DefValue; got != want {
			t.Errorf("--%s default %q, want %q", name, got, want)
		}
	}

	path := filepath.Join(t.TempDir(), "server.yaml")
	writeFile(t, path, "dns_rate_limit: 0\napi_max_conns_per_ip: 9\ndns_tcp_max_conns: 7\nevents_export: /var/lib/evac/events.jsonl\n")
	var file serverFile
	if err := loadYAMLStrict(path, &file); err != nil {
		t.Fatal(err)
	}
	f.DNSRateLimit = dnsserver.DefaultRateLimit
	f.APIMaxConnsPerIP = 5 // from the flag above
	f.DNSTCPMaxConns = defaultDNSTCPMaxConns
	mergeFlags(cmd.Flags(), &f, file)
	if f.DNSRateLimit != 0 {
		t.Errorf("dns_rate_limit: 0 in the file left %d", f.DNSRateLimit)
	}
	if f.APIMaxConnsPerIP != 5 || f.DNSTCPMaxConns != 7 || f.EventsExport != "/var/lib/evac/events.jsonl" {
		t.Errorf("merged limits %+v: want the flag's 5, the file's 7 and export path", f.limitFlags)
	}

	bad := limitFlags{APIMaxConns: -1, DNSTCPMaxConnsPerIP: -2}
	err := bad.validate()
	if err == nil || !strings.Contains(err.Error(), "--api-max-conns:") || !strings.Contains(err.Error(), "--dns-tcp-max-conns-per-ip:") {
		t.Fatalf("negative caps: %v", err)
	}
}

// TestIXFRJournalFlag: --dns-ixfr-journal defaults to the journal's size,
// a config file's dns_ixfr_journal: 0 turns the journal off (absent keeps
// the flag), a negative size is refused, and 0 reaches the DNS server as
// "none", not as its default.
func TestIXFRJournalFlag(t *testing.T) {
	cmd := newServerCmd()
	if got := cmd.Flags().Lookup("dns-ixfr-journal").DefValue; got != "100" || dnsserver.DefaultJournalSize != 100 {
		t.Fatalf("--dns-ixfr-journal default %s, want 100", got)
	}
	for _, tt := range []struct {
		name, file string
		want       int // in the controller config
	}{
		{"absent", "fast: true\n", dnsserver.DefaultJournalSize},
		{"zero", "dns_ixfr_journal: 0\n", -1},
		{"ten", "dns_ixfr_journal: 10\n", 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "server.yaml")
			writeFile(t, path, tt.file)
			var file serverFile
			if err := loadYAMLStrict(path, &file); err != nil {
				t.Fatal(err)
			}
			f := serverFile{limitFlags: limitFlags{DNSIXFRJournal: dnsserver.DefaultJournalSize}}
			mergeFlags(newServerCmd().Flags(), &f, file)
			var cfg controller.Config
			f.limitFlags.apply(&cfg, zap.NewNop())
			if cfg.DNSIXFRJournal != tt.want {
				t.Errorf("journal %d, want %d", cfg.DNSIXFRJournal, tt.want)
			}
		})
	}
	if err := (limitFlags{DNSIXFRJournal: -3}).validate(); err == nil || !strings.Contains(err.Error(), "--dns-ixfr-journal: must not be negative") {
		t.Errorf("negative journal: %v", err)
	}
}
