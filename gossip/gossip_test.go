package gossip

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestReportReachesEveryNode publishes on every node of a 6-node pool and
// requires each report on every node. Rebroadcast usually delivers in well
// under a second; an unlucky straggler is filled in by push-pull (every 5s
// with the fast profile), hence the generous timeout. TestSeqOrdering
// checks the re-queue on first receipt directly.
func TestReportReachesEveryNode(t *testing.T) {
	nodes := startCluster(t, 6, nil)
	var sent []Report
	start := time.Now()
	for i, n := range nodes {
		for j := 0; j < 3; j++ {
			n.Publish(Report{Service: "api", Check: fmt.Sprintf("c%d", j), Status: StatusPassing, Output: fmt.Sprintf("from %d", i)})
			sent = append(sent, published(t, n, "api", fmt.Sprintf("c%d", j)))
		}
	}
	took := waitFor(t, "all reports on all nodes", 10*time.Second, func() bool {
		for _, n := range nodes {
			for _, r := range sent {
				if !hasSeq(n, r.Origin, r.Service, r.Check, r.Seq) {
					return false
				}
			}
		}
		return true
	})
	t.Logf("%d reports reached %d nodes in %s (after %s publishing)", len(sent), len(nodes), took, time.Since(start)-took)

	// A newer report replaces the older one everywhere.
	nodes[2].Publish(Report{Service: "api", Check: "c0", Status: StatusFailing, Output: "HTTP 500"})
	newer := published(t, nodes[2], "api", "c0")
	if newer.Seq <= sent[6].Seq {
		t.Fatalf("seq did not increase: %d <= %d", newer.Seq, sent[6].Seq)
	}
	took = waitFor(t, "update on all nodes", 10*time.Second, func() bool {
		for _, n := range nodes {
			r, ok := findReport(n, "n2", "api", "c0")
			if !ok || r.Seq != newer.Seq || r.Status != StatusFailing || r.Region != "r1" {
				return false
			}
		}
		return true
	})
	t.Logf("one update reached %d nodes in %s", len(nodes), took)
}

// TestLateJoinerGetsTable: a node joining after the broadcasts are done
// gets the whole table through push-pull on join.
func TestLateJoinerGetsTable(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	for _, n := range nodes {
		n.Publish(Report{Service: "api", Check: "http", Status: StatusPassing})
	}
	waitFor(t, "reports spread", 10*time.Second, func() bool { return len(nodes[2].Reports()) == 3 })
	// Let retransmissions run out so only push-pull can deliver.
	waitFor(t, "broadcast queues drained", 5*time.Second, func() bool {
		for _, n := range nodes {
			if n.queue.NumQueued() > 0 {
				return false
			}
		}
		return true
	})
	cfg := testConfig("late")
	cfg.Seeds = []string{nodes[1].LocalAddr()}
	late := startNode(t, cfg)
	took := waitFor(t, "late node has the table", 3*time.Second, func() bool { return len(late.Reports()) == 3 })
	t.Logf("late joiner had the table %s after start", took)
}

// TestRejoinAfterRestart: a member shut down hard is declared dead, keeps
// appearing in Members(), and when restarted on the same address with no
// seeds it is pulled back in by the others' periodic rejoin.
func TestRejoinAfterRestart(t *testing.T) {
	nodes := startCluster(t, 4, nil)
	victim := nodes[3]
	addr := victim.LocalAddr()
	victim.Publish(Report{Service: "api", Check: "http", Status: StatusPassing})
	waitFor(t, "report spread", 10*time.Second, func() bool { _, ok := findReport(nodes[0], "n3", "api", "http"); return ok })

	if err := victim.Shutdown(); err != nil {
		t.Fatal(err)
	}
	dead := waitFor(t, "n3 declared dead everywhere", 15*time.Second, func() bool {
		for _, n := range nodes[:3] {
			if memberState(n, "n3") != StateDead {
				return false
			}
		}
		return true
	})
	t.Logf("hard-stopped member declared dead by all after %s", dead)
	if _, ok := findReport(nodes[0], "n3", "api", "http"); !ok {
		t.Fatal("a dead member's reports must be kept")
	}

	cfg := testConfig("n3")
	cfg.BindAddr = addr // same address, no seeds: only the others can bring it back
	back := startNode(t, cfg)
	took := waitFor(t, "restarted n3 alive everywhere", 10*time.Second, func() bool {
		for _, n := range append(nodes[:3:3], back) {
			if liveCount(n) != 4 {
				return false
			}
		}
		return true
	})
	t.Logf("restarted member re-merged after %s (rejoin interval 3s)", took)

	// Its restarted sequence numbers supersede the old ones.
	back.Publish(Report{Service: "api", Check: "http", Status: StatusFailing})
	r := published(t, back, "api", "http")
	waitFor(t, "new report from restarted node", 10*time.Second, func() bool {
		return hasSeq(nodes[0], "n3", "api", "http", r.Seq)
	})
}

// TestSeedUpLater: the first join fails (the seed is not up) without
// failing New; the rejoin loop joins once the seed appears.
func TestSeedUpLater(t *testing.T) {
	probe := startNode(t, testConfig("placeholder"))
	seedAddr := probe.LocalAddr()
	_ = probe.Shutdown()

	cfg := testConfig("early")
	cfg.Seeds = []string{seedAddr}
	early := startNode(t, cfg)
	time.Sleep(200 * time.Millisecond) // the first join attempt has failed by now

	seedCfg := testConfig("seed")
	seedCfg.BindAddr = seedAddr
	seed := startNode(t, seedCfg)
	took := waitFor(t, "early node joined the late seed", 10*time.Second, func() bool {
		return liveCount(early) == 2 && liveCount(seed) == 2
	})
	t.Logf("joined %s after the seed started", took)
}

