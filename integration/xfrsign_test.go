package integration

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/api/wire"
)

// TestDNSSECSignedTransfer: a real `evac server` signing with a KSK and a
// ZSK gives secondaries the signed zone (docs/dnssec.md, "Zone transfers"),
// and tools nobody here wrote check it: BIND's dnssec-verify passes on the
// zone `dig AXFR` takes from evac (every RRset signed by the right keys,
// signatures valid now, a complete NSEC chain); Knot, as a secondary, takes
// it, serves it signed, follows an evacuation by an incremental IXFR after
// evac's NOTIFY, and its own copy (transferred out of Knot) verifies too.
func TestDNSSECSignedTransfer(t *testing.T) {
	tools := needTools(t, "Debian bind9-utils (dnssec-verify), bind9-dnsutils (dig), knot, knot-dnsutils; `make deps` installs them",
		"dnssec-verify", "dig", "knotd", "kdig")
	verify, dig, knotd, kdig := tools[0], tools[1], tools[2], tools[3]
	const evacIP, knotIP = "127.0.9.71", "127.0.9.72"
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if out, err := exec.Command(evacBin, "dnssec", "keygen", "--dir", keys, "--zone", "example.com", "--ksk-zsk").CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	knotAddr := fmt.Sprintf("%s:%d", knotIP, freePort(t, knotIP))

	c1 := startSingleNode(t, dir, evacIP, "--dnssec-keys", keys)
	steering := strings.Replace(testSteering(), "nameservers: {ns1: 192.0.2.53}\n",
		fmt.Sprintf("nameservers: {ns1: 192.0.2.53}\nsecondaries: [\"%s\"]\n", knotAddr)+
			"records:\n  - {name: www, type: CNAME, value: api}\n  - {name: \"@\", type: TXT, value: \"v=spf1 -all\"}\n"+
			"  - {name: deep.a.b, type: TXT, value: \"under empty non-terminals\"}\n", 1)
	if _, err := c1.api.ApplyConfig(ctxT(t, 10*time.Second), []byte(steering), ""); err != nil {
		t.Fatalf("apply: %v", err)
	}

	// axfrFile transfers the zone from server (from the secondary's
	// address) with dig and writes it to a file.
	axfrFile := func(server, name string) (string, string) {
		t.Helper()
		host, port, _ := strings.Cut(server, ":")
		out, err := exec.Command(dig, "@"+host, "-p", port, "-b", knotIP, "+noall", "+answer", "+time=5", "+tries=2",
			"example.com", "AXFR").CombinedOutput()
		if err != nil {
			t.Fatalf("dig AXFR @%s: %v\n%s", server, err, out)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, out, 0o600); err != nil {
			t.Fatal(err)
		}
		return path, string(out)
	}
	// verifyZone runs dnssec-verify on the zone file at path.
	verifyZone := func(path string) {
		t.Helper()
		out, err := exec.Command(verify, "-o", "example.com", path).CombinedOutput()
		if err != nil {
			b, _ := os.ReadFile(path)
			t.Fatalf("dnssec-verify %s: %v\n%s\nzone:\n%s", filepath.Base(path), err, out, b)
		}
		t.Logf("dnssec-verify %s: %s", filepath.Base(path), strings.TrimSpace(string(out)))
	}
	var zone string
	eventually(t, 30*time.Second, "evac transfers the signed zone", func() error {
		_, z := axfrFile(c1.dns, "evac.zone")
		if !strings.Contains(z, "\tRRSIG\t") || !strings.Contains(z, "deep.a.b.example.com.") {
			return fmt.Errorf("AXFR without signatures or records:\n%s", z)
		}
		zone = z
		return nil
	})
	for _, want := range []string{"\tDNSKEY\t257 ", "\tDNSKEY\t256 ", "\tNSEC\t"} {
		if !strings.Contains(zone, want) {
			t.Errorf("the signed transfer has no %q", want)
		}
	}
	path, _ := axfrFile(c1.dns, "evac.zone")
	verifyZone(path)
	// The check can fail: a copy with a record changed under its
	// signature does not verify.
	tampered := regexp.MustCompile(`(?m)^(www\.example\.com\.\s+\d+\s+IN\s+CNAME\s+)api\.example\.com\.$`).
		ReplaceAllString(zone, "${1}evil.example.net.")
	if tampered == zone {
		t.Fatalf("no www CNAME to tamper with in:\n%s", zone)
	}
	bad := filepath.Join(dir, "tampered.zone")
	if err := os.WriteFile(bad, []byte(tampered), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(verify, "-o", "example.com", bad).CombinedOutput(); err == nil {
		t.Errorf("dnssec-verify passed a tampered zone:\n%s", out)
	}

	// Knot as the secondary.
	knotLog := startKnotSecondary(t, dir, knotd, knotAddr, c1.dns, knotIP)
	khost, kport, _ := strings.Cut(knotAddr, ":")
	soa := func(server string) (string, error) {
		host, port, _ := strings.Cut(server, ":")
		out, err := exec.Command(kdig, "@"+host, "-p", port, "+time=2", "+retry=2", "+short", "example.com", "SOA").CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("kdig SOA @%s: %v: %s", server, err, out)
		}
		f := strings.Fields(string(out))
		if len(f) < 3 {
			return "", fmt.Errorf("SOA @%s: %q", server, out)
		}
		return f[2], nil
	}
	sameSerial := func() (string, error) {
		e, err := soa(c1.dns)
		if err != nil {
			return "", err
		}
		k, err := soa(knotAddr)
		if err != nil {
			return "", err
		}
		if e != k {
			return "", fmt.Errorf("serial: evac %s, knot %s", e, k)
		}
		return e, nil
	}
	eventually(t, 30*time.Second, "Knot serves evac's signed zone", func() error {
		_, err := sameSerial()
		return err
	})
	// Knot answers with evac's signatures.
	out, err := exec.Command(kdig, "@"+khost, "-p", kport, "+dnssec", "+time=2", "api.example.com", "A").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "RRSIG\tA 13 3 ") {
		t.Errorf("knot api A +dnssec: %v\n%s", err, out)
	}

	// An evacuation: NOTIFY, and Knot takes the change by IXFR.
	if _, err := c1.api.Evacuate(ctxT(t, 10*time.Second), "us-east", wire.MoveRequest{
		Reason: "signed transfer test", Ramp: []int{0}}); err != nil {
		t.Fatalf("evacuate: %v", err)
	}
	var serial string
	eventually(t, 30*time.Second, "Knot follows the evacuation", func() error {
		_, z := axfrFile(knotAddr, "knot.zone")
		for _, line := range strings.Split(z, "\n") {
			if f := strings.Fields(line); len(f) == 5 && f[0] == "api.example.com." && f[3] == "A" && regionOf(f[4]) == "us-east" {
				return fmt.Errorf("knot still has %s", line)
			}
		}
		s, err := sameSerial()
		serial = s
		return err
	})
	// The status tells the served serial from the state's.
	st, err := c1.api.Status(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(st.SOASerial) != serial || st.SOASerial == st.Serial {
		t.Errorf("status: soa_serial %d, serial %d; the SOA serves %s", st.SOASerial, st.Serial, serial)
	}
	knotZone, _ := axfrFile(knotAddr, "knot.zone")
	verifyZone(knotZone)
	evacZone, _ := axfrFile(c1.dns, "evac-after.zone")
	verifyZone(evacZone)
	eventually(t, 30*time.Second, "Knot logs an incremental IXFR to serial "+serial, func() error {
		b, _ := os.ReadFile(knotLog)
		if bytes.Contains(b, []byte("AXFR-style IXFR")) {
			return fmt.Errorf("knotd logged an AXFR-style IXFR")
		}
		done := regexp.MustCompile(`\] (IXFR|AXFR), incoming, remote ` + regexp.QuoteMeta(evacIP) + `@\d+, finished`)
		updated := regexp.MustCompile(`zone updated, .*serial \d+ -> (\d+)`)
		last, by := "", ""
		for _, line := range strings.Split(string(b), "\n") {
			if m := done.FindStringSubmatch(line); m != nil {
				last = m[1]
			} else if m := updated.FindStringSubmatch(line); m != nil && m[1] == serial {
				by = last
			}
		}
		if by != "IXFR" {
			return fmt.Errorf("knotd took serial %s by %q, want an incremental IXFR", serial, by)
		}
		return nil
	})
}

