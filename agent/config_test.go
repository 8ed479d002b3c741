package agent

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const fullConfig = `
region: us-east
node_name: agent-1
gossip_addr: 127.0.1.1:7946
join: [127.0.9.1:7946, 127.0.9.2:7946]
gossip_key_file: /etc/evac/gossip.key
refresh_interval: 5s
checks:
  - name: root
    service: api
    type: http
    target: http://127.0.1.10:8080/health
    interval: 2s
    timeout: 1s
    rise: 2
    fall: 3
    method: HEAD
    expect_status: "200-299"
  - name: port
    service: api
    type: tcp
    target: 127.0.1.10:8080
`

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(fullConfig))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Region != "us-east" || c.NodeName != "agent-1" || c.GossipAddr != "127.0.1.1:7946" || len(c.Join) != 2 ||
		c.GossipKeyFile != "/etc/evac/gossip.key" || c.RefreshInterval.D() != 5*time.Second || len(c.Checks) != 2 {
		t.Fatalf("decoded %+v", c)
	}
	if ch := c.Checks[0]; ch.Rise != 2 || ch.Fall != 3 || ch.Method != "HEAD" || ch.Timeout.D() != time.Second {
		t.Fatalf("check %+v", ch)
	}

	min, err := ParseConfig([]byte("region: eu-west\nchecks: [{name: p, service: api, type: tcp, target: 'h:1'}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if min.GossipAddr != DefaultGossipAddr || min.RefreshInterval.D() != DefaultRefreshInterval || min.NodeName == "" {
		t.Fatalf("defaults: %+v", min)
	}
	if err := min.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseConfig(nil); err != nil {
		t.Fatal("empty config must decode:", err)
	}
}

func TestParseConfigStrict(t *testing.T) {
	for _, src := range []string{
		"region: a\nregoin: b\n",
		"region: a\nchecks: [{name: x, servce: api}]\n",
		"region: [not, a, string]\n",
		"refresh_interval: 10\n",
	} {
		if _, err := ParseConfig([]byte(src)); err == nil {
			t.Errorf("accepted %q", src)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"missing region", func(c *Config) { c.Region = "" }, "region: required"},
		{"bad region", func(c *Config) { c.Region = "us east" }, "region: "},
		{"bad node name", func(c *Config) { c.NodeName = "a/b" }, "node_name: "},
		{"bad gossip addr", func(c *Config) { c.GossipAddr = "localhost" }, "gossip_addr: want ip:port"},
		{"gossip host not ip", func(c *Config) { c.GossipAddr = "example.com:1" }, "gossip_addr: host must be an IP"},
		{"bad join", func(c *Config) { c.Join = []string{"127.0.0.1:1", "nope"} }, "join[1]: want host:port"},
		{"negative refresh", func(c *Config) { c.RefreshInterval = -1 }, "refresh_interval: must be positive"},
		{"no checks", func(c *Config) { c.Checks = nil }, "checks: at least one"},
		{"check timeout", func(c *Config) { c.Checks[1].Interval, c.Checks[1].Timeout = 1e9, 2e9 }, "checks[1].timeout: must be less than interval"},
		{"check type", func(c *Config) { c.Checks[0].Type = "udp" }, "checks[0].type: unknown type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(fullConfig))
			if err != nil {
				t.Fatal(err)
			}
			tt.mod(&c)
			err = c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if _, nerr := New(c, nil); nerr == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
	// Several problems are all reported.
	c := Config{}
	err := c.Validate()
	for _, want := range []string{"region:", "node_name:", "gossip_addr:", "refresh_interval:", "checks:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(p, []byte(fullConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(p)
	if err != nil || c.Region != "us-east" {
		t.Fatalf("%v %+v", err, c)
	}
	if err := os.WriteFile(p, []byte("bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("error should name the file: %v", err)
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, n := range []int{16, 24, 32} {
		raw := make([]byte, n)
		for i := range raw {
			raw[i] = byte(i * 7)
		}
		key, err := ReadKeyFile(write("k", "  "+base64.StdEncoding.EncodeToString(raw)+"\n"))
		if err != nil || string(key) != string(raw) {
			t.Fatalf("%d-byte key: %v", n, err)
		}
	}
	for name, content := range map[string]string{
		"empty":     "\n",
		"not b64":   "!!!not-base64!!!",
		"bad size":  base64.StdEncoding.EncodeToString(make([]byte, 20)),
		"too short": base64.StdEncoding.EncodeToString(make([]byte, 8)),
	} {
		if _, err := ReadKeyFile(write("bad", content)); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := ReadKeyFile(filepath.Join(dir, "none")); err == nil {
		t.Fatal("missing file accepted")
	}
}
