package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/agent"
	"github.com/evac-sh/evac/agent/checks"
	"github.com/evac-sh/evac/controlplane/raftnode"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/gossip"

	"github.com/evac-sh/evac/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// raft leaves a goroutine waiting on an Apply it can never answer for
		// up to a second after Shutdown (raftnode documents it).
		goleak.IgnoreTopFunction("time.Sleep"),
		// net/http's keep-alive connections of the test client.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		// memberlist's probe in flight at Shutdown waits out its probe
		// timeout (at most a second) before it sees the shutdown.
		goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"),
	)
}

const steeringYAML = `
zone: example.com.
nameservers: {ns1: 192.0.2.53}
regions: [{name: us-east}, {name: us-west}, {name: eu-west}]
services:
  - name: api
    endpoints:
      us-east: [192.0.2.11]
      us-west: [198.51.100.11]
      eu-west: [203.0.113.11]
  - name: solo
    policy: failover
    endpoints: {us-east: [192.0.2.21]}
policy:
  detect_after: 1s
  ramp: [50, 0]
  step_interval: 500ms
  hold_down: 1s
  flap_window: 1s
  budget: {per_day: 100, cooldown: 1s}
`

func freeAddr(t *testing.T, ip string) string {
	t.Helper()
	return net.JoinHostPort(ip, strconv.Itoa(testutil.FreePort(t, ip)))
}

type cluster struct {
	t    *testing.T
	ctls []*Controller
	seed []string
}

func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	return startClusterWith(t, n, nil)
}

// startClusterWith starts n controllers, letting edit change each config
// (by index) first.
func startClusterWith(t *testing.T, n int, edit func(i int, cfg *Config)) *cluster {
	t.Helper()
	c := &cluster{t: t}
	var peers []raftnode.Peer
	cfgs := make([]Config, n)
	for i := range cfgs {
		ip := fmt.Sprintf("127.0.9.%d", 101+i)
		cfgs[i] = Config{
			NodeID: fmt.Sprintf("c%d", i+1), DataDir: t.TempDir(), RaftAddr: freeAddr(t, ip),
			GossipAddr: freeAddr(t, ip), HTTPAddr: freeAddr(t, ip), DNSAddr: freeAddr(t, ip), Fast: true,
			Logger: zap.NewNop(),
		}
		peers = append(peers, raftnode.Peer{ID: cfgs[i].NodeID, Addr: cfgs[i].RaftAddr})
		c.seed = append(c.seed, cfgs[i].GossipAddr)
	}
	for i := range cfgs {
		cfgs[i].Bootstrap, cfgs[i].Join = peers, c.seed
		if edit != nil {
			edit(i, &cfgs[i])
		}
		ctl, err := Start(cfgs[i])
		if err != nil {
			t.Fatal(err)
		}
		c.ctls = append(c.ctls, ctl)
		t.Cleanup(func() { _ = ctl.Close(context.Background()) })
	}
	eventually(t, 30*time.Second, func() error {
		for _, ctl := range c.ctls {
			if err := ctl.raft.WaitForLeader(context.Background()); err != nil {
				return err
			}
		}
		return nil
	})
	return c
}

func (c *cluster) follower() *Controller {
	c.t.Helper()
	var f *Controller
	testutil.WaitFor(c.t, 30*time.Second, "a follower that knows the leader", func() bool {
		for _, ctl := range c.ctls {
			if !ctl.IsLeader() {
				if id, _ := ctl.raft.Leader(); id != "" {
					f = ctl
					return true
				}
			}
		}
		return false
	})
	return f
}

func eventually(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	testutil.Eventually(t, d, "condition", f)
}

