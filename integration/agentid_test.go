package integration

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// Agents with identities (SPEC "Security defaults"): only enrolled agents'
// signed reports count. A rogue agent holding the gossip key but not
// enrolled, and an agent enrolled for eu-west that claims us-east, change
// no verdict; a forged report with another agent's origin and
// Seq = MaxUint64 is dropped, and that agent's real reports keep counting.

// agentIDRegions live on 127.0.171-173.0/24, the controllers on
// 127.0.179.0/24 and the rogues on 127.0.174.0/24.
var agentIDRegions = []regionDef{
	{"us-east", 171, testRegions[0].endpoints},
	{"us-west", 172, testRegions[1].endpoints},
	{"eu-west", 173, testRegions[2].endpoints},
}

// agentKeygen runs `evac agent keygen --out dir/name.key` and returns the
// key file and the public key it printed.
func agentKeygen(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	path := filepath.Join(dir, name+".key")
	out, err := exec.Command(evacBin, "agent", "keygen", "--out", path).Output()
	if err != nil {
		t.Fatalf("evac agent keygen: %v", err)
	}
	return path, strings.TrimSpace(string(out))
}

// startSignedAgent starts an agent process with its own key, claiming
// region, checking target.
func (tc *testCluster) startSignedAgent(name, region, ip, keyFile, target string) *proc {
	tc.t.Helper()
	cfg := fmt.Sprintf(`region: %s
node_name: %s
gossip_addr: %s:%d
join: [%s]
gossip_key_file: %s
key_file: %s
refresh_interval: 5s
checks:
  - {name: http, service: api, type: http, target: "%s", interval: 1s, timeout: 500ms, rise: 2, fall: 2}
`, region, name, ip, freePort(tc.t, ip), strings.Join(tc.seeds, ", "), tc.keyFile, keyFile, target)
	path := filepath.Join(tc.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		tc.t.Fatal(err)
	}
	p := startProc(tc.t, name, "agent", "--config", path, "--fast", "--log-level", "debug")
	tc.agents = append(tc.agents, p)
	return p
}

var droppedRE = regexp.MustCompile(`(?m)^evac_gossip_reports_dropped_total\{reason="([a-z_]+)"\} (\S+)$`)

// drops scrapes a controller's dropped-report counters.
func drops(c *controllerProc) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctxTimeout(5*time.Second), http.MethodGet, "http://"+c.http+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, m := range droppedRE.FindAllStringSubmatch(string(b), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		out[m[1]] = v
	}
	return out, nil
}

// waitDrops waits until every controller counted at least min drops for
// reason.
func (tc *testCluster) waitDrops(reason string, min func(c *controllerProc) float64) {
	tc.t.Helper()
	eventually(tc.t, 60*time.Second, "every controller drops "+reason, func() error {
		for _, c := range tc.controllers {
			d, err := drops(c)
			if err != nil {
				return err
			}
			if d[reason] < min(c) {
				return fmt.Errorf("%s dropped %v", c.id, d)
			}
		}
		return nil
	})
}

// noVerdictChange checks that every region is active at weight 100 with
// its two enrolled agents, all passing, on every controller, and that the
// audit log holds no health verdict or evacuation.
func (tc *testCluster) noVerdictChange() {
	tc.t.Helper()
	for _, c := range tc.controllers {
		regions, err := newClient(c.http).Regions(ctxTimeout(5 * time.Second))
		if err != nil {
			tc.t.Fatal(err)
		}
		for _, r := range regions {
			api := r.Services["api"]
			if r.State != "active" || r.Weight != 100 || r.AgentsAlive != 2 || r.AgentsTotal != 2 || api.Reporting != 2 || api.Passing != 2 {
				tc.t.Fatalf("%s sees %s: state %s weight %d agents %d/%d api %d/%d failing %v", c.id, r.Name, r.State, r.Weight,
					r.AgentsAlive, r.AgentsTotal, api.Passing, api.Reporting, api.Failing)
			}
		}
		for _, e := range tc.events(c) {
			if e.kind == "health.unhealthy" || strings.HasPrefix(e.kind, "region.") {
				tc.t.Fatalf("%s: audit event %+v", c.id, e)
			}
		}
	}
}

