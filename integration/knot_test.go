package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/api/wire"
)

// TestKnotSecondary runs Knot DNS as a secondary of one real `evac server`:
// Knot transfers the zone, gets a NOTIFY when an evacuation changes it, and
// serves the new answer within 5 s. kdig checks evac's rcodes on the way.
func TestKnotSecondary(t *testing.T) {
	tools := needTools(t, "Debian knot, knot-dnsutils; `make deps` installs them", "knotd", "kdig")
	knotd, kdig := tools[0], tools[1]
	const evacIP, knotIP = "127.0.9.31", "127.0.9.32"
	dir := t.TempDir() // created by the test's user (root in CI), mode 0700
	port := func(ip string) string { return fmt.Sprintf("%s:%d", ip, freePort(t, ip)) }
	knotAddr := port(knotIP)

	c1 := startSingleNode(t, dir, evacIP, "--log-level", "debug")
	api, dnsAddr := c1.api, c1.dns
	steering := strings.Replace(testSteering(), "nameservers: {ns1: 192.0.2.53}\n",
		fmt.Sprintf("nameservers: {ns1: 192.0.2.53}\nsecondaries: [\"%s\"]\n", knotAddr)+
			"records:\n  - {name: www, type: CNAME, value: api}\n  - {name: \"@\", type: TXT, value: \"v=spf1 -all\"}\n", 1)
	if _, err := api.ApplyConfig(ctxT(t, 10*time.Second), []byte(steering), ""); err != nil {
		t.Fatalf("apply: %v", err)
	}

	// kdig against evac: the rcodes.
	dig := func(server string, args ...string) string {
		t.Helper()
		host, p, _ := strings.Cut(server, ":")
		// kdig exits 1 on a refused transfer: its output tells.
		out, err := exec.Command(kdig, append([]string{"@" + host, "-p", p, "+time=2", "+retry=2"}, args...)...).CombinedOutput()
		if len(out) == 0 {
			t.Fatalf("kdig %v: %v, no output", args, err)
		}
		return string(out)
	}
	status := regexp.MustCompile(`status: ([A-Z]+)|replied with error '([A-Z]+)'`)
	statusOf := func(out string) string {
		if m := status.FindStringSubmatch(out); m != nil {
			return m[1] + m[2]
		}
		return "?"
	}
	eventually(t, 30*time.Second, "evac serves the config", func() error {
		if s := statusOf(dig(dnsAddr, "api.example.com", "A")); s != "NOERROR" {
			return fmt.Errorf("api A: %s", s)
		}
		return nil
	})
	for _, tt := range []struct {
		args []string
		want string
		flag string // in the flags line, or "-x" for x absent
	}{
		{[]string{"api.example.com", "A"}, "NOERROR", "aa"},
		{[]string{"API.Example.COM", "AAAA", "+tcp"}, "NOERROR", "aa"},
		{[]string{"www.example.com", "A"}, "NOERROR", "aa"},
		{[]string{"example.com", "TXT", "+bufsize=1232", "+subnet=192.0.2.0/24"}, "NOERROR", "aa"},
		{[]string{"missing.example.com", "A"}, "NXDOMAIN", "aa"},
		{[]string{"api.example.com", "MX"}, "NOERROR", "aa"},
		{[]string{"example.org", "A"}, "REFUSED", "-aa"},
		{[]string{"example.com", "ANY"}, "NOERROR", "aa"},
		{[]string{"example.com", "SOA", "+rec"}, "NOERROR", "-ra"},
		{[]string{"example.com", "AXFR"}, "REFUSED", "-aa"}, // 127.0.0.1 is not a secondary
		{[]string{"example.com", "IXFR=1"}, "REFUSED", "-aa"},
	} {
		out := dig(dnsAddr, tt.args...)
		flags := regexp.MustCompile(`(?m)^;; Flags: (.*);`).FindStringSubmatch(out)
		hasFlag := flags != nil && slices.Contains(strings.Fields(flags[1]), strings.TrimPrefix(tt.flag, "-"))
		if s := statusOf(out); s != tt.want || hasFlag == strings.HasPrefix(tt.flag, "-") {
			t.Errorf("kdig %v: status %s (want %s), flags %v (want %s)\n%s", tt.args, s, tt.want, flags, tt.flag, out)
		}
	}
	// The secondary's address may transfer the zone.
	if out := dig(dnsAddr, "-b", knotIP, "example.com", "AXFR"); !strings.Contains(out, "api.example.com.") ||
		strings.Count(out, "\tSOA\t") != 2 {
		t.Errorf("AXFR from the secondary's address:\n%s", out)
	}

	// Knot as the secondary, in a root-owned temporary directory.
	knotLog := startKnotSecondary(t, dir, knotd, knotAddr, dnsAddr, "")

	regionsAt := func(server string) ([]string, error) {
		r, err := queryA(server, "api.example.com", "")
		if err != nil {
			return nil, err
		}
		var regs []string
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok {
				regs = append(regs, regionOf(a.A.String()))
			}
		}
		sort.Strings(regs)
		return slices.Compact(regs), nil
	}
	// Knot transfers the zone: a weighted service's records there are those
	// of every serving region.
	eventually(t, 20*time.Second, "Knot serves the transferred zone", func() error {
		regs, err := regionsAt(knotAddr)
		if err != nil {
			return err
		}
		if !slices.Equal(regs, []string{"eu-west", "us-east", "us-west"}) {
			return fmt.Errorf("knot answers api A from %v", regs)
		}
		return nil
	})
	if out := dig(knotAddr, "www.example.com", "A"); !strings.Contains(out, "CNAME") || statusOf(out) != "NOERROR" {
		t.Errorf("knot www:\n%s", out)
	}

	// Evacuate us-east in one step: NOTIFY, and Knot follows within 5 s
	// (its SOA refresh is an hour: only the NOTIFY can explain it).
	if _, err := api.Evacuate(ctxT(t, 10*time.Second), "us-east", wire.MoveRequest{
		Reason: "knot interop test", Ramp: []int{0}}); err != nil {
		t.Fatalf("evacuate: %v", err)
	}
	took := eventually(t, 30*time.Second, "Knot serves the answer without us-east", func() error {
		regs, err := regionsAt(knotAddr)
		if err != nil {
			return err
		}
		if slices.Contains(regs, "us-east") || len(regs) == 0 {
			return fmt.Errorf("knot answers api A from %v", regs)
		}
		return nil
	})
	t.Logf("Knot served the evacuation %v after the API call", took)
	evacSOA, knotSOA := dig(dnsAddr, "example.com", "SOA", "+short"), dig(knotAddr, "example.com", "SOA", "+short")
	if evacSOA != knotSOA {
		t.Errorf("SOA: evac %q, knot %q", evacSOA, knotSOA)
	}
	// Knot logs each NOTIFY with its serial: the evacuation's must be there.
	serial := strings.Fields(evacSOA)[2]
	notified := regexp.MustCompile(`notify, incoming, remote ` + regexp.QuoteMeta(evacIP) + `@\d+, serial ` + serial + `\b`)
	eventually(t, 30*time.Second, "Knot logs the NOTIFY for serial "+serial, func() error {
		b, _ := os.ReadFile(knotLog)
		if !notified.Match(b) {
			return fmt.Errorf("no NOTIFY for serial %s in knotd's log", serial)
		}
		return nil
	})
}

