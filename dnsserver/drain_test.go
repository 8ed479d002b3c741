package dnsserver

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/state"
)

// drainRig answers queries through the fast path at chosen times and
// records them as serveUDP does, in one reader's table.
type drainRig struct {
	t   *testing.T
	s   *Server
	rec *answerTable
	st  *state.State
}

// t0 of the drain tests: the change happens here.
var drainT0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newDrainRig(t *testing.T, cfg Config, weights ...int) *drainRig {
	s := New(cfg)
	st := withWeights(t, configured(t, testConfig()), weights...)
	s.Update(st)
	rec := new(answerTable)
	s.udpRecs = []*answerTable{rec}
	s.recordingSince.Store(drainT0.Add(-time.Hour).UnixNano())
	return &drainRig{t: t, s: s, rec: rec, st: st}
}

// subnetN is the ECS subnet of client i: 10.(i/256).(i%256).0/24.
func subnetN(i int) string { return fmt.Sprintf("10.%d.%d.0", i/256, i%256) }

// ask sends name's A query from client i's subnet (ECS) at time at and
// returns the region answered.
func (r *drainRig) ask(name string, i int, at time.Time) string {
	r.t.Helper()
	pkt, err := withEDNS(query(name, dns.TypeA), 1232, subnetN(i)+"/24").Pack()
	if err != nil {
		r.t.Fatal(err)
	}
	var sn seen
	out, ok := r.s.fast(pkt, netip.MustParseAddrPort("192.0.2.200:5353"), nil, &sn)
	if !ok || out == nil {
		r.t.Fatal("not answered by the fast path")
	}
	r.rec.mu.Lock()
	if sn.svc != 0 {
		r.s.note(r.rec, &sn, at.UnixNano())
	}
	r.rec.mu.Unlock()
	m := new(dns.Msg)
	if err := m.Unpack(out); err != nil {
		r.t.Fatal(err)
	}
	regs := answerRegions(m)
	if len(regs) == 0 {
		return ""
	}
	return regs[0]
}

// change applies new weights and starts measuring region's drain.
func (r *drainRig) change(region string, weights ...int) *DrainWatch {
	r.t.Helper()
	r.st = withWeights(r.t, r.st, weights...)
	ws := r.s.UpdateWatching(r.st, []DrainChange{{Region: region, At: drainT0}})
	if len(ws) != 1 {
		r.t.Fatalf("%d watches", len(ws))
	}
	return ws[0]
}

func ms64(p *int64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%d", *p)
}