// xfrRegions are testRegions on subnets of their own.
var xfrRegions = []regionDef{
	{"us-east", 181, testRegions[0].endpoints},
	{"us-west", 182, testRegions[1].endpoints},
	{"eu-west", 183, testRegions[2].endpoints},
}

// TestDNSSECSignedTransferCluster: three controllers started at different
// times, given the same keys, transfer byte-identical signed zones at the
// same serial, before and after an evacuation; an IXFR from one
// controller applies to a copy taken from another, and the result is the
// third's zone, which dnssec-verify passes.
func TestDNSSECSignedTransferCluster(t *testing.T) {
	verify := needTools(t, "Debian bind9-utils; `make deps` installs it", "dnssec-verify")[0]
	keyDir := filepath.Join(t.TempDir(), "keys")
	if out, err := exec.Command(evacBin, "dnssec", "keygen", "--dir", keyDir, "--zone", "example.com").CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	tc := startClusterOpts(t, clusterOpts{regions: xfrRegions, ctrlSubnet: 185, agentsPerRegion: 1,
		serverArgs: []string{"--dnssec-keys", keyDir}})
	var leader *controllerProc
	eventually(t, 30*time.Second, "a leader", func() (err error) {
		leader, err = tc.leader()
		return err
	})
	steering := strings.Replace(testSteering(), "nameservers: {ns1: 192.0.2.53}\n",
		"nameservers: {ns1: 192.0.2.53}\ntransfer_allow: [127.0.0.0/8]\n"+
			"records:\n  - {name: www, type: CNAME, value: api}\n", 1)
	if _, err := newClient(leader.http).ApplyConfig(ctxT(t, 10*time.Second), []byte(steering), ""); err != nil {
		t.Fatalf("apply: %v", err)
	}

	transfer := func(c *controllerProc, m *dns.Msg) ([]dns.RR, error) {
		tr := &dns.Transfer{DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second}
		ch, err := tr.In(m, c.dns)
		if err != nil {
			return nil, err
		}
		var rrs []dns.RR
		for env := range ch {
			if env.Error != nil {
				return nil, env.Error
			}
			rrs = append(rrs, env.RR...)
		}
		if len(rrs) < 2 {
			return nil, fmt.Errorf("%s: transfer of %d records", c.id, len(rrs))
		}
		return rrs, nil
	}
	axfr := func(c *controllerProc) (uint32, []string, error) {
		m := new(dns.Msg)
		m.SetQuestion("example.com.", dns.TypeAXFR)
		rrs, err := transfer(c, m)
		if err != nil {
			return 0, nil, err
		}
		var out []string
		for _, rr := range rrs[1 : len(rrs)-1] {
			out = append(out, rr.String())
		}
		return rrs[0].(*dns.SOA).Serial, out, nil
	}
	// allSame waits until every controller transfers the same zone at a
	// serial other than not, and returns it.
	allSame := func(what string, not uint32) (serial uint32, zone []string) {
		t.Helper()
		eventually(t, 60*time.Second, what, func() error {
			var first []string
			for i, c := range tc.controllers {
				s, z, err := axfr(c)
				if err != nil {
					return fmt.Errorf("%s: %w", c.id, err)
				}
				if s == not {
					return fmt.Errorf("%s still at serial %d", c.id, s)
				}
				if i == 0 {
					serial, first = s, z
				} else if s != serial || !slices.Equal(z, first) {
					return fmt.Errorf("%s: serial %d, %s: serial %d, zones equal %v", tc.controllers[0].id, serial, c.id, s, slices.Equal(z, first))
				}
			}
			if !strings.Contains(strings.Join(first, "\n"), "\tRRSIG\t") {
				return errors.New("the zone is not signed")
			}
			zone = first
			return nil
		})
		return serial, zone
	}
	s1, z1 := allSame("every controller transfers the same signed zone", 0)

	if _, err := newClient(leader.http).Evacuate(ctxT(t, 10*time.Second), "us-east", wire.MoveRequest{
		Reason: "signed transfer cluster test", Ramp: []int{0}}); err != nil {
		t.Fatalf("evacuate: %v", err)
	}
	s2, z2 := allSame("every controller transfers the same zone after the evacuation", s1)
	if int32(s2-s1) <= 0 {
		t.Fatalf("serial went from %d to %d", s1, s2)
	}

	// The copy at s1 (from c1) brought up to date by an IXFR from c2.
	m := new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeIXFR)
	m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeSOA, Class: dns.ClassINET},
		Ns: "ns.", Mbox: "mbox.", Serial: s1}}
	ans, err := transfer(tc.controllers[1], m)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ans[1].(*dns.SOA); !ok {
		t.Fatalf("IXFR from %d was not incremental", s1)
	}
	have := map[string]bool{}
	for _, s := range z1 {
		have[s] = true
	}
	adding, serial := true, s1 // toggled by each SOA: the old one starts deletions, the new one additions
	for _, rr := range ans[1 : len(ans)-1] {
		if soa, ok := rr.(*dns.SOA); ok {
			if adding = !adding; adding {
				serial = soa.Serial
			} else if soa.Serial != serial {
				t.Fatalf("a change from %d after one to %d", soa.Serial, serial)
			}
			continue
		}
		s := rr.String()
		if adding == have[s] {
			t.Errorf("IXFR: %s %s, which the copy has: %v", map[bool]string{true: "adds", false: "deletes"}[adding], s, have[s])
		}
		have[s] = adding
	}
	var got []string
	for s, ok := range have {
		if ok {
			got = append(got, s)
		}
	}
	want := slices.Clone(z2)
	slices.Sort(got)
	slices.Sort(want)
	if serial != s2 || !slices.Equal(got, want) {
		t.Errorf("after the IXFR the copy is at %d with %d records; the zone is at %d with %d", serial, len(got), s2, len(want))
	}
	// The third controller's zone passes dnssec-verify.
	ax := new(dns.Msg)
	ax.SetQuestion("example.com.", dns.TypeAXFR)
	rrs, err := transfer(tc.controllers[2], ax)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, rr := range rrs[:len(rrs)-1] {
		text.WriteString(rr.String() + "\n")
	}
	path := filepath.Join(t.TempDir(), "c3.zone")
	if err := os.WriteFile(path, []byte(text.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	// -z: the key is a CSK (SEP flag, signs everything), which BIND's
	// verifier accepts only when told to ignore the SEP flag.
	if out, err := exec.Command(verify, "-z", "-o", "example.com", path).CombinedOutput(); err != nil {
		t.Errorf("dnssec-verify: %v\n%s", err, out)
	}
}

// TestDNSSECSignedTransferResign: with one-minute signing periods
// (validity 3m, refresh 2m), evac re-signs at the next period's start
// without any state change: the SOA serial moves forward, evac sends
// NOTIFY, and a Knot secondary takes the new signatures (its SOA RRSIG
// expires later than before) and its copy passes dnssec-verify.
func TestDNSSECSignedTransferResign(t *testing.T) {
	tools := needTools(t, "Debian bind9-utils (dnssec-verify), bind9-dnsutils (dig), knot; `make deps` installs them",
		"dnssec-verify", "dig", "knotd")
	verify, dig, knotd := tools[0], tools[1], tools[2]
	const evacIP, knotIP = "127.0.9.73", "127.0.9.74"
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if out, err := exec.Command(evacBin, "dnssec", "keygen", "--dir", keys, "--zone", "example.com", "--ksk-zsk").CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	knotAddr := fmt.Sprintf("%s:%d", knotIP, freePort(t, knotIP))
	c1 := startSingleNode(t, dir, evacIP, "--dnssec-keys", keys, "--dnssec-validity", "3m", "--dnssec-refresh", "2m")
	steering := strings.Replace(testSteering(), "nameservers: {ns1: 192.0.2.53}\n",
		fmt.Sprintf("nameservers: {ns1: 192.0.2.53}\nsecondaries: [\"%s\"]\n", knotAddr), 1)
	if _, err := c1.api.ApplyConfig(ctxT(t, 10*time.Second), []byte(steering), ""); err != nil {
		t.Fatalf("apply: %v", err)
	}
	startKnotSecondary(t, dir, knotd, knotAddr, c1.dns, knotIP)

	// soaAt returns the SOA serial at addr and the expiration of its RRSIG.
	soaAt := func(addr string) (uint32, uint32, error) {
		m := new(dns.Msg)
		m.SetQuestion("example.com.", dns.TypeSOA)
		m.SetEdns0(4096, true)
		r, err := dns.Exchange(m, addr)
		if err != nil {
			return 0, 0, err
		}
		var serial, exp uint32
		for _, rr := range r.Answer {
			switch rr := rr.(type) {
			case *dns.SOA:
				serial = rr.Serial
			case *dns.RRSIG:
				exp = rr.Expiration
			}
		}
		if serial == 0 || exp == 0 {
			return 0, 0, fmt.Errorf("SOA at %s: %v", addr, r)
		}
		return serial, exp, nil
	}
	// synced waits until Knot serves evac's serial, and returns it and
	// Knot's SOA RRSIG expiration.
	synced := func(what string, timeout time.Duration, after uint32) (serial, exp uint32) {
		t.Helper()
		eventually(t, timeout, what, func() error {
			es, _, err := soaAt(c1.dns)
			if err != nil {
				return err
			}
			ks, kexp, err := soaAt(knotAddr)
			if err != nil {
				return err
			}
			if es == after || ks != es {
				return fmt.Errorf("serial: evac %d, knot %d (was %d)", es, ks, after)
			}
			serial, exp = ks, kexp
			return nil
		})
		return serial, exp
	}
	s0, e0 := synced("Knot serves evac's signed zone", 30*time.Second, 0)
	// The next period starts within a minute; the re-signing loop checks
	// every 7.5 s.
	s1, e1 := synced("Knot takes the re-signed zone", 120*time.Second, s0)
	t.Logf("re-signed: serial %d -> %d, Knot's SOA RRSIG expiration %d -> %d", s0, s1, e0, e1)
	if int32(s1-s0) <= 0 || e1 <= e0 {
		t.Errorf("serial %d -> %d, expiration %d -> %d: want both later", s0, s1, e0, e1)
	}
	host, port, _ := strings.Cut(knotAddr, ":")
	out, err := exec.Command(dig, "@"+host, "-p", port, "-b", knotIP, "+noall", "+answer", "+time=5", "+tries=2",
		"example.com", "AXFR").CombinedOutput()
	if err != nil {
		t.Fatalf("dig AXFR @knot: %v\n%s", err, out)
	}
	path := filepath.Join(dir, "knot-resigned.zone")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(verify, "-o", "example.com", path).CombinedOutput(); err != nil {
		t.Errorf("dnssec-verify on Knot's re-signed copy: %v\n%s", err, out)
	}
	logs, _ := os.ReadFile(c1.logPath)
	if !bytes.Contains(logs, []byte("DNS answers re-signed")) {
		t.Error("evac did not log the re-sign")
	}
}
