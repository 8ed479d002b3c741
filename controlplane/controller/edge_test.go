package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/api/wire"
)

// startEdge starts an edge replica on 127.0.9.120+k and asks via's API to
// add it as a non-voter.
func startEdge(t *testing.T, k int, via *Controller) *Controller {
	t.Helper()
	ip := fmt.Sprintf("127.0.9.%d", 120+k)
	cfg := Config{NodeID: fmt.Sprintf("e%d", k), DataDir: t.TempDir(), RaftAddr: freeAddr(t, ip),
		HTTPAddr: freeAddr(t, ip), DNSAddr: freeAddr(t, ip), Fast: true, Logger: zap.NewNop(), Edge: true}
	e, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	body := fmt.Sprintf(`{"id":%q,"address":%q,"voter":false}`, cfg.NodeID, cfg.RaftAddr)
	if code := call(t, via, http.MethodPost, "/v1/cluster/join", body, nil); code != http.StatusOK {
		t.Fatalf("join edge %s: %d", cfg.NodeID, code)
	}
	return e
}

// answersRegion asks ctl's DNS for api.example.com from 40 client subnets
// and reports whether any answer is ip.
func answersRegion(ctl *Controller, ip string) (bool, error) {
	for i := range 40 {
		m := new(dns.Msg)
		m.SetQuestion("api.example.com.", dns.TypeA)
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.Option = []dns.EDNS0{&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(10, 1, byte(i), 0).To4()}}
		m.Extra = []dns.RR{o}
		r, err := dns.Exchange(m, ctl.cfg.DNSAddr)
		if err != nil {
			return false, err
		}
		if len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == ip {
			return true, nil
		}
	}
	return false, nil
}

// An edge replica: joins as a non-voter, serves the replicated state over
// DNS and the read API, forwards writes, builds none of the leader's loops
// and joins no gossip, says it is an edge, and keeps answering with every
// voter gone.
func TestEdgeController(t *testing.T) {
	c := startCluster(t, 3)
	f := c.follower()
	e := startEdge(t, 1, f)
	if e.engine != nil || e.drills != nil || e.notify != nil || e.blockers != nil || e.gossip != nil {
		t.Fatal("an edge built a leader loop or joined gossip")
	}
	// A write through the edge is forwarded to the leader.
	if code := call(t, e, http.MethodPut, "/v1/config", steeringYAML, nil); code != http.StatusOK {
		t.Fatalf("PUT /v1/config on the edge: %d", code)
	}
	eventually(t, 30*time.Second, func() error {
		if ok, err := answersRegion(e, "198.51.100.11"); !ok {
			return fmt.Errorf("the edge never answers us-west (%v)", err)
		}
		return nil
	})
	if code := call(t, e, http.MethodPost, "/v1/regions/us-west/evacuate", `{"reason":"edge test","ramp":[0],"force":true}`, nil); code != http.StatusOK {
		t.Fatalf("evacuate through the edge: %d", code)
	}
	eventually(t, 30*time.Second, func() error {
		if ok, _ := answersRegion(e, "198.51.100.11"); ok {
			return fmt.Errorf("the edge still answers us-west")
		}
		return nil
	})

	// Status says edge; reads decode into the client's types.
	get := func(path string, into any) {
		t.Helper()
		resp, err := http.Get("http://" + e.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if resp.StatusCode != http.StatusOK || dec.Decode(into) != nil {
			t.Fatalf("GET %s on the edge: %d %s", path, resp.StatusCode, b)
		}
	}
	var st wire.Status
	get("/v1/status", &st)
	if st.Role != wire.RoleEdge || st.IsLeader || st.Leader == "" {
		t.Fatalf("edge status = %+v; want role edge, a leader known, not leading", st)
	}
	var members []wire.Member
	get("/v1/members", &members)
	if len(members) != 0 {
		t.Fatalf("edge lists gossip members %+v; it joins no gossip", members)
	}
	if resp, err := http.Get("http://" + e.HTTPAddr() + "/metrics"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics on the edge: %v", err)
	} else {
		_ = resp.Body.Close()
	}
	var fst wire.Status
	if code := call(t, f, http.MethodGet, "/v1/status", "", &fst); code != 200 || fst.Role != wire.RoleVoter {
		t.Fatalf("voter status: %d role %q", code, fst.Role)
	}
	var peers []wire.Peer
	get("/v1/cluster/peers", &peers)
	roles := map[string]string{}
	for _, p := range peers {
		roles[p.ID] = p.Role
	}
	if fmt.Sprint(roles) != "map[c1:voter c2:voter c3:voter e1:edge]" {
		t.Fatalf("roles %v", roles)
	}

	// Every voter gone: the edge answers from its last state and stays
	// ready (static stability).
	for _, ctl := range c.ctls {
		_ = ctl.Close(context.Background())
	}
	eventually(t, 30*time.Second, func() error {
		if id, _ := e.raft.Leader(); id != "" {
			return fmt.Errorf("edge still follows %s", id)
		}
		return nil
	})
	if ok, err := answersRegion(e, "203.0.113.11"); !ok || err != nil {
		t.Fatalf("edge without voters: answers eu-west %v, %v", ok, err)
	}
	if ok, _ := answersRegion(e, "198.51.100.11"); ok {
		t.Fatal("edge without voters answers the evacuated region")
	}
	if err := e.Ready(); err != nil {
		t.Fatalf("edge without voters not ready: %v", err)
	}
}
