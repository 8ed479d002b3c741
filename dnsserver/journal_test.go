package dnsserver

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap/zaptest"

	"github.com/evac-sh/evac/controlplane/state"
)

// journalConfig is recordsConfig with transfers allowed from loopback.
func journalConfig() *state.Config {
	c := recordsConfig()
	c.TransferAllow = []string{"127.0.0.0/8"}
	return c
}

// withConfig applies c (changed by edit) to st.
func withConfig(t testing.TB, st *state.State, edit func(c *state.Config)) *state.State {
	t.Helper()
	c := journalConfig()
	edit(c)
	return apply(t, st, state.CmdApplyConfig, normalized(t, c))
}

// setStatic is an edit setting static's A record to addr.
func setStatic(addr string) func(*state.Config) {
	return func(c *state.Config) {
		for i := range c.Records {
			if c.Records[i].Name == "static" && c.Records[i].Type == "A" {
				c.Records[i].Value = addr
			}
		}
	}
}

// mustView builds the view of st after prev, with its journal.
func mustView(t testing.TB, st *state.State, prev *view, size int) *view {
	t.Helper()
	v, err := buildView(st, prev, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	v.journal = nextJournal(prev, v, size)
	return v
}

func TestJournalDiffs(t *testing.T) {
	base := configured(t, journalConfig())
	tests := []struct {
		name     string
		change   func(*state.State) *state.State
		del, add []string
	}{
		{
			name:   "a static record changes",
			change: func(st *state.State) *state.State { return withConfig(t, st, setStatic("192.0.2.100")) },
			del:    []string{"static.example.com. 30 IN A 192.0.2.99"},
			add:    []string{"static.example.com. 30 IN A 192.0.2.100"},
		},
		{
			name: "a record is added",
			change: func(st *state.State) *state.State {
				return withConfig(t, st, func(c *state.Config) {
					c.Records = append(c.Records, state.Record{Name: "new", Type: "TXT", Value: "hello"})
				})
			},
			add: []string{`new.example.com. 30 IN TXT "hello"`},
		},
		{
			// The transfer holds every serving region of a weighted or
			// all service, and a failover service's first region: an
			// evacuation removes us-east from them and moves failover on.
			name:   "an evacuation",
			change: func(st *state.State) *state.State { return withWeights(t, st, 0) },
			del: append([]string{
				"all.example.com. 30 IN A 192.0.2.11", "all.example.com. 30 IN A 192.0.2.12", "all.example.com. 30 IN AAAA 2001:db8:1::11",
				"api.example.com. 20 IN A 192.0.2.11", "api.example.com. 20 IN A 192.0.2.12", "api.example.com. 20 IN AAAA 2001:db8:1::11",
				"fo.example.com. 30 IN A 192.0.2.11", "fo.example.com. 30 IN A 192.0.2.12", "fo.example.com. 30 IN AAAA 2001:db8:1::11",
				"v4only.example.com. 30 IN A 192.0.2.11",
			}, bigUSEast()...),
			add: []string{"fo.example.com. 30 IN A 198.51.100.11", "fo.example.com. 30 IN A 198.51.100.12", "fo.example.com. 30 IN AAAA 2001:db8:2::11"},
		},
		{
			// A lowered weight changes the steered answers, not the
			// transfer (every serving region): a new serial, no records.
			name:   "a weight lowered, not to 0",
			change: func(st *state.State) *state.State { return withWeights(t, st, 40) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := mustView(t, base, nil, DefaultJournalSize)
			next := mustView(t, tt.change(base), prev, DefaultJournalSize)
			if next.journal == nil || len(next.journal.deltas) != 1 {
				t.Fatalf("journal %+v, want one change", next.journal)
			}
			d := next.journal.deltas[0]
			if d.from.Serial != prev.serial || d.to.Serial != next.serial || d.to != next.soa[0] {
				t.Errorf("change from %d to %d, want %d to %d", d.from.Serial, d.to.Serial, prev.serial, next.serial)
			}
			for _, c := range []struct {
				what      string
				got, want []string
			}{{"deletions", rrStrings(d.del), parseRRs(t, tt.del...)}, {"additions", rrStrings(d.add), parseRRs(t, tt.add...)}} {
				if !slices.Equal(c.got, c.want) {
					t.Errorf("%s:\n got %q\nwant %q", c.what, c.got, c.want)
				}
			}
			if next.journal.records != d.records() {
				t.Errorf("records %d, want %d", next.journal.records, d.records())
			}
		})
	}
}

// bigUSEast is the service big's records in us-east.
func bigUSEast() []string {
	var out []string
	for i := range 20 {
		out = append(out, fmt.Sprintf("big.example.com. 30 IN A 10.0.0.%d", i+1))
	}
	return out
}

// versions applies n changes of static's address to st and returns every
// version's state, st first.
func versions(t testing.TB, st *state.State, n int) []*state.State {
	out := []*state.State{st}
	for i := range n {
		st = withConfig(t, st, setStatic(fmt.Sprintf("192.0.2.%d", 100+i)))
		out = append(out, st)
	}
	return out
}

func TestJournalBounds(t *testing.T) {
	zone := len(mustView(t, configured(t, journalConfig()), nil, 0).axfr)
	byRecords := (zone - 1) / 4 // each change: two SOAs, one deletion, one addition
	tests := []struct {
		name    string
		size    int
		changes int
		want    int // changes kept
	}{
		{"one change", 10, 1, 1},
		{"fewer changes than the size", 10, 5, 5},
		{"the size bounds", 3, 8, 3},
		{"a size of one", 1, 4, 1},
		{"no journal", 0, 4, 0},
		{"the zone's size bounds", 1000, byRecords + 5, byRecords},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sts := versions(t, configured(t, journalConfig()), tt.changes)
			var views []*view
			var v *view
			for _, st := range sts {
				v = mustView(t, st, v, tt.size)
				views = append(views, v)
			}
			got := 0
			if v.journal != nil {
				got = len(v.journal.deltas)
			}
			if got != tt.want {
				t.Fatalf("%d changes kept, want %d", got, tt.want)
			}
			// Consecutive, ending at the view's serial, within the budget.
			total := 0
			for i, d := range v.journal.deltasOrNil() {
				total += d.records()
				if i > 0 && v.journal.deltas[i-1].to.Serial != d.from.Serial {
					t.Errorf("change %d does not follow change %d", i, i-1)
				}
			}
			if got > 0 && v.journal.deltas[got-1].to.Serial != v.serial {
				t.Errorf("the journal ends at %d, the view is at %d", v.journal.deltas[got-1].to.Serial, v.serial)
			}
			if total+2 > len(v.axfr)+1 {
				t.Errorf("an IXFR of the whole journal has %d records, the zone %d", total+2, len(v.axfr)+1)
			}
			// Every kept version is reachable, the older ones are not.
			for i, old := range views[:len(views)-1] {
				ds, ok := v.journal.since(old.serial)
				if reach := i >= len(views)-1-tt.want; ok != reach || len(ds) != len(views)-1-i && ok {
					t.Errorf("version %d (serial %d): %d changes, reachable %v; want reachable %v", i, old.serial, len(ds), ok, reach)
				}
			}
			if _, ok := v.journal.since(v.serial); ok {
				t.Errorf("the current serial is in the journal")
			}
		})
	}

	// A change larger than the zone (every TTL) empties the journal; the
	// next change starts a new one.
	sts := versions(t, configured(t, journalConfig()), 2)
	v := mustView(t, sts[1], mustView(t, sts[0], nil, 10), 10)
	ttl := withConfig(t, sts[1], func(c *state.Config) { c.TTL = 45 })
	v = mustView(t, ttl, v, 10)
	if v.journal != nil {
		t.Errorf("after a change larger than the zone: %d changes kept", len(v.journal.deltas))
	}
	st := withConfig(t, ttl, func(c *state.Config) { c.TTL = 45; setStatic("192.0.2.1")(c) })
	if w := mustView(t, st, v, 10); w.journal == nil || len(w.journal.deltas) != 1 {
		t.Errorf("the next change after that: %+v", w.journal)
	}
}

