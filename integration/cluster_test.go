package integration

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evac-sh/evac/internal/tlsutil"
)

// regionDef is one simulated region: its loopback subnet and the
// documentation-range endpoints that appear in DNS answers.
type regionDef struct {
	name      string
	subnet    int // region i lives on 127.0.<subnet>.0/24
	endpoints []string
}

var testRegions = []regionDef{
	{"us-east", 1, []string{"192.0.2.11", "192.0.2.12"}},
	{"us-west", 2, []string{"198.51.100.11", "198.51.100.12"}},
	{"eu-west", 3, []string{"203.0.113.11", "203.0.113.12"}},
}

// regionOf maps an answer address back to its region.
func regionOf(ip string) string {
	for _, r := range testRegions {
		for _, e := range r.endpoints {
			if e == ip {
				return r.name
			}
		}
	}
	return "?" + ip
}

// testSteering is the steering config with a fast test policy.
func testSteering() string {
	s := "zone: example.com.\nttl: 30\nnameservers: {ns1: 192.0.2.53}\nregions:\n"
	for _, r := range testRegions {
		s += fmt.Sprintf("  - {name: %s, capacity: 100}\n", r.name)
	}
	s += "services:\n  - name: api\n    policy: weighted\n    endpoints:\n"
	for _, r := range testRegions {
		s += fmt.Sprintf("      %s: [%s]\n", r.name, strings.Join(r.endpoints, ", "))
	}
	s += `policy:
  unhealthy_below: 0.5
  detect_after: 2s
  ramp: [50, 0]
  step_interval: 2s
  max_evacuated: 1
  hold_down: 1s
  budget: {per_day: 100, cooldown: 1s}
`
	return s
}

// backend is a region's health endpoint, flipped by the test.
type backend struct {
	healthy atomic.Bool
	url     string
}

