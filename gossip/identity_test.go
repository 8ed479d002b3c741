package gossip

import (
	"bytes"
	"crypto/ed25519"
	"math"
	"sync"
	"testing"
	"time"
)

// fakeEnrolment is an Enrolment held in memory.
type fakeEnrolment struct {
	mu       sync.Mutex
	enforced bool
	agents   map[string]enrolled
}

type enrolled struct {
	key    ed25519.PublicKey
	region string
}

func (f *fakeEnrolment) Enforced() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.enforced
}

func (f *fakeEnrolment) Lookup(name string) (ed25519.PublicKey, string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.agents[name]
	return a.key, a.region, ok
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signed(k ed25519.PrivateKey, r Report) Report {
	r.Sig = ed25519.Sign(k, reportSigBytes(r))
	return r
}

// TestSignatureSurvivesEveryEncoding: a signed report verifies after a
// round trip through protocol 1 JSON, the protocol 3 binary form and
// push-pull state; any change to a signed field breaks it.
func TestSignatureSurvivesEveryEncoding(t *testing.T) {
	k := newKey(t)
	pub := k.Public().(ed25519.PublicKey)
	c := 42.5
	r := signed(k, Report{Origin: "a1", Region: "us-east", Service: "api", Check: "http", Status: StatusFailing,
		Output: "HTTP 500 \u00e9", Seq: uint64(time.Now().UnixNano()), Time: time.Now(), Capacity: &c})
	v1, err := decodeReport(encodeReport(r))
	if err != nil {
		t.Fatal(err)
	}
	v3, err := decodeReportV2(encodeReportV2(r))
	if err != nil {
		t.Fatal(err)
	}
	st, _, _, err := decodeState(encodeState([]Report{r}, nil))
	if err != nil || len(st) != 1 {
		t.Fatal(err, st)
	}
	for name, got := range map[string]Report{"v1": v1, "v3": v3, "state": st[0]} {
		if !ed25519.Verify(pub, reportSigBytes(got), got.Sig) {
			t.Errorf("%s: signature does not verify after decoding", name)
		}
	}
	// Time is renewed by refreshes: it is deliberately not signed.
	renewed := r
	renewed.Time = r.Time.Add(time.Minute)
	if !ed25519.Verify(pub, reportSigBytes(renewed), r.Sig) {
		t.Error("a renewed Time broke the signature")
	}
	other := 1.0
	for name, mod := range map[string]func(*Report){
		"origin":   func(x *Report) { x.Origin = "a2" },
		"region":   func(x *Report) { x.Region = "eu-west" },
		"service":  func(x *Report) { x.Service = "web" },
		"check":    func(x *Report) { x.Check = "tcp" },
		"status":   func(x *Report) { x.Status = StatusPassing },
		"output":   func(x *Report) { x.Output = "ok" },
		"seq":      func(x *Report) { x.Seq = math.MaxUint64 },
		"capacity": func(x *Report) { x.Capacity = &other },
		"no cap":   func(x *Report) { x.Capacity = nil },
	} {
		x := r
		mod(&x)
		if ed25519.Verify(pub, reportSigBytes(x), r.Sig) {
			t.Errorf("changed %s still verifies", name)
		}
	}
}

// TestControllerAdmits: a controller with an enforced enrolment stores a
// report only when its origin is enrolled, for that region, and signed by
// its key, and its sequence is not far in the future; everything else is
// dropped and counted by reason.
func TestControllerAdmits(t *testing.T) {
	k, rogue := newKey(t), newKey(t)
	en := &fakeEnrolment{enforced: true, agents: map[string]enrolled{
		"a1": {k.Public().(ed25519.PublicKey), "us-east"},
	}}
	now := uint64(time.Now().UnixNano())
	base := Report{Origin: "a1", Region: "us-east", Service: "api", Check: "http", Status: StatusPassing, Seq: now, Time: time.Now()}
	with := func(mod func(*Report), key ed25519.PrivateKey) Report {
		r := base
		mod(&r)
		if key != nil {
			r = signed(key, r)
		}
		return r
	}
	same := func(*Report) {}
	tests := []struct {
		name     string
		r        Report
		enforced bool
		want     string // drop reason, "" stored
	}{
		{"enrolled and signed", with(same, k), true, ""},
		{"unsigned", with(same, nil), true, DropUnsigned},
		{"signed by another key", with(same, rogue), true, DropBadSignature},
		{"claims another region", with(func(r *Report) { r.Region = "eu-west" }, k), true, DropWrongRegion},
		{"not enrolled", with(func(r *Report) { r.Origin = "rogue" }, rogue), true, DropNotEnrolled},
		{"not enrolled, not enforced", with(func(r *Report) { r.Origin = "rogue" }, nil), false, ""},
		{"enrolled name forged, not enforced", with(same, rogue), false, DropBadSignature},
		{"seq far in the future", with(func(r *Report) { r.Seq = math.MaxUint64 }, k), true, DropSeqFuture},
		{"seq just inside the skew", with(func(r *Report) { r.Seq = now + uint64(MaxSeqSkew) - uint64(time.Second) }, k), true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			en.mu.Lock()
			en.enforced = tc.enforced
			en.mu.Unlock()
			cfg := testConfig("ctl")
			cfg.Role, cfg.Enrolment = RoleController, en
			n := startNode(t, cfg)
			for _, msg := range [][]byte{encodeReportV2(tc.r), encodeReport(tc.r)} {
				before := n.Dropped()
				delegate{n}.NotifyMsg(msg)
				_, stored := findReport(n, tc.r.Origin, "api", "http")
				after := n.Dropped()
				switch {
				case tc.want == "" && !stored:
					t.Fatalf("not stored; dropped %v", after)
				case tc.want != "" && stored:
					t.Fatal("stored")
				case tc.want != "" && after[tc.want] != before[tc.want]+1:
					t.Fatalf("dropped %v, want one more %s than %v", after, tc.want, before)
				}
			}
			// Push-pull is checked the same way.
			n.mu.Lock()
			n.reports, n.origins = map[reportKey]Report{}, map[string]*originState{}
			n.mu.Unlock()
			delegate{n}.MergeRemoteState(encodeState([]Report{tc.r}, nil), false)
			if _, stored := findReport(n, tc.r.Origin, "api", "http"); stored != (tc.want == "") {
				t.Fatalf("push-pull: stored %v, want drop %q", stored, tc.want)
			}
		})
	}
}

