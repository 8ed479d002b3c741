package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evac-sh/evac/dnsserver"
)

func TestServerDNSRateLimit(t *testing.T) {
	base := serverFile{NodeID: "c1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:7300", GossipAddr: "127.0.0.1:7946",
		HTTPAddr: "127.0.0.1:8080", DNSAddr: "127.0.0.1:5353", Bootstrap: "c1=127.0.0.1:7300", InsecureNoGossipKey: true}

	f := base
	f.DNSRateLimit = 50
	cfg, err := f.controllerConfig()
	if err != nil || cfg.DNSRateLimit != 50 {
		t.Fatalf("--dns-rate-limit 50: %v, %d", err, cfg.DNSRateLimit)
	}
	f.DNSRateLimit = -1
	if _, err := f.controllerConfig(); err == nil || !strings.Contains(err.Error(), "--dns-rate-limit") {
		t.Fatalf("--dns-rate-limit -1: %v", err)
	}

	// The flag wins over the config file's dns_rate_limit; without it, the file's value.
	for _, args := range [][]string{{"--dns-rate-limit", "7"}, nil} {
		cmd := newServerCmd()
		if err := cmd.Flags().Parse(args); err != nil {
			t.Fatal(err)
		}
		dst := base
		if args != nil {
			dst.DNSRateLimit = 7
		}
		file := base
		thirty := 30
		file.DNSRateLimitKey = &thirty
		mergeFlags(cmd.Flags(), &dst, file)
		want := 30
		if args != nil {
			want = 7
		}
		if dst.DNSRateLimit != want {
			t.Errorf("args %v: %d, want %d", args, dst.DNSRateLimit, want)
		}
	}
}

func TestDNSBenchState(t *testing.T) {
	path := t.TempDir() + "/steering.yaml"
	writeFile(t, path, `zone: example.com.
nameservers: {ns1: 127.0.0.1}
regions: [{name: a}, {name: b}, {name: c}]
services:
  - {name: svc0, endpoints: {a: [10.1.0.0], b: [10.2.0.0], c: [10.3.0.0]}}
`)
	st, err := benchState(path, "50,30,20")
	if err != nil {
		t.Fatal(err)
	}
	for r, w := range map[string]int{"a": 50, "b": 30, "c": 20} {
		if got := st.Regions[r].Weight; got != w {
			t.Errorf("region %s weight %d, want %d", r, got, w)
		}
	}
	if _, err := benchState(path, "50,50"); err == nil {
		t.Error("2 weights for 3 regions accepted")
	}
}

func TestServerSnapshotFlags(t *testing.T) {
	base := serverFile{NodeID: "c1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:7300", GossipAddr: "127.0.0.1:7946",
		HTTPAddr: "127.0.0.1:8080", DNSAddr: "127.0.0.1:5353", Bootstrap: "c1=127.0.0.1:7300", InsecureNoGossipKey: true}
	cmd := newServerCmd()
	if err := cmd.Flags().Parse([]string{"--snapshot-threshold", "64", "--snapshot-interval", "200ms"}); err != nil {
		t.Fatal(err)
	}
	dst := base
	dst.SnapshotThreshold, dst.SnapshotInterval = 64, 200*time.Millisecond
	file := base
	file.SnapshotThreshold, file.SnapshotInterval, file.TrailingLogs = 1000, time.Minute, 50
	mergeFlags(cmd.Flags(), &dst, file)
	cfg, err := dst.controllerConfig()
	if err != nil {
		t.Fatal(err)
	}
	// Flags win; the file fills what no flag set.
	if cfg.SnapshotThreshold != 64 || cfg.SnapshotInterval != 200*time.Millisecond || cfg.TrailingLogs != 50 {
		t.Errorf("snapshot settings %d %s %d", cfg.SnapshotThreshold, cfg.SnapshotInterval, cfg.TrailingLogs)
	}
	bad := base
	bad.SnapshotInterval = time.Millisecond
	if _, err := bad.controllerConfig(); err == nil || !strings.Contains(err.Error(), "--snapshot-interval") {
		t.Errorf("--snapshot-interval 1ms: %v", err)
	}
}

// --edge (or `edge: true`): no gossip key needed, gossip settings and a
// bootstrap list naming the edge refused, the config file key honoured.
func TestServerEdgeFlags(t *testing.T) {
	base := serverFile{NodeID: "e1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:7300", GossipAddr: "127.0.0.1:7946",
		HTTPAddr: "127.0.0.1:8080", DNSAddr: "127.0.0.1:5353", Edge: true}
	cfg, err := base.controllerConfig()
	if err != nil || !cfg.Edge || cfg.GossipKey != nil {
		t.Fatalf("edge without a gossip key: %v, edge %v", err, cfg.Edge)
	}
	for _, tt := range []struct {
		edit func(*serverFile)
		want string
	}{
		{func(f *serverFile) { f.Join = []string{"127.0.0.1:7946"} }, "--join: an edge replica"},
		{func(f *serverFile) { f.GossipKeyFile = "/etc/evac/gossip.key" }, "--gossip-key-file: an edge replica"},
		{func(f *serverFile) { f.Bootstrap = "c1=127.0.0.2:7300,e1=127.0.0.1:7300" }, "--bootstrap: lists this node"},
		{func(f *serverFile) { f.Edge = false }, "--gossip-key-file is required"},
	} {
		f := base
		tt.edit(&f)
		if _, err := f.controllerConfig(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("got %v; want an error with %q", err, tt.want)
		}
	}
	// The gossip address is not checked against the others on an edge.
	f := base
	f.GossipAddr = f.HTTPAddr
	if _, err := f.controllerConfig(); err != nil {
		t.Errorf("edge with an unused gossip address equal to the API's: %v", err)
	}
	cmd := newServerCmd()
	if err := cmd.Flags().Parse(nil); err != nil {
		t.Fatal(err)
	}
	var dst serverFile
	mergeFlags(cmd.Flags(), &dst, serverFile{Edge: true})
	if !dst.Edge {
		t.Error("config file key edge: true not applied")
	}
}

