package integration

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/internal/client"
)

// heldConn is one idle connection of a flood and when the server closed it.
type heldConn struct {
	dialed, closed time.Time
}

// flood opens n idle TCP connections to addr from the loopback address src
// and records when the server closes each; wait returns them all once every
// one is closed or the deadline passed (closed is zero for those still open).
func flood(t *testing.T, src, addr string, n int, deadline time.Duration) func() []heldConn {
	t.Helper()
	out := make([]heldConn, n)
	var wg sync.WaitGroup
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	for i := range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %s from %s (connection %d): %v", addr, src, i, err)
		}
		out[i].dialed = time.Now()
		wg.Go(func() {
			defer c.Close()
			_ = c.SetReadDeadline(out[i].dialed.Add(deadline))
			_, err := c.Read(make([]byte, 1))
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return
			}
			out[i].closed = time.Now()
		})
	}
	return func() []heldConn {
		wg.Wait()
		return out
	}
}

// TestConnectionsBounded holds 1,000 idle admin API connections and 200
// idle DNS-over-TCP connections from one address against a controller
// whose open-file limit is 512: the connections over the per-address caps
// are closed at once, the rest by the timeouts, and meanwhile DNS over UDP
// and TCP answers and a write through the API (from another address) is
// committed through Raft. Without the caps the flood alone would exhaust
// the 512 file descriptors, and Raft and DNS over TCP with them.
func TestConnectionsBounded(t *testing.T) {
	const apiPerIP, dnsPerIP, apiFlood, dnsFlood = 64, 16, 1000, 200
	tc := startClusterOpts(t, clusterOpts{ctrlSubnet: 9, serverArgs: []string{
		"--api-max-conns-per-ip", strconv.Itoa(apiPerIP), "--dns-tcp-max-conns-per-ip", strconv.Itoa(dnsPerIP)}})
	tc.applySteering(testSteering())
	c0 := tc.controllers[0]
	eventually(t, 30*time.Second, "c0 answers DNS", func() error {
		r, err := queryA(c0.dns, "api.example.com.", "")
		if err != nil {
			return err
		}
		if len(r.Answer) == 0 {
			return fmt.Errorf("rcode %s, no answer", dns.RcodeToString[r.Rcode])
		}
		return nil
	})
	pid := c0.cmd.Process.Pid
	if out, err := exec.Command("prlimit", "--pid", strconv.Itoa(pid), "--nofile=512:512").CombinedOutput(); err != nil {
		t.Fatalf("prlimit: %v: %s", err, out)
	}
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		t.Logf("c0 holds %d file descriptors before the flood; limit now 512", len(fds))
	}

	start := time.Now()
	waitAPI := flood(t, "127.0.0.1", c0.http, apiFlood, 60*time.Second)
	waitDNS := flood(t, "127.0.0.1", c0.dns, dnsFlood, 60*time.Second)
	t.Logf("opened %d API and %d DNS TCP connections in %s", apiFlood, dnsFlood, time.Since(start).Round(time.Millisecond))

	// While the flood's connections are held: DNS over UDP and over TCP
	// (from another address), and a write through Raft from another
	// address.
	r, err := queryA(c0.dns, "api.example.com.", "")
	if err != nil || len(r.Answer) == 0 {
		t.Fatalf("DNS over UDP during the flood: %v %v", r, err)
	}
	m := new(dns.Msg)
	m.SetQuestion("api.example.com.", dns.TypeA)
	tcpc := &dns.Client{Net: "tcp", Timeout: 5 * time.Second,
		Dialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}, Timeout: 5 * time.Second}}
	if r, _, err := tcpc.Exchange(m, c0.dns); err != nil || len(r.Answer) == 0 {
		t.Fatalf("DNS over TCP during the flood: %v %v", r, err)
	}
	other := client.New("http://"+c0.http, adminToken, client.WithTimeout(10*time.Second), client.WithHTTPClient(&http.Client{
		Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}))
	if _, err := other.Freeze(ctxT(t, 20*time.Second), "connection flood test"); err != nil {
		t.Fatalf("write through the API from another address during the flood: %v", err)
	}
	if _, err := other.Unfreeze(ctxT(t, 20*time.Second), "connection flood test"); err != nil {
		t.Fatalf("second write during the flood: %v", err)
	}
	t.Logf("DNS UDP, DNS TCP and two Raft writes succeeded %s after the flood began", time.Since(start).Round(time.Millisecond))

	check := func(what string, conns []heldConn, perIP int, timeout time.Duration) {
		t.Helper()
		var atOnce, byTimeout, open int
		for _, c := range conns {
			switch {
			case c.closed.IsZero():
				open++
			case c.closed.Sub(c.dialed) < timeout/2:
				atOnce++
			default:
				byTimeout++
			}
		}
		t.Logf("%s: %d closed at once, %d by the timeout, %d still open after 60 s", what, atOnce, byTimeout, open)
		if open > 0 {
			t.Errorf("%s: %d connections still open after 60 s", what, open)
		}
		if byTimeout > perIP || byTimeout == 0 {
			t.Errorf("%s: %d connections held until the timeout, want 1 to %d (the per-address cap)", what, byTimeout, perIP)
		}
		if atOnce < len(conns)-perIP {
			t.Errorf("%s: only %d connections closed at once, want at least %d", what, atOnce, len(conns)-perIP)
		}
	}
	// The API closes a connection that sends no request after
	// ReadHeaderTimeout (10 s); DNS over TCP after miekg/dns's read
	// timeout (2 s).
	check("admin API", waitAPI(), apiPerIP, 10*time.Second)
	check("DNS over TCP", waitDNS(), dnsPerIP, 2*time.Second)

	// The 1,120 refused connections are counted, and logged at most once
	// per 10 s.
	logText, err := os.ReadFile(c0.logPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(logText), "over a connection cap"); n < 1 || n > 6 {
		t.Errorf("%d log lines about refused connections, want 1 to 6 (one per 10 s)", n)
	}

	// And once the flood is gone, 127.0.0.1 is served again.
	if _, err := newClient(c0.http).Status(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("status from 127.0.0.1 after the flood: %v", err)
	}
}