// forgeReportV3 lays out a protocol 3 binary report as gossip's
// wire.go does: type 4, flags, origin, service, check, seq, time, region,
// status code, output, [signature]. Written out here, as an attacker
// would, rather than borrowed from the package under test.
func forgeReportV3(origin, region string, seq uint64, sig []byte) []byte {
	str := func(b []byte, s string) []byte { return append(binary.AppendUvarint(b, uint64(len(s))), s...) }
	flags := byte(0)
	if sig != nil {
		flags = 2
	}
	b := []byte{4, flags}
	b = str(b, origin)
	b = str(b, "api")
	b = str(b, "http")
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint64(b, uint64(time.Now().UnixNano()))
	b = str(b, region)
	b = append(b, 2) // failing
	b = str(b, "forged")
	return append(b, sig...)
}

// forger is a memberlist instance holding the gossip key that sends user
// messages straight to the given nodes, without joining the pool.
type forger struct{ ml *memberlist.Memberlist }

func newForger(t *testing.T, ip, keyFile string) *forger {
	t.Helper()
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.Split(string(raw), "\n")[0]))
	if err != nil {
		t.Fatal(err)
	}
	conf := memberlist.DefaultLANConfig()
	conf.Name, conf.BindAddr, conf.BindPort, conf.AdvertisePort = "forger", ip, 0, 0
	conf.SecretKey = key
	conf.Logger = zap.NewStdLog(zap.NewNop())
	ml, err := memberlist.Create(conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ml.Shutdown() })
	return &forger{ml: ml}
}

func (f *forger) send(t *testing.T, addrs []string, msg []byte) {
	t.Helper()
	for _, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		p, _ := strconv.Atoi(port)
		if err := f.ml.SendBestEffort(&memberlist.Node{Name: a, Addr: net.ParseIP(host), Port: uint16(p)}, msg); err != nil {
			t.Fatalf("send to %s: %v", a, err)
		}
	}
}

