package dnsserver

import (
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/geoip"
	"github.com/evac-sh/evac/internal/geoip/geoiptest"
)

// discard is a ResponseWriter that drops the packed answer, as the UDP
// writer would after sending it.
type discard struct {
	remote net.Addr
	n      int
}

func (w *discard) LocalAddr() net.Addr         { return w.remote }
func (w *discard) RemoteAddr() net.Addr        { return w.remote }
func (w *discard) WriteMsg(m *dns.Msg) error   { _, err := m.Pack(); return err }
func (w *discard) Write(b []byte) (int, error) { w.n = len(b); return len(b), nil }
func (w *discard) Close() error                { return nil }
func (w *discard) TsigStatus() error           { return nil }
func (w *discard) TsigTimersOnly(bool)         {}
func (w *discard) Hijack()                     {}

func benchServe(b *testing.B, q *dns.Msg) {
	s := New(Config{})
	s.Update(withWeights(b, configured(b, testConfig()), 50, 30, 20))
	benchServeOn(b, s, q)
}

// benchServeOn measures s answering q on the general path.
func benchServeOn(b *testing.B, s *Server, q *dns.Msg) {
	b.Helper()
	w := &discard{remote: &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 5353}}
	s.ServeDNS(w, q)
	if w.n == 0 {
		b.Fatal("no answer")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.ServeDNS(w, q)
	}
}

// BenchmarkServeDNSWeightedA is the answer path of a weighted A query from
// the source address: lookup, subnet hash, rendezvous pick, pack.
func BenchmarkServeDNSWeightedA(b *testing.B) {
	benchServe(b, query("api.example.com.", dns.TypeA))
}

// BenchmarkServeDNSWeightedAECS adds EDNS0 with a client subnet to echo.
func BenchmarkServeDNSWeightedAECS(b *testing.B) {
	benchServe(b, withEDNS(query("Api.Example.com.", dns.TypeA), 1232, "10.1.2.0/24"))
}

// BenchmarkServeDNSFailoverA is a prepared answer with no hashing.
func BenchmarkServeDNSFailoverA(b *testing.B) {
	benchServe(b, query("fo.example.com.", dns.TypeA))
}

func BenchmarkServeDNSParallel(b *testing.B) {
	s := New(Config{})
	s.Update(withWeights(b, configured(b, testConfig()), 50, 30, 20))
	q := query("api.example.com.", dns.TypeA)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discard{remote: &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 5353}}
		for pb.Next() {
			s.ServeDNS(w, q)
		}
	})
}

// benchFast is the UDP fast path (fast.go) from the packed query to the
// packed answer: what serveUDP does between reading and writing a packet.
func benchFast(b *testing.B, q *dns.Msg) {
	s := New(Config{})
	s.Update(withWeights(b, configured(b, testConfig()), 50, 30, 20))
	pkt, err := q.Pack()
	if err != nil {
		b.Fatal(err)
	}
	from := netip.MustParseAddrPort("198.51.100.7:5353")
	out := make([]byte, 0, packBufSize)
	var sn seen
	if r, ok := s.fast(pkt, from, out, &sn); !ok || len(r) == 0 {
		b.Fatal("not answered by the fast path")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.fast(pkt, from, out, &sn)
	}
}

// Modes of benchFastBatch.
const (
	batchOnly    = iota // the fast path over a batch, nothing recorded
	batchNoted          // and each answer recorded, as serveUDP does
	batchWatched        // and a change is being measured
)

