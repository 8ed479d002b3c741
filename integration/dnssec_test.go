package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/api/wire"
)

// needTool returns the path of a tool the test needs: a missing tool skips
// the test on a workstation and fails it in CI.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is needed (Debian %s; `make deps` installs it)", name, pkg)
		}
		t.Skipf("%s is needed (Debian %s; `make deps` installs it)", name, pkg)
	}
	return p
}

// TestDNSSECUnbound signs the zone of a real `evac server` with keys from
// `evac dnssec keygen` and has two validators nobody here wrote check it:
// Unbound, with the DS of `evac dnssec ds` as its trust anchor and evac as
// its stub (through a UDP proxy that can tamper with answers), and delv,
// asking evac directly. Every kind of answer validates as secure (AD):
// weighted answers for many client subnets (ECS, which Unbound forwards),
// CNAME, SOA, NS, DNSKEY, TXT, NODATA and a nonexistent name, before and
// after an evacuation, a drill and a config change; a tampered answer is
// bogus (SERVFAIL). Every policy is signed (weighted, nearest, failover,
// all), and an edge replica given the same keys signs as the controller
// does (delv asks it directly).
func TestDNSSECUnbound(t *testing.T) {
	needTool(t, "unbound", "unbound")
	needTool(t, "unbound-control", "unbound")
	delv := needTool(t, "delv", "bind9-dnsutils")
	const evacIP, unboundIP, edgeIP = "127.0.9.61", "127.0.9.62", "127.0.9.64"
	dir := t.TempDir()

	// Keys, and the DS for the parent (here: Unbound's trust anchor).
	keys := filepath.Join(dir, "keys")
	runEvac(t, "dnssec", "keygen", "--dir", keys, "--zone", "example.com")
	ds := strings.TrimSpace(runEvac(t, "dnssec", "ds", "--dir", keys))
	if strings.Count(ds, "\tDS\t") != 1 || !strings.HasPrefix(ds, "example.com.\t") {
		t.Fatalf("evac dnssec ds: %q", ds)
	}

	c1 := startSingleNode(t, dir, evacIP, "--dnssec-keys", keys)
	api, httpAddr, dnsAddr := c1.api, c1.http, c1.dns
	// One service per policy (edgeSteering): nearest sends 10.20.0.0/16
	// to eu-west first, everyone else to us-east first; here 10.21 and
	// 10.22 too, eu-west then us-west: nearest answers carry the /16 as
	// their ECS scope, and Unbound's subnet cache (which unbound-control
	// does not flush) keeps them for the TTL, so each phase asks a /16 of
	// its own.
	steering := strings.Replace(edgeSteering(), "  nets:\n", "  nets:\n    10.21.0.0/16: [eu-west, us-west, us-east]\n    10.22.0.0/16: [eu-west, us-west, us-east]\n", 1)
	steering = strings.Replace(steering, "nameservers: {ns1: 192.0.2.53}\n",
		"nameservers: {ns1: 192.0.2.53}\nrecords:\n  - {name: www, type: CNAME, value: api}\n  - {name: \"@\", type: TXT, value: \"v=spf1 -all\"}\n", 1)
	if _, err := api.ApplyConfig(ctxT(t, 10*time.Second), []byte(steering), ""); err != nil {
		t.Fatalf("apply: %v", err)
	}
	// GET /v1/status has the keys and the same DS; so has ds --addr.
	st, err := api.Status(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if st.DNSSEC == nil || len(st.DNSSEC.KeyTags) != 1 || len(st.DNSSEC.DS) != 1 {
		t.Fatalf("status dnssec: %+v", st.DNSSEC)
	}
	eventually(t, 30*time.Second, "the controller signs", func() error {
		st, err := api.Status(ctxT(t, 5*time.Second))
		if err != nil {
			return err
		}
		if !st.DNSSEC.Signing || len(st.DNSSEC.Members) != 1 || st.DNSSEC.Members[0].Fingerprint != st.DNSSEC.Fingerprint {
			return fmt.Errorf("dnssec status %+v", st.DNSSEC)
		}
		return nil
	})
	// The same DS (the TTL aside: the zone's, not --ttl's).
	if got := strings.Fields(runEvac(t, "dnssec", "ds", "--addr", "http://"+httpAddr, "--token", adminToken)); len(got) < 8 ||
		strings.Join(got[3:], " ") != strings.Join(strings.Fields(ds)[3:], " ") {
		t.Errorf("ds --addr %q, --dir %q", got, ds)
	}

	// The proxy between Unbound and evac.
	px := startTamperProxy(t, evacIP, dnsAddr)

	// Unbound: trust anchor the DS, evac (via the proxy) the stub, ECS
	// forwarded to it (subnetcache).
	ub := startUnbound(t, filepath.Join(dir, "unbound"), unboundIP, ds, px.addr)
	flush, ask := ub.flush, ub.ask
	eventually(t, 30*time.Second, "unbound answers", func() error {
		_, err := ask("example.com", dns.TypeSOA, "")
		return err
	})

	type check struct {
		name   string
		qtype  uint16
		subnet string
		rcode  int
		answer bool // some record of qtype in the answer
	}
	secure := func(what string, cs []check) map[string]int {
		t.Helper()
		regions := map[string]int{}
		for _, c := range cs {
			r, err := ask(c.name, c.qtype, c.subnet)
			if err != nil {
				t.Errorf("%s: %s %s: %v", what, c.name, dns.TypeToString[c.qtype], err)
				continue
			}
			has := false
			for _, rr := range r.Answer {
				if rr.Header().Rrtype == c.qtype {
					has = true
				}
				if a, ok := rr.(*dns.A); ok {
					regions[regionOf(a.A.String())]++
				}
			}
			if r.Rcode != c.rcode || !r.AuthenticatedData || has != c.answer {
				t.Errorf("%s: %s %s (subnet %q): rcode %s AD %v answer %v, want %s AD true answer %v\n%s", what, c.name,
					dns.TypeToString[c.qtype], c.subnet, dns.RcodeToString[r.Rcode], r.AuthenticatedData, has,
					dns.RcodeToString[c.rcode], c.answer, r)
			}
		}
		return regions
	}
	fixed := []check{
		{"example.com", dns.TypeSOA, "", dns.RcodeSuccess, true},
		{"example.com", dns.TypeNS, "", dns.RcodeSuccess, true},
		{"example.com", dns.TypeDNSKEY, "", dns.RcodeSuccess, true},
		{"example.com", dns.TypeTXT, "", dns.RcodeSuccess, true},
		{"fo.example.com", dns.TypeA, "", dns.RcodeSuccess, true},
		{"every.example.com", dns.TypeA, "", dns.RcodeSuccess, true},
		{"near.example.com", dns.TypeA, "10.30.1.0", dns.RcodeSuccess, true},
		{"www.example.com", dns.TypeA, "", dns.RcodeSuccess, true},
		{"www.example.com", dns.TypeCNAME, "", dns.RcodeSuccess, true},
		{"api.example.com", dns.TypeMX, "", dns.RcodeSuccess, false},           // NODATA
		{"example.com", dns.TypeA, "", dns.RcodeSuccess, false},                // NODATA at the apex
		{"missing.example.com", dns.TypeA, "", dns.RcodeSuccess, false},        // RFC 9824: NODATA at the missing name
		{"a.b.missing.example.com", dns.TypeAAAA, "", dns.RcodeSuccess, false}, // and below
	}
	subnets := func(base int) []check {
		var cs []check
		for i := range 40 {
			cs = append(cs, check{"api.example.com", dns.TypeA, fmt.Sprintf("10.%d.%d.0", base, i*6), dns.RcodeSuccess, true})
		}
		return cs
	}
	secure("before", fixed)
	before := secure("before", subnets(1))
	if len(before) < 2 || before["us-east"] == 0 {
		t.Errorf("before the evacuation, 40 subnets got %v: want several regions", before)
	}

	// delv, asking evac directly, with the DS as its trust anchor.
	anchors := filepath.Join(dir, "anchors.conf")
	f := strings.Fields(ds)
	if err := os.WriteFile(anchors, []byte(fmt.Sprintf("trust-anchors { %q static-ds %s %s %s %q; };\n", f[0], f[4], f[5], f[6], strings.Join(f[7:], ""))), 0o600); err != nil {
		t.Fatal(err)
	}
	delvAt := func(what, server string, qs [][2]string) {
		t.Helper()
		host, port, _ := strings.Cut(server, ":")
		for _, q := range qs {
			out, _ := exec.Command(delv, "@"+host, "-p", port, "-a", anchors, "+root=example.com", q[0], q[1]).CombinedOutput()
			if !strings.Contains(string(out), "fully validated") {
				t.Errorf("%s: delv %s %s:\n%s", what, q[0], q[1], out)
			}
		}
	}
	delvAt("controller", dnsAddr, [][2]string{{"api.example.com", "A"}, {"www.example.com", "A"}, {"example.com", "SOA"}, {"example.com", "NS"},
		{"example.com", "DNSKEY"}, {"api.example.com", "MX"}, {"missing.example.com", "A"}})

	// Nearest: the /16 net is homed in eu-west (a record count per region).
	near := func(what, net, want string) {
		t.Helper()
		var cs []check
		for i := range 8 {
			cs = append(cs, check{"near.example.com", dns.TypeA, fmt.Sprintf("10.%s.%d.0", net, i), dns.RcodeSuccess, true})
		}
		if got := secure(what, cs); len(got) != 1 || got[want] == 0 {
			t.Errorf("%s: nearest answers for 10.%s.0.0/16 came from %v, want all from %s", what, net, got, want)
		}
	}
	near("before", "20", "eu-west")

	// A drill holds eu-west at weight 0: its clients go to their next
	// nearest region, and every answer stays secure.
	rb := "name: dnssec-hold\nsteps:\n  - shift: {region: eu-west, weight: 0}\n  - wait: {duration: 10m}\n"
	if _, err := api.PutRunbook(ctxT(t, 10*time.Second), "dnssec-hold", []byte(rb)); err != nil {
		t.Fatalf("put runbook: %v", err)
	}
	drill, err := api.StartDrill(ctxT(t, 10*time.Second), wire.DrillRequest{Runbook: "dnssec-hold", Reason: "dnssec test"})
	if err != nil {
		t.Fatalf("start drill: %v", err)
	}
	eventually(t, 60*time.Second, "the drill holds eu-west", func() error {
		for i := range 20 {
			if region, err := answerRegion(dnsAddr, "api.example.com", fmt.Sprintf("10.9.%d.0", i)); err != nil || region == "eu-west" {
				return fmt.Errorf("api for 10.9.%d.0: %q %v", i, region, err)
			}
		}
		if region, err := answerRegion(dnsAddr, "near.example.com", "10.21.99.0"); err != nil || region != "us-west" {
			return fmt.Errorf("near for 10.21.99.0: %q %v", region, err)
		}
		return nil
	})
	flush()
	if during := secure("during the drill", subnets(4)); during["eu-west"] != 0 || len(during) == 0 {
		t.Errorf("during the drill, 40 subnets got %v", during)
	}
	near("during the drill", "21", "us-west")
	if _, err := api.AbortDrill(ctxT(t, 10*time.Second), drill.ID, "dnssec test done"); err != nil {
		t.Fatalf("abort drill: %v", err)
	}
	eventually(t, 60*time.Second, "eu-west back after the drill", func() error {
		if region, err := answerRegion(dnsAddr, "near.example.com", "10.22.99.0"); err != nil || region != "eu-west" {
			return fmt.Errorf("near for 10.22.99.0: %q %v", region, err)
		}
		return nil
	})
	flush()
	near("after the drill", "22", "eu-west")

	// An edge replica with the same keys signs as the controller does.
	edgePort := func() string { return fmt.Sprintf("%s:%d", edgeIP, freePort(t, edgeIP)) }
	edgeHTTP, edgeDNS := edgePort(), edgePort()
	joinToken := filepath.Join(dir, "join.token")
	if err := os.WriteFile(joinToken, []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	edge := startProc(t, "e1", "server", "--edge", "--node-id", "e1", "--data-dir", filepath.Join(dir, "e1"),
		"--raft-addr", edgePort(), "--http-addr", edgeHTTP, "--dns-addr", edgeDNS, "--insecure-no-raft-tls", "--fast",
		"--tokens-file", filepath.Join(dir, "tokens.yaml"), "--join-cluster", "http://"+httpAddr, "--join-token-file", joinToken,
		"--dnssec-keys", keys)
	edgeAPI := newClient(edgeHTTP)
	eventually(t, 60*time.Second, "the edge signs", func() error {
		if edge.Exited() {
			t.Fatal("the edge is not running (its log is printed at the end)")
		}
		st, err := edgeAPI.Status(ctxT(t, 5*time.Second))
		if err != nil {
			return err
		}
		if st.DNSSEC == nil || !st.DNSSEC.Signing {
			return fmt.Errorf("edge dnssec status %+v", st.DNSSEC)
		}
		return steeredWithout(edgeDNS, "") // answers from its replica
	})
	edgeQueries := [][2]string{{"api.example.com", "A"}, {"near.example.com", "A"}, {"fo.example.com", "A"}, {"every.example.com", "A"},
		{"www.example.com", "A"}, {"example.com", "SOA"}, {"example.com", "DNSKEY"}, {"api.example.com", "MX"}, {"missing.example.com", "A"}}
	delvAt("edge", edgeDNS, edgeQueries)

	// Evacuate us-east: every subnet moves off it, still secure.
	if _, err := api.Evacuate(ctxT(t, 10*time.Second), "us-east", wire.MoveRequest{Reason: "dnssec test", Force: true}); err != nil {
		t.Fatalf("evacuate: %v", err)
	}
	eventually(t, 60*time.Second, "us-east evacuated", func() error {
		for i := range 40 {
			r, err := queryA(dnsAddr, "api.example.com", fmt.Sprintf("10.2.%d.0", i*6))
			if err != nil {
				return err
			}
			for _, rr := range r.Answer {
				if a, ok := rr.(*dns.A); ok && regionOf(a.A.String()) == "us-east" {
					return fmt.Errorf("subnet %d still gets us-east", i)
				}
			}
		}
		return nil
	})
	flush()
	after := secure("after evacuating", subnets(2))
	if after["us-east"] != 0 || len(after) == 0 {
		t.Errorf("after the evacuation, 40 subnets got %v", after)
	}
	secure("after evacuating", fixed)
	eventually(t, 30*time.Second, "the edge follows the evacuation", func() error { return steeredWithout(edgeDNS, "us-east") })
	delvAt("edge after evacuating", edgeDNS, edgeQueries)

	// A config change: a new record, signed when applied.
	changed := strings.Replace(steering, "records:\n", "records:\n  - {name: new, type: A, value: 192.0.2.99}\n", 1)
	if _, err := api.ApplyConfig(ctxT(t, 10*time.Second), []byte(changed), ""); err != nil {
		t.Fatalf("apply: %v", err)
	}
	eventually(t, 30*time.Second, "the new record is served", func() error {
		r, err := queryA(dnsAddr, "new.example.com", "")
		if err != nil {
			return err
		}
		if len(r.Answer) != 1 {
			return fmt.Errorf("new A: %v", r.Answer)
		}
		return nil
	})
	flush()
	secure("after the config change", append([]check{{"new.example.com", dns.TypeA, "", dns.RcodeSuccess, true}}, fixed...))
	secure("after the config change", subnets(3))

	// Tampering: one byte of an address flipped on the way is bogus.
	// (Subnets not asked before: Unbound's subnet cache, which
	// unbound-control does not flush, has answers for the others.)
	px.tamper.Store(true)
	flush()
	for i, name := range []string{"www.example.com", "api.example.com"} {
		r, err := ask(name, dns.TypeA, fmt.Sprintf("10.9.%d.0", i))
		if err != nil {
			t.Fatal(err)
		}
		if r.Rcode != dns.RcodeServerFailure {
			t.Errorf("tampered %s: rcode %s, want SERVFAIL (bogus)\n%s", name, dns.RcodeToString[r.Rcode], r)
		}
	}
	if px.tampered.Load() == 0 {
		t.Error("the proxy tampered with nothing")
	}
	px.tamper.Store(false)
	flush()
	secure("after tampering stopped", []check{{"api.example.com", dns.TypeA, "10.9.7.0", dns.RcodeSuccess, true},
		{"www.example.com", dns.TypeA, "10.9.8.0", dns.RcodeSuccess, true}})
}

// tamperProxy forwards UDP DNS between Unbound and evac; while tamper is
// set it flips the last byte of every A record's address in answers.
type tamperProxy struct {
	addr     string
	tamper   atomic.Bool
	tampered atomic.Int64
}

func startTamperProxy(t *testing.T, ip, upstream string) *tamperProxy {
	t.Helper()
	pc, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	px := &tamperProxy{addr: pc.LocalAddr().String()}
	up, err := net.ResolveUDPAddr("udp", upstream)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	wg.Go(func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := append([]byte(nil), buf[:n]...)
			wg.Go(func() {
				c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)}, up)
				if err != nil {
					return
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(3 * time.Second))
				if _, err := c.Write(q); err != nil {
					return
				}
				rb := make([]byte, 65535)
				rn, err := c.Read(rb)
				if err != nil {
					return
				}
				rb = rb[:rn]
				if px.tamper.Load() {
					m := new(dns.Msg)
					if m.Unpack(rb) == nil {
						flipped := false
						for _, rr := range m.Answer {
							if a, ok := rr.(*dns.A); ok {
								a.A = append(net.IP(nil), a.A.To4()...)
								a.A[3] ^= 1
								flipped = true
							}
						}
						if flipped {
							m.Compress = true
							if out, err := m.Pack(); err == nil {
								rb = out
								px.tampered.Add(1)
							}
						}
					}
				}
				_, _ = pc.WriteTo(rb, from)
			})
		}
	})
	return px
}