func TestAgentIdentities(t *testing.T) {
	t.Parallel()
	tc := startClusterOpts(t, clusterOpts{regions: nil, ctrlSubnet: 179})
	tc.regions = agentIDRegions
	tc.applySteering(testSteering())

	// Every agent: its own key, enrolled through the CLI, then started.
	keys := t.TempDir()
	for _, r := range agentIDRegions {
		b := startBackend(t, fmt.Sprintf("127.0.%d.100", r.subnet))
		tc.backends[r.name] = b
		for k := 1; k <= 2; k++ {
			name := fmt.Sprintf("%s-a%d", r.name, k)
			keyFile, pub := agentKeygen(t, keys, name)
			if out, err := tc.evac(tc.controllers[0], "agent", "enroll", name, "--region", r.name, "--public-key", pub); err != nil {
				t.Fatalf("enrol %s: %v: %s", name, err, out)
			}
			ip := fmt.Sprintf("127.0.%d.%d", r.subnet, k)
			tc.startSignedAgent(name, r.name, ip, keyFile, b.url)
		}
	}
	tc.waitHealthy()
	out, err := tc.evac(tc.controllers[1], "agents")
	if err != nil || !strings.Contains(out, "enrolment enforced (policy auto)") || strings.Count(out, " yes ") != 6 {
		t.Fatalf("evac agents: %v\n%s", err, out)
	}

	// Two rogues with the gossip key, both failing: one not enrolled,
	// one enrolled for eu-west but claiming us-east.
	failing := "http://127.0.174.100:1/health" // nothing listens: the check fails
	rogueKey, _ := agentKeygen(t, keys, "rogue")
	tc.startSignedAgent("rogue", "us-east", "127.0.174.1", rogueKey, failing)
	liarKey, liarPub := agentKeygen(t, keys, "liar")
	if out, err := tc.evac(tc.controllers[0], "agent", "enroll", "liar", "--region", "eu-west", "--public-key", liarPub); err != nil {
		t.Fatalf("enrol liar: %v: %s", err, out)
	}
	tc.startSignedAgent("liar", "us-east", "127.0.174.2", liarKey, failing)
	eventually(t, 60*time.Second, "every controller sees both rogues alive", func() error {
		for _, c := range tc.controllers {
			ms, err := newClient(c.http).Members(ctxTimeout(5 * time.Second))
			if err != nil {
				return err
			}
			alive := 0
			for _, m := range ms {
				if (m.Name == "rogue" || m.Name == "liar") && m.State == "alive" {
					alive++
				}
			}
			if alive != 2 {
				return fmt.Errorf("%s sees %d rogues alive", c.id, alive)
			}
		}
		return nil
	})
	// Their reports and refreshes arrive and are refused, again and again,
	// for well past detect_after (2 s), and the verdicts have not moved.
	tc.waitDrops("not_enrolled", func(*controllerProc) float64 { return 1 })
	tc.waitDrops("wrong_region", func(*controllerProc) float64 { return 1 })
	base := map[string]float64{}
	for _, c := range tc.controllers {
		d, err := drops(c)
		if err != nil {
			t.Fatal(err)
		}
		base[c.id] = d["not_enrolled"]
	}
	since := time.Now()
	eventually(t, 60*time.Second, "rogue reports still refused 3 × detect_after later", func() error {
		for _, c := range tc.controllers {
			d, err := drops(c)
			if err != nil {
				return err
			}
			if d["not_enrolled"] <= base[c.id] {
				return fmt.Errorf("%s: no new drops since %v", c.id, base[c.id])
			}
		}
		if waited := time.Since(since); waited < 6*time.Second {
			return fmt.Errorf("only %s with the rogues reporting", waited)
		}
		return nil
	})
	tc.noVerdictChange()

	// A forged report for us-east-a1, failing, with Seq = MaxUint64, sent
	// to every controller and agent with the gossip key; and one within
	// the clock bound but signed with a key that is not us-east-a1's.
	f := newForger(t, "127.0.174.3", tc.keyFile)
	var targets []string
	for _, c := range tc.controllers {
		targets = append(targets, c.gossip)
	}
	_, rogueSigner, _ := ed25519.GenerateKey(rand.Reader)
	huge := forgeReportV3("us-east-a1", "us-east", math.MaxUint64, nil)
	nearSeq := uint64(time.Now().Add(4 * time.Minute).UnixNano())
	near := forgeReportV3("us-east-a1", "us-east", nearSeq, make([]byte, 64))
	copy(near[len(near)-64:], ed25519.Sign(rogueSigner, []byte("whatever an attacker can sign")))
	before := map[string]map[string]float64{}
	for _, c := range tc.controllers {
		if before[c.id], err = drops(c); err != nil {
			t.Fatal(err)
		}
	}
	f.send(t, targets, huge)
	f.send(t, targets, near)
	tc.waitDrops("seq_future", func(c *controllerProc) float64 { return before[c.id]["seq_future"] + 1 })
	tc.waitDrops("bad_signature", func(c *controllerProc) float64 { return before[c.id]["bad_signature"] + 1 })
	tc.noVerdictChange()

	// us-east-a1's real reports still count: its backend fails, and every
	// controller sees its new failing report (and us-east-a2's).
	tc.backends["us-east"].healthy.Store(false)
	eventually(t, 60*time.Second, "us-east's real failing reports counted on every controller", func() error {
		for _, c := range tc.controllers {
			r, err := newClient(c.http).Region(ctxTimeout(5*time.Second), "us-east")
			if err != nil {
				return err
			}
			if api := r.Services["api"]; api.Reporting != 2 || api.Passing != 0 || !containsStr(api.Failing, "us-east-a1/http") {
				return fmt.Errorf("%s: us-east api %d/%d failing %v", c.id, api.Passing, api.Reporting, api.Failing)
			}
		}
		return nil
	})
	tc.backends["us-east"].healthy.Store(true)

	// Revoking an agent takes it out of its region's count.
	if out, err := tc.evac(tc.controllers[2], "agent", "revoke", "us-west-a2", "--reason", "test"); err != nil {
		t.Fatalf("revoke: %v: %s", err, out)
	}
	eventually(t, 30*time.Second, "a revoked agent no longer counts", func() error {
		for _, c := range tc.controllers {
			r, err := newClient(c.http).Region(ctxTimeout(5*time.Second), "us-west")
			if err != nil {
				return err
			}
			if r.AgentsTotal != 1 || r.Services["api"].Reporting != 1 {
				return fmt.Errorf("%s: us-west agents %d, reporting %d", c.id, r.AgentsTotal, r.Services["api"].Reporting)
			}
		}
		return nil
	})
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