// benchFastBatch is the fast path as serveUDP runs it: batches of 32
// queries from clients spread over 1024 /24s. batchNoted adds what drain
// tracking (drain.go) costs: each answer recorded in the reader's table of
// recent answers, with one clock read and one lock per batch; batchWatched
// also has a change being measured whose population is every subnet the
// change moved. ns/op is per query.
func benchFastBatch(b *testing.B, q *dns.Msg, mode int) {
	s := New(Config{})
	st := withWeights(b, configured(b, testConfig()), 50, 30, 20)
	s.Update(st)
	pkt, err := q.Pack()
	if err != nil {
		b.Fatal(err)
	}
	froms := make([]netip.AddrPort, 1024)
	for i := range froms {
		froms[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 7}), 5353)
	}
	out := make([]byte, 0, packBufSize)
	rec := new(answerTable)
	s.udpRecs = []*answerTable{rec}
	var sns [udpBatch]seen
	batch := func(i int) {
		for j := range sns {
			s.fast(pkt, froms[(i+j)&1023], out, &sns[j])
		}
		if mode == batchOnly {
			return
		}
		now := time.Now().UnixNano()
		rec.mu.Lock()
		for j := range sns {
			if sns[j].svc != 0 {
				s.note(rec, &sns[j], now)
			}
		}
		rec.mu.Unlock()
	}
	for i := 0; i < 1024; i += udpBatch {
		batch(i)
	}
	if mode == batchWatched {
		ws := s.UpdateWatching(withWeights(b, st, 0, 30, 20), []DrainChange{{Region: "us-east", At: time.Now()}})
		if ws[0].n == 0 {
			b.Fatal("empty population")
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += udpBatch {
		batch(i)
	}
}

func BenchmarkFastBatchWeightedA(b *testing.B) {
	benchFastBatch(b, query("api.example.com.", dns.TypeA), batchOnly)
}
func BenchmarkFastBatchWeightedANoted(b *testing.B) {
	benchFastBatch(b, query("api.example.com.", dns.TypeA), batchNoted)
}
func BenchmarkFastBatchWeightedAWatched(b *testing.B) {
	benchFastBatch(b, query("api.example.com.", dns.TypeA), batchWatched)
}
func BenchmarkFastBatchFailoverA(b *testing.B) {
	benchFastBatch(b, query("fo.example.com.", dns.TypeA), batchOnly)
}
func BenchmarkFastBatchFailoverANoted(b *testing.B) {
	benchFastBatch(b, query("fo.example.com.", dns.TypeA), batchNoted)
}

func BenchmarkFastWeightedA(b *testing.B) { benchFast(b, query("api.example.com.", dns.TypeA)) }
func BenchmarkFastWeightedAECS(b *testing.B) {
	benchFast(b, withEDNS(query("Api.Example.com.", dns.TypeA), 1232, "10.1.2.0/24"))
}
func BenchmarkFastFailoverA(b *testing.B) { benchFast(b, query("fo.example.com.", dns.TypeA)) }
func BenchmarkFastNXDOMAIN(b *testing.B)  { benchFast(b, query("nope.example.com.", dns.TypeA)) }

// BenchmarkUDPLoop is the whole UDP path through a loopback socket: batches
// of 32 weighted queries sent, then their answers read, by one client.
// ns/op and allocs/op are per query, client included.
func BenchmarkUDPLoop(b *testing.B) {
	srv := startServer(b, withWeights(b, configured(b, testConfig()), 50, 30, 20))
	conn, err := net.Dial("udp", srv.udp)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	pkt, _ := query("api.example.com.", dns.TypeA).Pack()
	buf := make([]byte, 1500)
	const batch = 32
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		n := min(batch, b.N-i)
		for range n {
			if _, err := conn.Write(pkt); err != nil {
				b.Fatal(err)
			}
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for range n {
			if _, err := conn.Read(buf); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkDrainWatch is starting one change's measurement with every
// recent-answer table full (the general path's and four readers', 4096
// pairs each, a third of them on the region): what a state update with a
// lowered weight adds, under updateMu, before the new answers go live.
func BenchmarkDrainWatch(b *testing.B) {
	s := New(Config{})
	st := withWeights(b, configured(b, testConfig()), 100, 100, 100)
	s.Update(st)
	s.udpRecs = []*answerTable{new(answerTable), new(answerTable), new(answerTable), new(answerTable)}
	now := time.Now()
	var sn seen
	pkt, err := query("api.example.com.", dns.TypeA).Pack()
	if err != nil {
		b.Fatal(err)
	}
	for t, rec := range s.answerTables() {
		for i := range recSlots {
			// A distinct /24 per pair and table.
			s.fast(pkt, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10 + byte(t), byte(i >> 8), byte(i), 0}), 53), nil, &sn)
			rec.mu.Lock()
			s.note(rec, &sn, now.UnixNano())
			rec.mu.Unlock()
		}
	}
	next := withWeights(b, st, 0, 100, 100)
	b.ReportAllocs()
	b.ResetTimer()
	var pop int
	for b.Loop() {
		ws := s.UpdateWatching(next, []DrainChange{{Region: "us-east", At: now.Add(time.Millisecond)}})
		pop = ws[0].n
		s.CloseDrain(ws[0], now, true)
	}
	b.ReportMetric(float64(pop), "population")
}

// BenchmarkNearest is the nearest policy over a 10,000-prefix topology on
// the UDP fast path, side by side with weighted: with ECS from clients
// spread over the table, from the source address, and with the client's
// home region at a partial weight (the subnet hash decides).
func BenchmarkNearest(b *testing.B) {
	c := nearestConfig()
	for k, v := range benchNets(10000) {
		c.Topology.Nets[k] = v
	}
	st := configured(b, c)
	// GeoIP alone: no nets, a database of 4,096 located /16s (countries DE,
	// FR, US, JP) over the clients' space; DE has a list, the others are
	// ordered by distance.
	gc := nearestConfig()
	gc.Regions[0].Location = &state.Location{Lat: 38.9, Lon: -77.0}
	gc.Regions[1].Location = &state.Location{Lat: 45.6, Lon: -121.2}
	gc.Regions[2].Location = &state.Location{Lat: 53.3, Lon: -6.3}
	gc.Topology = &state.Topology{Countries: map[string][]string{"DE": {"eu-west", "us-east", "us-west"}}}
	gst := configured(b, gc)
	db := benchGeoDB(b)
	for _, bc := range []struct {
		name string
		qn   string
		st   *state.State
		ecs  bool
		geo  bool
	}{
		{"weighted/ecs", "api.example.com.", st, true, false},
		{"nearest/ecs", "near.example.com.", st, true, false},
		{"nearest/source", "near.example.com.", st, false, false},
		{"nearest/ecs/partial", "near.example.com.", withWeights(b, st, 50, 50, 50), true, false},
		{"nearest/ecs/geoip", "near.example.com.", gst, true, true},
		// us-east evacuated, its plan letting us-west take half of its
		// clients (the rest to their third choice): counting and the
		// accept share on every answer.
		{"nearest/ecs/spill", "near.example.com.", withSpill(b, withWeights(b, st, 0, 100, 100), state.SpillPlan{
			Region: "us-east", Weight: 0, Flows: []state.SpillFlow{{To: "us-west", Share: 0.5, Accept: 0.5}}}), true, false},
	} {
		s := New(Config{})
		s.Update(bc.st)
		if bc.geo {
			s.SetLocator(db)
		}
		pkts := make([][]byte, 256)
		froms := make([]netip.AddrPort, 256)
		for i := range pkts {
			q := query(bc.qn, dns.TypeA)
			a := netip.AddrFrom4([4]byte{byte(1 + i%200), byte(i * 7), byte(i * 13), 0})
			if bc.ecs {
				q = withEDNS(q, 1232, netip.PrefixFrom(a, 24).String())
			}
			p, err := q.Pack()
			if err != nil {
				b.Fatal(err)
			}
			pkts[i], froms[i] = p, netip.AddrPortFrom(a, 5353)
		}
		out := make([]byte, 0, packBufSize)
		var sn seen
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := s.fast(pkts[i&255], froms[i&255], out, &sn); !ok {
					b.Fatal("not answered by the fast path")
				}
				i++
			}
		})
	}
}