// call makes an API request and decodes the JSON answer into out.
func call(t *testing.T, ctl *Controller, method, path, body string, out any, hdr ...string) int {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+ctl.HTTPAddr()+path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

type apiErr struct{ Error, Code string }

func TestAPIThroughFollowers(t *testing.T) {
	c := startCluster(t, 3)
	f := c.follower()

	// Reads before any config.
	var e apiErr
	if code := call(t, f, "GET", "/v1/regions", "", &e); code != 409 || e.Code != "no_config" {
		t.Fatalf("regions before config: %d %+v", code, e)
	}
	// A bad config is refused whole and names the field.
	if code := call(t, f, "PUT", "/v1/config", "zone: example.com.\nregions: [{name: A}]\n", &e); code != 400 || !strings.Contains(e.Error, "regions[0].name") {
		t.Fatalf("bad config: %d %+v", code, e)
	}
	// A config applied through a follower is visible on every replica.
	var wr struct{ Index, Version uint64 }
	if code := call(t, f, "PUT", "/v1/config", steeringYAML, &wr); code != 200 || wr.Version != 1 {
		t.Fatalf("apply: %d %+v", code, wr)
	}
	for _, ctl := range c.ctls {
		if err := ctl.WaitApplied(context.Background(), wr.Index); err != nil {
			t.Fatal(err)
		}
	}
	// The same config again changes nothing: no new version, no serial bump.
	serial := f.State().Serial
	var again struct {
		Index, Version uint64
		Unchanged      bool
	}
	if code := call(t, f, "PUT", "/v1/config", steeringYAML, &again); code != 200 || !again.Unchanged || again.Version != 1 ||
		f.State().Serial != serial || f.State().ConfigVersion != 1 {
		t.Fatalf("apply of the config in force: %d %+v, serial %d -> %d", code, again, serial, f.State().Serial)
	}

	tests := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code                     string
	}{
		{"unknown field", "POST", "/v1/regions/eu-west/evacuate", `{"reason":"x","bogus":1}`, nil, 400, "invalid"},
		{"no reason", "POST", "/v1/regions/eu-west/evacuate", `{}`, nil, 400, "invalid"},
		{"not json", "POST", "/v1/regions/eu-west/evacuate", `reason=x`, nil, 400, "invalid"},
		{"trailing data", "POST", "/v1/regions/eu-west/evacuate", `{"reason":"x"}{}`, nil, 400, "invalid"},
		{"bad ramp", "POST", "/v1/regions/eu-west/evacuate", `{"reason":"x","ramp":[0,50]}`, nil, 400, "invalid"},
		{"bad interval", "POST", "/v1/regions/eu-west/evacuate", `{"reason":"x","step_interval":"1ns"}`, nil, 400, "invalid"},
		{"unknown region", "POST", "/v1/regions/mars/evacuate", `{"reason":"x"}`, nil, 404, "not_found"},
		{"bad region name", "POST", "/v1/regions/Bad_Name/evacuate", `{"reason":"x"}`, nil, 400, "invalid"},
		{"last region of solo", "POST", "/v1/regions/us-east/evacuate", `{"reason":"x"}`, nil, 409, "rule"},
		{"restore active", "POST", "/v1/regions/us-west/restore", `{"reason":"x"}`, nil, 409, "conflict"},
		{"bad events since", "GET", "/v1/events?since=-1", "", nil, 400, "invalid"},
		{"bad events limit", "GET", "/v1/events?limit=0", "", nil, 400, "invalid"},
		{"unknown endpoint", "GET", "/v1/nope", "", nil, 404, "not_found"},
		{"wrong method", "DELETE", "/v1/regions", "", nil, 405, "method_not_allowed"},
		{"dev hooks off", "POST", "/v1/dev/regions/us-east/fail", "", nil, 404, "not_found"},
		{"unfreeze when not frozen", "POST", "/v1/unfreeze", "", nil, 409, "not_frozen"},
		{"body over 1 MiB", "POST", "/v1/regions/eu-west/evacuate", `{"reason":"` + strings.Repeat("x", 1<<20) + `"}`, nil, 400, "invalid"},
		{"config over 1 MiB", "PUT", "/v1/config", strings.Repeat("#", 1<<20+1), nil, 400, "invalid"},
		{"config unknown key", "PUT", "/v1/config", "zone: example.com.\nbogus: 1\n", nil, 400, "invalid"},
		{"freeze unknown field", "POST", "/v1/freeze", `{"reason":"x","until":"never"}`, nil, 400, "invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.State().Index
			var e apiErr
			if got := call(t, f, tc.method, tc.path, tc.body, &e, tc.hdr...); got != tc.status || e.Code != tc.code {
				t.Fatalf("status %d code %q (%s), want %d %q", got, e.Code, e.Error, tc.status, tc.code)
			}
			if tc.status == 400 || tc.status == 404 || tc.status == 405 {
				if f.State().Index != before {
					t.Fatal("a bad request reached the log")
				}
			}
		})
	}

	// Dry run: shows the outcome, changes nothing.
	var dr struct {
		DryRun struct {
			Allowed bool
			Regions []struct {
				Name, State string
				Weight      int
			}
		} `json:"dry_run"`
	}
	idx := f.State().Index
	if code := call(t, f, "POST", "/v1/regions/eu-west/evacuate", `{"reason":"what if","dry_run":true}`, &dr); code != 200 || !dr.DryRun.Allowed {
		t.Fatalf("dry run: %d %+v", code, dr)
	}
	if r := dr.DryRun.Regions[2]; r.Name != "eu-west" || r.State != "evacuating" || r.Weight != 50 {
		t.Fatalf("dry run region: %+v", r)
	}
	if f.State().Index != idx {
		t.Fatal("dry run changed the state")
	}

	// A retried write with the same Idempotency-Key applies once.
	var w1, w2 struct {
		Index     uint64
		Duplicate bool
	}
	call(t, f, "POST", "/v1/regions/eu-west/evacuate", `{"reason":"maintenance","ramp":[0]}`, &w1, "Idempotency-Key", "k1")
	call(t, f, "POST", "/v1/regions/eu-west/evacuate", `{"reason":"maintenance","ramp":[0]}`, &w2, "Idempotency-Key", "k1")
	if w1.Duplicate || !w2.Duplicate {
		t.Fatalf("idempotency: %+v %+v", w1, w2)
	}
	for _, ctl := range c.ctls {
		_ = ctl.WaitApplied(context.Background(), w2.Index)
		if r, _ := ctl.State().Region("eu-west"); r.Phase != state.PhaseEvacuated || r.Actor != "anonymous" {
			t.Fatalf("%s: eu-west %+v", ctl.cfg.NodeID, r)
		}
	}
	// Every controller's DNS answers from its own replica: eu-west is gone.
	for _, ctl := range c.ctls {
		for i := 0; i < 50; i++ {
			m := new(dns.Msg)
			m.SetQuestion("api.example.com.", dns.TypeA)
			o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
			o.Option = []dns.EDNS0{&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(10, 0, byte(i), 0).To4()}}
			m.Extra = []dns.RR{o}
			r, err := dns.Exchange(m, ctl.cfg.DNSAddr)
			if err != nil || len(r.Answer) != 1 {
				t.Fatalf("%s: %v %v", ctl.cfg.NodeID, err, r)
			}
			if a := r.Answer[0].(*dns.A).A.String(); a == "203.0.113.11" {
				t.Fatalf("%s still answers eu-west", ctl.cfg.NodeID)
			}
		}
	}
	var evs []state.Event
	call(t, f, "GET", "/v1/events?since=1&limit=2", "", &evs)
	if len(evs) != 2 || evs[0].Seq != 2 || evs[0].Kind != state.EventEvacuate {
		t.Fatalf("events: %+v", evs)
	}
	var svcs []struct {
		Name    string
		Regions []struct {
			Region          string
			EffectiveWeight int `json:"effective_weight"`
		}
	}
	call(t, f, "GET", "/v1/services", "", &svcs)
	if len(svcs) != 2 || svcs[0].Regions[2].Region != "eu-west" || svcs[0].Regions[2].EffectiveWeight != 0 {
		t.Fatalf("services: %+v", svcs)
	}
	var st struct {
		NodeID   string `json:"node_id"`
		Leader   string
		IsLeader bool `json:"is_leader"`
		Voters   []struct{ ID string }
	}
	call(t, f, "GET", "/v1/status", "", &st)
	if st.NodeID != f.cfg.NodeID || st.IsLeader || st.Leader == "" || len(st.Voters) != 3 {
		t.Fatalf("status: %+v", st)
	}
	if code := call(t, f, "GET", "/readyz", "", nil); code != 200 {
		t.Fatalf("readyz %d", code)
	}
}

