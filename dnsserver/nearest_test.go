package dnsserver

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/state"
)

// nearestConfig is testConfig with a nearest service "near" and the dev
// topology: 10.1/16 prefers us-east, 10.2/16 us-west, 10.3/16 eu-west,
// 2001:db8:30::/48 eu-west, and 10.64/10 (16,384 /24s) us-east; everything
// else the default.
func nearestConfig() *state.Config {
	c := testConfig()
	api := c.Services[0]
	c.Services = append(c.Services, state.Service{Name: "near", Policy: state.PolicyNearest, TTL: 20, Endpoints: api.Endpoints})
	c.Topology = &state.Topology{
		Nets: map[string][]string{
			"10.1.0.0/16":      {"us-east", "us-west", "eu-west"},
			"10.64.0.0/10":     {"us-east", "us-west", "eu-west"},
			"10.5.0.0/16":      {"eu-west"},
			"10.2.0.0/16":      {"us-west", "us-east", "eu-west"},
			"10.3.0.0/16":      {"eu-west", "us-east", "us-west"},
			"10.3.7.0/24":      {"us-west", "eu-west", "us-east"},
			"2001:db8:30::/48": {"eu-west", "us-east", "us-west"},
		},
		Default: []string{"us-west", "us-east", "eu-west"},
	}
	return c
}

// nearAnswer asks near A (or AAAA for a v6 subnet) with ECS subnet sub on
// both answer paths, checks they agree, and returns the one region and the
// ECS scope.
func nearAnswer(t testing.TB, s *Server, sub string) (string, uint8) {
	t.Helper()
	qt := dns.TypeA
	if netip.MustParsePrefix(sub).Addr().Is6() {
		qt = dns.TypeAAAA
	}
	q := withEDNS(query("near.example.com.", qt), 1232, sub)
	pkt, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	from := netip.MustParseAddrPort("192.0.2.99:5300")
	var sn seen
	out, ok := s.fast(pkt, from, nil, &sn)
	if !ok {
		t.Fatalf("%s: the fast path declined", sub)
	}
	if d := sameReply(out, s.general(pkt, from, nil)); d != "" {
		t.Fatalf("%s: fast and general paths differ: %s", sub, d)
	}
	r := new(dns.Msg)
	if err := r.Unpack(out); err != nil {
		t.Fatal(err)
	}
	regs := answerRegions(r)
	if len(regs) != 1 {
		t.Fatalf("%s: want one region, got %v", sub, r.Answer)
	}
	var scope uint8
	for _, o := range r.IsEdns0().Option {
		if e, ok := o.(*dns.EDNS0_SUBNET); ok {
			scope = e.SourceScope
		}
	}
	return regs[0], scope
}

func TestNearestFirstChoiceAndScope(t *testing.T) {
	s := New(Config{})
	s.Update(configured(t, nearestConfig()))
	tests := []struct {
		sub    string
		region string
		scope  uint8
	}{
		{"10.1.2.0/24", "us-east", 16},
		{"10.2.200.0/24", "us-west", 16},
		{"10.3.1.0/24", "eu-west", 22}, // 10.3.0.0/22 lies clear of the nested 10.3.7.0/24
		{"10.3.7.0/24", "us-west", 24}, // the longest prefix wins
		{"10.3.8.0/24", "eu-west", 21}, // 10.3.8.0/21
		{"10.3.0.0/20", "eu-west", 20}, // a shorter ECS: scope no longer than the key
		{"10.9.0.0/24", "us-west", 13}, // default: 10.8.0.0/13 holds no net
		{"192.0.2.0/24", "us-west", 1}, // 128.0.0.0/1 holds no net
		{"2001:db8:30:1::/56", "eu-west", 48},
		{"2001:db8:31::/56", "us-west", 48},
	}
	for _, tc := range tests {
		t.Run(tc.sub, func(t *testing.T) {
			reg, scope := nearAnswer(t, s, tc.sub)
			if reg != tc.region || scope != tc.scope {
				t.Fatalf("got %s scope /%d, want %s /%d", reg, scope, tc.region, tc.scope)
			}
		})
	}
}