// benchNets is n random IPv4 networks (/16 to /24) with the three
// regions in rotating orders.
func benchNets(n int) map[string][]string {
	lists := [][]string{{"us-east", "us-west", "eu-west"}, {"us-west", "us-east", "eu-west"}, {"eu-west", "us-east", "us-west"}}
	out := make(map[string][]string, n)
	x := uint32(2463534242)
	for len(out) < n {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		a := netip.AddrFrom4([4]byte{byte(1 + x%223), byte(x >> 8), byte(x >> 16), 0})
		p := netip.PrefixFrom(a, 16+int(x>>24)%9).Masked()
		out[p.String()] = lists[len(out)%3]
	}
	return out
}

// benchGeoDB builds a GeoIP database of 4,096 /16s under 1.0.0.0/4 ...
// 224.0.0.0/4, each with a country and a location.
func benchGeoDB(b *testing.B) *geoip.DB {
	b.Helper()
	countries := []struct {
		cc, cont string
		lat, lon float64
	}{{"DE", "EU", 50.1, 8.7}, {"FR", "EU", 48.9, 2.35}, {"US", "NA", 41.9, -87.6}, {"JP", "AS", 35.7, 139.7}}
	var nets []geoiptest.TestNetwork
	for i := range 4096 {
		c := countries[i%len(countries)]
		a := netip.AddrFrom4([4]byte{byte(1 + i%200), byte(i * 7), 0, 0})
		p := netip.PrefixFrom(a, 16).String()
		nets = append(nets, geoiptest.TestNetwork{CIDR: p, Country: c.cc, Continent: c.cont, Lat: c.lat, Lon: c.lon, HasLocation: true})
	}
	path := filepath.Join(b.TempDir(), "bench.mmdb")
	if err := geoiptest.WriteTestDB(path, 1, nets); err != nil {
		b.Fatal(err)
	}
	db, err := geoip.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	return db
}

