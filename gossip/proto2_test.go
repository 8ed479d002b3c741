package gossip

import (
	"testing"
	"time"
)

// TestV2Dedupe: a version 2 report is stored and relayed on first receipt
// only, older and equal sequences are dropped, and both encodings order
// against each other by sequence.
func TestV2Dedupe(t *testing.T) {
	n := startNode(t, testConfig("self"))
	d := delegate{n}
	steps := []struct {
		name      string
		msg       []byte
		wantSeq   uint64
		wantRelay bool
	}{
		{"first v2", encodeReportV2(report("other", "c", 10, StatusPassing)), 10, true},
		{"same seq v2", encodeReportV2(report("other", "c", 10, StatusFailing)), 10, false},
		{"older v2", encodeReportV2(report("other", "c", 9, StatusFailing)), 10, false},
		{"newer v1", encodeReport(report("other", "c", 11, StatusFailing)), 11, true},
		{"same seq as v1, in v2", encodeReportV2(report("other", "c", 11, StatusPassing)), 11, false},
		{"newer v2", encodeReportV2(report("other", "c", 12, StatusPassing)), 12, true},
		{"another check", encodeReportV2(report("other", "d", 1, StatusPassing)), 12, true},
	}
	for _, s := range steps {
		n.queue.Reset() // a solo node sends nothing: the queue holds what this step relayed
		d.NotifyMsg(s.msg)
		if r, ok := findReport(n, "other", "api", "c"); !ok || r.Seq != s.wantSeq {
			t.Fatalf("%s: stored %+v", s.name, r)
		}
		if relayed := n.queue.NumQueued() == 1; relayed != s.wantRelay {
			t.Fatalf("%s: relayed %v", s.name, relayed)
		}
	}
	if _, ok := findReport(n, "other", "api", "d"); !ok {
		t.Fatal("second check of the origin not stored")
	}
}

// TestPublishChangesOnly: with protocol 2 an unchanged result renews the
// stored report without a new sequence or a broadcast; protocol 1 re-sends.
func TestPublishChangesOnly(t *testing.T) {
	for _, proto := range []int{1, protoVersion} {
		cfg := testConfig("self")
		cfg.protoOverride = proto
		n := startNode(t, cfg)
		waitFor(t, "self is a member", 5*time.Second, func() bool { return liveCount(n) == 1 })
		n.Publish(Report{Service: "api", Check: "http", Status: StatusPassing, Output: "HTTP 200"})
		first := published(t, n, "api", "http")
		queued := n.queue.NumQueued()
		later := time.Now().Add(time.Second)
		n.Publish(Report{Service: "api", Check: "http", Status: StatusPassing, Output: "HTTP 200", Time: later})
		again := published(t, n, "api", "http")
		switch proto {
		case 1:
			if again.Seq <= first.Seq {
				t.Fatalf("protocol 1: unchanged report not re-sent: %d <= %d", again.Seq, first.Seq)
			}
		default:
			if again.Seq != first.Seq || !again.Time.Equal(later) || n.queue.NumQueued() != queued {
				t.Fatalf("protocol 2: unchanged report %+v (first %+v), queue %d -> %d", again, first, queued, n.queue.NumQueued())
			}
		}
		n.Publish(Report{Service: "api", Check: "http", Status: StatusFailing, Output: "HTTP 500"})
		if changed := published(t, n, "api", "http"); changed.Seq <= again.Seq || changed.Status != StatusFailing {
			t.Fatalf("protocol %d: change not published: %+v", proto, changed)
		}
		_ = n.Shutdown()
	}
}

// TestRefreshRenews: a refresh renews an origin's live reports only when
// it vouches for the newest change held, and only once per sequence.
func TestRefreshRenews(t *testing.T) {
	n := startNode(t, testConfig("ctl"))
	d := delegate{n}
	d.NotifyMsg(encodeReportV2(report("a", "c", 10, StatusPassing)))
	d.NotifyMsg(encodeReportV2(report("a", "gone", 8, statusWithdrawn)))
	old := time.Now().Add(-50 * time.Second)
	age := func(key string) (time.Time, time.Time) {
		n.mu.Lock()
		defer n.mu.Unlock()
		r := n.reports[reportKey{"a", "api", key}]
		return r.Time, r.Received
	}
	setOld := func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, key := range []string{"c", "gone"} {
			k := reportKey{"a", "api", key}
			r := n.reports[k]
			r.Time, r.Received = old, old
			n.reports[k] = r
		}
	}
	setOld()
	now := time.Now()
	steps := []struct {
		name    string
		f       refresh
		renewed bool
	}{
		{"missed a change (table newer than held)", refresh{origin: "a", seq: 20, table: 11, sent: now.UnixNano(), asOf: now.Add(-time.Second).UnixNano()}, false},
		{"vouches for the newest held", refresh{origin: "a", seq: 21, table: 10, sent: now.UnixNano(), asOf: now.Add(-time.Second).UnixNano()}, true},
		{"older refresh", refresh{origin: "a", seq: 19, table: 10, sent: now.UnixNano(), asOf: now.UnixNano()}, false},
	}
	for _, s := range steps {
		setOld()
		d.NotifyMsg(encodeRefresh(s.f))
		tm, recv := age("c")
		renewed := recv.After(old)
		if renewed != s.renewed {
			t.Fatalf("%s: renewed %v (time %s, received %s)", s.name, renewed, tm, recv)
		}
		if renewed {
			// Received is this node's clock minus the refresh's age (1s).
			if d := time.Since(recv); d < time.Second || d > 3*time.Second || !tm.Equal(time.Unix(0, s.f.asOf)) {
				t.Fatalf("%s: time %s received %s ago", s.name, tm, d)
			}
		}
		if _, recv := age("gone"); !recv.Equal(old) {
			t.Fatalf("%s: a tombstone was renewed", s.name)
		}
	}
	// A relay request reaching a controller is applied like a refresh.
	cfg := testConfig("ctl2")
	cfg.Role = RoleController
	c := startNode(t, cfg)
	delegate{c}.NotifyMsg(encodeReportV2(report("a", "c", 10, StatusPassing)))
	later := time.Now().Add(time.Minute)
	relay := encodeRefresh(refresh{origin: "a", seq: 30, table: 10, sent: later.UnixNano(), asOf: later.UnixNano()})
	relay[0] = msgRefreshRelay
	delegate{c}.NotifyMsg(relay)
	if r, _ := findReport(c, "a", "api", "c"); !r.Time.Equal(time.Unix(0, later.UnixNano())) {
		t.Fatalf("controller did not apply a relayed refresh: %+v", r)
	}
}