// TestForgedHugeSeqLocksNobodyOut: a report with another agent's origin
// and Seq = MaxUint64 is dropped everywhere (by the sequence bound at a
// relay, by the signature at a controller), and the real agent's next
// report is stored by both.
func TestForgedHugeSeqLocksNobodyOut(t *testing.T) {
	k, rogue := newKey(t), newKey(t)
	en := &fakeEnrolment{enforced: true, agents: map[string]enrolled{"a1": {k.Public().(ed25519.PublicKey), "us-east"}}}
	ccfg := testConfig("ctl")
	ccfg.Role, ccfg.Enrolment = RoleController, en
	ctl := startNode(t, ccfg)
	relay := startNode(t, testConfig("relay"))
	forged := signed(rogue, Report{Origin: "a1", Region: "us-east", Service: "api", Check: "http", Status: StatusFailing,
		Seq: math.MaxUint64, Time: time.Now()})
	// A forgery within the skew passes a relay (it cannot check the
	// signature) but never a controller.
	nearForged := forged
	nearForged.Seq = uint64(time.Now().Add(MaxSeqSkew / 2).UnixNano())
	nearForged = signed(rogue, nearForged)
	for _, n := range []*Node{ctl, relay} {
		delegate{n}.NotifyMsg(encodeReportV2(forged))
		if _, ok := findReport(n, "a1", "api", "http"); ok {
			t.Fatalf("%s stored the forged MaxUint64 report", n.Name())
		}
		if n.Dropped()[DropSeqFuture] != 1 {
			t.Fatalf("%s: dropped %v", n.Name(), n.Dropped())
		}
	}
	delegate{ctl}.NotifyMsg(encodeReportV2(nearForged))
	real := signed(k, Report{Origin: "a1", Region: "us-east", Service: "api", Check: "http", Status: StatusPassing,
		Seq: uint64(time.Now().UnixNano()), Time: time.Now()})
	delegate{ctl}.NotifyMsg(encodeReportV2(real))
	delegate{relay}.NotifyMsg(encodeReportV2(real))
	for _, n := range []*Node{ctl, relay} {
		if !hasSeq(n, "a1", "api", "http", real.Seq) {
			t.Fatalf("%s did not store the real report after the forgery", n.Name())
		}
	}
	if ctl.Dropped()[DropBadSignature] != 1 {
		t.Fatalf("controller dropped %v", ctl.Dropped())
	}
}

