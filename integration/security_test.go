package integration

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/evac-sh/evac/controlplane/auth"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/client"
	"github.com/evac-sh/evac/internal/tlsutil"
)

// TestServerNeedsAuthDecision: without --tokens-file or --insecure-no-auth
// the server refuses to start and says why.
func TestServerNeedsAuthDecision(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ip := "127.0.9.31"
	out, err := exec.CommandContext(ctx, evacBin, "server", "--node-id", "c1", "--data-dir", t.TempDir(),
		"--raft-addr", fmt.Sprintf("%s:%d", ip, freePort(t, ip)), "--http-addr", fmt.Sprintf("%s:%d", ip, freePort(t, ip)),
		"--gossip-addr", fmt.Sprintf("%s:%d", ip, freePort(t, ip)), "--dns-addr", fmt.Sprintf("%s:%d", ip, freePort(t, ip)),
		"--insecure-no-gossip-key").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "--tokens-file") ||
		!strings.Contains(string(out), "--insecure-no-auth") {
		t.Fatalf("server without auth: %v\n%s", err, out)
	}
}

// TestTLSClusterProcesses starts three `evac server` processes with
// mutual-TLS Raft, an HTTPS API requiring client certificates and a tokens
// file, drives them with the CLI over HTTPS, and reloads the tokens with
// SIGHUP.
func TestTLSClusterProcesses(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsutil.NewTestCA(dir, "evac")
	if err != nil {
		t.Fatal(err)
	}
	opTok, opSum, _ := auth.NewToken()
	viewTok, viewSum, _ := auth.NewToken()
	tokens := writeTokens(t, filepath.Join(dir, "tokens.yaml"), auth.FileLine("vera", auth.RoleViewer, viewSum))
	gossipKey := keygen(t, dir)

	type node struct {
		*proc
		id, raft, http string
	}
	var nodes []*node
	var peers, seeds []string
	var args [][]string
	for i := 0; i < 3; i++ {
		ip := fmt.Sprintf("127.0.9.%d", 41+i)
		n := &node{id: fmt.Sprintf("s%d", i+1), raft: fmt.Sprintf("%s:%d", ip, freePort(t, ip)),
			http: fmt.Sprintf("%s:%d", ip, freePort(t, ip))}
		gossip := fmt.Sprintf("%s:%d", ip, freePort(t, ip))
		cert, key, err := ca.Issue(n.id, ip)
		if err != nil {
			t.Fatal(err)
		}
		peers, seeds = append(peers, n.id+"="+n.raft), append(seeds, gossip)
		args = append(args, []string{"server", "--node-id", n.id, "--data-dir", filepath.Join(dir, n.id),
			"--raft-addr", n.raft, "--gossip-addr", gossip, "--http-addr", n.http,
			"--dns-addr", fmt.Sprintf("%s:%d", ip, freePort(t, ip)),
			"--tokens-file", tokens, "--tls-cert", cert, "--tls-key", key, "--tls-client-ca", ca.CAFile,
			"--raft-tls-cert", cert, "--raft-tls-key", key, "--raft-tls-ca", ca.CAFile,
			"--gossip-key-file", gossipKey, "--fast", "--log-level", "debug"})
		nodes = append(nodes, n)
	}
	for i, n := range nodes {
		n.proc = startProc(t, n.id, append(args[i], "--bootstrap", strings.Join(peers, ","), "--join", strings.Join(seeds, ","))...)
	}
	ccert, ckey, err := ca.Issue("cli")
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := tlsutil.Client(ca.CAFile, ccert, ckey)
	if err != nil {
		t.Fatal(err)
	}
	api := func(n *node, token string) *client.Client {
		return client.New("https://"+n.http, token, client.WithTLSConfig(tlsCfg), client.WithTimeout(5*time.Second))
	}
	// The CLI, over HTTPS with the CA and client certificate from the
	// environment.
	cli := func(n *node, token string, args ...string) (string, error) {
		cmd := exec.Command(evacBin, append([]string{"--addr", "https://" + n.http, "--token", token}, args...)...)
		cmd.Env = append(os.Environ(), "EVAC_CA_CERT="+ca.CAFile, "EVAC_CLIENT_CERT="+ccert, "EVAC_CLIENT_KEY="+ckey)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	eventually(t, 60*time.Second, "a leader known over HTTPS on every controller", func() error {
		for _, n := range nodes {
			st, err := api(n, viewTok).Status(ctxT(t, 5*time.Second))
			if err != nil {
				return err
			}
			if st.Leader == "" {
				return fmt.Errorf("%s knows no leader", n.id)
			}
		}
		return nil
	})
	steering := filepath.Join(dir, "steering.yaml")
	if err := os.WriteFile(steering, []byte(testSteering()), 0o644); err != nil {
		t.Fatal(err)
	}
	// Every write goes to s2; most are forwarded to the leader over mutual TLS.
	if out, err := cli(nodes[1], adminToken, "apply", "-f", steering); err != nil {
		t.Fatalf("evac apply over HTTPS: %v\n%s", err, out)
	}
	out, err := cli(nodes[1], viewTok, "evacuate", "us-west", "--reason", "viewer may not")
	if err == nil || !strings.Contains(out, "403") {
		t.Fatalf("viewer evacuate: %v\n%s", err, out)
	}
	if _, err := cli(nodes[1], opTok, "freeze", "--reason", "unknown token"); err == nil {
		t.Fatal("a token not yet in the file was accepted")
	}

	// SIGHUP on s2 loads the operator token.
	writeTokens(t, tokens, auth.FileLine("vera", auth.RoleViewer, viewSum), auth.FileLine("otto", auth.RoleOperator, opSum))
	signalProc(t, nodes[1].proc, syscall.SIGHUP)
	eventually(t, 20*time.Second, "the operator token accepted after SIGHUP", func() error {
		_, err := api(nodes[1], opTok).Freeze(ctxT(t, 5*time.Second), "otto freezes")
		return err
	})
	// A broken file on reload keeps the tokens in force.
	if err := os.WriteFile(tokens, []byte("tokens: [{name: x, role: root}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	signalProc(t, nodes[1].proc, syscall.SIGHUP)
	time.Sleep(time.Second) // let the reload run and fail
	if _, err := api(nodes[1], opTok).Unfreeze(ctxT(t, 5*time.Second), "otto unfreezes"); err != nil {
		t.Fatalf("after a bad reload the operator token stopped working: %v", err)
	}
	// s1's replica names the tokens as the actors (once it has caught up).
	eventually(t, 30*time.Second, "the tokens' names as audit actors on s1", func() error {
		evs, err := api(nodes[0], viewTok).Events(ctxT(t, 5*time.Second), 0, 100)
		if err != nil {
			return err
		}
		actors := map[string]string{}
		for _, e := range evs {
			actors[e.Kind] = e.Actor
		}
		if actors["config.applied"] != "ci-admin" || actors["freeze"] != "otto" || actors["unfreeze"] != "otto" {
			return fmt.Errorf("audit actors %v", actors)
		}
		return nil
	})
	// Plain HTTP is not served.
	if _, err := client.New("http://"+nodes[0].http, adminToken, client.WithTimeout(3*time.Second)).Status(ctxT(t, 5*time.Second)); err == nil {
		t.Fatal("plain HTTP to the HTTPS API succeeded")
	}
}

func signalProc(t *testing.T, p *proc, sig syscall.Signal) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// singleServer is one `evac server` that bootstraps itself, on ip.
type singleServer struct {
	*proc
	id, raft, http string
	api            *client.Client
}

func startSingleServer(t *testing.T, dir, ip string, extra ...string) *singleServer {
	t.Helper()
	port := func() string { return fmt.Sprintf("%s:%d", ip, freePort(t, ip)) }
	s := &singleServer{id: "c1", raft: port(), http: port()}
	args := append([]string{"server", "--node-id", s.id, "--data-dir", filepath.Join(dir, s.id),
		"--raft-addr", s.raft, "--gossip-addr", port(), "--http-addr", s.http, "--dns-addr", port(),
		"--bootstrap", s.id + "=" + s.raft, "--tokens-file", writeTokens(t, filepath.Join(dir, "tokens.yaml")),
		"--gossip-key-file", keygen(t, dir), "--fast", "--log-level", "debug"}, extra...)
	s.proc = startProc(t, s.id, args...)
	s.api = newClient(s.http)
	eventually(t, 30*time.Second, "the single controller leads", func() error {
		st, err := s.api.Status(ctxT(t, 5*time.Second))
		if err != nil {
			return err
		}
		if !st.IsLeader {
			return fmt.Errorf("not leader yet (%s)", st.RaftState)
		}
		return nil
	})
	return s
}

// forgedFreeze is a forward-RPC connection's opening as an attacker would
// write it: the forward stream's first byte, then one frame asking the
// leader to apply a freeze under a forged actor name.
func forgedFreeze(t *testing.T, actor string) []byte {
	t.Helper()
	cmd, err := state.Encode(state.CmdFreeze, "forged-"+actor, actor, time.Now(), state.Freeze{Reason: "forged"})
	if err != nil {
		t.Fatal(err)
	}
	payload := append([]byte{1 /* opApply */, 0, 0, 0x27, 0x10 /* 10 s */}, cmd...)
	frame := binary.BigEndian.AppendUint32([]byte{0xE5 /* forwardMagic */}, uint32(len(payload)))
	return append(frame, payload...)
}

// sendForged writes forgedFreeze to conn and reads the reply frame's header;
// an error means the server answered nothing.
func sendForged(t *testing.T, conn net.Conn, actor string) error {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(forgedFreeze(t, actor)); err != nil {
		return err
	}
	var hdr [4]byte
	_, err := io.ReadFull(conn, hdr[:])
	return err
}

// rawAppendEntries sends one hashicorp/raft AppendEntries of term 1000 to
// addr through raft's own NetworkTransport over stream, as a rogue leader
// would.
func rawAppendEntries(addr string, stream raft.StreamLayer) error {
	trans := raft.NewNetworkTransport(stream, 1, 5*time.Second, io.Discard)
	defer trans.Close()
	var resp raft.AppendEntriesResponse
	return trans.AppendEntries("c1", raft.ServerAddress(addr), &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("rogue"), Addr: []byte("127.0.9.69:1")},
		Term:      1000, PrevLogEntry: 0, PrevLogTerm: 0, LeaderCommitIndex: 0,
	}, &resp)
}

// dialStream is a raft.StreamLayer that only dials: over TLS with cfg, or
// plain TCP when cfg is nil.
type dialStream struct {
	cfg    *tls.Config
	closed chan struct{}
	once   sync.Once
}

func newDialStream(cfg *tls.Config) *dialStream {
	return &dialStream{cfg: cfg, closed: make(chan struct{})}
}

func (d *dialStream) Accept() (net.Conn, error) { <-d.closed; return nil, net.ErrClosed }
func (d *dialStream) Close() error              { d.once.Do(func() { close(d.closed) }); return nil }
func (d *dialStream) Addr() net.Addr            { return &net.TCPAddr{IP: net.IPv4(127, 0, 9, 69), Port: 1} }
func (d *dialStream) Dial(a raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	nd := &net.Dialer{Timeout: timeout}
	if d.cfg == nil {
		return nd.Dial("tcp", string(a))
	}
	c, err := tls.DialWithDialer(nd, "tcp", string(a), d.cfg)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// unchanged checks that nothing the attacks asked for happened: the server
// still leads in its first term, is not frozen and recorded no freeze.
func unchanged(t *testing.T, s *singleServer, term uint64) {
	t.Helper()
	st, err := s.api.Status(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if st.Frozen || !st.IsLeader || st.Term != term {
		t.Fatalf("after the attacks: frozen %v (%q), leader %v, term %d (was %d)", st.Frozen, st.FrozenReason, st.IsLeader, st.Term, term)
	}
	evs, err := s.api.Events(ctxT(t, 5*time.Second), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if strings.Contains(e.Actor, "forged") || e.Kind == "freeze" {
			t.Fatalf("a forged write was committed: %+v", e)
		}
	}
}

// countLines counts the lines of the file at path that hold every one of
// substrs.
func countLines(t *testing.T, path string, substrs ...string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
lines:
	for _, line := range strings.Split(string(b), "\n") {
		for _, s := range substrs {
			if !strings.Contains(line, s) {
				continue lines
			}
		}
		n++
	}
	return n
}

// TestRaftAuthenticatedByDefault: a server needs Raft TLS or the insecure
// flag; with Raft TLS, plain-TCP forward frames and AppendEntries fail the
// handshake, and same-CA certificates that are not a member's (another
// name; an API client's) are refused, logged once each; nothing changes.
func TestRaftAuthenticatedByDefault(t *testing.T) {
	dir := t.TempDir()
	ip := "127.0.9.61"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	port := func() string { return fmt.Sprintf("%s:%d", ip, freePort(t, ip)) }
	out, err := exec.CommandContext(ctx, evacBin, "server", "--node-id", "c1", "--data-dir", filepath.Join(dir, "refused"),
		"--raft-addr", port(), "--http-addr", port(), "--gossip-addr", port(), "--dns-addr", port(),
		"--tokens-file", writeTokens(t, filepath.Join(dir, "tokens.yaml")), "--gossip-key-file", keygen(t, dir)).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "--insecure-no-raft-tls") {
		t.Fatalf("server without Raft TLS: %v\n%s", err, out)
	}

	ca, err := tlsutil.NewTestCA(dir, "raft")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.IssuePeer("c1", ip)
	if err != nil {
		t.Fatal(err)
	}
	s := startSingleServer(t, dir, ip, "--raft-tls-cert", cert, "--raft-tls-key", key, "--raft-tls-ca", ca.CAFile)
	st, err := s.api.Status(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Warnings) != 0 {
		t.Fatalf("warnings with Raft TLS: %q", st.Warnings)
	}
	term := st.Term

	// Plain TCP: the forged forward frame and a raw AppendEntries.
	for range 3 {
		c, err := net.DialTimeout("tcp", s.raft, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		err = sendForged(t, c, "alice-admin (forged)")
		c.Close()
		if err == nil {
			t.Fatal("a plain-TCP forward frame got a reply")
		}
		if err := rawAppendEntries(s.raft, newDialStream(nil)); err == nil {
			t.Fatal("a plain-TCP AppendEntries was answered")
		}
	}

	// Mutual TLS with the cluster's CA, but not a member's certificate.
	tlsAs := func(name string, o tlsutil.IssueOptions) *tls.Config {
		cert, key, err := ca.IssueWith(name, o)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := tlsutil.Mutual(cert, key, ca.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ServerName = ip
		return cfg
	}
	refused := map[string]*tls.Config{
		// A controller-shaped certificate for another name.
		"intruder": tlsAs("intruder", tlsutil.IssueOptions{DNSNames: []string{"intruder", "localhost"}, IPs: []string{"127.0.0.1"}}),
		// An API client certificate, even one naming the member's address.
		"alice": tlsAs("alice", tlsutil.IssueOptions{IPs: []string{ip}, ClientOnly: true}),
	}
	for name, cfg := range refused {
		for range 3 {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.raft, cfg)
			if err == nil {
				err = sendForged(t, c, name+" (forged)")
				c.Close()
			}
			if err == nil {
				t.Fatalf("%s: the forward frame got a reply", name)
			}
			if err := rawAppendEntries(s.raft, newDialStream(cfg)); err == nil {
				t.Fatalf("%s: AppendEntries was answered", name)
			}
		}
	}
	// A client with the member's own certificate is answered (a malformed
	// frame, which changes nothing, gets an error reply): the refusals
	// above are the certificates' doing.
	member, err := tlsutil.Mutual(cert, key, ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	member.ServerName = ip
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.raft, member)
	if err != nil {
		t.Fatalf("the member's own certificate: %v", err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte{0xE5, 0, 0, 0, 1, 0}); err != nil {
		t.Fatal(err)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatalf("the member's certificate got no reply: %v", err)
	}
	c.Close()

	unchanged(t, s, term)
	// Each refused peer is logged once, not per attempt.
	for _, who := range []string{"CN=intruder", "CN=alice"} {
		if n := countLines(t, s.logPath, "raft peer refused: its certificate does not name a cluster member", who); n != 1 {
			t.Errorf("refusals of %s logged %d times, want once", who, n)
		}
	}
	if n := countLines(t, s.logPath, "raft peer refused: TLS handshake failed"); n != 1 {
		t.Errorf("plain-TCP handshake failures logged %d times from one address, want 1", n)
	}
}

// TestRaftInsecureFlagWarns: --insecure-no-raft-tls starts, with the
// warning in the log, in GET /v1/status and in `evac status`; and it is as
// open as it says: the same forged frame commits a freeze and a raw
// AppendEntries of a higher term deposes the leader (which is why it is
// not the default).
func TestRaftInsecureFlagWarns(t *testing.T) {
	dir := t.TempDir()
	s := startSingleServer(t, dir, "127.0.9.62", "--insecure-no-raft-tls")
	if n := countLines(t, s.logPath, "--insecure-no-raft-tls"); n < 2 { // stderr and the log
		t.Errorf("the warning is in the output %d times, want 2", n)
	}
	st, err := s.api.Status(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "--insecure-no-raft-tls") {
		t.Fatalf("status warnings %q", st.Warnings)
	}
	cmd := exec.Command(evacBin, "--addr", "http://"+s.http, "status")
	cmd.Env = append(os.Environ(), "EVAC_TOKEN="+adminToken)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "WARNING") || !strings.Contains(string(out), "--insecure-no-raft-tls") {
		t.Fatalf("evac status: %v\n%s", err, out)
	}

	c, err := net.DialTimeout("tcp", s.raft, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := sendForged(t, c, "alice-admin (forged)"); err != nil {
		t.Fatalf("forged frame on the insecure port: %v", err)
	}
	eventually(t, 30*time.Second, "the forged freeze committed", func() error {
		st, err := s.api.Status(ctxT(t, 5*time.Second))
		if err != nil {
			return err
		}
		if !st.Frozen {
			return errors.New("not frozen")
		}
		return nil
	})
	if err := rawAppendEntries(s.raft, newDialStream(nil)); err != nil {
		t.Fatalf("raw AppendEntries on the insecure port: %v", err)
	}
	eventually(t, 30*time.Second, "the term forced to 1000", func() error {
		st, err := s.api.Status(ctxT(t, 5*time.Second))
		if err != nil {
			return err
		}
		if st.Term < 1000 {
			return fmt.Errorf("term %d", st.Term)
		}
		return nil
	})
}

// TestKeyFilesAndDataPrivate: `evac server` and `evac agent` refuse a gossip
// key and `evac server` a Raft TLS key that group or others may read,
// saying to chmod 600; a running server's Raft state is 0600 in 0700
// directories.
func TestKeyFilesAndDataPrivate(t *testing.T) {
	dir := t.TempDir()
	ip := "127.0.9.63"
	port := func() string { return fmt.Sprintf("%s:%d", ip, freePort(t, ip)) }
	ca, err := tlsutil.NewTestCA(dir, "raft")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.IssuePeer("c1", ip)
	if err != nil {
		t.Fatal(err)
	}
	gossipKey := keygen(t, dir)
	tokens := writeTokens(t, filepath.Join(dir, "tokens.yaml"))
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, evacBin, args...).CombinedOutput()
		return string(out), err
	}
	server := func() (string, error) {
		return run("server", "--node-id", "c1", "--data-dir", filepath.Join(dir, "refused"),
			"--raft-addr", port(), "--http-addr", port(), "--gossip-addr", port(), "--dns-addr", port(),
			"--tokens-file", tokens, "--gossip-key-file", gossipKey,
			"--raft-tls-cert", cert, "--raft-tls-key", key, "--raft-tls-ca", ca.CAFile)
	}
	for _, file := range []string{gossipKey, key} {
		if err := os.Chmod(file, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := server()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(out, "chmod 600 "+file) {
			t.Fatalf("server with %s at 0644: %v\n%s", file, err, out)
		}
		if err := os.Chmod(file, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	agentCfg := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(agentCfg, []byte(fmt.Sprintf("region: r1\nnode_name: a1\ngossip_addr: %s\njoin: [%s]\ngossip_key_file: %s\n"+
		"checks:\n  - {name: http, service: api, type: http, target: \"http://%s/\", interval: 1s, timeout: 500ms}\n",
		port(), port(), gossipKey, port())), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(gossipKey, 0o640); err != nil {
		t.Fatal(err)
	}
	if out, err := run("agent", "--config", agentCfg); err == nil || !strings.Contains(out, "chmod 600 "+gossipKey) {
		t.Fatalf("agent with its gossip key at 0640: %v\n%s", err, out)
	}
	if err := os.Chmod(gossipKey, 0o600); err != nil {
		t.Fatal(err)
	}

	// A running server's Raft state.
	s := startSingleServer(t, dir, ip, "--raft-tls-cert", cert, "--raft-tls-key", key, "--raft-tls-ca", ca.CAFile,
		"--snapshot-threshold", "5", "--snapshot-interval", "100ms")
	for i := range 10 {
		if _, err := s.api.Freeze(ctxT(t, 5*time.Second), fmt.Sprintf("freeze %d", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.api.Unfreeze(ctxT(t, 5*time.Second), fmt.Sprintf("unfreeze %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	raftDir := filepath.Join(dir, s.id, "raft")
	eventually(t, 30*time.Second, "a snapshot on disk", func() error {
		if m, _ := filepath.Glob(filepath.Join(raftDir, "snapshots", "*", "state.bin")); len(m) == 0 {
			return errors.New("no snapshot yet")
		}
		return nil
	})
	s.Stop() // no snapshot half-written while the modes are read
	files := 0
	err = filepath.WalkDir(raftDir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else {
			files++
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", path, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil || files < 4 {
		t.Fatalf("walked %d files under %s: %v", files, raftDir, err)
	}
}