// TestNearestEvacuationMovesOnlyItsClients: with us-east at 0, every
// 10.1 client goes to its second choice and nobody else moves; at partial
// weights us-east keeps that share of its own clients, the same ones as
// the weight falls, and the rest go to their next choice.
func TestNearestEvacuationMovesOnlyItsClients(t *testing.T) {
	base := configured(t, nearestConfig())
	const n = 3000
	subs := func(second int) []string {
		out := make([]string, n)
		for i := range out {
			if second == 64 {
				out[i] = fmt.Sprintf("10.%d.%d.0/24", 64+i/256, i%256)
			} else { // 256 /24s, each asked from several hosts
				out[i] = fmt.Sprintf("10.%d.%d.%d/32", second, i%256, i/256)
			}
		}
		return out
	}
	answers := func(st *state.State, subnets []string) []string {
		s := New(Config{})
		s.Update(st)
		out := make([]string, len(subnets))
		for i, sub := range subnets {
			out[i], _ = nearAnswer(t, s, sub)
		}
		return out
	}
	east, west, eu := subs(64), subs(2), subs(3)
	var kept []bool // per east client, whether it stayed at the previous step
	for _, w := range []int{100, 80, 50, 20, 0} {
		st := withWeights(t, base, w, 100, 100)
		ae, aw, au := answers(st, east), answers(st, west), answers(st, eu)
		for i := range n {
			if aw[i] != "us-west" {
				t.Fatalf("weight %d: a us-west client moved to %s", w, aw[i])
			}
			if au[i] != "eu-west" && au[i] != "us-west" { // 10.3.7.0/24 prefers us-west
				t.Fatalf("weight %d: an eu-west client moved to %s", w, au[i])
			}
		}
		stay := 0
		now := make([]bool, n)
		for i, r := range ae {
			switch r {
			case "us-east":
				stay++
				now[i] = true
				if kept != nil && !kept[i] {
					t.Fatalf("weight %d: client %s came back to us-east while the weight fell", w, east[i])
				}
			case "us-west":
			default:
				t.Fatalf("weight %d: client %s went to %s, not its next choice", w, east[i], r)
			}
		}
		kept = now
		share := float64(stay) / n
		if d := share - float64(w)/100; d > 0.03 || d < -0.03 {
			t.Errorf("weight %d: us-east kept %.3f of its clients", w, share)
		}
	}
	// us-west evacuated as well: us-east's and us-west's clients go on to
	// their next serving choice.
	st := withWeights(t, base, 0, 0, 100)
	for _, r := range answers(st, east[:200]) {
		if r != "eu-west" {
			t.Fatalf("us-east and us-west at 0: a 10.1 client got %s", r)
		}
	}
}

func TestNearestPartialWeightScopeIsTheKey(t *testing.T) {
	s := New(Config{})
	s.Update(withWeights(t, configured(t, nearestConfig()), 50, 100, 100))
	if _, scope := nearAnswer(t, s, "10.1.2.0/24"); scope != 24 {
		t.Fatalf("a hashed answer is scoped /%d, want /24", scope)
	}
	// Not hashed: us-west's clients never reach us-east.
	if _, scope := nearAnswer(t, s, "10.2.2.0/24"); scope != 16 {
		t.Fatalf("us-west's clients scoped /%d, want /16", scope)
	}
}

func TestNearestUnhealthyIsWeightZero(t *testing.T) {
	st := configured(t, nearestConfig())
	st = apply(t, st, state.CmdSetHealth, state.SetHealth{Region: "us-east", Service: "near", Healthy: false})
	s := New(Config{})
	s.Update(st)
	if r, _ := nearAnswer(t, s, "10.1.2.0/24"); r != "us-west" {
		t.Fatalf("us-east unhealthy: 10.1 client got %s, want us-west", r)
	}
	if r, _ := nearAnswer(t, s, "10.3.2.0/24"); r != "eu-west" {
		t.Fatalf("us-east unhealthy: 10.3 client got %s, want eu-west", r)
	}
}

// TestNearestStableAcrossServers: two servers with the same state give
// every subnet the same answer.
func TestNearestStableAcrossServers(t *testing.T) {
	st := withWeights(t, configured(t, nearestConfig()), 50, 30, 100)
	a, b := New(Config{}), New(Config{})
	a.Update(st)
	b.Update(st)
	for i := range 500 {
		sub := fmt.Sprintf("10.%d.%d.0/24", 1+i%3, i%256)
		ra, _ := nearAnswer(t, a, sub)
		rb, _ := nearAnswer(t, b, sub)
		if ra != rb {
			t.Fatalf("%s: %s vs %s", sub, ra, rb)
		}
	}
}

// TestNearestNoAllocation: the nearest answer on the UDP fast path
// allocates nothing, and on the general path no more than weighted.
func TestNearestNoAllocation(t *testing.T) {
	s := New(Config{})
	s.Update(withWeights(t, configured(t, nearestConfig()), 50, 100, 100))
	for _, sub := range []string{"10.1.2.0/24", "2001:db8:30::/56", ""} {
		q := query("near.example.com.", dns.TypeA)
		if sub != "" {
			q = withEDNS(q, 1232, sub)
		}
		pkt, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		from := netip.MustParseAddrPort("10.1.9.9:5300")
		out := make([]byte, 0, packBufSize)
		var sn seen
		if n := testing.AllocsPerRun(500, func() { s.fast(pkt, from, out, &sn) }); n != 0 {
			t.Errorf("fast path %q: %v allocations", sub, n)
		}
		// The general path (TCP, odd queries) allocates in miekg/dns's
		// unpacking and OPT handling; nearest adds nothing to weighted's.
		w := &discard{remote: &net.UDPAddr{IP: net.IPv4(10, 1, 9, 9), Port: 5353}}
		qw := q.Copy()
		qw.Question[0].Name = "api.example.com."
		s.ServeDNS(w, q)
		near := testing.AllocsPerRun(500, func() { s.ServeDNS(w, q) })
		weighted := testing.AllocsPerRun(500, func() { s.ServeDNS(w, qw) })
		if near > weighted {
			t.Errorf("general path %q: nearest %v allocations, weighted %v", sub, near, weighted)
		}
	}
}

