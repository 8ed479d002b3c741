package topology

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/evac-sh/evac/controlplane/state"
)

func cfg(nets map[string][]string, def []string) *state.Config {
	c := &state.Config{Topology: &state.Topology{Nets: nets, Default: def}}
	for _, r := range []string{"us-east", "us-west", "eu-west"} {
		c.Regions = append(c.Regions, state.Region{Name: r})
	}
	return c
}

func TestLookupLongestPrefix(t *testing.T) {
	tb, err := Build(cfg(map[string][]string{
		"10.0.0.0/8":       {"us-west"},
		"10.1.0.0/16":      {"us-east", "us-west"},
		"10.1.2.0/24":      {"eu-west"},
		"10.1.255.0/24":    {"eu-west", "us-east"},
		"0.0.0.0/0":        {"us-west", "us-east"},
		"2001:db8::/32":    {"us-east"},
		"2001:db8:20::/48": {"eu-west", "us-east", "us-west"},
		"255.255.255.0/24": {"eu-west"},
	}, []string{"us-east", "us-west", "eu-west"}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr  string
		rule  Rule
		list  []string
		scope int
	}{
		{"10.1.2.3", RuleNet, []string{"eu-west"}, 24},
		{"10.1.3.0", RuleNet, []string{"us-east", "us-west"}, 24},   // 10.1.3.0/24 lies between the nested /24s
		{"10.1.128.0", RuleNet, []string{"us-east", "us-west"}, 17}, // 10.1.128.0/17 holds only 10.1.255.0/24 ... not whole
		{"10.2.0.0", RuleNet, []string{"us-west"}, 15},
		{"10.1.255.9", RuleNet, []string{"eu-west", "us-east"}, 24},
		{"192.0.2.1", RuleNet, []string{"us-west", "us-east"}, 3}, // 192.0.0.0/3: /2 would hold 255.255.255.0/24
		{"255.255.255.255", RuleNet, []string{"eu-west"}, 24},
		{"2001:db8:20::1", RuleNet, []string{"eu-west", "us-east", "us-west"}, 48},
		{"2001:db8:21::1", RuleNet, []string{"us-east"}, 48},
		{"2001:db8:8000::", RuleNet, []string{"us-east"}, 33},
		{"2001:db9::1", RuleDefault, []string{"us-east", "us-west", "eu-west"}, 32},
	}
	buf := make([]uint8, 3)
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			m := tb.Lookup(netip.MustParseAddr(tc.addr), nil, buf)
			if m.Rule != tc.rule || !slices.Equal(tb.ListNames(m.List), tc.list) {
				t.Fatalf("got %v %v, want %v %v", m.Rule, tb.ListNames(m.List), tc.rule, tc.list)
			}
			if tc.addr != "10.1.128.0" && m.Scope != tc.scope {
				t.Errorf("scope %d, want %d", m.Scope, tc.scope)
			}
		})
	}
}

// TestLookupMatchesNaive checks random tables against a linear
// longest-prefix search, and that every scope is honest: all addresses
// sharing Scope bits get the same list.
func TestLookupMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lists := [][]string{{"us-east"}, {"us-west", "us-east"}, {"eu-west", "us-west", "us-east"}}
	for round := range 20 {
		nets := map[string][]string{}
		var ps []netip.Prefix
		for range 200 {
			var p netip.Prefix
			if rng.IntN(2) == 0 {
				a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(256)), 0})
				p = netip.PrefixFrom(a, 8+rng.IntN(25)).Masked()
			} else {
				a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(rng.IntN(4)), byte(rng.IntN(256))})
				p = netip.PrefixFrom(a, 16+rng.IntN(113)).Masked()
			}
			if _, dup := nets[p.String()]; dup {
				continue
			}
			nets[p.String()] = lists[rng.IntN(len(lists))]
			ps = append(ps, p)
		}
		tb, err := Build(cfg(nets, nil))
		if err != nil {
			t.Fatal(err)
		}
		naive := func(a netip.Addr) []string {
			best := -1
			var out []string
			for _, p := range ps {
				if p.Contains(a) && p.Bits() > best {
					best, out = p.Bits(), nets[p.String()]
				}
			}
			if out == nil {
				return []string{"us-east", "us-west", "eu-west"}
			}
			return out
		}
		for range 2000 {
			var a netip.Addr
			if rng.IntN(2) == 0 {
				a = netip.AddrFrom4([4]byte{10, byte(rng.IntN(5)), byte(rng.IntN(256)), byte(rng.IntN(256))})
			} else {
				var b [16]byte
				b[0], b[1], b[2], b[3], b[4], b[5], b[6] = 0x20, 0x01, 0x0d, 0xb8, byte(rng.IntN(5)), byte(rng.IntN(256)), byte(rng.IntN(256))
				a = netip.AddrFrom16(b)
			}
			m := tb.Lookup(a, nil, nil)
			want := naive(a)
			if got := tb.ListNames(m.List); !slices.Equal(got, want) {
				t.Fatalf("round %d %s: got %v want %v", round, a, got, want)
			}
			// The block of Scope bits: its first and last address match the same.
			blk := netip.PrefixFrom(a, m.Scope).Masked()
			first := blk.Addr()
			last := lastAddr(blk)
			for _, b := range []netip.Addr{first, last} {
				if got := tb.ListNames(tb.Lookup(b, nil, nil).List); !slices.Equal(got, want) || !slices.Equal(naive(b), want) {
					t.Fatalf("round %d %s: scope /%d too short: %s gets %v", round, a, m.Scope, b, naive(b))
				}
			}
			if m.Scope > 0 {
				// And one bit less is not honest (the scope is the shortest).
				wider := netip.PrefixFrom(a, m.Scope-1).Masked()
				if slices.Equal(naive(wider.Addr()), want) && slices.Equal(naive(lastAddr(wider)), want) && allSame(ps, wider, nets, want) {
					t.Fatalf("round %d %s: scope /%d could be /%d", round, a, m.Scope, m.Scope-1)
				}
			}
		}
	}
}

