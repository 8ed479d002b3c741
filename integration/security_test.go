package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/auth"
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
	eventually(t, 10*time.Second, "the tokens' names as audit actors on s1", func() error {
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
