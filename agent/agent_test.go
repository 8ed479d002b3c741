package agent

import (
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evac-sh/evac/agent/checks"
	"github.com/evac-sh/evac/gossip"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/internal/testutil"
)

// memberlist's goroutines end up to a probe interval after Shutdown.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(5 * time.Second)
		for err := goleak.Find(); err != nil; err = goleak.Find() {
			if time.Now().After(deadline) {
				_, _ = os.Stderr.WriteString("goleak: " + err.Error() + "\n")
				code = 1
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	os.Exit(code)
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, d, what, cond)
}

func findReport(n *gossip.Node, origin string) (gossip.Report, bool) {
	for _, r := range n.Reports() {
		if r.Origin == origin && r.Service == "api" && r.Check == "root" {
			return r, true
		}
	}
	return gossip.Report{}, false
}

// TestAgentReportsHealth: an agent checking an HTTP backend reports passing,
// then failing after the backend flips, as seen on another (encrypted)
// gossip node; it republishes unchanged results every refresh interval and
// shows as left after Run ends.
func TestAgentReportsHealth(t *testing.T) {
	var healthy atomic.Bool
	var probeFrom atomic.Value
	healthy.Store(true)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		probeFrom.Store(host)
		if !healthy.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer backend.Close()

	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	keyFile := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	observer, err := gossip.New(gossip.Config{NodeName: "controller-0", Region: "us-east", Role: gossip.RoleController,
		BindAddr: "127.0.0.1:0", Key: key, Profile: gossip.ProfileFast, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = observer.Shutdown() }()

	cfg := Config{
		Region:          "us-east",
		NodeName:        "agent-1",
		GossipAddr:      "127.0.1.1:0",
		Join:            []string{observer.LocalAddr()},
		GossipKeyFile:   keyFile,
		RefreshInterval: checks.Duration(300 * time.Millisecond),
		Checks: []checks.Check{{Name: "root", Service: "api", Type: checks.TypeHTTP, Target: backend.URL + "/health",
			Interval: checks.Duration(100 * time.Millisecond), Timeout: checks.Duration(80 * time.Millisecond), Fall: 2}},
	}
	a, err := New(cfg, zap.NewNop(), WithGossipProfile(gossip.ProfileFast))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	waitFor(t, "passing report on the observer", 30*time.Second, func() bool {
		r, ok := findReport(observer, "agent-1")
		return ok && r.Status == gossip.StatusPassing && r.Region == "us-east"
	})
	first, _ := findReport(observer, "agent-1")
	// Gossip protocol 2: an unchanged result keeps its seq and is renewed
	// at the controller by the agent's heartbeat (every 2s with the fast
	// profile), which carries when its results were last published.
	waitFor(t, "unchanged result refreshed", 6*time.Second, func() bool {
		r, _ := findReport(observer, "agent-1")
		return r.Seq == first.Seq && r.Time.After(first.Time) && r.Received.After(first.Received) && r.Status == gossip.StatusPassing
	})
	// Unchanged results are not re-sent: checks run every 100ms, and a 1s
	// window holds one seq (protocol 1, which re-sends them every 300ms
	// refresh interval, would show a few).
	seqs := map[uint64]bool{}
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		r, _ := findReport(observer, "agent-1")
		seqs[r.Seq] = true
	}
	if len(seqs) > 6 {
		t.Fatalf("%d publications in 1s with a 300ms refresh interval", len(seqs))
	}

	healthy.Store(false)
	waitFor(t, "failing report on the observer", 30*time.Second, func() bool {
		r, ok := findReport(observer, "agent-1")
		return ok && r.Status == gossip.StatusFailing
	})
	if r, _ := findReport(observer, "agent-1"); r.Output == "" {
		t.Fatal("failing report without output")
	}

	// The agent advertises its own address, and its probes leave from it.
	for _, m := range observer.Members() {
		if m.Name == "agent-1" && (m.Role != gossip.RoleAgent || m.Region != "us-east" || !strings.HasPrefix(m.Addr, "127.0.1.1:")) {
			t.Fatalf("agent member %+v", m)
		}
	}
	if from := probeFrom.Load(); from != "127.0.1.1" {
		t.Fatalf("probe came from %v, want the agent's gossip IP", from)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	waitFor(t, "agent shown as left", 30*time.Second, func() bool {
		for _, m := range observer.Members() {
			if m.Name == "agent-1" {
				return m.State == gossip.StateLeft
			}
		}
		return false
	})
	if err := a.Run(context.Background()); err == nil {
		t.Fatal("second Run accepted")
	}
}

func TestAgentBadKeyFile(t *testing.T) {
	c, err := ParseConfig([]byte(fullConfig))
	if err != nil {
		t.Fatal(err)
	}
	c.GossipKeyFile = filepath.Join(t.TempDir(), "missing")
	if _, err := New(c, nil); err == nil {
		t.Fatal("missing key file accepted")
	}
}

func TestAgentBindError(t *testing.T) {
	c, err := ParseConfig([]byte(fullConfig))
	if err != nil {
		t.Fatal(err)
	}
	c.GossipKeyFile = ""
	c.GossipAddr = "192.0.2.1:0" // not an address of this machine
	a, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); err == nil {
		t.Fatal("Run must fail when it cannot bind")
	}
}

