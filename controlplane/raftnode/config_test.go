package raftnode

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestParsePeers(t *testing.T) {
	tests := []struct {
		in      string
		want    []Peer
		wantErr string // substring; "" means success
	}{
		{in: "", want: nil},
		{in: "   ", want: nil},
		{in: "a=127.0.9.1:7301", want: []Peer{{"a", "127.0.9.1:7301"}}},
		{
			in:   "ctl-1=127.0.9.1:7301, ctl-2 = 127.0.9.2:7301 ,ctl.3=[::1]:7301",
			want: []Peer{{"ctl-1", "127.0.9.1:7301"}, {"ctl-2", "127.0.9.2:7301"}, {"ctl.3", "[::1]:7301"}},
		},
		{in: "a=ctl1.example:7301", want: []Peer{{"a", "ctl1.example:7301"}}},
		{in: "a=127.0.9.1:7301,", wantErr: "peer 2 is empty"},
		{in: ",a=127.0.9.1:7301", wantErr: "peer 1 is empty"},
		{in: "a127.0.9.1:7301", wantErr: `peer 1 "a127.0.9.1:7301": missing '='`},
		{in: "=127.0.9.1:7301", wantErr: "empty id"},
		{in: "a b=127.0.9.1:7301", wantErr: `character ' ' not allowed`},
		{in: "a=", wantErr: "empty address"},
		{in: "a=127.0.9.1", wantErr: "missing port"},
		{in: "a=:7301", wantErr: "empty host"},
		{in: "a=127.0.9.1:0", wantErr: `port "0" is not in 1..65535`},
		{in: "a=127.0.9.1:70000", wantErr: `port "70000" is not in 1..65535`},
		{in: "a=127.0.9.1:http", wantErr: `port "http" is not in 1..65535`},
		{in: "a=127.0.9.1:1=2", wantErr: `port "1=2"`},
		{in: "a=127.0.9.1:7301,a=127.0.9.2:7301", wantErr: `peer 2: id "a" already used by peer 1`},
		{in: "a=127.0.9.1:7301,b=127.0.9.1:7301", wantErr: `peer 2: address "127.0.9.1:7301" already used by peer 1`},
	}
	for _, tt := range tests {
		got, err := ParsePeers(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("ParsePeers(%q) error = %v; want ErrInvalidConfig containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParsePeers(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{NodeID: "a", DataDir: "/tmp/x", RaftAddr: "127.0.9.1:7301",
		Bootstrap: []Peer{{"a", "127.0.9.1:7301"}, {"b", "127.0.9.2:7301"}}}
	if _, _, err := ok.validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	adv := ok
	adv.AdvertiseAddr = "127.0.9.1:7401"
	adv.Bootstrap = []Peer{{"a", "127.0.9.1:7401"}, {"b", "127.0.9.2:7301"}}
	if bind, a, err := adv.validate(); err != nil || bind.String() != "127.0.9.1:7301" || a.String() != "127.0.9.1:7401" {
		t.Fatalf("advertised config: bind %s advertise %s, %v", bind, a, err)
	}
	tests := []struct {
		name    string
		mut     func(*Config)
		wantErr string
	}{
		{"no id", func(c *Config) { c.NodeID = "" }, "NodeID: empty id"},
		{"no dir", func(c *Config) { c.DataDir = "" }, "DataDir is empty"},
		{"hostname", func(c *Config) { c.RaftAddr = "localhost:7301" }, "must be an IP literal"},
		{"unspecified", func(c *Config) { c.RaftAddr = "0.0.0.0:7301" }, "unspecified IP"},
		{"port 0", func(c *Config) { c.RaftAddr = "127.0.9.1:0" }, "not in 1..65535"},
		{"timing", func(c *Config) { c.Timing = 7 }, "unknown Timing 7"},
		{"self addr mismatch", func(c *Config) { c.RaftAddr = "127.0.9.1:7302" }, `lists this node "a" at "127.0.9.1:7301"`},
		{"addr under other id", func(c *Config) { c.NodeID = "c" }, `under id "a", but NodeID is "c"`},
		{"advertise hostname", func(c *Config) { c.AdvertiseAddr = "proxy:7301" }, "AdvertiseAddr: "},
		{"bootstrap names RaftAddr, not the advertised address", func(c *Config) { c.AdvertiseAddr = "127.0.9.1:7401" }, `lists this node "a" at "127.0.9.1:7301"`},
		{"dup", func(c *Config) { c.Bootstrap = append(c.Bootstrap, Peer{"b", "127.0.9.3:1"}) }, "duplicate id"},
	}
	for _, tt := range tests {
		c := ok
		c.Bootstrap = append([]Peer(nil), ok.Bootstrap...)
		tt.mut(&c)
		if _, _, err := c.validate(); err == nil || !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: validate() = %v; want ErrInvalidConfig containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestRaftConfigSnapshots(t *testing.T) {
	for _, tc := range []struct {
		cfg                 Config
		threshold, trailing uint64
		interval            time.Duration
	}{
		{Config{}, 8192, 10240, 120 * time.Second},
		{Config{SnapshotThreshold: 64, SnapshotInterval: 200 * time.Millisecond, TrailingLogs: 32}, 64, 32, 200 * time.Millisecond},
	} {
		tc.cfg.NodeID = "n1"
		rc, err := tc.cfg.raftConfig(newHclogZap(zap.NewNop()))
		if err != nil {
			t.Fatal(err)
		}
		if rc.SnapshotThreshold != tc.threshold || rc.TrailingLogs != tc.trailing || rc.SnapshotInterval != tc.interval {
			t.Errorf("%+v: threshold %d, trailing %d, interval %s", tc.cfg, rc.SnapshotThreshold, rc.TrailingLogs, rc.SnapshotInterval)
		}
	}
}