// TestRelaysForwardSignedBytes: an agent relays a signed report and a
// signed refresh as received (the refresh's type byte aside), and the
// controller verifies both; a refresh forged for an enrolled agent, with
// a huge sequence, is dropped and does not stop the real ones.
func TestRelaysForwardSignedBytes(t *testing.T) {
	k := newKey(t)
	en := &fakeEnrolment{enforced: true, agents: map[string]enrolled{"a1": {k.Public().(ed25519.PublicKey), "us-east"}}}
	relay := startNode(t, testConfig("relay"))
	r := signed(k, Report{Origin: "a1", Region: "us-east", Service: "api", Check: "http", Status: StatusPassing,
		Seq: uint64(time.Now().UnixNano()), Time: time.Now()})
	raw := encodeReportV2(r)
	relay.queue.Reset()
	delegate{relay}.NotifyMsg(raw)
	out := relay.queue.GetBroadcasts(0, 1400)
	if len(out) != 1 || !bytes.Equal(out[0], raw) {
		t.Fatalf("relayed %q, want the signed bytes unchanged", out)
	}

	ccfg := testConfig("ctl")
	ccfg.Role, ccfg.Enrolment = RoleController, en
	ctl := startNode(t, ccfg)
	delegate{ctl}.NotifyMsg(out[0])
	first, ok := findReport(ctl, "a1", "api", "http")
	if !ok {
		t.Fatal("relayed report not stored at the controller")
	}

	at := time.Now().Add(time.Minute)
	mkRefresh := func(key ed25519.PrivateKey, seq uint64) []byte {
		f := refresh{origin: "a1", seq: seq, table: r.Seq, sent: at.UnixNano(), asOf: at.UnixNano()}
		f.sig = ed25519.Sign(key, refreshSigBytes("a1", f))
		msg := encodeRefresh(f)
		msg[0] = msgRefreshRelay
		return msg
	}
	delegate{ctl}.NotifyMsg(mkRefresh(newKey(t), math.MaxUint64))
	delegate{ctl}.NotifyMsg(mkRefresh(newKey(t), uint64(time.Now().UnixNano())))
	if got, _ := findReport(ctl, "a1", "api", "http"); !got.Time.Equal(first.Time) {
		t.Fatal("a forged refresh renewed the report")
	}
	if d := ctl.Dropped(); d[DropSeqFuture] != 1 || d[DropBadSignature] != 1 {
		t.Fatalf("dropped %v", d)
	}
	delegate{ctl}.NotifyMsg(mkRefresh(k, uint64(time.Now().UnixNano())))
	if got, _ := findReport(ctl, "a1", "api", "http"); !got.Time.Equal(time.Unix(0, at.UnixNano())) {
		t.Fatalf("the real refresh did not renew the report: %v", got.Time)
	}
}

