package raftnode

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/evac-sh/evac/internal/testutil"
	"github.com/evac-sh/evac/internal/tlsutil"
)

// TestPeerIdentity checks which certificates a node accepts from peers, as
// server and as client, against its configuration or bootstrap list, and
// that each refused peer is logged once however often it retries.
func TestPeerIdentity(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsutil.NewTestCA(dir, "raft")
	if err != nil {
		t.Fatal(err)
	}
	issue := func(name string, o tlsutil.IssueOptions) *tls.Config {
		t.Helper()
		cert, key, err := ca.IssueWith(name, o)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := tlsutil.Mutual(cert, key, ca.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	// The node under test listens on 127.0.9.151 as "c1"; its certificate
	// names both.
	srvCfg := issue("c1", tlsutil.IssueOptions{DNSNames: []string{"c1"}, IPs: []string{"127.0.9.151"}})
	configured := raft.Configuration{Servers: []raft.Server{
		{ID: "c1", Address: "127.0.9.151:7300"},
		{ID: "c2", Address: "127.0.9.152:7300"},
		{ID: "c3", Address: "ctl3.example:7300"},
	}}
	bootstrap := []Peer{{ID: "c1", Addr: "127.0.9.151:7300"}, {ID: "b2", Addr: "127.0.9.162:7300"}}

	tests := []struct {
		name      string
		client    tlsutil.IssueOptions
		members   *raft.Configuration // nil: raft not running yet
		bootstrap []Peer
		wantErr   string // "" means accepted
	}{
		{name: "member by ID", client: tlsutil.IssueOptions{DNSNames: []string{"C2"}}, members: &configured},
		{name: "member by IP", client: tlsutil.IssueOptions{IPs: []string{"127.0.9.152"}}, members: &configured},
		{name: "member by host name", client: tlsutil.IssueOptions{DNSNames: []string{"ctl3.example"}}, members: &configured},
		{name: "another name", client: tlsutil.IssueOptions{DNSNames: []string{"intruder", "localhost"}, IPs: []string{"127.0.0.1"}},
			members: &configured, wantErr: "names no member of the Raft configuration"},
		{name: "API client certificate naming a member", client: tlsutil.IssueOptions{DNSNames: []string{"c2"}, ClientOnly: true},
			members: &configured, wantErr: "serverAuth and clientAuth"},
		{name: "bootstrap member before raft runs", client: tlsutil.IssueOptions{DNSNames: []string{"b2"}}, bootstrap: bootstrap},
		{name: "bootstrap member with an empty configuration", client: tlsutil.IssueOptions{IPs: []string{"127.0.9.162"}},
			members: &raft.Configuration{}, bootstrap: bootstrap},
		{name: "configuration wins over bootstrap", client: tlsutil.IssueOptions{DNSNames: []string{"b2"}},
			members: &configured, bootstrap: bootstrap, wantErr: "names no member"},
		{name: "not in bootstrap", client: tlsutil.IssueOptions{DNSNames: []string{"c2"}}, bootstrap: bootstrap,
			wantErr: "names no member of the bootstrap list"},
		{name: "fresh node without bootstrap takes any controller certificate", client: tlsutil.IssueOptions{DNSNames: []string{"new"}}},
		{name: "fresh node without bootstrap still refuses an API client", client: tlsutil.IssueOptions{DNSNames: []string{"new"}, ClientOnly: true},
			wantErr: "serverAuth and clientAuth"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			members := func() (raft.Configuration, bool) {
				if tc.members == nil {
					return raft.Configuration{}, false
				}
				return *tc.members, true
			}
			core, logs := observer.New(zapcore.InfoLevel)
			srvWrap, _ := tlsWrappers(srvCfg, members, tc.bootstrap, zap.New(core))
			cli := issue("client"+string(rune('a'+i)), tc.client)
			cli.ServerName = "127.0.9.151"
			for attempt := range 3 {
				cerr, serr := dialWrapped(t, srvWrap, cli)
				if tc.wantErr == "" {
					if cerr != nil || serr != nil {
						t.Fatalf("attempt %d: refused: client %v, server %v", attempt, cerr, serr)
					}
					continue
				}
				if serr == nil || !strings.Contains(serr.Error(), tc.wantErr) || !errors.Is(serr, errPeerRefused) {
					t.Fatalf("attempt %d: server error %v, want %q", attempt, serr, tc.wantErr)
				}
				if cerr == nil {
					t.Fatalf("attempt %d: the client was not told", attempt)
				}
			}
			got := logs.FilterMessageSnippet("raft peer refused").All()
			want := 0
			if tc.wantErr != "" {
				want = 1
			}
			if len(got) != want {
				t.Fatalf("%d refusal log lines over 3 attempts, want %d: %v", len(got), want, got)
			}
		})
	}

	// As the dialling side, the node refuses a server whose certificate
	// names the dialled address but no member.
	t.Run("dialled server not a member", func(t *testing.T) {
		core, logs := observer.New(zapcore.InfoLevel)
		members := func() (raft.Configuration, bool) { return configured, true }
		_, cliWrap := tlsWrappers(srvCfg, members, nil, zap.New(core))
		rogue := issue("rogue", tlsutil.IssueOptions{DNSNames: []string{"rogue"}, IPs: []string{"127.0.9.153"}})
		rogue.ClientAuth = tls.RequireAndVerifyClientCert
		ln, err := net.Listen("tcp", "127.0.9.153:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2 {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_ = tls.Server(c, rogue).Handshake()
				_ = c.Close()
			}
		}()
		for range 2 {
			raw, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, err := cliWrap(ctx, raw)
			cancel()
			_ = raw.Close()
			if err == nil {
				_ = c.Close()
				t.Fatal("a server naming no member was accepted")
			}
			if !errors.Is(err, errPeerRefused) {
				t.Fatalf("dial error %v, want a refusal", err)
			}
		}
		if n := logs.FilterMessageSnippet("raft peer refused").Len(); n != 1 {
			t.Fatalf("%d refusal log lines for 2 dials, want 1", n)
		}
	})
}