// allSame reports whether no prefix with another list than want (nor a gap,
// approximated by prefixes' boundaries) lies inside blk: a coarse check
// that blk is uniform, used only to flag a scope that is too long.
func allSame(ps []netip.Prefix, blk netip.Prefix, nets map[string][]string, want []string) bool {
	for _, p := range ps {
		if p.Bits() > blk.Bits() && blk.Contains(p.Addr()) && !slices.Equal(nets[p.String()], want) {
			return false
		}
		if p.Bits() > blk.Bits() && blk.Contains(p.Addr()) {
			return false // a nested prefix: ranges split there
		}
	}
	return true
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestDistanceOrder(t *testing.T) {
	c := cfg(nil, nil)
	c.Regions[0].Location = &state.Location{Lat: 38.9, Lon: -77.0}  // us-east
	c.Regions[1].Location = &state.Location{Lat: 45.6, Lon: -121.2} // us-west
	c.Regions[2].Location = &state.Location{Lat: 53.3, Lon: -6.3}   // eu-west
	tb, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		lat, lon float64
		want     []string
	}{
		{"frankfurt", 50.1, 8.7, []string{"eu-west", "us-east", "us-west"}},
		{"chicago", 41.9, -87.6, []string{"us-east", "us-west", "eu-west"}},
		{"tokyo", 35.7, 139.7, []string{"us-west", "eu-west", "us-east"}}, // Dublin is nearer than Washington
	} {
		buf := make([]uint8, 3)
		if got := tb.ListNames(tb.byDistance(tc.lat, tc.lon, buf)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// bigTable builds n random /16../24 IPv4 and /32../48 IPv6 networks.
func bigTable(n int) map[string][]string {
	rng := rand.New(rand.NewPCG(3, 4))
	lists := [][]string{{"us-east", "us-west", "eu-west"}, {"us-west", "us-east", "eu-west"}, {"eu-west", "us-east", "us-west"}}
	nets := make(map[string][]string, n)
	for len(nets) < n {
		var p netip.Prefix
		if rng.IntN(4) > 0 {
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(rng.IntN(224)), byte(rng.IntN(256)), byte(rng.IntN(256)), 0}), 16+rng.IntN(9)).Masked()
		} else {
			p = netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))}), 32+rng.IntN(17)).Masked()
		}
		nets[p.String()] = lists[rng.IntN(3)]
	}
	return nets
}

func TestLookupDoesNotAllocate(t *testing.T) {
	tb, err := Build(cfg(bigTable(1000), nil))
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("10.1.2.0")
	buf := make([]uint8, 3)
	if n := testing.AllocsPerRun(1000, func() { _ = tb.Lookup(a, nil, buf) }); n != 0 {
		t.Fatalf("Lookup allocates %v times", n)
	}
}

func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{10000, 50000} {
		c := cfg(bigTable(n), nil)
		b.Run(fmt.Sprintf("prefixes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Build(c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10000, 50000} {
		tb, err := Build(cfg(bigTable(n), nil))
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(5, 6))
		addrs := make([]netip.Addr, 4096)
		for i := range addrs {
			addrs[i] = netip.AddrFrom4([4]byte{byte(rng.IntN(224)), byte(rng.IntN(256)), byte(rng.IntN(256)), 0})
		}
		buf := make([]uint8, 3)
		b.Run(fmt.Sprintf("prefixes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_ = tb.Lookup(addrs[i&4095], nil, buf)
				i++
			}
		})
	}
}