// TestPublishSigns: an agent with a key signs what it publishes, and an
// echo of its own origin that its key did not sign is ignored rather than
// superseded (it would drag the sequence forward).
func TestPublishSigns(t *testing.T) {
	k := newKey(t)
	cfg := testConfig("self")
	cfg.SigningKey = k
	n := startNode(t, cfg)
	n.Publish(Report{Service: "api", Check: "http", Status: StatusPassing, Output: "bad \xff utf-8"})
	mine := published(t, n, "api", "http")
	if !ed25519.Verify(k.Public().(ed25519.PublicKey), reportSigBytes(mine), mine.Sig) {
		t.Fatal("published report not signed")
	}
	if v1, err := decodeReport(encodeReport(mine)); err != nil || !ed25519.Verify(k.Public().(ed25519.PublicKey), reportSigBytes(v1), v1.Sig) {
		t.Fatal("signature lost in JSON (invalid UTF-8 not sanitised?)", err)
	}
	forged := signed(newKey(t), Report{Origin: "self", Region: "r1", Service: "api", Check: "http", Status: StatusFailing,
		Seq: mine.Seq + uint64(time.Minute), Time: time.Now()})
	delegate{n}.NotifyMsg(encodeReportV2(forged))
	if r := published(t, n, "api", "http"); r.Seq != mine.Seq || r.Status != StatusPassing {
		t.Fatalf("forged echo changed the own report: %+v", r)
	}
	if n.Dropped()[DropBadSignature] != 1 {
		t.Fatalf("dropped %v", n.Dropped())
	}
}

// TestSignedInMixedFleet: with a protocol 1 member alive, a signing agent
// falls back to JSON reports that carry the signature, and the enforcing
// controller still verifies and stores them.
func TestSignedInMixedFleet(t *testing.T) {
	k := newKey(t)
	en := &fakeEnrolment{enforced: true, agents: map[string]enrolled{"n1": {k.Public().(ed25519.PublicKey), "r1"}}}
	nodes := startCluster(t, 3, func(i int, c *Config) {
		switch i {
		case 0:
			c.Role, c.Region, c.Enrolment = RoleController, "control", en
		case 1:
			c.SigningKey = k
		case 2:
			c.protoOverride = 1
		}
	})
	ctl, a1, old := nodes[0], nodes[1], nodes[2]
	if a1.v2.Load() {
		t.Fatal("binary protocol with a protocol 1 member alive")
	}
	a1.Publish(Report{Service: "api", Check: "http", Status: StatusPassing})
	mine := published(t, a1, "api", "http")
	waitFor(t, "signed JSON report verified at the controller and relayed to the old member", 10*time.Second, func() bool {
		return hasSeq(ctl, "n1", "api", "http", mine.Seq) && hasSeq(old, "n1", "api", "http", mine.Seq)
	})
	if d := ctl.Dropped(); d[DropUnsigned]+d[DropBadSignature] != 0 {
		t.Fatalf("controller dropped %v", d)
	}
}

// TestLeaveIntentsSigned: a leave intent for an enrolled agent counts at a
// controller only when that agent signed it (a forged one would make its
// later failure read as a departure); one with a sequence far in the
// future is dropped by every node.
func TestLeaveIntentsSigned(t *testing.T) {
	k := newKey(t)
	en := &fakeEnrolment{enforced: true, agents: map[string]enrolled{"n1": {k.Public().(ed25519.PublicKey), "r1"}}}
	nodes := startCluster(t, 2, func(i int, c *Config) {
		if i == 0 {
			c.Role, c.Region, c.Enrolment = RoleController, "control", en
		} else {
			c.SigningKey = k
		}
	})
	ctl, a1 := nodes[0], nodes[1]
	leaving := func() bool {
		ctl.mu.Lock()
		defer ctl.mu.Unlock()
		return ctl.members["n1"].leaving
	}
	seq := uint64(time.Now().UnixNano())
	forged := wireLeave{Node: "n1", Seq: seq}
	delegate{ctl}.NotifyMsg(encodeLeave(forged))
	forged.Sig = ed25519.Sign(newKey(t), leaveSigBytes(forged))
	delegate{ctl}.NotifyMsg(encodeLeave(forged))
	delegate{ctl}.MergeRemoteState(encodeState(nil, []wireLeave{forged}), false)
	delegate{ctl}.NotifyMsg(encodeLeave(wireLeave{Node: "other", Seq: math.MaxUint64}))
	if leaving() {
		t.Fatal("a forged leave intent marked the enrolled agent leaving")
	}
	if d := ctl.Dropped(); d[DropUnsigned] != 1 || d[DropBadSignature] != 2 || d[DropSeqFuture] != 1 {
		t.Fatalf("dropped %v", d)
	}
	if err := a1.Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the agent's own signed leave recorded", 10*time.Second, func() bool {
		return leaving() || memberState(ctl, "n1") == StateLeft
	})
}