// dialWrapped runs one handshake from a client with cfg to a server wrapped
// by srvWrap over loopback, exchanging a byte so that a TLS 1.3 client
// learns of a refusal, and returns both sides' errors.
func dialWrapped(t *testing.T, srvWrap connWrapper, cfg *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.9.151:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tc, err := srvWrap(ctx, c)
		if err == nil {
			_, err = tc.Write([]byte("x"))
		}
		done <- err
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(c, cfg)
	clientErr = tc.Handshake()
	if clientErr == nil {
		var b [1]byte
		_, clientErr = tc.Read(b[:])
	}
	return clientErr, <-done
}

// TestMembershipAdmitsAndRevokes: a controller whose certificate names only
// itself is refused by the cluster until it is added to the configuration,
// then catches up, and is refused again once removed.
func TestMembershipAdmitsAndRevokes(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ca, err := tlsutil.NewTestCA(t.TempDir(), "raft")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t}
	for range 3 {
		c.addNode(t, true)
	}
	joiner := c.addNode(t, false)
	cfgs := make([]*tls.Config, len(c.nodes))
	for i, tn := range c.nodes {
		ip, _, _ := net.SplitHostPort(tn.addr)
		cert, key, err := ca.IssuePeer(tn.id, ip)
		if err != nil {
			t.Fatal(err)
		}
		if cfgs[i], err = tlsutil.Mutual(cert, key, ca.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	c.tlsFor = func(i int) *tls.Config { return cfgs[i] }
	t.Cleanup(c.stopAll)
	for i := range 3 {
		c.start(i)
	}
	l := c.leader(20 * time.Second)
	apply(t, c.nodes[l].node, "a")
	c.start(joiner)

	leaderIP, _, _ := net.SplitHostPort(c.nodes[l].addr)
	asJoiner := cfgs[joiner].Clone()
	asJoiner.ServerName = leaderIP
	if _, err := forwardProbe(c.nodes[l].addr, asJoiner); err == nil {
		t.Fatal("the leader answered a controller not yet in the configuration")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.nodes[l].node.AddVoter(ctx, c.nodes[joiner].id, c.nodes[joiner].addr); err != nil {
		t.Fatal(err)
	}
	apply(t, c.nodes[joiner].node, "b") // forwarded by the new member
	c.waitFSMs("a", "b")
	if _, err := forwardProbe(c.nodes[l].addr, asJoiner); err != nil {
		t.Fatalf("the leader refused its new member: %v", err)
	}

	if err := c.nodes[l].node.RemoveServer(ctx, c.nodes[joiner].id); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "the removed member refused", func() bool {
		_, err := forwardProbe(c.nodes[l].addr, asJoiner)
		return err != nil
	})
	c.stop(joiner)
	apply(t, c.nodes[l].node, "c")
	c.waitFSMs("a", "b", "c")
}