func startBackend(t *testing.T, ip string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{url: "http://" + ln.Addr().String() + "/health"}
	b.healthy.Store(true)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if b.healthy.Load() {
			_, _ = w.Write([]byte("ok"))
			return
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return b
}

// controllerProc is one `evac server` process and its addresses.
type controllerProc struct {
	*proc
	id, http, dns, raft, gossip string
	// raftAdvertise is where the others reach its Raft: raft unless a
	// proxy is in between.
	raftAdvertise string
}

// testCluster is 3 controllers and 2 agents per region, each its own process.
type testCluster struct {
	t           *testing.T
	regions     []regionDef
	controllers []*controllerProc
	agents      []*proc
	backends    map[string]*backend
	// keyFile is the gossip key every process was given (`evac keygen`).
	keyFile string
	seeds   []string
	// ctrlSubnet: the controllers live on 127.0.ctrlSubnet.0/24.
	ctrlSubnet int
	// dir holds the key, tokens and each controller's data dir (dir/<id>).
	dir string
	// raftCA signs the controllers' Raft certificates (a joining
	// controller gets one from it too).
	raftCA *tlsutil.TestCA
}

// clusterOpts places a test cluster: its regions (names and subnets) and
// the controllers' subnet, so that tests injecting faults on their own
// subnets do not disturb others running on the same host.
type clusterOpts struct {
	regions    []regionDef
	ctrlSubnet int
	// agentCapacity, if set, is the static capacity each agent reports.
	agentCapacity float64
	// agentCheck, if set, is the checks list line of agent k (1-based) of
	// region r instead of the HTTP check of the region's backend.
	agentCheck func(r regionDef, k int, backendURL string) string
	// ctrlHost is the first controller's host number (default 11).
	ctrlHost int
	// serverArgs are extra `evac server` flags for every controller;
	// serverArgsFor, if set, gives more for controller id (c1, c2, ...).
	serverArgs    []string
	serverArgsFor func(id string) []string
	// tokenLines are extra lines for the tokens file (auth.FileLine).
	tokenLines []string
	// controllers and agentsPerRegion default to 3 and 2.
	controllers, agentsPerRegion int
	// raftVia, if set, returns the address the other controllers reach a
	// controller's Raft at (a proxy in front of raftAddr).
	raftVia func(id, raftAddr string) string
}

func startCluster(t *testing.T) *testCluster {
	return startClusterOpts(t, clusterOpts{regions: testRegions, ctrlSubnet: 9})
}

// keygen writes a fresh gossip key made by `evac keygen` to dir/gossip.key.
func keygen(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command(evacBin, "keygen").Output()
	if err != nil {
		t.Fatalf("evac keygen: %v", err)
	}
	path := filepath.Join(dir, "gossip.key")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func startClusterOpts(t *testing.T, o clusterOpts) *testCluster {
	t.Helper()
	dir := t.TempDir()
	tc := &testCluster{t: t, regions: o.regions, backends: map[string]*backend{}, ctrlSubnet: o.ctrlSubnet, dir: dir}
	if o.ctrlHost == 0 {
		o.ctrlHost = 11
	}
	tc.keyFile = keygen(t, dir)
	var peers, seeds []string
	if o.controllers == 0 {
		o.controllers = 3
	}
	if o.agentsPerRegion == 0 {
		o.agentsPerRegion = 2
	}
	for i := 0; i < o.controllers; i++ {
		ip := fmt.Sprintf("127.0.%d.%d", o.ctrlSubnet, i+o.ctrlHost)
		c := &controllerProc{
			id:     fmt.Sprintf("c%d", i+1),
			raft:   fmt.Sprintf("%s:%d", ip, freePort(t, ip)),
			gossip: fmt.Sprintf("%s:%d", ip, freePort(t, ip)),
			http:   fmt.Sprintf("%s:%d", ip, freePort(t, ip)),
			dns:    fmt.Sprintf("%s:%d", ip, freePort(t, ip)),
		}
		c.raftAdvertise = c.raft
		if o.raftVia != nil {
			c.raftAdvertise = o.raftVia(c.id, c.raft)
		}
		peers = append(peers, c.id+"="+c.raftAdvertise)
		seeds = append(seeds, c.gossip)
		tc.controllers = append(tc.controllers, c)
	}
	tokens := writeTokens(t, filepath.Join(dir, "tokens.yaml"), o.tokenLines...)
	// Raft runs over mutual TLS, as in production: one CA, a certificate
	// per controller naming its ID and the IPs it is reached at.
	ca, err := tlsutil.NewTestCA(dir, "raft")
	if err != nil {
		t.Fatal(err)
	}
	tc.raftCA = ca
	for _, c := range tc.controllers {
		raftIP, _, _ := strings.Cut(c.raft, ":")
		advIP, _, _ := strings.Cut(c.raftAdvertise, ":")
		cert, key, err := ca.IssuePeer(c.id, raftIP, advIP)
		if err != nil {
			t.Fatal(err)
		}
		extra := slices.Clone(o.serverArgs)
		if o.serverArgsFor != nil {
			extra = append(extra, o.serverArgsFor(c.id)...)
		}
		args := append([]string{"server", "--tokens-file", tokens, "--node-id", c.id, "--data-dir", filepath.Join(dir, c.id),
			"--raft-addr", c.raft, "--raft-advertise-addr", c.raftAdvertise, "--gossip-addr", c.gossip, "--http-addr", c.http, "--dns-addr", c.dns,
			"--bootstrap", strings.Join(peers, ","), "--join", strings.Join(seeds, ","),
			"--raft-tls-cert", cert, "--raft-tls-key", key, "--raft-tls-ca", ca.CAFile,
			"--gossip-key-file", tc.keyFile, "--fast", "--log-level", "debug"}, extra...)
		// Every test query comes from 127.0.0.1, one /24: response-rate
		// limiting (on by default) would drop most of a test's queries.
		// A test that wants it passes --dns-rate-limit in serverArgs.
		args = slices.Insert(args, len(args)-len(extra), "--dns-rate-limit", "0")
		c.proc = startProc(t, c.id, args...)
	}
	tc.seeds = seeds
	for _, r := range o.regions {
		b := startBackend(t, fmt.Sprintf("127.0.%d.100", r.subnet))
		tc.backends[r.name] = b
		for k := 1; k <= o.agentsPerRegion; k++ {
			ip := fmt.Sprintf("127.0.%d.%d", r.subnet, k)
			name := fmt.Sprintf("%s-a%d", r.name, k)
			cfg := fmt.Sprintf(`region: %s
node_name: %s
gossip_addr: %s:%d
join: [%s]
gossip_key_file: %s
refresh_interval: 5s
checks:
  - %s
`, r.name, name, ip, freePort(t, ip), strings.Join(seeds, ", "), tc.keyFile, agentCheck(o, r, k, b.url))
			if o.agentCapacity > 0 {
				cfg += fmt.Sprintf("capacity: %g\n", o.agentCapacity)
			}
			path := filepath.Join(dir, name+".yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			tc.agents = append(tc.agents, startProc(t, name, "agent", "--config", path, "--fast", "--log-level", "debug"))
		}
	}
	return tc
}

// agentCheck is agent k's check: o.agentCheck's, or the HTTP check of the
// region's backend.
func agentCheck(o clusterOpts, r regionDef, k int, backendURL string) string {
	if o.agentCheck != nil {
		if c := o.agentCheck(r, k, backendURL); c != "" {
			return c
		}
	}
	return fmt.Sprintf(`{name: http, service: api, type: http, target: "%s", interval: 1s, timeout: 500ms, rise: 2, fall: 2}`, backendURL)
}

// evac runs the CLI against controller c, with the admin token in
// EVAC_TOKEN.
func (tc *testCluster) evac(c *controllerProc, args ...string) (string, error) {
	cmd := exec.Command(evacBin, append([]string{"--addr", "http://" + c.http}, args...)...)
	cmd.Env = append(os.Environ(), "EVAC_TOKEN="+adminToken)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
