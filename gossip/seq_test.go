package gossip

import (
	"testing"
	"time"
)

func report(origin, check string, seq uint64, status string) Report {
	return Report{Origin: origin, Region: "r1", Service: "api", Check: check, Status: status, Seq: seq, Time: time.Now()}
}

// TestSeqOrdering: a report is stored and re-queued for broadcast only on
// first receipt of a newer seq; older and equal seqs are dropped.
func TestSeqOrdering(t *testing.T) {
	n := startNode(t, testConfig("self"))
	d := delegate{n}
	queued := n.queue.NumQueued()

	d.NotifyMsg(encodeReport(report("other", "c", 10, StatusPassing)))
	if r, ok := findReport(n, "other", "api", "c"); !ok || r.Seq != 10 {
		t.Fatalf("first report not stored: %+v", r)
	}
	if n.queue.NumQueued() != queued+1 {
		t.Fatal("first receipt must be re-queued for broadcast")
	}
	queued = n.queue.NumQueued()

	for _, seq := range []uint64{5, 10} {
		d.NotifyMsg(encodeReport(report("other", "c", seq, StatusFailing)))
		if r, _ := findReport(n, "other", "api", "c"); r.Seq != 10 || r.Status != StatusPassing {
			t.Fatalf("seq %d replaced seq 10: %+v", seq, r)
		}
		if n.queue.NumQueued() != queued {
			t.Fatalf("seq %d was re-broadcast", seq)
		}
	}

	d.NotifyMsg(encodeReport(report("other", "c", 11, StatusFailing)))
	if r, _ := findReport(n, "other", "api", "c"); r.Seq != 11 || r.Status != StatusFailing {
		t.Fatalf("newer seq not stored: %+v", r)
	}
	// The newer broadcast replaces the queued older one (same key).
	if n.queue.NumQueued() != queued {
		t.Fatalf("queue grew to %d: newer report should invalidate the older", n.queue.NumQueued())
	}

	// Push-pull merges by seq too: older rows are ignored, newer taken.
	d.MergeRemoteState(encodeState([]Report{
		report("other", "c", 7, StatusPassing),
		report("other", "d", 3, StatusPassing),
		report("third", "c", 1, StatusFailing),
	}, nil), false)
	if r, _ := findReport(n, "other", "api", "c"); r.Seq != 11 {
		t.Fatalf("push-pull replaced a newer report: %+v", r)
	}
	if len(n.Reports()) != 3 {
		t.Fatalf("reports: %+v", n.Reports())
	}

	// Reports past retention are neither stored nor kept.
	old := report("ancient", "c", 99, StatusPassing)
	old.Time = time.Now().Add(-48 * time.Hour)
	d.NotifyMsg(encodeReport(old))
	if _, ok := findReport(n, "ancient", "api", "c"); ok {
		t.Fatal("expired report stored")
	}
}

// TestOwnEcho: reports naming this node as origin that it did not publish
// in this life are superseded.
func TestOwnEcho(t *testing.T) {
	n := startNode(t, testConfig("self"))
	d := delegate{n}
	n.Publish(Report{Service: "api", Check: "live", Status: StatusPassing})
	mine := published(t, n, "api", "live")

	// Its own broadcast coming back changes nothing.
	d.NotifyMsg(encodeReport(mine))
	if r := published(t, n, "api", "live"); r.Seq != mine.Seq {
		t.Fatal("echo changed own report")
	}

	// A report from a previous life with a higher seq (clock went back):
	// the current value is re-published above it.
	future := mine
	future.Seq = mine.Seq + uint64(time.Minute) // within MaxSeqSkew
	future.Status = StatusFailing
	d.NotifyMsg(encodeReport(future))
	r := published(t, n, "api", "live")
	if r.Seq <= future.Seq || r.Status != StatusPassing {
		t.Fatalf("not superseded: %+v", r)
	}

	// A check this node no longer runs is withdrawn with a tombstone.
	d.MergeRemoteState(encodeState([]Report{report("self", "removed", 1, StatusFailing)}, nil), true)
	if _, ok := findReport(n, "self", "api", "removed"); ok {
		t.Fatal("stale own report visible")
	}
	n.mu.Lock()
	tomb, ok := n.reports[reportKey{"self", "api", "removed"}]
	n.mu.Unlock()
	if !ok || tomb.Status != statusWithdrawn || tomb.Seq <= 1 {
		t.Fatalf("tombstone: %+v %v", tomb, ok)
	}
}

// TestTombstoneHidesRemovedCheck: across the network, a restarted node's
// old check disappears from every node.
func TestTombstoneHidesRemovedCheck(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	nodes[2].Publish(Report{Service: "api", Check: "old", Status: StatusFailing})
	waitFor(t, "old report spread", 10*time.Second, func() bool { _, ok := findReport(nodes[0], "n2", "api", "old"); return ok })
	addr := nodes[2].LocalAddr()
	_ = nodes[2].Shutdown()

	cfg := testConfig("n2")
	cfg.BindAddr = addr
	cfg.Seeds = []string{nodes[0].LocalAddr()}
	startNode(t, cfg) // restarted without the "old" check
	waitFor(t, "old report withdrawn everywhere", 10*time.Second, func() bool {
		for _, n := range nodes[:2] {
			if _, ok := findReport(n, "n2", "api", "old"); ok {
				return false
			}
		}
		return true
	})
}

func TestReap(t *testing.T) {
	cfg := testConfig("self")
	cfg.Retention = time.Hour
	n := startNode(t, cfg)
	d := delegate{n}
	d.NotifyMsg(encodeReport(report("gone", "c", 5, StatusPassing)))
	n.mu.Lock()
	n.members["gone"] = &member{Member: Member{Name: "gone", State: StateDead, LastChange: time.Now().Add(-2 * time.Hour)}}
	k := reportKey{"gone", "api", "c"}
	r := n.reports[k]
	r.Time = time.Now().Add(-2 * time.Hour)
	n.reports[k] = r
	n.mu.Unlock()
	n.Publish(Report{Service: "api", Check: "mine", Status: StatusPassing, Time: time.Now().Add(-2 * time.Hour)})
	n.reap()
	if _, ok := findReport(n, "gone", "api", "c"); ok {
		t.Fatal("expired report kept")
	}
	if memberState(n, "gone") != "" {
		t.Fatal("expired member kept")
	}
	if _, ok := findReport(n, "self", "api", "mine"); !ok {
		t.Fatal("own report reaped")
	}
}