// TestHealthDrivesEvacuation runs real agents checking real backends.
func TestHealthDrivesEvacuation(t *testing.T) {
	c := startCluster(t, 3)
	cfg, err := state.ParseConfig([]byte(steeringYAML))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.ctls[0].Propose(context.Background(), state.CmdApplyConfig, "test", "cfg", state.ApplyConfig{Config: cfg})
	if err != nil || res.Error != "" {
		t.Fatal(err, res.Error)
	}
	var healthy [3]atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 6)
	t.Cleanup(func() {
		cancel()
		for i := 0; i < 6; i++ {
			<-done
		}
	})
	for i, region := range []string{"us-east", "us-west", "eu-west"} {
		healthy[i].Store(true)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if !healthy[i].Load() {
				w.WriteHeader(503)
			}
		}))
		t.Cleanup(srv.Close)
		for k := 0; k < 2; k++ {
			ip := fmt.Sprintf("127.0.%d.%d", 101+i, 1+k)
			a, err := agent.New(agent.Config{
				Region: region, NodeName: fmt.Sprintf("%s-%d", region, k), GossipAddr: freeAddr(t, ip), Join: c.seed,
				Checks: []checks.Check{{Name: "http", Service: "api", Type: "http", Target: srv.URL,
					Interval: checks.Duration(200 * time.Millisecond), Timeout: checks.Duration(100 * time.Millisecond)}},
			}, zap.NewNop(), agent.WithGossipProfile(gossip.ProfileFast), agent.WithCheckSourceIP(""))
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				defer func() { done <- struct{}{} }()
				_ = a.Run(ctx)
			}()
		}
	}
	eventually(t, 30*time.Second, func() error {
		for _, ctl := range c.ctls {
			rh := ctl.RegionHealth()
			for _, r := range []string{"us-east", "us-west", "eu-west"} {
				if h := rh[r]; h.AgentsAlive != 2 || h.Services["api"].Share != 1 {
					return fmt.Errorf("%s sees %s: %+v", ctl.cfg.NodeID, r, h)
				}
			}
		}
		return nil
	})
	healthy[1].Store(false)
	eventually(t, 30*time.Second, func() error {
		for _, ctl := range c.ctls {
			r, _ := ctl.State().Region("us-west")
			if r.Phase != state.PhaseEvacuated || !r.Automatic {
				return fmt.Errorf("%s: us-west %+v", ctl.cfg.NodeID, r)
			}
		}
		return nil
	})
	// A second failing region is not evacuated (max_evacuated 1), and the
	// engine records why, once.
	healthy[2].Store(false)
	eventually(t, 30*time.Second, func() error {
		for _, e := range c.ctls[0].State().Events {
			if e.Kind == "evacuation.blocked" && e.Region == "eu-west" {
				return nil
			}
		}
		return fmt.Errorf("no blocked event for eu-west")
	})
	if r, _ := c.ctls[0].State().Region("eu-west"); r.Phase != state.PhaseActive {
		t.Fatalf("eu-west evacuated past max_evacuated: %+v", r)
	}
	var buf bytes.Buffer
	for _, e := range c.ctls[0].State().Events {
		fmt.Fprintf(&buf, "%d %s %s %s %s\n", e.Seq, e.Actor, e.Kind, e.Region, e.Detail)
	}
	t.Logf("event log:\n%s", buf.String())
}