// TestLeaveAndDeath: a graceful leave shows as left, a hard stop as dead;
// both stay listed.
func TestLeaveAndDeath(t *testing.T) {
	nodes := startCluster(t, 4, func(i int, c *Config) {
		if i == 0 {
			c.Role = RoleController
			c.Meta = map[string]string{"http": "127.0.0.1:8080"}
		}
	})
	m := nodes[1].Members()
	if len(m) != 4 || m[0].Name != "n0" || m[0].Role != RoleController || m[0].Region != "r1" ||
		m[0].Meta["http"] != "127.0.0.1:8080" || m[0].Meta[MetaVersion] == "" || m[0].Addr != nodes[0].LocalAddr() {
		t.Fatalf("members: %+v", m)
	}

	if err := nodes[2].Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := nodes[2].Leave(time.Second); err != nil {
		t.Fatal("second Leave:", err)
	}
	if st := memberState(nodes[2], "n2"); st != StateLeft {
		t.Fatalf("a node that left sees itself %q", st)
	}
	_ = nodes[2].Shutdown()
	_ = nodes[2].Shutdown()
	if err := nodes[2].Leave(time.Second); err == nil {
		t.Fatal("Leave after Shutdown must fail, not panic")
	}
	defer func() {
		if t.Failed() {
			t.Logf("members: %+v / %+v", nodes[0].Members(), nodes[1].Members())
		}
	}()
	waitFor(t, "n2 left", 5*time.Second, func() bool {
		return memberState(nodes[0], "n2") == StateLeft && memberState(nodes[1], "n2") == StateLeft
	})

	_ = nodes[3].Shutdown()
	took := waitFor(t, "n3 dead", 15*time.Second, func() bool {
		return memberState(nodes[0], "n3") == StateDead && memberState(nodes[1], "n3") == StateDead
	})
	t.Logf("dead after %s", took)
	if got := len(nodes[0].Members()); got != 4 {
		t.Fatalf("dead and left members must stay listed, got %d", got)
	}
	if liveCount(nodes[0]) != 2 {
		t.Fatalf("live count %d", liveCount(nodes[0]))
	}
}

func TestSubscribe(t *testing.T) {
	n := startNode(t, testConfig("solo"))
	ch, cancel := n.Subscribe()
	for i := 0; i < 5; i++ {
		n.Publish(Report{Service: "s", Check: "c", Status: StatusPassing})
	}
	select {
	case <-ch:
	case <-time.After(2 * time.Second):
		t.Fatal("no notification")
	}
	cancel()
	cancel()
	if _, open := <-ch; open {
		t.Fatal("channel open after cancel")
	}
	ch2, cancel2 := n.Subscribe()
	defer cancel2()
	_ = n.Shutdown()
	for range ch2 { // drains, then ends when Shutdown closes it
	}
	ch3, _ := n.Subscribe()
	if _, open := <-ch3; open {
		t.Fatal("subscribe after shutdown must return a closed channel")
	}
}

func TestPublishFitsPacket(t *testing.T) {
	n := startNode(t, testConfig("solo"))
	n.Publish(Report{Service: "s", Check: "c", Status: StatusFailing, Output: strings.Repeat("<\x01>", 200)})
	r := published(t, n, "s", "c")
	if len(encodeReport(r)) > maxMessage || r.Output == "" {
		t.Fatalf("message %d bytes, output %q", len(encodeReport(r)), r.Output)
	}
}

func TestPublishValidation(t *testing.T) {
	n := startNode(t, testConfig("solo"))
	n.Publish(Report{Service: "", Check: "c", Status: StatusPassing})
	if len(n.Reports()) != 0 {
		t.Fatal("invalid report stored")
	}
	long := make([]byte, 1000)
	for i := range long {
		long[i] = 'x'
	}
	n.Publish(Report{Origin: "spoofed", Seq: 1, Service: "s", Check: "c", Status: StatusPassing, Output: string(long)})
	r := published(t, n, "s", "c")
	if len(encodeReport(r)) > maxMessage {
		t.Fatal("report too big for a packet")
	}
	if r.Origin != "solo" || len(r.Output) != maxOutput || r.Seq < uint64(time.Now().Add(-time.Minute).UnixNano()) || r.Time.IsZero() {
		t.Fatalf("stamping wrong: %+v", r)
	}
}

// TestLANProfile: the default profile works on loopback too.
func TestLANProfile(t *testing.T) {
	a := testConfig("lan-a")
	a.Profile = ""
	na := startNode(t, a)
	b := testConfig("lan-b")
	b.Profile = ProfileLAN
	b.Seeds = []string{na.LocalAddr()}
	nb := startNode(t, b)
	waitFor(t, "joined", 5*time.Second, func() bool { return liveCount(na) == 2 && liveCount(nb) == 2 })
	nb.Publish(Report{Service: "api", Check: "http", Status: StatusPassing})
	took := waitFor(t, "report delivered", 5*time.Second, func() bool { _, ok := findReport(na, "lan-b", "api", "http"); return ok })
	t.Logf("LAN profile: report delivered in %s", took)
}