// TestAgentCapacityURL: the figure served at capacity_url travels with the
// agent's reports, and a change reaches the observer.
func TestAgentCapacityURL(t *testing.T) {
	var capacity atomic.Value
	capacity.Store("17\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/capacity" {
			_, _ = w.Write([]byte(capacity.Load().(string)))
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()

	observer, err := gossip.New(gossip.Config{NodeName: "controller-0", Region: "control", Role: gossip.RoleController,
		BindAddr: "127.0.0.1:0", Profile: gossip.ProfileFast, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = observer.Shutdown() }()
	cfg := Config{
		Region: "us-east", NodeName: "agent-cap", GossipAddr: "127.0.0.1:0", Join: []string{observer.LocalAddr()},
		RefreshInterval: checks.Duration(200 * time.Millisecond), CapacityURL: srv.URL + "/capacity",
		Checks: []checks.Check{{Name: "root", Service: "api", Type: checks.TypeHTTP, Target: srv.URL + "/health",
			Interval: checks.Duration(100 * time.Millisecond), Timeout: checks.Duration(80 * time.Millisecond)}},
	}
	a, err := New(cfg, zap.NewNop(), WithGossipProfile(gossip.ProfileFast))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	capOf := func() float64 {
		r, ok := findReport(observer, "agent-cap")
		if !ok || r.Capacity == nil {
			return -1
		}
		return *r.Capacity
	}
	waitFor(t, "capacity 17 reported", 30*time.Second, func() bool { return capOf() == 17 })
	capacity.Store("25.5")
	waitFor(t, "capacity 25.5 reported", 30*time.Second, func() bool { return capOf() == 25.5 })
	capacity.Store("lots")
	time.Sleep(300 * time.Millisecond)
	if got := capOf(); got != 25.5 {
		t.Fatalf("a bad figure replaced the last good one at once: %v", got)
	}
}

func TestConfigCapacityValidation(t *testing.T) {
	base := Config{Region: "r", NodeName: "n", GossipAddr: "127.0.0.1:1", RefreshInterval: checks.Duration(time.Second),
		Checks: []checks.Check{{Name: "c", Service: "s", Type: checks.TypeTCP, Target: "127.0.0.1:1"}}}
	neg, ten := -1.0, 10.0
	for _, tt := range []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.Capacity = &neg }, "capacity: must be between"},
		{func(c *Config) { c.CapacityURL = "ftp://x" }, "capacity_url: want an http"},
		{func(c *Config) { c.Capacity, c.CapacityURL = &ten, "http://x/c" }, "capacity_url: capacity and capacity_url exclude"},
	} {
		c := base
		tt.mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("got %v, want %q", err, tt.want)
		}
	}
	c := base
	c.Capacity = &ten
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