// TestDNSFollowsCommit measures how soon every controller's DNS reflects a
// committed change (the goal is within 1 s; asserted generously).
func TestDNSFollowsCommit(t *testing.T) {
	c := startCluster(t, 3)
	cfg, _ := state.ParseConfig([]byte(steeringYAML))
	ctx := context.Background()
	if res, err := c.ctls[0].Propose(ctx, state.CmdApplyConfig, "test", "cfg", state.ApplyConfig{Config: cfg}); err != nil || res.Error != "" {
		t.Fatal(err, res.Error)
	}
	answers := func(ctl *Controller, ip string) bool {
		for i := 0; i < 40; i++ {
			m := new(dns.Msg)
			m.SetQuestion("api.example.com.", dns.TypeA)
			o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
			o.Option = []dns.EDNS0{&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(10, 1, byte(i), 0).To4()}}
			m.Extra = []dns.RR{o}
			r, err := dns.Exchange(m, ctl.cfg.DNSAddr)
			if err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == ip {
				return true
			}
		}
		return false
	}
	for _, ctl := range c.ctls {
		eventually(t, 30*time.Second, func() error {
			if !answers(ctl, "198.51.100.11") {
				return fmt.Errorf("%s never answers us-west", ctl.cfg.NodeID)
			}
			return nil
		})
	}
	res, err := c.ctls[1].Propose(ctx, state.CmdSetWeight, "test", "w0", state.SetWeight{Region: "us-west", Weight: 0, Reason: "t"})
	committed := time.Now()
	if err != nil || res.Error != "" {
		t.Fatal(err, res.Error)
	}
	for _, ctl := range c.ctls {
		eventually(t, 30*time.Second, func() error {
			if answers(ctl, "198.51.100.11") {
				return fmt.Errorf("%s still answers us-west", ctl.cfg.NodeID)
			}
			return nil
		})
		t.Logf("FIGURE %s's DNS reflects the commit %s after Propose returned", ctl.cfg.NodeID, time.Since(committed).Round(time.Millisecond))
	}
}
