package gossip

import (
	"strings"
	"testing"
	"time"
)

func TestPullWire(t *testing.T) {
	p := pullRequest{from: "ctl-1", origin: "agent-7", have: 1 << 60}
	b := encodePull(p)
	got, err := decodePull(b)
	if err != nil || got != p {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if got, err := decodePull(encodePull(pullRequest{from: "c", origin: "o"})); err != nil || got.have != 0 {
		t.Fatalf("a requester holding nothing of the origin: %+v %v", got, err)
	}
	long := strings.Repeat("x", maxField+1)
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"type only", []byte{msgPull}},
		{"wrong type", append([]byte{msgRefresh}, b[1:]...)},
		{"trailing byte", append(append([]byte(nil), b...), 0)},
		{"no requester", encodePull(pullRequest{origin: "o", have: 1})},
		{"no origin", encodePull(pullRequest{from: "c", have: 1})},
		{"requester too long", encodePull(pullRequest{from: long, origin: "o", have: 1})},
		{"origin too long", encodePull(pullRequest{from: "c", origin: long, have: 1})},
		{"huge length", []byte{msgPull, 0xff, 0xff, 0xff, 0xff, 0x0f}},
	}
	for i := 1; i < len(b); i++ {
		cases = append(cases, struct {
			name string
			b    []byte
		}{"truncated", b[:i]})
	}
	for _, c := range cases {
		if _, err := decodePull(c.b); err == nil {
			t.Errorf("%s (% x): decoded", c.name, c.b)
		}
	}
}

// TestPullRateLimit: however many refreshes name a missed change, an
// origin is pulled at most once per heartbeat interval.
func TestPullRateLimit(t *testing.T) {
	cfg := testConfig("ctl")
	cfg.Role = RoleController
	cfg.HeartbeatInterval = time.Hour
	n := startNode(t, cfg)
	d := delegate{n}
	d.NotifyMsg(encodeReportV2(report("a", "c", 10, StatusPassing)))
	pulled := func() time.Time {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.origins["a"].pulled
	}
	now := time.Now()
	d.NotifyMsg(encodeRefresh(refresh{origin: "a", seq: 20, table: 10, sent: now.UnixNano(), asOf: now.UnixNano()}))
	if !pulled().IsZero() {
		t.Fatal("pulled although the refresh vouches for the change held")
	}
	d.NotifyMsg(encodeRefresh(refresh{origin: "a", seq: 21, table: 11, sent: now.UnixNano(), asOf: now.UnixNano()}))
	first := pulled()
	if first.IsZero() {
		t.Fatal("a refresh naming a newer change did not pull")
	}
	d.NotifyMsg(encodeRefresh(refresh{origin: "a", seq: 22, table: 11, sent: now.UnixNano(), asOf: now.UnixNano()}))
	if !pulled().Equal(first) {
		t.Fatal("pulled twice within a heartbeat interval")
	}
}

// TestPullReportOrdering: an answer to a pull is stored only when newer
// than the report held; an older or equal one changes nothing.
func TestPullReportOrdering(t *testing.T) {
	n := startNode(t, testConfig("ctl"))
	d := delegate{n}
	answer := func(r Report) []byte {
		b := encodeReportV2(r)
		b[0] = msgPullReport
		return b
	}
	steps := []struct {
		name     string
		r        Report
		wantSeq  uint64
		wantStat string
	}{
		{"first", report("a", "c", 10, StatusPassing), 10, StatusPassing},
		{"older", report("a", "c", 9, StatusFailing), 10, StatusPassing},
		{"same seq", report("a", "c", 10, StatusFailing), 10, StatusPassing},
		{"newer", report("a", "c", 11, StatusFailing), 11, StatusFailing},
	}
	for _, s := range steps {
		d.NotifyMsg(answer(s.r))
		if r, ok := findReport(n, "a", "api", "c"); !ok || r.Seq != s.wantSeq || r.Status != s.wantStat {
			t.Fatalf("%s: stored %+v", s.name, r)
		}
	}
	bad := answer(report("a", "c", 12, StatusPassing))
	d.NotifyMsg(bad[:len(bad)-1])
	if r, _ := findReport(n, "a", "api", "c"); r.Seq != 11 {
		t.Fatalf("a truncated answer was stored: %+v", r)
	}
}

// TestPullRepairsMissedChange: a controller that misses every copy of a
// flooded change (its packets are dropped on receipt) gets it through a
// pull within a few heartbeats, with push-pull off: from the origin, or,
// when the origin does not answer, from agents of another region.
func TestPullRepairsMissedChange(t *testing.T) {
	for _, originSilent := range []bool{false, true} {
		name := "origin answers"
		if originSilent {
			name = "other agents answer"
		}
		t.Run(name, func(t *testing.T) {
			nodes := startCluster(t, 4, func(i int, c *Config) {
				c.HeartbeatInterval = 200 * time.Millisecond
				c.noPushPull = true
				c.NoDirect = true
				switch i {
				case 0:
					c.Role, c.Region = RoleController, "control"
				case 1:
					c.Region = "r1"
				default:
					c.Region = "r2"
				}
			})
			ctl, origin := nodes[0], nodes[1]
			origin.Publish(Report{Service: "api", Check: "http", Status: StatusPassing})
			first := published(t, origin, "api", "http")
			waitFor(t, "first report everywhere", 5*time.Second, func() bool {
				for _, n := range nodes[2:] {
					if !hasSeq(n, origin.Name(), "api", "http", first.Seq) {
						return false
					}
				}
				return hasSeq(ctl, origin.Name(), "api", "http", first.Seq)
			})

			// Every flooded copy of the change is lost at the controller.
			dropChange := func(b []byte) bool {
				h, _, err := readReportHeader(b)
				return err == nil && string(h.origin) == origin.Name() && h.seq > first.Seq
			}
			ctl.dropMsg.Store(&dropChange)
			if originSilent {
				dropPull := func(b []byte) bool { return len(b) > 0 && b[0] == msgPull }
				origin.dropMsg.Store(&dropPull)
			}
			origin.Publish(Report{Service: "api", Check: "http", Status: StatusFailing})
			change := published(t, origin, "api", "http")
			waitFor(t, "the change reaches the other agents by the flood", 5*time.Second, func() bool {
				return hasSeq(nodes[2], origin.Name(), "api", "http", change.Seq) && hasSeq(nodes[3], origin.Name(), "api", "http", change.Seq)
			})
			took := waitFor(t, "the controller pulls the change", 10*time.Second, func() bool {
				return hasSeq(ctl, origin.Name(), "api", "http", change.Seq)
			})
			if r, _ := findReport(ctl, origin.Name(), "api", "http"); r.Status != StatusFailing {
				t.Fatalf("pulled report %+v", r)
			}
			t.Logf("repaired %s after the flood", took)
		})
	}
}
