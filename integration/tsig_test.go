package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/api/wire"
)

// needTools returns the paths of the named programs; a missing one skips
// the test, or fails it in CI (CI set): there, a skip would hide a gap.
func needTools(t *testing.T, why string, names ...string) []string {
	t.Helper()
	var paths []string
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is needed (%s)", n, why)
			}
			t.Skipf("%s is needed (%s)", n, why)
		}
		paths = append(paths, p)
	}
	return paths
}

// daemon runs a third-party server in the foreground with its output in a
// log file, stopped with SIGTERM at cleanup (the log's tail printed if the
// test failed).
func daemon(t *testing.T, logPath string, name string, args ...string) {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			dumpTail(t, logPath, 40)
		}
	})
}

// TestTSIGSecondaries runs Knot, BIND and NSD as TSIG-authenticated
// secondaries of one `evac server --tsig-keys`, each with its own key
// (hmac-sha256 for Knot and NSD, hmac-sha512 for BIND). After the first
// transfer, 20 changes (config applies, evacuations and restores through
// the API) each reach them by a signed NOTIFY and an incremental transfer
// (IXFR from the journal): after each, every secondary serves exactly
// evac's zone (compared record by record), Knot logs each transfer as an
// incremental IXFR and never an "AXFR-style IXFR", and evac logs an
// incremental transfer signed with each secondary's key. evac refuses an
// unsigned transfer from a keyed secondary (NOTAUTH) and a wrong key with
// BADSIG or BADKEY (kdig -y), and reloads its keys on SIGHUP.
func TestTSIGSecondaries(t *testing.T) {
	t.Parallel()
	tools := needTools(t, "Debian knot, knot-dnsutils, bind9, nsd; `make deps` installs them", "knotd", "kdig", "named", "nsd")
	knotd, kdig, named, nsd := tools[0], tools[1], tools[2], tools[3]
	const evacIP, knotIP, bindIP, nsdIP, checkIP = "127.0.21.1", "127.0.21.2", "127.0.21.3", "127.0.21.4", "127.0.21.9"
	dir := t.TempDir()
	port := func(ip string) string { return fmt.Sprintf("%s:%d", ip, freePort(t, ip)) }
	// named listens only on addresses of an interface (lo has 127.0.0.1
	// alone); it sends from bindIP.
	knotAddr, bindAddr, nsdAddr := port(knotIP), port("127.0.0.1"), port(nsdIP)

	knotSecret := "c2VjcmV0LWZvci1rbm90LXNlY29uZGFyeS0wMTIzNDU2Nzg5YWJjZGVm" // 42 bytes
	bindSecret := "c2VjcmV0LWZvci1iaW5kLXNlY29uZGFyeS0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg=="
	nsdSecret := "c2VjcmV0LWZvci1uc2Qtc2Vjb25kYXJ5LTAxMjM0NTY3ODlhYmNkZWY="
	keys := filepath.Join(dir, "tsig.yaml")
	if err := os.WriteFile(keys, []byte(fmt.Sprintf(`keys:
  - {name: knot-key., algorithm: hmac-sha256, secret: "%s"}
  - {name: bind-key., algorithm: hmac-sha512, secret: "%s"}
  - {name: nsd-key., algorithm: hmac-sha256, secret: "%s"}
`, knotSecret, bindSecret, nsdSecret)), 0o600); err != nil {
		t.Fatal(err)
	}
	c1 := startSingleNode(t, dir, evacIP, "--tsig-keys", keys, "--log-level", "debug")
	api, dnsAddr := c1.api, c1.dns
	// The zone: the test's steering, the three keyed secondaries, checkIP
	// (this test's own transfers) allowed, a TXT record each config change
	// rewrites and a few static records (so that a change is small next to
	// the zone, and the journal keeps it).
	steering := func(change int) []byte {
		extra := fmt.Sprintf("secondaries:\n  - {address: \"%s\", tsig: knot-key}\n  - {address: \"%s\", tsig: bind-key}\n  - {address: \"%s\", tsig: nsd-key}\n", knotAddr, bindAddr, nsdAddr) +
			fmt.Sprintf("transfer_allow: [%s/32]\n", checkIP) +
			fmt.Sprintf("records:\n  - {name: change, type: TXT, value: \"change-%d\"}\n", change)
		for i := range 8 {
			extra += fmt.Sprintf("  - {name: static%d, type: A, value: 192.0.2.%d}\n", i, 100+i)
		}
		return []byte(strings.Replace(testSteering(), "nameservers: {ns1: 192.0.2.53}\n", "nameservers: {ns1: 192.0.2.53}\n"+extra, 1))
	}
	if _, err := api.ApplyConfig(ctxT(t, 10*time.Second), steering(0), ""); err != nil {
		t.Fatalf("apply: %v", err)
	}

	knotLog := startKnot(t, knotd, secondarySpec{dir: filepath.Join(dir, "knot"), listen: knotAddr, source: knotIP,
		key: secondaryKey{"knot-key.", "hmac-sha256", knotSecret}, evac: dnsAddr})
	startBIND(t, named, secondarySpec{dir: filepath.Join(dir, "bind"), listen: bindAddr, source: bindIP,
		key: secondaryKey{"bind-key.", "hmac-sha512", bindSecret}, evac: dnsAddr})
	startNSD(t, nsd, secondarySpec{dir: filepath.Join(dir, "nsd"), listen: nsdAddr, source: nsdIP,
		key: secondaryKey{"nsd-key.", "hmac-sha256", nsdSecret}, evac: dnsAddr})
	secondaries := map[string]string{"knot": knotAddr, "bind": bindAddr, "nsd": nsdAddr}
	names := []string{"bind", "knot", "nsd"}

	// Each secondary serves exactly evac's zone: the same records, serial
	// included (evac's read in the same attempt, in case it moved on).
	same := func(name string) (uint32, error) {
		want, serial, err := transferZone(dnsAddr, checkIP)
		if err != nil {
			return 0, fmt.Errorf("evac's zone: %w", err)
		}
		got, gotSerial, err := transferZone(secondaries[name], checkIP)
		if err != nil {
			return 0, err
		}
		if !slices.Equal(got, want) {
			return 0, fmt.Errorf("serial %d, evac's %d; records differ:\n%s\nevac:\n%s", gotSerial, serial,
				strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		return serial, nil
	}
	zoneHas := func(what string, pred func(rrs []string) bool) {
		t.Helper()
		eventually(t, 30*time.Second, "evac serves "+what, func() error {
			rrs, _, err := transferZone(dnsAddr, checkIP)
			if err == nil && !pred(rrs) {
				err = fmt.Errorf("not yet")
			}
			return err
		})
	}
	hasAddr := func(addr string) func([]string) bool {
		return func(rrs []string) bool {
			return slices.ContainsFunc(rrs, func(s string) bool {
				return strings.HasPrefix(s, "api.example.com.") && strings.HasSuffix(s, "\t"+addr)
			})
		}
	}
	const changes = 20
	var serials []uint32 // evac's serial after each change
	for change := 0; change <= changes; change++ {
		switch {
		case change == 0:
		case change%4 == 1: // evacuate us-east in one step
			if _, err := api.Evacuate(ctxT(t, 10*time.Second), "us-east", wire.MoveRequest{
				Reason: "IXFR test", Ramp: []int{0}}); err != nil {
				t.Fatalf("change %d: evacuate: %v", change, err)
			}
			zoneHas("us-east evacuated", func(rrs []string) bool { return !hasAddr(testRegions[0].endpoints[0])(rrs) })
		case change%4 == 3: // restore it in one step
			if _, err := api.Restore(ctxT(t, 10*time.Second), "us-east", wire.MoveRequest{
				Reason: "IXFR test", Ramp: []int{100}}); err != nil {
				t.Fatalf("change %d: restore: %v", change, err)
			}
			zoneHas("us-east restored", hasAddr(testRegions[0].endpoints[0]))
		default: // a config change
			if _, err := api.ApplyConfig(ctxT(t, 10*time.Second), steering(change), ""); err != nil {
				t.Fatalf("apply change %d: %v", change, err)
			}
			want := fmt.Sprintf("\"change-%d\"", change)
			zoneHas(want, func(rrs []string) bool {
				return slices.ContainsFunc(rrs, func(s string) bool { return strings.HasSuffix(s, want) })
			})
		}
		// The first transfer waits for each daemon to start; later ones
		// follow the signed NOTIFY (their SOA refresh is an hour).
		timeout := 10 * time.Second
		if change == 0 {
			timeout = 30 * time.Second
		}
		var serial uint32
		for _, name := range names {
			took := eventually(t, timeout, fmt.Sprintf("%s serves evac's zone after change %d", name, change), func() error {
				var err error
				serial, err = same(name)
				return err
			})
			t.Logf("change %d: %s serves serial %d after %v", change, name, serial, took)
		}
		serials = append(serials, serial)
	}

	// Knot took every change by an incremental IXFR, never the whole zone
	// once it had it: the transfer that precedes each "zone updated ...
	// serial P -> S" line in its log is an IXFR (Knot logs an AXFR-style
	// one as "receiving AXFR-style IXFR" and then an AXFR).
	eventually(t, 30*time.Second, "Knot logs an incremental IXFR to each serial", func() error {
		b, _ := os.ReadFile(knotLog)
		if bytes.Contains(b, []byte("AXFR-style IXFR")) {
			return fmt.Errorf("knotd logged an AXFR-style IXFR")
		}
		done := regexp.MustCompile(`\] (IXFR|AXFR), incoming, remote ` + regexp.QuoteMeta(evacIP) + `@\d+, finished`)
		updated := regexp.MustCompile(`zone updated, .*serial \d+ -> (\d+)`)
		by := map[string]string{} // serial -> the transfer that brought it
		last := ""
		for _, line := range strings.Split(string(b), "\n") {
			if m := done.FindStringSubmatch(line); m != nil {
				last = m[1]
			} else if m := updated.FindStringSubmatch(line); m != nil {
				by[m[1]] = last
			}
		}
		for _, serial := range serials[1:] {
			if kind := by[fmt.Sprint(serial)]; kind != "IXFR" {
				return fmt.Errorf("knotd took serial %d by %q, want an incremental IXFR", serial, kind)
			}
		}
		return nil
	})
	// evac answered each secondary incrementally, signed with its key.
	logs, _ := os.ReadFile(c1.logPath)
	for _, key := range []string{"knot-key.", "bind-key.", "nsd-key."} {
		incremental := regexp.MustCompile(`zone transferred.*"type": "IXFR", "style": "incremental".*"key": "` + regexp.QuoteMeta(key) + `"`)
		if n := len(incremental.FindAll(logs, -1)); n < changes {
			t.Errorf("evac's log has %d incremental transfers signed with %s, want %d", n, key, changes)
		}
	}

	ehost, eport, _ := strings.Cut(dnsAddr, ":")
	// A wrong secret over TCP: NOTAUTH, and BADSIG in the TSIG record
	// (kdig shows the TSIG error as the status).
	m := new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeAXFR)
	m.SetTsig("knot-key.", dns.HmacSHA256, 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second,
		TsigSecret: map[string]string{"knot-key.": "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyE="}}
	r, _, err := c.Exchange(m, dnsAddr)
	if r == nil {
		t.Fatalf("AXFR with a wrong secret: no answer: %v", err)
	}
	if tsig := r.IsTsig(); r.Rcode != dns.RcodeNotAuth || tsig == nil || tsig.Error != dns.RcodeBadSig || len(r.Answer) != 0 {
		t.Errorf("AXFR with a wrong secret: %v", r)
	}

	// kdig against evac: an unsigned transfer from a keyed secondary's
	// address, a wrong secret and an unknown key.
	status := regexp.MustCompile(`status: ([A-Z]+)|replied with error '([A-Z]+)'|error '([A-Z]+)'`)
	for _, tc := range []struct {
		name string
		args []string
		want []string // each must appear in kdig's output
	}{
		{"unsigned from Knot's address", []string{"-b", knotIP, "example.com", "AXFR"}, []string{"NOTAUTH"}},
		{"wrong secret", []string{"-y", "hmac-sha256:knot-key.:" + "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyE=", "example.com", "AXFR"}, []string{"BADSIG"}},
		{"unknown key", []string{"-y", "hmac-sha256:no-such-key.:" + knotSecret, "example.com", "AXFR"}, []string{"BADKEY"}},
		{"wrong algorithm", []string{"-y", "hmac-sha512:knot-key.:" + knotSecret, "example.com", "SOA"}, []string{"BADKEY"}},
		{"right key", []string{"-b", knotIP, "-y", "hmac-sha256:knot-key.:" + knotSecret, "example.com", "AXFR"}, []string{"change.example.com."}},
	} {
		out, _ := exec.Command(kdig, append([]string{"@" + ehost, "-p", eport, "+time=2", "+retry=1"}, tc.args...)...).CombinedOutput()
		for _, w := range tc.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("kdig %s: %q missing (status %v):\n%s", tc.name, w, status.FindStringSubmatch(string(out)), out)
			}
		}
	}

	// SIGHUP reloads the keys file: a new secret for knot-key takes over;
	// a file readable by others is refused and the keys in force stay.
	newSecret := "bmV3LXNlY3JldC1mb3Ita25vdC1hZnRlci1yb3RhdGlvbi0wMTIzNDU2"
	axfrWith := func(secret string) string {
		out, _ := exec.Command(kdig, "@"+ehost, "-p", eport, "+time=2", "+retry=1",
			"-y", "hmac-sha256:knot-key.:"+secret, "example.com", "AXFR").CombinedOutput()
		return string(out)
	}
	writeKeys := func(knot string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(keys, []byte(fmt.Sprintf("keys:\n  - {name: knot-key., algorithm: hmac-sha256, secret: \"%s\"}\n", knot)), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(keys, mode); err != nil {
			t.Fatal(err)
		}
	}
	writeKeys(newSecret, 0o600)
	c1.Signal(syscall.SIGHUP)
	eventually(t, 30*time.Second, "the new knot-key secret works after SIGHUP", func() error {
		if out := axfrWith(newSecret); !strings.Contains(out, "change.example.com.") {
			return fmt.Errorf("AXFR with the new secret:\n%s", out)
		}
		return nil
	})
	if out := axfrWith(knotSecret); !strings.Contains(out, "BADSIG") {
		t.Errorf("the old secret still works after the reload:\n%s", out)
	}
	writeKeys(knotSecret, 0o644)
	c1.Signal(syscall.SIGHUP)
	eventually(t, 30*time.Second, "a group-readable keys file is refused", func() error {
		b, _ := os.ReadFile(c1.logPath)
		if !strings.Contains(string(b), "TSIG keys not reloaded") || !strings.Contains(string(b), "chmod 600") {
			return fmt.Errorf("no refusal in the log")
		}
		return nil
	})
	if out := axfrWith(newSecret); !strings.Contains(out, "change.example.com.") {
		t.Errorf("after a refused reload the keys in force changed:\n%s", out)
	}
}