// deltasOrNil lets a test range over a nil journal.
func (j *journal) deltasOrNil() []delta {
	if j == nil {
		return nil
	}
	return j.deltas
}

func TestJournalSerialNotNewer(t *testing.T) {
	sts := versions(t, configured(t, journalConfig()), 3)
	var v *view
	for _, st := range sts {
		v = mustView(t, st, v, 10)
	}
	// The same version built again (a restored snapshot of it) keeps the
	// journal; an older or different one at the same serial starts anew.
	if again := mustView(t, sts[3], v, 10); again.journal != v.journal {
		t.Errorf("the same version rebuilt lost its journal")
	}
	if older := mustView(t, sts[1], v, 10); older.journal != nil {
		t.Errorf("an older version kept the journal: %+v", older.journal)
	}
	other := *sts[3]
	other.Config = sts[0].Config
	if diff := mustView(t, &other, v, 10); diff.journal != nil {
		t.Errorf("another zone at the same serial kept the journal")
	}
	// Another zone: no journal.
	moved := withConfig(t, sts[3], func(c *state.Config) {
		c.Zone = "example.net"
		c.Records = slices.DeleteFunc(c.Records, func(r state.Record) bool { return strings.HasSuffix(r.Name, ".") })
	})
	if w := mustView(t, moved, v, 10); w.journal != nil {
		t.Errorf("a new zone kept the old zone's journal")
	}
}

