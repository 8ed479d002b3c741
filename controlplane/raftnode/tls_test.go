package raftnode

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/evac-sh/evac/internal/tlsutil"
)

func mustMutual(t *testing.T, ca *tlsutil.TestCA, trust, name, ip string) *tls.Config {
	t.Helper()
	cert, key, err := ca.Issue(name, ip)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tlsutil.Mutual(cert, key, trust)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestMutualTLSCluster runs three nodes over mutual TLS, writes through a
// follower (forwarding shares the port), and checks that a peer whose
// certificate comes from another CA is refused both as a client and as a
// server.
func TestMutualTLSCluster(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dir := t.TempDir()
	good, err := tlsutil.NewTestCA(dir, "good")
	if err != nil {
		t.Fatal(err)
	}
	evil, err := tlsutil.NewTestCA(dir, "evil")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t}
	for range 3 {
		c.addNode(t, true)
	}
	rogue := c.addNode(t, false)
	c.tlsFor = func(i int) *tls.Config {
		ip, _, _ := net.SplitHostPort(c.nodes[i].addr)
		if i == rogue {
			// Trusts the cluster's CA, but its own cert is from another.
			return mustMutual(t, evil, good.CAFile, c.nodes[i].id, ip)
		}
		return mustMutual(t, good, good.CAFile, c.nodes[i].id, ip)
	}
	t.Cleanup(c.stopAll)
	for i := range 3 {
		c.start(i)
	}
	l := c.leader(20 * time.Second)
	f := c.follower(l)
	apply(t, c.nodes[f].node, "a") // forwarded to the leader over TLS
	c.waitFSMs("a")

	// A client with a certificate from the wrong CA gets nothing from the
	// leader's port; neither does plain TCP.
	ip, _, _ := net.SplitHostPort(c.nodes[l].addr)
	bad := mustMutual(t, evil, good.CAFile, "intruder", "127.0.0.1")
	bad.ServerName = ip
	if reply, err := forwardProbe(c.nodes[l].addr, bad); err == nil {
		t.Fatalf("a client certificate from another CA got a reply: %q", reply)
	}
	if reply, err := forwardProbe(c.nodes[l].addr, nil); err == nil {
		t.Fatalf("plain TCP got a reply: %q", reply)
	}
	// The cluster's CA is not enough: a certificate for another name, and
	// an API client's certificate (clientAuth only) naming a member, are
	// refused too.
	other := mustMutual(t, good, good.CAFile, "friend", "127.0.0.1")
	other.ServerName = ip
	if reply, err := forwardProbe(c.nodes[l].addr, other); err == nil {
		t.Fatalf("a same-CA certificate naming no member got a reply: %q", reply)
	}
	cert, key, err := good.IssueWith("alice", tlsutil.IssueOptions{DNSNames: []string{c.nodes[f].id}, IPs: []string{ip}, ClientOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	alice, err := tlsutil.Mutual(cert, key, good.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	alice.ServerName = ip
	if reply, err := forwardProbe(c.nodes[l].addr, alice); err == nil {
		t.Fatalf("an API client certificate got a reply: %q", reply)
	}
	// A certificate naming a member by its server ID is answered: the
	// failures above are the certificates' doing.
	cert, key, err = good.IssuePeer(c.nodes[f].id)
	if err != nil {
		t.Fatal(err)
	}
	member, err := tlsutil.Mutual(cert, key, good.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	member.ServerName = ip
	if _, err := forwardProbe(c.nodes[l].addr, member); err != nil {
		t.Fatalf("a member's certificate got no reply: %v", err)
	}

	// A node whose certificate is from another CA is added as a voter but
	// the others refuse to talk to it: it never learns the log.
	c.start(rogue)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.nodes[l].node.AddVoter(ctx, c.nodes[rogue].id, c.nodes[rogue].addr); err != nil {
		t.Fatal(err)
	}
	apply(t, c.nodes[l].node, "b")
	time.Sleep(2 * time.Second) // the rogue gets every chance to catch up
	if got := c.nodes[rogue].fsm.list(); len(got) != 0 {
		t.Fatalf("the node with a foreign certificate received the log: %q", got)
	}
	if id, _ := c.nodes[rogue].node.Leader(); id != "" {
		t.Fatalf("the node with a foreign certificate knows the leader %q", id)
	}
	if err := c.nodes[l].node.RemoveServer(ctx, c.nodes[rogue].id); err != nil {
		t.Fatal(err)
	}
	c.stop(rogue)
	c.waitFSMs("a", "b")
}

// forwardProbe opens a forward stream to addr (over TLS with cfg, or plain
// TCP when cfg is nil), sends a malformed request and reads the reply.
func forwardProbe(addr string, cfg *tls.Config) ([]byte, error) {
	d := net.Dialer{Timeout: 3 * time.Second}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(5 * time.Second))
	conn := raw
	if cfg != nil {
		tc := tls.Client(raw, cfg)
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("handshake: %w", err)
		}
		conn = tc
	}
	// forwardMagic, then a frame holding a request too short to decode:
	// the leader answers it with an error reply.
	if _, err := conn.Write([]byte{forwardMagic, 0, 0, 0, 1, 0}); err != nil {
		return nil, err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, err
	}
	return hdr[:], nil
}