func TestServerDNSSECFlags(t *testing.T) {
	base := serverFile{NodeID: "c1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:7300", GossipAddr: "127.0.0.1:7946",
		HTTPAddr: "127.0.0.1:8080", DNSAddr: "127.0.0.1:5353", Bootstrap: "c1=127.0.0.1:7300", InsecureNoGossipKey: true,
		DNSSECValidity: dnsserver.DefaultSignatureValidity, DNSSECInceptionOffset: dnsserver.DefaultInceptionOffset}
	cmd := newServerCmd()
	if err := cmd.Flags().Parse([]string{"--dnssec-refresh", "72h"}); err != nil {
		t.Fatal(err)
	}
	dst := base
	dst.DNSSECRefresh = 72 * time.Hour
	file := base
	file.DNSSECKeys, file.DNSSECValidity, file.DNSSECRefresh = "/etc/evac/dnssec", 240*time.Hour, 24*time.Hour
	file.DNSSECTransfer = "unsigned"
	mergeFlags(cmd.Flags(), &dst, file)
	// Flags win; the file fills what no flag set.
	if dst.DNSSECKeys != "/etc/evac/dnssec" || dst.DNSSECValidity != 240*time.Hour || dst.DNSSECRefresh != 72*time.Hour ||
		dst.DNSSECTransfer != "unsigned" {
		t.Errorf("dnssec settings %q %s %s %q", dst.DNSSECKeys, dst.DNSSECValidity, dst.DNSSECRefresh, dst.DNSSECTransfer)
	}
	if _, err := dst.controllerConfig(); err != nil {
		t.Fatal(err)
	}
	bad := dst
	bad.DNSSECRefresh = 300 * time.Hour // above the validity
	if _, err := bad.controllerConfig(); err == nil || !strings.Contains(err.Error(), "--dnssec-refresh") {
		t.Errorf("refresh above validity: %v", err)
	}
	bad = dst
	bad.DNSSECTransfer = "nsec3"
	if _, err := bad.controllerConfig(); err == nil || !strings.Contains(err.Error(), "--dnssec-transfer") {
		t.Errorf("--dnssec-transfer nsec3: %v", err)
	}
	if f := newServerCmd().Flags().Lookup("dnssec-transfer"); f == nil || f.DefValue != "signed" {
		t.Errorf("--dnssec-transfer default: %v", f)
	}
}

func TestServerDNSBusyPoll(t *testing.T) {
	base := serverFile{NodeID: "c1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:7300", GossipAddr: "127.0.0.1:7946",
		HTTPAddr: "127.0.0.1:8080", DNSAddr: "127.0.0.1:5353", Bootstrap: "c1=127.0.0.1:7300", InsecureNoGossipKey: true}
	for _, tc := range []struct {
		d       time.Duration
		wantErr bool
	}{
		{0, false}, {200 * time.Microsecond, false}, {dnsserver.MaxBusyPoll, false},
		{dnsserver.MaxBusyPoll + 1, true}, {time.Second, true}, {-time.Microsecond, true},
	} {
		f := base
		f.DNSBusyPoll = tc.d
		cfg, err := f.controllerConfig()
		if tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), "--dns-busy-poll") {
				t.Errorf("--dns-busy-poll %v: %v, want an error naming the flag", tc.d, err)
			}
			continue
		}
		if err != nil || cfg.DNSBusyPoll != tc.d {
			t.Errorf("--dns-busy-poll %v: %v, %v", tc.d, err, cfg.DNSBusyPoll)
		}
	}

	// The config file key, and the flag winning over it.
	path := filepath.Join(t.TempDir(), "server.yaml")
	if err := os.WriteFile(path, []byte("dns_busy_poll: 300us\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var file serverFile
	if err := loadYAMLStrict(path, &file); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{
		{nil, 300 * time.Microsecond},
		{[]string{"--dns-busy-poll", "100us"}, 100 * time.Microsecond},
		{[]string{"--dns-busy-poll", "0"}, 0},
	} {
		cmd := newServerCmd()
		if err := cmd.Flags().Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		dst := base
		dst.DNSBusyPoll, _ = cmd.Flags().GetDuration("dns-busy-poll")
		mergeFlags(cmd.Flags(), &dst, file)
		if dst.DNSBusyPoll != tc.want {
			t.Errorf("args %v with dns_busy_poll: 300us: %v, want %v", tc.args, dst.DNSBusyPoll, tc.want)
		}
	}
}