// ixfrIn transfers with IXFR from serial over TCP with miekg's transfer
// client (several messages, TSIG verified when secret is set) and returns
// the answer's records.
func ixfrIn(t *testing.T, addr string, serial uint32, secret string) []dns.RR {
	t.Helper()
	m := ixfrQuery("example.com.", serial)
	tr := &dns.Transfer{DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second}
	if secret != "" {
		m.SetTsig("xfr.", dns.HmacSHA256, 300, time.Now().Unix())
		tr.TsigSecret = map[string]string{"xfr.": secret}
	}
	ch, err := tr.In(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	var rrs []dns.RR
	for env := range ch {
		if env.Error != nil {
			t.Fatalf("IXFR from %d: %v", serial, env.Error)
		}
		rrs = append(rrs, env.RR...)
	}
	return rrs
}

// applyIXFR applies an IXFR answer to zone (the records at serial, SOA
// excluded) as a secondary would, and reports whether it was incremental.
func applyIXFR(t *testing.T, zone []string, serial uint32, ans []dns.RR) (out []string, incremental bool) {
	t.Helper()
	if len(ans) < 2 {
		t.Fatalf("IXFR answer of %d records", len(ans))
	}
	last := ans[0].(*dns.SOA)
	if fin, ok := ans[len(ans)-1].(*dns.SOA); !ok || fin.Serial != last.Serial {
		t.Fatalf("IXFR does not end with our SOA: %v", ans[len(ans)-1])
	}
	if _, ok := ans[1].(*dns.SOA); !ok {
		return rrStrings(ans[1 : len(ans)-1]), false // AXFR-style
	}
	set := map[string]bool{}
	for _, s := range zone {
		set[s] = true
	}
	body := ans[1 : len(ans)-1]
	for len(body) > 0 {
		from, ok := body[0].(*dns.SOA)
		if !ok || from.Serial != serial {
			t.Fatalf("a change from %v, the secondary is at %d", body[0], serial)
		}
		i := 1
		for ; i < len(body) && body[i].Header().Rrtype != dns.TypeSOA; i++ {
			s := body[i].String()
			if !set[s] {
				t.Errorf("deletion of a record not in the zone: %s", s)
			}
			delete(set, s)
		}
		if i == len(body) {
			t.Fatalf("a change without its new SOA")
		}
		serial = body[i].(*dns.SOA).Serial
		for i++; i < len(body) && body[i].Header().Rrtype != dns.TypeSOA; i++ {
			if s := body[i].String(); set[s] {
				t.Errorf("addition of a record already there: %s", s)
			} else {
				set[s] = true
			}
		}
		body = body[i:]
	}
	if serial != last.Serial {
		t.Fatalf("the changes end at %d, the answer's SOA is %d", serial, last.Serial)
	}
	for s := range set {
		out = append(out, s)
	}
	slices.Sort(out)
	return out, true
}

// zoneOf returns the AXFR of the server at addr: the serial and the
// records but the SOA, sorted.
func zoneOf(t *testing.T, addr string) (uint32, []string) {
	t.Helper()
	rrs := axfr(t, addr, "example.com.", dns.TypeAXFR)
	return rrs[0].(*dns.SOA).Serial, rrStrings(rrs[1 : len(rrs)-1])
}

// TestIXFR: a secondary at any version the journal holds gets the changes
// (over several TCP messages when they are long), and applying them gives
// exactly the zone an AXFR gives; an older one gets the whole zone.
func TestIXFR(t *testing.T) {
	st := configured(t, journalConfig())
	const size = 4
	srv := New(Config{Addr: "127.0.0.1:0", Logger: zaptest.NewLogger(t), IXFRJournal: size})
	srv.Update(st)
	ts := startAt(t, srv)
	type version struct {
		serial uint32
		zone   []string
	}
	var vs []version
	record := func() {
		s, z := zoneOf(t, ts.tcp)
		vs = append(vs, version{s, z})
	}
	record()
	for i, change := range []func(*state.State) *state.State{
		func(st *state.State) *state.State { return withConfig(t, st, setStatic("192.0.2.100")) },
		func(st *state.State) *state.State { return withWeights(t, st, 0) },
		func(st *state.State) *state.State { return withWeights(t, st, 50) },
		func(st *state.State) *state.State {
			return withConfig(t, st, func(c *state.Config) {
				setStatic("192.0.2.101")(c)
				for j := range 150 { // more than one TCP message
					c.Records = append(c.Records, state.Record{Name: fmt.Sprintf("n%d", j), Type: "TXT", Value: strings.Repeat("y", 200)})
				}
			})
		},
		func(st *state.State) *state.State { return withWeights(t, st, 100) },
	} {
		st = change(st)
		srv.Update(st)
		record()
		if vs[i+1].serial == vs[i].serial {
			t.Fatalf("change %d kept serial %d", i, vs[i].serial)
		}
	}
	cur := vs[len(vs)-1]
	for i, old := range vs[:len(vs)-1] {
		t.Run(fmt.Sprintf("from version %d", i), func(t *testing.T) {
			ans := ixfrIn(t, ts.tcp, old.serial, "")
			got, incremental := applyIXFR(t, old.zone, old.serial, ans)
			if want := i >= len(vs)-1-size; incremental != want {
				t.Errorf("incremental %v, want %v", incremental, want)
			}
			if !slices.Equal(got, cur.zone) {
				t.Errorf("after the IXFR the secondary has %d records, the zone %d", len(got), len(cur.zone))
			}
		})
	}
	// Up to date, or ahead: our SOA alone.
	for _, serial := range []uint32{cur.serial, cur.serial + 7} {
		if r := exchange(t, "tcp", ts.tcp, ixfrQuery("example.com.", serial)); len(r.Answer) != 1 ||
			r.Answer[0].(*dns.SOA).Serial != cur.serial {
			t.Errorf("IXFR from %d: %v", serial, r)
		}
	}
}

// startAt starts srv and stops it at the end of the test.
func startAt(t *testing.T, srv *Server) *testServer {
	t.Helper()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	u, c := srv.Addr()
	return &testServer{Server: srv, udp: u.String(), tcp: c.String()}
}

// TestIXFRSameOnEveryServer: two servers that saw different states (one
// every state, one only some, as a busy controller may) answer a
// secondary at a version both built with changes that give the same zone.
func TestIXFRSameOnEveryServer(t *testing.T) {
	sts := versions(t, configured(t, journalConfig()), 6)
	every := startServer(t, sts[0])
	some := startServer(t, sts[0])
	for i, st := range sts[1:] {
		every.Update(st)
		if i%2 == 1 {
			some.Update(st)
		}
	}
	serial, zone := zoneOf(t, every.tcp)
	if s, z := zoneOf(t, some.tcp); s != serial || !slices.Equal(z, zone) {
		t.Fatalf("the servers' zones differ: %d and %d", s, serial)
	}
	old := sts[2] // built by both
	oldSrv := startServer(t, old)
	_, oldZone := zoneOf(t, oldSrv.tcp)
	for name, srv := range map[string]*testServer{"every state": every, "some states": some} {
		got, incremental := applyIXFR(t, oldZone, old.Serial, ixfrIn(t, srv.tcp, old.Serial, ""))
		if !incremental || !slices.Equal(got, zone) {
			t.Errorf("%s: incremental %v, zone equal %v", name, incremental, slices.Equal(got, zone))
		}
	}
	// A version only one of them built: the other sends the whole zone.
	if _, incremental := applyIXFR(t, nil, 0, ixfrIn(t, some.tcp, sts[1].Serial, "")); incremental {
		t.Errorf("an IXFR from a version the server never built was incremental")
	}
}

// TestIXFRUDP: over UDP (RFC 1995 section 2) an up-to-date client gets our
// SOA, changes that fit the client's size come whole, and everything
// else (too long, or not in the journal) gets our SOA alone: ask over TCP.
func TestIXFRUDP(t *testing.T) {
	sts := versions(t, configured(t, journalConfig()), 2)
	big := withConfig(t, sts[2], func(c *state.Config) {
		setStatic("192.0.2.1")(c)
		for j := range 60 {
			c.Records = append(c.Records, state.Record{Name: fmt.Sprintf("n%d", j), Type: "TXT", Value: strings.Repeat("z", 20)})
		}
	})
	srv := startServer(t, sts[0])
	srv.Update(sts[1])
	srv.Update(sts[2])
	srv.Update(big)
	// Without the big change: small changes fit in 512 bytes.
	small := startServer(t, sts[0])
	small.Update(sts[1])
	small.Update(sts[2])
	for _, tt := range []struct {
		name    string
		srv     *testServer
		from    uint32
		edns    uint16
		changes int
	}{
		{"up to date", small, sts[2].Serial, 0, 0},
		{"ahead", small, sts[2].Serial + 3, 1232, 0},
		{"one change", small, sts[1].Serial, 0, 1},
		{"two changes", small, sts[0].Serial, 0, 2},
		{"two changes with EDNS", small, sts[0].Serial, 1232, 2},
		{"not in the journal", small, 12345, 1232, 0},
		{"too long for 512 bytes", srv, sts[2].Serial, 0, 0},
		{"too long for 1232 bytes", srv, sts[2].Serial, 4096, 0},
		{"too long after a change that fits", srv, sts[1].Serial, 1232, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := ixfrQuery("example.com.", tt.from)
			if tt.edns > 0 {
				q = withEDNS(q, tt.edns, "")
			}
			r := exchange(t, "udp", tt.srv.udp, q)
			if r.Rcode != dns.RcodeSuccess || !r.Authoritative || r.Truncated {
				t.Fatalf("%v", r)
			}
			if (r.IsEdns0() != nil) != (tt.edns > 0) {
				t.Errorf("OPT in the answer: %v, in the query: %v", r.IsEdns0() != nil, tt.edns > 0)
			}
			serial, _ := zoneOf(t, tt.srv.tcp)
			if first, ok := r.Answer[0].(*dns.SOA); !ok || first.Serial != serial {
				t.Fatalf("answer starts with %v", r.Answer[0])
			}
			if tt.changes == 0 {
				if len(r.Answer) != 1 {
					t.Errorf("%d records, want our SOA alone", len(r.Answer))
				}
				return
			}
			soas := 0
			for _, rr := range r.Answer {
				if rr.Header().Rrtype == dns.TypeSOA {
					soas++
				}
			}
			if soas != 2+2*tt.changes {
				t.Errorf("%d SOAs: want %d changes", soas, tt.changes)
			}
			if len(r.Answer) != 2+4*tt.changes { // each: two SOAs, a deletion, an addition
				t.Errorf("%d records for %d changes", len(r.Answer), tt.changes)
			}
		})
	}
}