// TestRefreshReachesController: over the network, an unchanged report is
// renewed at the controller by heartbeats, directly and through an agent
// of another region, while its sequence stays the same.
func TestRefreshReachesController(t *testing.T) {
	nodes := startCluster(t, 3, func(i int, c *Config) {
		c.HeartbeatInterval = 100 * time.Millisecond
		switch i {
		case 0:
			c.Role, c.Region = RoleController, "control"
		case 2:
			c.Region = "r2"
		}
	})
	ctl, a1, a2 := nodes[0], nodes[1], nodes[2]
	a1.mu.Lock()
	relays := a1.relaysLocked(refreshRelays)
	a1.mu.Unlock()
	if len(relays) != 1 || relays[0].Name != a2.Name() {
		t.Fatalf("relays of a1: %+v (want only the other region's agent)", relays)
	}

	a1.Publish(Report{Service: "api", Check: "http", Status: StatusPassing})
	first := published(t, a1, "api", "http")
	waitFor(t, "report at the controller", 5*time.Second, func() bool { return hasSeq(ctl, a1.Name(), "api", "http", first.Seq) })
	r0, _ := findReport(ctl, a1.Name(), "api", "http")
	time.Sleep(50 * time.Millisecond)
	a1.Publish(Report{Service: "api", Check: "http", Status: StatusPassing})
	waitFor(t, "report renewed at the controller", 5*time.Second, func() bool {
		r, _ := findReport(ctl, a1.Name(), "api", "http")
		return r.Seq == first.Seq && r.Received.After(r0.Received) && r.Time.After(r0.Time)
	})

	// The relay path alone: a2 forwards a1's refresh to the controller.
	r1, _ := findReport(ctl, a1.Name(), "api", "http")
	now := time.Now().Add(2 * time.Minute) // later than any heartbeat's asOf, within MaxSeqSkew
	relay := encodeRefresh(refresh{origin: a1.Name(), seq: uint64(now.UnixNano()), table: first.Seq, sent: now.UnixNano(), asOf: now.UnixNano()})
	relay[0] = msgRefreshRelay
	delegate{a2}.NotifyMsg(relay)
	waitFor(t, "relayed refresh applied at the controller", 5*time.Second, func() bool {
		r, _ := findReport(ctl, a1.Name(), "api", "http")
		return r.Time.Equal(time.Unix(0, now.UnixNano())) && r.Received.After(r1.Received)
	})
}

// TestMixedFleet: while a protocol 1 member is alive, every node sends
// protocol 1 and the old member gets every report and re-publish; once it
// is gone the others switch to protocol 2.
func TestMixedFleet(t *testing.T) {
	nodes := startCluster(t, 3, func(i int, c *Config) {
		if i == 2 {
			c.protoOverride = 1
		}
	})
	old := nodes[2]
	for _, n := range nodes {
		if n.v2.Load() {
			t.Fatalf("%s speaks protocol 2 with a protocol 1 member alive", n.Name())
		}
	}
	for _, n := range nodes[:2] {
		n.Publish(Report{Service: "api", Check: "http", Status: StatusPassing})
	}
	first := published(t, nodes[0], "api", "http")
	nodes[0].Publish(Report{Service: "api", Check: "http", Status: StatusPassing})
	again := published(t, nodes[0], "api", "http")
	if again.Seq <= first.Seq {
		t.Fatal("unchanged report not re-sent in a mixed fleet")
	}
	waitFor(t, "the old member has both reports, latest seq", 10*time.Second, func() bool {
		_, ok := findReport(old, nodes[1].Name(), "api", "http")
		return ok && hasSeq(old, nodes[0].Name(), "api", "http", again.Seq)
	})

	_ = old.Shutdown()
	waitFor(t, "protocol 2 once the old member is dead", 15*time.Second, func() bool {
		return nodes[0].v2.Load() && nodes[1].v2.Load()
	})
	nodes[0].Publish(Report{Service: "api", Check: "http", Status: StatusPassing})
	if r := published(t, nodes[0], "api", "http"); r.Seq != again.Seq {
		t.Fatalf("protocol 2: unchanged report re-sent (%d -> %d)", again.Seq, r.Seq)
	}
}