// startKnotSecondary runs knotd (stopped at the end of the test) as a
// secondary of example.com at knotAddr, transferring from the evac DNS
// server at evacDNS, taking NOTIFY from it, and giving transfers to
// transferTo (none when ""); it returns the path of knotd's log.
func startKnotSecondary(t *testing.T, dir, knotd, knotAddr, evacDNS, transferTo string) string {
	t.Helper()
	kdir := filepath.Join(dir, "knot")
	if err := os.MkdirAll(kdir, 0o700); err != nil {
		t.Fatal(err)
	}
	khost, kport, _ := strings.Cut(knotAddr, ":")
	ehost, eport, _ := strings.Cut(evacDNS, ":")
	transferACL, acls := "", "notify_from_evac"
	if transferTo != "" {
		transferACL = fmt.Sprintf("  - id: transfer_out\n    address: %s\n    action: transfer\n", transferTo)
		acls += ", transfer_out"
	}
	conf := fmt.Sprintf(`server:
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
remote:
  - id: evac
    address: %s@%s
    via: %s
acl:
  - id: notify_from_evac
    address: %s
    action: notify
%stemplate:
  - id: default
    storage: %s
zone:
  - domain: example.com
    master: evac
    acl: [%s]
`, khost, kport, kdir, kdir, ehost, eport, khost, ehost, transferACL, kdir, acls)
	confPath := filepath.Join(kdir, "knot.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	knotLog := filepath.Join(kdir, "knotd.log")
	logf, err := os.Create(knotLog)
	if err != nil {
		t.Fatal(err)
	}
	kcmd := exec.Command(knotd, "-c", confPath)
	kcmd.Stdout, kcmd.Stderr = logf, logf
	if err := kcmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kcmd.Process.Signal(syscall.SIGTERM) // knotd flushes its log on exit
		_ = kcmd.Wait()
		logf.Close()
		if t.Failed() {
			dumpTail(t, knotLog, 40)
		}
	})
	return knotLog
}