func TestDrainTracker(t *testing.T) {
	const n = 400
	ms := time.Millisecond
	cases := []struct {
		name string
		cfg  Config
		run  func(r *drainRig) (*DrainWatch, map[int]bool) // the watch, and the clients expected in its population
		// want: population, drained, past TTL, the percentiles (ms, "-"
		// when not reached), capped
		pop, drained, past int
		p50, p90, p99      string
		capped, superseded bool
	}{
		{
			name: "shift to 0: every client told us-east before drains when it asks again; the silent ones are past the TTL",
			run: func(r *drainRig) (*DrainWatch, map[int]bool) {
				east := map[int]bool{}
				for i := range n {
					if r.ask("api.example.com.", i, drainT0.Add(-5*time.Second)) == "us-east" {
						east[i] = true
					}
				}
				w := r.change("us-east", 0, 30, 20)
				k := 0
				for i := range n {
					if !east[i] {
						continue
					}
					k++
					if k%10 == 0 {
						continue // 10% never ask again
					}
					if got := r.ask("api.example.com.", i, drainT0.Add(time.Duration(k)*ms)); got == "us-east" || got == "" {
						r.t.Fatalf("client %d told %q after the shift", i, got)
					}
				}
				return w, east
			},
			pop: -1, drained: -1, past: -1,
		},
		{
			name: "percentiles are nearest rank over the population",
			run: func(r *drainRig) (*DrainWatch, map[int]bool) {
				east := map[int]bool{}
				for i := 0; len(east) < 100; i++ {
					if r.ask("api.example.com.", i, drainT0.Add(-time.Second)) == "us-east" {
						east[i] = true
					}
				}
				w := r.change("us-east", 0, 30, 20)
				k := 0
				for i := 0; k < 100; i++ {
					if east[i] {
						k++
						r.ask("api.example.com.", i, drainT0.Add(time.Duration(k)*ms))
					}
				}
				return w, east
			},
			pop: 100, drained: 100, p50: "50", p90: "90", p99: "99",
		},
		{
			name: "a reduction measures only the clients it moves",
			run: func(r *drainRig) (*DrainWatch, map[int]bool) {
				before := map[int]string{}
				for i := range n {
					before[i] = r.ask("api.example.com.", i, drainT0.Add(-time.Second))
				}
				w := r.change("us-east", 40, 100, 100)
				moved := map[int]bool{}
				for i := range n {
					if after := r.ask("api.example.com.", i, drainT0.Add(time.Second)); before[i] == "us-east" && after != "us-east" {
						moved[i] = true
					}
				}
				if len(moved) == 0 {
					r.t.Fatal("nothing moved")
				}
				return w, moved
			},
			pop: -1, drained: -1, p50: "1000", p90: "1000", p99: "1000",
		},
		{
			name: "answers older than the TTL, or last naming another region, are not in the population",
			run: func(r *drainRig) (*DrainWatch, map[int]bool) {
				east := map[int]bool{}
				for i := range n {
					// api's TTL is 20 s: 25 s before the change is out of the window.
					if r.ask("api.example.com.", i, drainT0.Add(-25*time.Second)) == "us-east" && i%2 == 0 {
						east[i] = true
						r.ask("api.example.com.", i, drainT0.Add(-19*time.Second))
					}
				}
				w := r.change("us-east", 0, 30, 20)
				return w, east
			},
			pop: -1, drained: 0, past: -1, p50: "-", p90: "-", p99: "-",
		},
		{
			name: "a failover shift drains every client of the first region",
			run: func(r *drainRig) (*DrainWatch, map[int]bool) {
				all := map[int]bool{}
				for i := range 50 {
					if r.ask("fo.example.com.", i, drainT0.Add(-time.Second)) != "us-east" {
						r.t.Fatal("failover answered another region")
					}
					all[i] = true
				}
				w := r.change("us-east", 0, 30, 20)
				for i := range 50 {
					if got := r.ask("fo.example.com.", i, drainT0.Add(2*time.Second)); got != "us-west" {
						r.t.Fatalf("failover after the shift: %q", got)
					}
				}
				return w, all
			},
			pop: 50, drained: 50, p50: "2000", p90: "2000", p99: "2000",
		},
		{
			name: "a client still told the region after the change is past the TTL and said to have asked",
			run: func(r *drainRig) (*DrainWatch, map[int]bool) {
				r.ask("fo.example.com.", 7, drainT0.Add(-time.Second))
				w := r.change("us-east", 0, 30, 20)
				// As from a controller that had not applied the change yet.
				k := makeKey(netip.MustParseAddr(subnetN(7)), 24)
				for range 3 {
					r.s.note(r.rec, &seen{svc: 2, mask: 1, keyed: true, key: k}, drainT0.Add(time.Second).UnixNano())
				}
				return w, map[int]bool{7: true}
			},
			pop: 1, drained: 0, past: 1, p50: "-", p90: "-", p99: "-",
		},
		{
			name: "superseded: nothing is counted past the TTL",
			run: func(r *drainRig) (*DrainWatch, map[int]bool) {
				r.ask("fo.example.com.", 1, drainT0.Add(-time.Second))
				r.ask("fo.example.com.", 2, drainT0.Add(-time.Second))
				w := r.change("us-east", 0, 30, 20)
				r.ask("fo.example.com.", 1, drainT0.Add(300*ms))
				return w, map[int]bool{1: true, 2: true}
			},
			superseded: true, pop: 2, drained: 1, past: 0, p50: "300", p90: "-", p99: "-",
		},
		{
			name: "the population is capped",
			cfg:  Config{DrainMaxPopulation: 10},
			run: func(r *drainRig) (*DrainWatch, map[int]bool) {
				for i := range 50 {
					r.ask("fo.example.com.", i, drainT0.Add(-time.Second))
				}
				return r.change("us-east", 0, 30, 20), nil
			},
			pop: 10, drained: 0, past: 10, p50: "-", p90: "-", p99: "-", capped: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newDrainRig(t, tc.cfg, 100, 100, 100)
			w, want := tc.run(r)
			// The longest TTL of us-east's services (fo, all: the zone's 30 s).
			if w.Deadline() != drainT0.Add(30*time.Second+DefaultDrainSlack) {
				t.Errorf("deadline %s", w.Deadline())
			}
			f := r.s.CloseDrain(w, w.Deadline(), tc.superseded)
			if r.s.watches.Load() != nil {
				t.Error("the closed watch is still live")
			}
			pop, drained, past := tc.pop, tc.drained, tc.past
			if pop < 0 {
				pop = len(want)
			}
			undrained := 0
			for i := range want {
				k := makeKey(netip.MustParseAddr(subnetN(i)), 24)
				e := w.find(&k, 1, pairHash(&k, 1))
				if e == nil {
					e = w.find(&k, 2, pairHash(&k, 2))
				}
				if e == nil {
					t.Fatalf("client %d is not in the population", i)
				}
				if e.drained.Load() == 0 {
					undrained++
				}
			}
			if drained < 0 {
				drained = pop - undrained
			}
			if past < 0 {
				past = undrained
			}
			if f.Population != pop || f.Drained != drained || f.PastTTL != past || f.Capped != tc.capped ||
				f.Superseded != tc.superseded || !f.WindowComplete {
				t.Fatalf("figures %+v, want population %d, drained %d, past TTL %d, capped %v", f, pop, drained, past, tc.capped)
			}
			if tc.p50 != "" {
				if got := ms64(f.P50Ms) + "/" + ms64(f.P90Ms) + "/" + ms64(f.P99Ms); got != tc.p50+"/"+tc.p90+"/"+tc.p99 {
					t.Fatalf("percentiles %s, want %s/%s/%s", got, tc.p50, tc.p90, tc.p99)
				}
			}
			if len(f.PastTTLResolvers) != min(past, state.MaxPastTTLSample) {
				t.Fatalf("%d past-TTL resolvers listed for %d", len(f.PastTTLResolvers), past)
			}
			for _, lr := range f.PastTTLResolvers {
				p := netip.MustParsePrefix(lr.Subnet)
				if p.Bits() != 24 || lr.LastAnswered.IsZero() || lr.LastAnswered.After(drainT0.Add(2*time.Second)) {
					t.Fatalf("past-TTL resolver %+v", lr)
				}
			}
			rep := state.DrainReport{Node: "n", Region: "us-east", From: 100, To: 0, ChangeIndex: 1, ChangeAt: drainT0, DrainFigures: f}
			if err := rep.Validate(); err != nil {
				t.Fatalf("the figures do not validate: %v", err)
			}
		})
	}
}

