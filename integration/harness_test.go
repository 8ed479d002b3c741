package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/auth"
	"github.com/evac-sh/evac/internal/client"

	"github.com/evac-sh/evac/internal/testutil"
)

// evacBin is the binary under test, built once by TestMain.
var evacBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "evac-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	evacBin = filepath.Join(dir, "evac")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	build := exec.Command("go", "build", "-o", evacBin, "./cmd/evac")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build evac:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one evac process (after etcd's e2e framework: Start, Stop, Kill,
// Pause, Resume; output to a log file kept for failures).
type proc struct {
	t       *testing.T
	name    string
	args    []string
	logPath string
	// bin, if set, is the binary to run instead of evacBin (upgrade_test.go).
	bin  string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startProcBin(t, "", name, args...)
}

// startProcBin is startProc running bin ("": the binary under test).
func startProcBin(t *testing.T, bin, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, args: args, bin: bin, logPath: filepath.Join(t.TempDir(), name+".log")}
	p.start()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			dumpTail(t, p.logPath, 40)
		}
	})
	return p
}

func (p *proc) start() {
	p.t.Helper()
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	bin := evacBin
	if p.bin != "" {
		bin = p.bin
	}
	cmd := exec.Command(bin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Pdeathsig: a test binary killed by a timeout or by hand takes its
	// servers with it (one left running held the integration lock, and its
	// ports, for 20 minutes).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
}

// Exited reports whether the process has ended (killed, stopped, or
// failed: a test waiting on it would otherwise wait out its deadline).
func (p *proc) Exited() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// Restart starts the process again with the same arguments.
func (p *proc) Restart() { p.start() }

// Signal sends sig to the process.
func (p *proc) Signal(sig os.Signal) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil {
		p.t.Errorf("signal %s: %v", p.name, err)
	}
}

// Kill sends SIGKILL and waits for the process to go.
func (p *proc) Kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Kill()
	<-done
}

// Stop sends SIGTERM and waits up to 20 s before killing.
func (p *proc) Stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		p.t.Logf("%s did not stop on SIGTERM within 20s; killing", p.name)
		p.Kill()
	}
}

func dumpTail(t *testing.T, path string, n int) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	t.Logf("--- last lines of %s ---\n%s", filepath.Base(path), strings.Join(lines, "\n"))
}

// freePort finds a port free on ip for both TCP and UDP.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	return testutil.FreePort(t, ip)
}

// eventually retries f until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) time.Duration {
	t.Helper()
	return testutil.Eventually(t, timeout, what, f)
}

// adminToken is this test run's admin API token; every cluster's tokens
// file lists it (see writeTokens).
var adminToken, adminTokenSum = mustToken()

func mustToken() (string, string) {
	tok, sum, err := auth.NewToken()
	if err != nil {
		panic(err)
	}
	return tok, sum
}

// writeTokens writes a tokens file holding adminToken and the given extra
// lines, and returns its path.
func writeTokens(t *testing.T, path string, extra ...string) string {
	t.Helper()
	lines := append([]string{"tokens:", auth.FileLine("ci-admin", auth.RoleAdmin, adminTokenSum)}, extra...)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newClient(addr string) *client.Client {
	return client.New("http://"+addr, adminToken, client.WithTimeout(5*time.Second))
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// queryA asks server for name's A records with an ECS option for subnet
// (a /24), over UDP.
func queryA(server, name, subnet string) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	if subnet != "" {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(1232)
		e := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.ParseIP(subnet).To4()}
		o.Option = append(o.Option, e)
		m.Extra = append(m.Extra, o)
	}
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, server)
	return r, err
}

func ctxTimeout(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	time.AfterFunc(d, cancel)
	return ctx
}

// singleNode is one evac server forming a cluster of itself on ip, with
// Raft over plain TCP (the tests using it are about DNS, not Raft), waited
// on until it leads.
type singleNode struct {
	*proc
	http, dns string
	api       *client.Client
}

// startSingleNode starts it, its data and files in dir, with extra server
// flags.
func startSingleNode(t *testing.T, dir, ip string, extra ...string) singleNode {
	t.Helper()
	port := func() string { return fmt.Sprintf("%s:%d", ip, freePort(t, ip)) }
	raft, gossip := port(), port()
	n := singleNode{http: port(), dns: port()}
	args := append([]string{"server", "--node-id", "c1", "--data-dir", filepath.Join(dir, "c1"),
		"--raft-addr", raft, "--gossip-addr", gossip, "--http-addr", n.http, "--dns-addr", n.dns,
		"--bootstrap", "c1=" + raft, "--tokens-file", writeTokens(t, filepath.Join(dir, "tokens.yaml")),
		"--gossip-key-file", keygen(t, dir), "--insecure-no-raft-tls", "--fast"}, extra...)
	n.proc = startProc(t, "c1", args...)
	n.api = newClient(n.http)
	eventually(t, 30*time.Second, "single-node leader", func() error {
		if n.Exited() {
			t.Fatal("c1 is not running (its log is printed at the end)")
		}
		st, err := n.api.Status(ctxT(t, 5*time.Second))
		if err != nil {
			return err
		}
		if !st.IsLeader {
			return errors.New("not leader yet")
		}
		return nil
	})
	return n
}
