package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/internal/client"
)

// Membership (issue 14, item 2): controllers join with `evac server
// --join-cluster`, leave with `evac cluster remove`, and one moves to a new
// address, while clients write; every acknowledged write must end on every
// controller exactly once (checkAcked). Quorum loss is recovered with the
// offline `evac cluster recover`. The controllers live on 127.0.94.x.

const memberSubnet = 94

// joinController starts a controller with an empty data dir that asks via's
// admin API to add it (as a voter unless nonvoter).
func (tc *testCluster) joinController(id string, host int, via *controllerProc, extra ...string) *controllerProc {
	t := tc.t
	t.Helper()
	ip := fmt.Sprintf("127.0.%d.%d", tc.ctrlSubnet, host)
	c := &controllerProc{
		id:     id,
		raft:   fmt.Sprintf("%s:%d", ip, freePort(t, ip)),
		gossip: fmt.Sprintf("%s:%d", ip, freePort(t, ip)),
		http:   fmt.Sprintf("%s:%d", ip, freePort(t, ip)),
		dns:    fmt.Sprintf("%s:%d", ip, freePort(t, ip)),
	}
	c.raftAdvertise = c.raft
	tokenFile := filepath.Join(tc.dir, "join.token")
	if err := os.WriteFile(tokenFile, []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(tc.dir, id+"-"+strings.ReplaceAll(ip, ".", "-"))
	cert, key, err := tc.raftCA.IssuePeer(id, ip)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"server", "--tokens-file", filepath.Join(tc.dir, "tokens.yaml"), "--node-id", id, "--data-dir", dataDir,
		"--raft-addr", c.raft, "--gossip-addr", c.gossip, "--http-addr", c.http, "--dns-addr", c.dns,
		"--raft-tls-cert", cert, "--raft-tls-key", key, "--raft-tls-ca", tc.raftCA.CAFile,
		"--join", strings.Join(tc.seeds, ","), "--gossip-key-file", tc.keyFile, "--fast", "--log-level", "debug",
		"--join-cluster", "http://" + via.http, "--join-token-file", tokenFile}, extra...)
	c.proc = startProc(t, id+"-"+ip, args...)
	return c
}