// TestDrainGeneralPath: answers of the general path (TCP, ServeDNS) are
// recorded and drain a change too, and a window the server did not record
// in whole is reported as such.
func TestDrainGeneralPath(t *testing.T) {
	s := New(Config{})
	st := withWeights(t, configured(t, testConfig()), 100, 100, 100)
	s.Update(st)
	s.recordingSince.Store(time.Now().UnixNano()) // recording began just now
	w := &discard{remote: &net.TCPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 5353}}
	s.ServeDNS(w, query("fo.example.com.", dns.TypeA))
	ws := s.UpdateWatching(withWeights(t, st, 0, 100, 100), []DrainChange{{Region: "us-east", At: time.Now()}})
	s.ServeDNS(w, query("fo.example.com.", dns.TypeA))
	f := s.CloseDrain(ws[0], time.Now(), false)
	if f.Population != 1 || f.Drained != 1 || f.P50Ms == nil || f.WindowComplete {
		t.Fatalf("figures %+v", f)
	}
	if k := makeKey(netip.MustParseAddr("198.51.100.0"), 24); ws[0].find(&k, 2, pairHash(&k, 2)) == nil {
		t.Fatal("the source /24 is not the pair's subnet")
	}
}

// TestMakeKeyMasks: the hand-masked IPv4 key is the one netip's Prefix
// gives (the key is part of the weighted choice's contract).
func TestMakeKeyMasks(t *testing.T) {
	for _, s := range []string{"0.0.0.0", "255.255.255.255", "10.77.9.200", "192.0.2.129", "1.2.3.4"} {
		a := netip.MustParseAddr(s)
		for bits := 0; bits <= 32; bits++ {
			p, _ := a.Prefix(bits)
			want := p.Addr().As4()
			k := makeKey(a, bits)
			if k.n != 6 || k.b[0] != 4 || k.b[1] != byte(bits) || [4]byte(k.b[2:6]) != want {
				t.Fatalf("makeKey(%s, %d) = %v, want %v", s, bits, k.b[:k.n], want)
			}
		}
	}
}
