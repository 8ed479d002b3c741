package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/internal/client"
	"github.com/evac-sh/evac/internal/geoip/geoiptest"
)

// nearRegions live on their own loopback subnets (controllers on .150).
var nearRegions = []regionDef{
	{"us-east", 151, testRegions[0].endpoints},
	{"us-west", 152, testRegions[1].endpoints},
	{"eu-west", 153, testRegions[2].endpoints},
}

// nearSteering: api is nearest; clients in 10.64.0.0/10 prefer us-east,
// 10.128.0.0/10 us-west, 10.192.0.0/10 eu-west (16,384 /24s each), then
// the others by distance; with the test's GeoIP database, Germany prefers
// eu-west and other located clients are ordered by distance.
func nearSteering() string {
	return `zone: example.com.
ttl: 30
nameservers: {ns1: 192.0.2.53}
regions:
  - {name: us-east, capacity: 100, location: {lat: 38.9, lon: -77.0}}
  - {name: us-west, capacity: 100, location: {lat: 45.6, lon: -121.2}}
  - {name: eu-west, capacity: 100, location: {lat: 53.3, lon: -6.3}}
services:
  - name: api
    policy: nearest
    endpoints:
      us-east: [192.0.2.11, 192.0.2.12]
      us-west: [198.51.100.11, 198.51.100.12]
      eu-west: [203.0.113.11, 203.0.113.12]
topology:
  nets:
    10.64.0.0/10: [us-east, us-west, eu-west]
    10.128.0.0/10: [us-west, us-east, eu-west]
    10.192.0.0/10: [eu-west, us-east, us-west]
  countries: {DE: [eu-west, us-east, us-west]}
  default: [us-east, us-west, eu-west]
policy:
  unhealthy_below: 0.5
  detect_after: 2s
  ramp: [50, 0]
  step_interval: 2s
  max_evacuated: 1
  hold_down: 1s
  budget: {per_day: 100, cooldown: 1s}
`
}

var nearGeo = []geoiptest.TestNetwork{
	{CIDR: "81.0.0.0/8", Country: "DE", Continent: "EU", Lat: 50.1, Lon: 8.7, HasLocation: true},
	{CIDR: "24.0.0.0/8", Country: "US", Continent: "NA", Lat: 41.9, Lon: -87.6, HasLocation: true},  // Chicago
	{CIDR: "126.0.0.0/8", Country: "JP", Continent: "AS", Lat: 35.7, Lon: 139.7, HasLocation: true}, // Tokyo
}

// nearAsk asks server for api A with ECS subnet (a /24) and returns the
// one region answered and the ECS scope.
func nearAsk(c *dns.Client, conn *dns.Conn, subnet string) (string, uint8, error) {
	m := new(dns.Msg)
	m.SetQuestion("api.example.com.", dns.TypeA)
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.SetUDPSize(1232)
	o.Option = []dns.EDNS0{&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.ParseIP(subnet).To4()}}
	m.Extra = []dns.RR{o}
	r, _, err := c.ExchangeWithConn(m, conn)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", subnet, err)
	}
	var region string
	for _, rr := range r.Answer {
		a, ok := rr.(*dns.A)
		if !ok {
			continue
		}
		if reg := regionOf(a.A.String()); region == "" {
			region = reg
		} else if reg != region {
			return "", 0, fmt.Errorf("%s: answer names %s and %s", subnet, region, reg)
		}
	}
	if region == "" {
		return "", 0, fmt.Errorf("%s: empty answer (rcode %d)", subnet, r.Rcode)
	}
	var scope uint8
	if opt := r.IsEdns0(); opt != nil {
		for _, e := range opt.Option {
			if s, ok := e.(*dns.EDNS0_SUBNET); ok {
				scope = s.SourceScope
			}
		}
	}
	return region, scope, nil
}