// waitPeers waits until via lists exactly want (id -> "voter@addr" or
// "nonvoter@addr"), every member reachable and healthy.
func (tc *testCluster) waitPeers(via *controllerProc, want map[string]string) {
	tc.t.Helper()
	eventually(tc.t, 60*time.Second, fmt.Sprintf("members %v on %s", want, via.id), func() error {
		ps, err := newClient(via.http).Peers(ctxT(tc.t, 10*time.Second))
		if err != nil {
			return err
		}
		got := map[string]string{}
		for _, p := range ps {
			got[p.ID] = p.Suffrage + "@" + p.Address
			if !p.Reachable || !p.Healthy {
				return fmt.Errorf("%s not healthy yet: %+v", p.ID, p)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("members %v", got)
		}
		return nil
	})
}

func voterAt(c *controllerProc) string { return "voter@" + c.raftAdvertise }

func TestMembershipGrowShrinkMoveUnderWrites(t *testing.T) {
	t.Parallel()
	tokens, lines := writerTokens(t, 3)
	tc := startClusterOpts(t, clusterOpts{ctrlSubnet: memberSubnet, ctrlHost: 11, tokenLines: lines})
	c1, c2, c3 := tc.controllers[0], tc.controllers[1], tc.controllers[2]
	tc.waitLeader(c1)
	tc.waitPeers(c1, map[string]string{"c1": voterAt(c1), "c2": voterAt(c2), "c3": voterAt(c3)})

	// Clients write through c1 and c3, which stay throughout.
	writers := &testCluster{t: t, controllers: []*controllerProc{c1, c3}}
	load := startWriteLoad(writers, "m", tokens, crashSeed(t))
	progress := func(what string) {
		t.Helper()
		load.progress("after "+what, 10)
	}

	// 3 -> 5: c4 joins as a non-voter and is promoted, c5 joins as a voter.
	c4 := tc.joinController("c4", 14, c3, "--join-nonvoter")
	tc.waitPeers(c1, map[string]string{"c1": voterAt(c1), "c2": voterAt(c2), "c3": voterAt(c3), "c4": "nonvoter@" + c4.raft})
	if out, err := tc.evac(c2, "cluster", "promote", "c4", "--reason", "grow"); err != nil {
		t.Fatalf("evac cluster promote c4: %v\n%s", err, out)
	}
	c5 := tc.joinController("c5", 15, c1)
	five := map[string]string{"c1": voterAt(c1), "c2": voterAt(c2), "c3": voterAt(c3), "c4": voterAt(c4), "c5": voterAt(c5)}
	tc.waitPeers(c3, five)
	progress("growing to 5")

	// 5 -> 3: remove c4 and c5, then stop them.
	for _, c := range []*controllerProc{c4, c5} {
		if out, err := tc.evac(c1, "cluster", "remove", c.id, "--reason", "shrink"); err != nil {
			t.Fatalf("evac cluster remove %s: %v\n%s", c.id, err, out)
		}
		c.Stop()
	}
	tc.waitPeers(c1, map[string]string{"c1": voterAt(c1), "c2": voterAt(c2), "c3": voterAt(c3)})
	progress("shrinking to 3")

	// Move c2 to a new address: remove it, stop it, start it afresh there.
	if out, err := tc.evac(c1, "cluster", "remove", "c2", "--reason", "move"); err != nil {
		t.Fatalf("evac cluster remove c2: %v\n%s", err, out)
	}
	c2.Stop()
	moved := tc.joinController("c2", 22, c1)
	tc.waitPeers(c3, map[string]string{"c1": voterAt(c1), "c2": voterAt(moved), "c3": voterAt(c3)})
	progress("moving c2")

	acked := load.Stop()
	if load.refused.Load() > 0 {
		t.Fatalf("%d writes refused", load.refused.Load())
	}
	t.Logf("%d writes acknowledged during 3 -> 5 -> 3 and a move", len(acked))
	tc.controllers = []*controllerProc{c1, moved, c3}
	tc.checkAcked(acked)

	// Every change is in the audit log, naming its actor.
	evs, err := allEvents(t, c1)
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	for _, e := range evs {
		if strings.HasPrefix(e.Kind, "cluster.") {
			changes = append(changes, e.Kind+" by "+e.Actor+": "+e.Detail)
		}
	}
	want := []string{"cluster.join by ci-admin: c4", "cluster.promote by ci-admin: c4", "cluster.join by ci-admin: c5",
		"cluster.remove by ci-admin: c4", "cluster.remove by ci-admin: c5", "cluster.remove by ci-admin: c2", "cluster.join by ci-admin: c2"}
	if len(changes) != len(want) {
		t.Fatalf("membership events %q; want %d like %q", changes, len(want), want)
	}
	for i := range want {
		if !strings.HasPrefix(changes[i], want[i]) {
			t.Errorf("membership event %d = %q; want %q...", i, changes[i], want[i])
		}
	}
}

// The quorum rule: with one of three voters down, removing a healthy one
// is refused (1 healthy of 2 left) unless forced; removing the dead one is
// allowed.
func TestMembershipRefusesBelowQuorum(t *testing.T) {
	t.Parallel()
	tc := startClusterOpts(t, clusterOpts{ctrlSubnet: memberSubnet, ctrlHost: 41})
	c1, c2, c3 := tc.controllers[0], tc.controllers[1], tc.controllers[2]
	tc.waitLeader(c1)
	tc.waitPeers(c1, map[string]string{"c1": voterAt(c1), "c2": voterAt(c2), "c3": voterAt(c3)})
	c3.Kill()
	tc.waitLeader(c1)
	out, err := tc.evac(c1, "cluster", "remove", "c2")
	if err == nil || !strings.Contains(out, "below_quorum") {
		t.Fatalf("removing a healthy voter with another down: %v\n%s; want a below_quorum refusal", err, out)
	}
	_, err = newClient(c1.http).RemovePeer(ctxT(t, 30*time.Second), "c2", wire.MembershipRequest{})
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 409 || ae.Code != wire.CodeBelowQuorum {
		t.Fatalf("DELETE /v1/cluster/peers/c2 = %v; want 409 below_quorum", err)
	}
	if out, err := tc.evac(c2, "cluster", "remove", "c3", "--reason", "dead"); err != nil {
		t.Fatalf("removing the dead voter: %v\n%s", err, out)
	}
	tc.waitPeers(c1, map[string]string{"c1": voterAt(c1), "c2": voterAt(c2)})
}

// Quorum lost for good: 2 of 3 controllers killed, the survivor stopped,
// recovered offline as a one-voter cluster, started again: its state is
// intact and it takes writes.
func TestClusterRecoverAfterQuorumLoss(t *testing.T) {
	t.Parallel()
	tc := startClusterOpts(t, clusterOpts{ctrlSubnet: memberSubnet, ctrlHost: 31})
	c1, c2, c3 := tc.controllers[0], tc.controllers[1], tc.controllers[2]
	tc.waitLeader(c1)
	var names []string
	for i := range 5 {
		name := fmt.Sprintf("before-%d", i)
		if _, err := newClient(c1.http).PutRunbook(ctxT(t, 30*time.Second), name, crashRunbook(name)); err != nil {
			t.Fatalf("put %s: %v", name, err)
		}
		names = append(names, name)
	}
	c2.Kill()
	c3.Kill()
	eventually(t, 30*time.Second, "c1 sees no leader", func() error {
		st, err := newClient(c1.http).Status(ctxT(t, 3*time.Second))
		if err != nil {
			return err
		}
		if st.Leader != "" {
			return fmt.Errorf("leader %s", st.Leader)
		}
		return nil
	})
	c1.Stop()

	dataDir := filepath.Join(tc.dir, "c1")
	out, err := exec.Command(evacBin, "cluster", "recover", "--data-dir", dataDir, "--peers", "c1="+c1.raftAdvertise).CombinedOutput()
	if err != nil {
		t.Fatalf("evac cluster recover: %v\n%s", err, out)
	}
	c1.Restart()
	tc.waitLeader(c1)
	tc.waitPeers(c1, map[string]string{"c1": voterAt(c1)})
	rbs, err := newClient(c1.http).Runbooks(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, rb := range rbs {
		have[rb.Name] = true
	}
	for _, n := range names {
		if !have[n] {
			t.Errorf("runbook %s lost in the recovery", n)
		}
	}
	if _, err := newClient(c1.http).PutRunbook(ctxT(t, 30*time.Second), "after", crashRunbook("after")); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
	// Offline only: a running controller's directory is refused.
	out, err = exec.Command(evacBin, "cluster", "recover", "--data-dir", dataDir, "--peers", "c1="+c1.raftAdvertise).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use") {
		t.Fatalf("recover on a running controller: %v\n%s; want a refusal", err, out)
	}
}