// TestIXFRSigned: a TSIG-signed IXFR is answered signed, over TCP in every
// message (miekg's client verifies each) and over UDP.
func TestIXFRSigned(t *testing.T) {
	c := journalConfig()
	c.Secondaries = []state.Secondary{{Address: "192.0.2.1:53", TSIG: "xfr."}}
	kr, err := NewKeyring(TSIGKey{Name: "xfr.", Algorithm: AlgHMACSHA256, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	st := configured(t, c)
	srv := New(Config{Addr: "127.0.0.1:0", Logger: zaptest.NewLogger(t), TSIG: kr})
	srv.Update(st)
	ts := startAt(t, srv)
	_, oldZone := zoneOf(t, ts.tcp)
	old := st.Serial
	for i := range 3 {
		st = apply(t, st, state.CmdApplyConfig, normalized(t, func() *state.Config {
			c := journalConfig()
			c.Secondaries = []state.Secondary{{Address: "192.0.2.1:53", TSIG: "xfr."}}
			for j := range 60 * (i + 1) {
				c.Records = append(c.Records, state.Record{Name: fmt.Sprintf("s%d", j), Type: "TXT", Value: strings.Repeat("s", 250)})
			}
			return c
		}()))
		srv.Update(st)
	}
	_, zone := zoneOf(t, ts.tcp)
	got, incremental := applyIXFR(t, oldZone, old, ixfrIn(t, ts.tcp, old, testSecret))
	if !incremental || !slices.Equal(got, zone) {
		t.Errorf("signed IXFR: incremental %v, zone equal %v", incremental, slices.Equal(got, zone))
	}
	r, err := signedExchange(t, "udp", ts.udp, ixfrQuery("example.com.", st.Serial), "xfr.", dns.HmacSHA256, testSecret, 0)
	if err != nil || len(r.Answer) != 1 || r.IsTsig() == nil {
		t.Errorf("signed IXFR over UDP: %v %v", err, r)
	}
}

// TestIXFRWithoutJournal: with the journal off, every IXFR not up to date
// gets the whole zone.
func TestIXFRWithoutJournal(t *testing.T) {
	sts := versions(t, configured(t, journalConfig()), 2)
	srv := New(Config{Addr: "127.0.0.1:0", Logger: zaptest.NewLogger(t), IXFRJournal: -1})
	srv.Update(sts[0])
	ts := startAt(t, srv)
	srv.Update(sts[1])
	srv.Update(sts[2])
	_, zone := zoneOf(t, ts.tcp)
	if got, incremental := applyIXFR(t, nil, sts[1].Serial, ixfrIn(t, ts.tcp, sts[1].Serial, "")); incremental || !slices.Equal(got, zone) {
		t.Errorf("incremental %v, zone equal %v", incremental, slices.Equal(got, zone))
	}
}

// TestIXFRDuringUpdates: transfers racing Update see one version each
// (run with -race).
func TestIXFRDuringUpdates(t *testing.T) {
	sts := versions(t, configured(t, journalConfig()), 30)
	srv := startServer(t, sts[0])
	_, oldZone := zoneOf(t, srv.tcp)
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, st := range sts[1:] {
			srv.Update(st)
		}
	})
	for range 20 {
		ans := ixfrIn(t, srv.tcp, sts[0].Serial, "")
		if _, ok := ans[0].(*dns.SOA); !ok {
			t.Fatalf("answer starts with %v", ans[0])
		}
		if len(ans) > 1 { // else still at sts[0]: up to date
			applyIXFR(t, oldZone, sts[0].Serial, ans) // checks the chain
		}
	}
	wg.Wait()
}