// benchFastSigned is benchFast on a signed zone with DO set: the signed
// twin's bytes instead of the plain ones, still no allocation.
func benchFastSigned(b *testing.B, q *dns.Msg) {
	s := signedServer(b, testKeys(b, "", false), withWeights(b, configured(b, testConfig()), 50, 30, 20))
	if opt := q.IsEdns0(); opt != nil {
		opt.SetDo()
	} else {
		q.SetEdns0(1232, true)
	}
	pkt, err := q.Pack()
	if err != nil {
		b.Fatal(err)
	}
	from := netip.MustParseAddrPort("198.51.100.7:5353")
	out := make([]byte, 0, packBufSize)
	var sn seen
	r, ok := s.fast(pkt, from, out, &sn)
	if !ok || len(r) == 0 {
		b.Fatal("not answered by the fast path")
	}
	if m := new(dns.Msg); m.Unpack(r) != nil || !slices.ContainsFunc(append(m.Answer, m.Ns...), func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeRRSIG }) {
		b.Fatal("answer not signed")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.fast(pkt, from, out, &sn)
	}
}

func BenchmarkFastSignedWeightedA(b *testing.B) {
	benchFastSigned(b, query("api.example.com.", dns.TypeA))
}
func BenchmarkFastSignedWeightedAECS(b *testing.B) {
	benchFastSigned(b, withEDNS(query("Api.Example.com.", dns.TypeA), 1232, "10.1.2.0/24"))
}
func BenchmarkFastSignedNODATA(b *testing.B) {
	benchFastSigned(b, query("api.example.com.", dns.TypeMX))
}

// BenchmarkServeDNSSignedWeightedA is the general path (TCP, wildcard
// addresses) of a signed weighted answer with DO.
func BenchmarkServeDNSSignedWeightedA(b *testing.B) {
	s := signedServer(b, testKeys(b, "", false), withWeights(b, configured(b, testConfig()), 50, 30, 20))
	benchServeOn(b, s, doQuery("api.example.com.", dns.TypeA))
}

// BenchmarkSignedRebuild is what a state change costs a signed zone: the
// view rebuilt with a new serial (the SOA and every negative answer signed
// again, unchanged RRsets from the signature cache); cold is a new signing
// period, every RRset signed.
//
// The xfr variants have secondaries, so the signed zone transfer (the
// NSEC chain and the RRSIGs of its RRsets: xfrsign.go) is made too.
func BenchmarkSignedRebuild(b *testing.B) {
	for _, tc := range []struct {
		name      string
		cold, xfr bool
	}{{"warm", false, false}, {"cold", true, false}, {"warm-xfr", false, true}, {"cold-xfr", true, true}} {
		cold := tc.cold
		b.Run(tc.name, func(b *testing.B) {
			s := signedServer(b, testKeys(b, "", false), nil)
			c := testConfig()
			if tc.xfr {
				c.TransferAllow = []string{"127.0.0.0/8"}
			}
			st := withWeights(b, configured(b, c), 50, 30, 20)
			s.Update(st)
			states := []*state.State{withWeights(b, st, 60, 30, 10), withWeights(b, st, 50, 30, 20)}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				if cold {
					s.signer.resignAt = time.Time{}
				}
				next := *states[i%2]
				next.Serial += uint32(i) // a new serial every time
				s.Update(&next)
				i++
			}
		})
	}
}
