package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
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

// TestTSIGSecondaries runs Knot and BIND as TSIG-authenticated secondaries
// of one `evac server --tsig-keys`: each transfers the zone signed with its
// own key (hmac-sha256 for Knot, hmac-sha512 for BIND), gets a signed
// NOTIFY after every change and serves it; evac refuses an unsigned
// transfer from a keyed secondary (NOTAUTH) and a wrong key with BADSIG
// or BADKEY (kdig -y).
func TestTSIGSecondaries(t *testing.T) {
	t.Parallel()
	tools := needTools(t, "Debian knot, knot-dnsutils, bind9; `make deps` installs them", "knotd", "kdig", "named")
	knotd, kdig, named := tools[0], tools[1], tools[2]
	const evacIP, knotIP, bindIP = "127.0.21.1", "127.0.21.2", "127.0.21.3"
	dir := t.TempDir()
	port := func(ip string) string { return fmt.Sprintf("%s:%d", ip, freePort(t, ip)) }
	raft, gossip, httpAddr, dnsAddr := port(evacIP), port(evacIP), port(evacIP), port(evacIP)
	// named listens only on addresses of an interface (lo has 127.0.0.1
	// alone); it sends from bindIP.
	knotAddr, bindAddr := port(knotIP), port("127.0.0.1")

	knotSecret := "c2VjcmV0LWZvci1rbm90LXNlY29uZGFyeS0wMTIzNDU2Nzg5YWJjZGVm" // 42 bytes
	bindSecret := "c2VjcmV0LWZvci1iaW5kLXNlY29uZGFyeS0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg=="
	keys := filepath.Join(dir, "tsig.yaml")
	if err := os.WriteFile(keys, []byte(fmt.Sprintf(`keys:
  - {name: knot-key., algorithm: hmac-sha256, secret: "%s"}
  - {name: bind-key., algorithm: hmac-sha512, secret: "%s"}
`, knotSecret, bindSecret)), 0o600); err != nil {
		t.Fatal(err)
	}
	c1 := startProc(t, "c1", "server", "--node-id", "c1", "--data-dir", filepath.Join(dir, "c1"),
		"--raft-addr", raft, "--gossip-addr", gossip, "--http-addr", httpAddr, "--dns-addr", dnsAddr,
		"--bootstrap", "c1="+raft, "--tokens-file", writeTokens(t, filepath.Join(dir, "tokens.yaml")),
		"--gossip-key-file", keygen(t, dir), "--tsig-keys", keys, "--fast", "--log-level", "debug",
		"--insecure-no-raft-tls") // one controller on loopback; this test is about TSIG
	api := newClient(httpAddr)
	eventually(t, 30*time.Second, "single-node leader", func() error {
		st, err := api.Status(ctxT(t, 5*time.Second))
		if err != nil {
			return err
		}
		if !st.IsLeader {
			return fmt.Errorf("not leader yet")
		}
		return nil
	})
	steering := func(change int) []byte {
		return []byte(strings.Replace(testSteering(), "nameservers: {ns1: 192.0.2.53}\n",
			fmt.Sprintf("nameservers: {ns1: 192.0.2.53}\nsecondaries:\n  - {address: \"%s\", tsig: knot-key}\n  - {address: \"%s\", tsig: bind-key}\n", knotAddr, bindAddr)+
				fmt.Sprintf("records:\n  - {name: change, type: TXT, value: \"change-%d\"}\n", change), 1))
	}
	if _, err := api.ApplyConfig(ctxT(t, 10*time.Second), steering(0), ""); err != nil {
		t.Fatalf("apply: %v", err)
	}

	ehost, eport, _ := strings.Cut(dnsAddr, ":")
	// Knot, keyed with knot-key.
	kdir := filepath.Join(dir, "knot")
	khost, kport, _ := strings.Cut(knotAddr, ":")
	if err := os.MkdirAll(kdir, 0o700); err != nil {
		t.Fatal(err)
	}
	kconf := filepath.Join(kdir, "knot.conf")
	if err := os.WriteFile(kconf, []byte(fmt.Sprintf(`server:
    listen: %s@%s
    rundir: %s
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: %s
key:
  - id: knot-key.
    algorithm: hmac-sha256
    secret: %s
remote:
  - id: evac
    address: %s@%s
    via: %s
    key: knot-key.
acl:
  - id: notify_from_evac
    address: %s
    key: knot-key.
    action: notify
template:
  - id: default
    storage: %s
zone:
  - domain: example.com
    master: evac
    acl: notify_from_evac
`, khost, kport, kdir, kdir, knotSecret, ehost, eport, khost, ehost, kdir)), 0o600); err != nil {
		t.Fatal(err)
	}
	daemon(t, filepath.Join(kdir, "knotd.log"), knotd, "-c", kconf)

	// BIND 9, keyed with bind-key., in the foreground as root.
	bdir := filepath.Join(dir, "bind")
	bhost, bport := bindIP, strings.Split(bindAddr, ":")[1]
	if err := os.MkdirAll(bdir, 0o700); err != nil {
		t.Fatal(err)
	}
	bconf := filepath.Join(bdir, "named.conf")
	if err := os.WriteFile(bconf, []byte(fmt.Sprintf(`options {
    directory "%[1]s";
    pid-file "%[1]s/named.pid";
    session-keyfile "%[1]s/session.key";
    managed-keys-directory "%[1]s";
    listen-on port %[2]s { 127.0.0.1; };
    listen-on-v6 { none; };
    transfer-source %[3]s;
    notify-source %[3]s;
    query-source address %[3]s;
    recursion no;
    notify no;
    dnssec-validation no;
};
controls { };
key "bind-key." { algorithm hmac-sha512; secret "%[4]s"; };
server %[5]s { keys { "bind-key."; }; };
zone "example.com" {
    type secondary;
    primaries port %[6]s { %[5]s key "bind-key."; };
    file "%[1]s/example.com.db";
    allow-notify { key "bind-key."; };
};
`, bdir, bport, bhost, bindSecret, ehost, eport)), 0o600); err != nil {
		t.Fatal(err)
	}
	daemon(t, filepath.Join(bdir, "named.log"), named, "-g", "-4", "-c", bconf)

	soaSerial := func(server string) (uint32, error) {
		m := new(dns.Msg)
		m.SetQuestion("example.com.", dns.TypeSOA)
		r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, server)
		if err != nil {
			return 0, err
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			return 0, fmt.Errorf("SOA: %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		return r.Answer[0].(*dns.SOA).Serial, nil
	}
	txtAt := func(server string) (string, error) {
		m := new(dns.Msg)
		m.SetQuestion("change.example.com.", dns.TypeTXT)
		r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, server)
		if err != nil {
			return "", err
		}
		if len(r.Answer) != 1 {
			return "", fmt.Errorf("TXT: %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		return strings.Join(r.Answer[0].(*dns.TXT).Txt, ""), nil
	}
	secondaries := map[string]string{"knot": knotAddr, "bind": bindAddr}
	const changes = 5
	for change := 0; change <= changes; change++ {
		if change > 0 {
			if _, err := api.ApplyConfig(ctxT(t, 10*time.Second), steering(change), ""); err != nil {
				t.Fatalf("apply change %d: %v", change, err)
			}
		}
		want := fmt.Sprintf("change-%d", change)
		var serial uint32
		eventually(t, 10*time.Second, "evac serves "+want, func() error {
			got, err := txtAt(dnsAddr)
			if err == nil && got != want {
				err = fmt.Errorf("TXT %q", got)
			}
			if err == nil {
				serial, err = soaSerial(dnsAddr)
			}
			return err
		})
		// The first transfer waits for each daemon to start; later ones
		// follow the signed NOTIFY (their SOA refresh is an hour).
		timeout := 10 * time.Second
		if change == 0 {
			timeout = 30 * time.Second
		}
		for name, addr := range secondaries {
			took := eventually(t, timeout, name+" serves "+want, func() error {
				got, err := txtAt(addr)
				if err == nil && got != want {
					err = fmt.Errorf("TXT %q", got)
				}
				if err != nil {
					return err
				}
				s, err := soaSerial(addr)
				if err == nil && s != serial {
					err = fmt.Errorf("serial %d, evac's %d", s, serial)
				}
				return err
			})
			t.Logf("change %d: %s serves serial %d after %v", change, name, serial, took)
		}
	}

	// The transfers were signed: evac logged each secondary's key.
	logs, _ := os.ReadFile(c1.logPath)
	for _, key := range []string{"knot-key.", "bind-key."} {
		if !regexp.MustCompile(`zone transferred.*"key": "` + regexp.QuoteMeta(key) + `"`).Match(logs) {
			t.Errorf("evac's log has no transfer signed with %s", key)
		}
	}

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
	eventually(t, 10*time.Second, "the new knot-key secret works after SIGHUP", func() error {
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
	eventually(t, 10*time.Second, "a group-readable keys file is refused", func() error {
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
