package integration

import (
	"bytes"
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
)

// unbound is a validating Unbound (Debian's `unbound`) run by a test:
// example.com's trust anchor given, evac servers as its stubs, ECS
// forwarded to them (subnetcache).
type unbound struct {
	t        *testing.T
	addr     string
	confPath string
	control  string
	// anchor is the trust anchor in force (a DS or DNSKEY record).
	anchor string
	stubs  []string
	dir    string
}

// startUnbound starts Unbound in dir (created) on ip with the trust anchor
// (a DS or DNSKEY record, as `evac dnssec ds` prints it) and stubs (the
// addresses of the zone's servers).
func startUnbound(t *testing.T, dir, ip, anchor string, stubs ...string) *unbound {
	t.Helper()
	bin := needTool(t, "unbound", "unbound")
	u := &unbound{t: t, control: needTool(t, "unbound-control", "unbound"), anchor: anchor, stubs: stubs, dir: dir,
		addr: fmt.Sprintf("%s:%d", ip, freePort(t, ip)), confPath: filepath.Join(dir, "unbound.conf")}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	u.writeConf()
	cmd := exec.Command(bin, "-d", "-c", u.confPath)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("unbound output:\n%s", out.String())
			dumpTail(t, filepath.Join(dir, "unbound.log"), 60)
		}
	})
	eventually(t, 30*time.Second, "unbound answers", func() error {
		_, err := u.ask("example.com", dns.TypeSOA, "")
		return err
	})
	return u
}

// writeConf writes Unbound's config for the anchor and stubs in force.
func (u *unbound) writeConf() {
	u.t.Helper()
	host, port, _ := strings.Cut(u.addr, ":")
	var stubs, ecs strings.Builder
	for _, s := range u.stubs {
		h, p, _ := strings.Cut(s, ":")
		fmt.Fprintf(&stubs, "    stub-addr: %s@%s\n", h, p)
		fmt.Fprintf(&ecs, "    send-client-subnet: %s\n", h)
	}
	conf := fmt.Sprintf(`server:
    interface: %s
    port: %s
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    username: ""
    chroot: ""
    directory: %q
    pidfile: %q
    logfile: %q
    use-syslog: no
    verbosity: 1
    val-log-level: 2
    num-threads: 1
    do-ip6: no
    tcp-upstream: no
    qname-minimisation: no
    module-config: "subnetcache validator iterator"
%s    max-client-subnet-ipv4: 24
    trust-anchor: "%s"
remote-control:
    control-enable: yes
    control-interface: %q
stub-zone:
    name: "example.com"
%s`, host, port, u.dir, filepath.Join(u.dir, "unbound.pid"), filepath.Join(u.dir, "unbound.log"),
		ecs.String(), strings.ReplaceAll(u.anchor, "\t", " "), filepath.Join(u.dir, "control.sock"), stubs.String())
	if err := os.WriteFile(u.confPath, []byte(conf), 0o600); err != nil {
		u.t.Fatal(err)
	}
}

// ctl runs unbound-control with args.
func (u *unbound) ctl(args ...string) {
	u.t.Helper()
	if out, err := exec.Command(u.control, append([]string{"-c", u.confPath}, args...)...).CombinedOutput(); err != nil {
		u.t.Fatalf("unbound-control %v: %v\n%s", args, err, out)
	}
}

// flush empties Unbound's caches of the zone.
func (u *unbound) flush() {
	u.t.Helper()
	for _, args := range [][]string{{"flush_zone", "example.com"}, {"flush_bogus"}, {"flush_negative"}, {"flush_infra", "all"}} {
		u.ctl(args...)
	}
}

// ask queries Unbound with DO and AD, an ECS option when subnet is set.
func (u *unbound) ask(name string, qtype uint16, subnet string) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.AuthenticatedData = true
	m.SetEdns0(1232, true)
	if subnet != "" {
		o := m.IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.ParseIP(subnet).To4()})
	}
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, u.addr)
	return r, err
}

// setAnchor replaces the trust anchor (as a parent's DS changes) and
// reloads Unbound's config, which empties its caches.
func (u *unbound) setAnchor(anchor string) {
	u.t.Helper()
	u.anchor = anchor
	u.writeConf()
	u.ctl("reload")
}

// runEvac runs the evac binary with args and returns its output; a
// failure fails the test.
func runEvac(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(evacBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("evac %v: %v\n%s", args, err, out)
	}
	return string(out)
}
