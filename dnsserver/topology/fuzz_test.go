package topology

import (
	"net/netip"
	"slices"
	"strconv"
	"testing"

	"github.com/evac-sh/evac/controlplane/state"
)

// FuzzLookup: for any set of IPv4 networks (5 bytes each: address, length)
// and client address (the first 4 bytes), Lookup finds the longest prefix
// a linear search finds, and every address sharing Scope bits with the
// client gets the same list.
func FuzzLookup(f *testing.F) {
	f.Add([]byte{10, 1, 2, 3, 10, 0, 0, 0, 8, 10, 1, 0, 0, 16, 10, 1, 2, 0, 24})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 32})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		client := netip.AddrFrom4([4]byte(data[:4]))
		names := []string{"a", "b", "c"}
		nets := map[string][]string{}
		var ps []netip.Prefix
		for i, rest := 0, data[4:]; len(rest) >= 5 && i < 64; i, rest = i+1, rest[5:] {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte(rest[:4])), int(rest[4])%33).Masked()
			if _, dup := nets[p.String()]; dup {
				continue
			}
			nets[p.String()] = []string{names[i%3], strconv.Itoa(len(ps))}
			ps = append(ps, p)
		}
		c := &state.Config{Topology: &state.Topology{Nets: nets}}
		for _, n := range names {
			c.Regions = append(c.Regions, state.Region{Name: n})
		}
		for i := range ps { // every list's second entry is a region too
			c.Regions = append(c.Regions, state.Region{Name: strconv.Itoa(i)})
		}
		tb, err := Build(c)
		if err != nil {
			t.Fatal(err)
		}
		naive := func(a netip.Addr) []string {
			best, out := -1, []string(nil)
			for _, p := range ps {
				if p.Contains(a) && p.Bits() > best {
					best, out = p.Bits(), nets[p.String()]
				}
			}
			if out == nil {
				return tb.ListNames(tb.lists[tb.def])
			}
			return out
		}
		m := tb.Lookup(client, nil, nil)
		want := naive(client)
		if got := tb.ListNames(m.List); !slices.Equal(got, want) {
			t.Fatalf("%s: %v, want %v", client, got, want)
		}
		blk := netip.PrefixFrom(client, m.Scope).Masked()
		for _, a := range []netip.Addr{blk.Addr(), lastAddr(blk)} {
			if got := naive(a); !slices.Equal(got, want) {
				t.Fatalf("%s scope /%d: %s gets %v, not %v", client, m.Scope, a, got, want)
			}
		}
	})
}