// BenchmarkJournalUpdate measures what the journal adds to an Update of a
// zone of 5,000 records changing one: the difference of the two versions.
func BenchmarkJournalUpdate(b *testing.B) {
	c := journalConfig()
	for i := range 5000 {
		c.Records = append(c.Records, state.Record{Name: fmt.Sprintf("r%d", i), Type: "A", Value: fmt.Sprintf("198.18.%d.%d", i/250, i%250+1)})
	}
	st := apply(b, state.Empty(), state.CmdApplyConfig, normalized(b, c))
	prev := mustView(b, st, nil, DefaultJournalSize)
	next := mustView(b, withConfig(b, st, func(cc *state.Config) {
		cc.Records = append(slices.Clone(c.Records[:len(c.Records)-1]), state.Record{Name: "r4999", Type: "A", Value: "198.18.100.1"})
	}), prev, DefaultJournalSize)
	b.ResetTimer()
	for b.Loop() {
		if j := nextJournal(prev, next, DefaultJournalSize); j == nil || len(j.deltas) != 1 ||
			len(j.deltas[0].del) != 1 || len(j.deltas[0].add) != 1 {
			b.Fatalf("journal %+v, want one change of one record", j)
		}
	}
}

// TestJournalNearest: a nearest service is in the transfer with every
// serving region's addresses, as a weighted one, and its differences
// follow: an evacuation deletes the region's addresses, a restore adds
// them back.
func TestJournalNearest(t *testing.T) {
	st := configured(t, nearestConfig())
	evacuated := withWeights(t, st, 0)
	restored := withWeights(t, evacuated, 100)
	usEast := parseRRs(t, "near.example.com. 20 IN A 192.0.2.11", "near.example.com. 20 IN A 192.0.2.12",
		"near.example.com. 20 IN AAAA 2001:db8:1::11")
	near := func(rrs []dns.RR) []string {
		var out []string
		for _, s := range rrStrings(rrs) {
			if strings.HasPrefix(s, "near.") {
				out = append(out, s)
			}
		}
		return out
	}
	v0 := mustView(t, st, nil, 10)
	if got := near(v0.axfr); len(got) != 9 {
		t.Fatalf("near in the transfer: %q, want every region's 3 addresses", got)
	}
	v1 := mustView(t, evacuated, v0, 10)
	v2 := mustView(t, restored, v1, 10)
	ds, ok := v2.journal.since(v0.serial)
	if !ok || len(ds) != 2 {
		t.Fatalf("journal: %d changes, reachable %v", len(ds), ok)
	}
	if del, add := near(ds[0].del), near(ds[0].add); !slices.Equal(del, usEast) || len(add) != 0 {
		t.Errorf("evacuation: deletes %q, adds %q", del, add)
	}
	if del, add := near(ds[1].del), near(ds[1].add); len(del) != 0 || !slices.Equal(add, usEast) {
		t.Errorf("restore: deletes %q, adds %q", del, add)
	}
}