// nearSurvey asks server for every subnet and returns the regions.
func nearSurvey(t *testing.T, server string, subnets []string) ([]string, []uint8) {
	t.Helper()
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	conn, err := c.Dial(server)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	regs, scopes := make([]string, len(subnets)), make([]uint8, len(subnets))
	for i, s := range subnets {
		var err error
		for try := 0; try < 3; try++ { // UDP on a loaded host: retry a lost datagram
			if regs[i], scopes[i], err = nearAsk(c, conn, s); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return regs, scopes
}

// nearClients are n /24s of each home (10.64/10 us-east, 10.128/10
// us-west, 10.192/10 eu-west).
func nearClients(n int) map[string][]string {
	out := map[string][]string{}
	for home, first := range map[string]int{"us-east": 64, "us-west": 128, "eu-west": 192} {
		for i := range n {
			out[home] = append(out[home], fmt.Sprintf("10.%d.%d.0", first+i/256, i%256))
		}
	}
	return out
}

// TestNearestSteering runs 3 controllers with a GeoIP database built by the
// test and checks, over real sockets with ECS: every client gets its first
// choice while all is healthy; with us-east at 50 (a drill) us-east keeps
// half of its own clients (the same ones on every controller), the others
// go to their second choice, nobody else moves, and killing the leader then
// changes no client's answer; evacuated (0), no answer
// names us-east and all its clients get their second choice; country and distance rules from the
// database; explain agrees with DNS; a corrupt database on SIGHUP leaves the
// last good one in force and says so.
func TestNearestSteering(t *testing.T) {
	dir := t.TempDir()
	geoPath := filepath.Join(dir, "geo.mmdb")
	if err := geoiptest.WriteTestDB(geoPath, 1700000000, nearGeo); err != nil {
		t.Fatal(err)
	}

	// A missing database stops the start with an error naming it.
	out, err := exec.Command(evacBin, "server", "--node-id", "x", "--data-dir", filepath.Join(dir, "x"), "--insecure-no-gossip-key",
		"--insecure-no-auth", "--insecure-no-raft-tls", "--raft-addr", "127.0.150.99:0", "--http-addr", "127.0.150.98:0", "--dns-addr", "127.0.150.97:0",
		"--gossip-addr", "127.0.150.96:0", "--geoip-db", filepath.Join(dir, "missing.mmdb")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "missing.mmdb") {
		t.Fatalf("evac server with a missing --geoip-db: %v\n%s", err, out)
	}

	tc := startClusterOpts(t, clusterOpts{regions: nearRegions, ctrlSubnet: 150, serverArgs: []string{"--geoip-db", geoPath}})
	tc.applySteering(nearSteering())
	tc.waitHealthy()

	const perHome = 3400 // 10,200 client subnets
	clients := nearClients(perHome)
	homes := []string{"us-east", "us-west", "eu-west"}
	second := map[string]string{"us-east": "us-west", "us-west": "us-east", "eu-west": "us-east"}

	// All healthy: 100% first choice, scope /10, on every controller.
	for ci, c := range tc.controllers {
		for _, home := range homes {
			subs := clients[home]
			if ci > 0 {
				subs = subs[:500]
			}
			eventually(t, 30*time.Second, c.id+" answers "+home+"'s clients with "+home, func() error {
				regs, scopes := nearSurvey(t, c.dns, subs)
				for i, r := range regs {
					if r != home || scopes[i] != 10 {
						return fmt.Errorf("%s got %s scope /%d", subs[i], r, scopes[i])
					}
				}
				return nil
			})
		}
	}

	// GeoIP rules and explain.
	c0 := tc.controllers[0]
	for _, g := range []struct{ sub, region, rule string }{
		{"81.1.2.0", "eu-west", "country"},
		{"126.1.2.0", "us-west", "distance"},
		{"24.1.2.0", "us-east", "distance"},
		{"192.0.2.0", "us-east", "default"},
	} {
		regs, _ := nearSurvey(t, c0.dns, []string{g.sub})
		e := explain(t, tc, c0, g.sub+"/24")
		if regs[0] != g.region || e.AnswerRegion != g.region || e.Rule != g.rule {
			t.Errorf("%s: DNS %s, explain %s by %s; want %s by %s", g.sub, regs[0], e.AnswerRegion, e.Rule, g.region, g.rule)
		}
	}

	// A drill holds us-east at 50 (the first step of the ramp [50, 0]).
	tc.putRunbook(c0, "name: near-half\nsteps:\n  - shift: {region: us-east, weight: 50}\n  - wait: {duration: 10m}\n")
	drill := tc.startDrill(c0, "near-half")
	var kept map[string]bool
	eventually(t, 30*time.Second, "us-east at weight 50 on every controller", func() error {
		for _, c := range tc.controllers {
			rs, err := newClient(c.http).Regions(ctxTimeout(5 * time.Second))
			if err != nil {
				return err
			}
			for _, r := range rs {
				// The spill plan for weight 50 lands a planner tick after the
				// weight, and again once the demand is measured: answers
				// follow it, so wait for a plan with its flows.
				if r.Name == "us-east" && (r.Weight != 50 || r.Spill == nil || r.Spill.Weight != 50 || len(r.Spill.Flows) == 0) {
					return fmt.Errorf("%s: us-east at %d, plan %+v", c.id, r.Weight, r.Spill)
				}
			}
		}
		return nil
	})
	// Every controller gives the same answers (a plan that changed between
	// two surveys is asked again).
	var firstAnswers []string
	eventually(t, 60*time.Second, "the same nearest answers on every controller at weight 50", func() error {
		first, _ := nearSurvey(t, c0.dns, clients["us-east"])
		for _, c := range tc.controllers[1:] {
			regs, _ := nearSurvey(t, c.dns, clients["us-east"])
			for i := range regs {
				if regs[i] != first[i] {
					return fmt.Errorf("%s and %s differ for %s", c.id, c0.id, clients["us-east"][i])
				}
			}
		}
		return nil
	})
	for ci, c := range tc.controllers {
		regs, _ := nearSurvey(t, c.dns, clients["us-east"])
		stay := 0
		for i, r := range regs {
			switch r {
			case "us-east":
				stay++
			case second["us-east"]:
			default:
				t.Fatalf("%s at weight 50: %s went to %s, not its second choice", c.id, clients["us-east"][i], r)
			}
		}
		if share := float64(stay) / perHome; share < 0.47 || share > 0.53 {
			t.Errorf("%s at weight 50: us-east kept %.3f of its clients", c.id, share)
		}
		if ci == 0 {
			firstAnswers = regs
			kept = map[string]bool{}
			for i, r := range regs {
				kept[clients["us-east"][i]] = r == "us-east"
			}
		} else {
			for i := range regs {
				if regs[i] != firstAnswers[i] {
					t.Fatalf("%s and %s differ for %s at weight 50", c.id, c0.id, clients["us-east"][i])
				}
			}
		}
		for _, home := range []string{"us-west", "eu-west"} {
			regs, _ := nearSurvey(t, c.dns, clients[home][:1000])
			for i, r := range regs {
				if r != home {
					t.Fatalf("%s at weight 50: %s (home %s) moved to %s", c.id, clients[home][i], home, r)
				}
			}
		}
	}
	// kept_share in explain matches DNS for a sample.
	for _, sub := range clients["us-east"][:40] {
		if e := explain(t, tc, c0, sub+"/24"); e.KeptShare != kept[sub] || (e.AnswerRegion == "us-east") != kept[sub] {
			t.Fatalf("%s: explain kept_share %v answer %s, DNS kept %v", sub, e.KeptShare, e.AnswerRegion, kept[sub])
		}
	}

	// Kill the leader mid-ramp: on the survivors, no client's answer changes.
	leader, err := tc.leader()
	if err != nil {
		t.Fatal(err)
	}
	leader.Kill()
	var live []*controllerProc
	for _, c := range tc.controllers {
		if c != leader {
			live = append(live, c)
		}
	}
	eventually(t, 60*time.Second, "a new leader after killing "+leader.id, func() error {
		st, err := newClient(live[0].http).Status(ctxTimeout(5 * time.Second))
		if err != nil {
			return err
		}
		if st.Leader == "" || st.Leader == leader.id {
			return fmt.Errorf("leader %q", st.Leader)
		}
		return nil
	})
	for _, c := range live {
		regs, _ := nearSurvey(t, c.dns, clients["us-east"])
		for i := range regs {
			if regs[i] != firstAnswers[i] {
				t.Fatalf("after the leader kill, %s answers %s for %s (was %s)", c.id, regs[i], clients["us-east"][i], firstAnswers[i])
			}
		}
	}
	tc.controllers, c0 = live, live[0]

	// Abort the drill (us-east back to 100), then evacuate it: weight 0.
	if out, err := tc.evac(c0, "drill", "abort", drill); err != nil {
		t.Fatalf("drill abort: %v: %s", err, out)
	}
	eventually(t, 30*time.Second, "us-east back at 100 after the drill", func() error {
		for _, c := range tc.controllers {
			rs, err := newClient(c.http).Regions(ctxTimeout(5 * time.Second))
			if err != nil {
				return err
			}
			for _, r := range rs {
				if r.Name == "us-east" && (r.Weight != 100 || r.State != "active") {
					return fmt.Errorf("%s: us-east %s at %d", c.id, r.State, r.Weight)
				}
			}
		}
		return nil
	})
	if out, err := tc.evac(c0, "evacuate", "us-east", "--reason", "nearest test", "--ramp", "0"); err != nil {
		t.Fatalf("evacuate: %v: %s", err, out)
	}
	for _, c := range tc.controllers {
		eventually(t, 30*time.Second, c.id+": no answer names us-east", func() error {
			regs, _ := nearSurvey(t, c.dns, clients["us-east"])
			for i, r := range regs {
				if r != second["us-east"] {
					return fmt.Errorf("%s: %s answered %s", c.id, clients["us-east"][i], r)
				}
			}
			return nil
		})
		for _, home := range []string{"us-west", "eu-west"} {
			regs, _ := nearSurvey(t, c.dns, clients[home][:1000])
			for i, r := range regs {
				if r != home {
					t.Fatalf("%s at weight 0: %s (home %s) moved to %s", c.id, clients[home][i], home, r)
				}
			}
		}
	}
	// Chicago's first choice is out: its next by distance is us-west.
	if regs, _ := nearSurvey(t, c0.dns, []string{"24.1.2.0"}); regs[0] != "us-west" {
		t.Errorf("Chicago with us-east evacuated: %s, want us-west", regs[0])
	}

	// Every controller shows the same database build time.
	for _, c := range tc.controllers {
		st, err := newClient(c.http).Status(ctxTimeout(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if st.GeoIP == nil || !st.GeoIP.BuildTime.Equal(time.Unix(1700000000, 0)) {
			t.Fatalf("%s status geoip: %+v", c.id, st.GeoIP)
		}
	}

	// A corrupt database on reload: the last good one stays in force.
	if err := os.WriteFile(geoPath, []byte("corrupt"), 0o644); err != nil {
		t.Fatal(err)
	}
	c0.Signal(syscall.SIGHUP)
	eventually(t, 30*time.Second, "status reports the failed reload", func() error {
		st, err := newClient(c0.http).Status(ctxTimeout(5 * time.Second))
		if err != nil {
			return err
		}
		if st.GeoIP == nil || st.GeoIP.ReloadError == "" || !st.GeoIP.BuildTime.Equal(time.Unix(1700000000, 0)) {
			return fmt.Errorf("geoip status %+v", st.GeoIP)
		}
		return nil
	})
	if regs, _ := nearSurvey(t, c0.dns, []string{"81.1.2.0"}); regs[0] != "eu-west" {
		t.Errorf("after a failed reload, Germany got %s", regs[0])
	}
	eventually(t, 30*time.Second, "the failed reload is an audit event", func() error {
		for _, e := range tc.events(c0) {
			if e.kind == "geoip.reload_failed" {
				return nil
			}
		}
		return fmt.Errorf("no geoip.reload_failed event")
	})
	// A good one replaces it.
	if err := geoiptest.WriteTestDB(geoPath, 1710000000, nearGeo); err != nil {
		t.Fatal(err)
	}
	c0.Signal(syscall.SIGHUP)
	eventually(t, 30*time.Second, "status reports the new database", func() error {
		st, err := newClient(c0.http).Status(ctxTimeout(5 * time.Second))
		if err != nil {
			return err
		}
		if st.GeoIP == nil || st.GeoIP.ReloadError != "" || !st.GeoIP.BuildTime.Equal(time.Unix(1710000000, 0)) {
			return fmt.Errorf("geoip status %+v", st.GeoIP)
		}
		return nil
	})
}

// explain runs `evac explain api --client sub -o json` against c.
func explain(t *testing.T, tc *testCluster, c *controllerProc, sub string) client.Explanation {
	t.Helper()
	out, err := tc.evac(c, "explain", "api", "--client", sub, "-o", "json")
	if err != nil {
		t.Fatalf("evac explain %s: %v: %s", sub, err, out)
	}
	var e client.Explanation
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatalf("evac explain %s: %v: %s", sub, err, out)
	}
	return e
}