// TestNearestTopologyKeptAcrossWeights: a weight change reuses the compiled
// topology; a new config builds a new one.
func TestNearestTopologyKeptAcrossWeights(t *testing.T) {
	s := New(Config{})
	st := configured(t, nearestConfig())
	s.Update(st)
	t1 := s.view.Load().topo
	s.Update(withWeights(t, st, 50))
	if s.view.Load().topo != t1 || t1 == nil {
		t.Fatal("a weight change rebuilt the topology")
	}
	s.Update(apply(t, st, state.CmdApplyConfig, normalized(t, nearestConfig())))
	if s.view.Load().topo == t1 {
		t.Fatal("a new config kept the old topology")
	}
	if !slices.Equal(s.view.Load().topo.Regions(), regionNames) {
		t.Fatal("regions")
	}
}

// TestExplainMatchesAnswers: Explain gives every client the region and the
// scope the DNS answer gives it, and says why.
func TestExplainMatchesAnswers(t *testing.T) {
	st := withWeights(t, configured(t, nearestConfig()), 50, 100, 100)
	s := New(Config{})
	s.Update(st)
	for i := range 300 {
		sub := fmt.Sprintf("10.%d.%d.0/24", []int{1, 2, 3, 9}[i%4], i%256)
		reg, scope := nearAnswer(t, s, sub)
		e, err := s.Explain(st, "near", sub)
		if err != nil {
			t.Fatal(err)
		}
		if e.AnswerRegion != reg || uint8(e.Scope) != scope {
			t.Fatalf("%s: explain says %s /%d, DNS %s /%d", sub, e.AnswerRegion, e.Scope, reg, scope)
		}
		if e.KeptShare != (reg == e.Preference[0]) {
			t.Fatalf("%s: kept_share %v but answer %s, preference %v", sub, e.KeptShare, reg, e.Preference)
		}
	}
	e, err := s.Explain(st, "NEAR.example.com.", "10.3.7.9")
	if err != nil {
		t.Fatal(err)
	}
	want := Explanation{Name: "near.example.com.", Policy: "nearest", Client: "10.3.7.0/24", Rule: "net",
		Preference: []string{"us-west", "eu-west", "us-east"}, KeptShare: true, AnswerRegion: "us-west",
		Answer: []string{"198.51.100.11", "198.51.100.12", "2001:db8:2::11"}, Serial: e.Serial,
		Regions: []ExplainRegion{{"us-east", 50, "healthy", 50}, {"us-west", 100, "healthy", 100}, {"eu-west", 100, "healthy", 100}}}
	if fmt.Sprint(e) != fmt.Sprint(want) {
		t.Fatalf("explain:\n got %+v\nwant %+v", e, want)
	}
	e, err = s.Explain(st, "near", "192.0.2.1")
	if err != nil || e.Rule != "default" {
		t.Fatalf("default rule: %+v %v", e, err)
	}
	for _, bad := range []struct{ name, client string }{{"nope", "10.1.1.1"}, {"near", "10.1.1"}, {"near", "0.0.0.0/0"}} {
		if _, err := s.Explain(st, bad.name, bad.client); err == nil {
			t.Errorf("explain %q %q: no error", bad.name, bad.client)
		}
	}
}

// TestNearestNeverEmpty: a client whose every listed region is out gets
// the first serving region in config order, and partial weights that all
// pass a client on leave it with the first serving region of its list.
func TestNearestNeverEmpty(t *testing.T) {
	base := configured(t, nearestConfig())
	s := New(Config{})
	s.Update(withWeights(t, base, 100, 100, 0))
	if r, _ := nearAnswer(t, s, "10.5.1.0/24"); r != "us-east" {
		t.Fatalf("list [eu-west] with eu-west at 0: %s, want us-east (first serving)", r)
	}
	s = New(Config{}) // (the same serial as the state above: a new server)
	s.Update(withWeights(t, base, 1, 1, 1))
	for i := range 256 {
		sub := fmt.Sprintf("10.64.%d.0/24", i)
		r, scope := nearAnswer(t, s, sub)
		if r == "" || scope != 24 {
			t.Fatalf("%s: %q scope /%d", sub, r, scope)
		}
	}
}
