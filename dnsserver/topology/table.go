// Package topology compiles a steering config's topology into the lookup
// the DNS answer path uses: a client address to its preference list of
// regions, the rule that matched and the prefix length the answer holds for
// (the ECS scope). The table is built once per config (not per weight
// change) and a lookup allocates nothing.
//
// Networks are flattened into sorted, non-overlapping ranges (a nested
// prefix splits its parent's range), so longest-prefix match is one binary
// search: O(log n), about 16 steps for 50,000 prefixes, with no pointers
// to chase.
package topology

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/evac-sh/evac/controlplane/state"
)

// Rule is which rule of the topology gave a client its preference list.
type Rule uint8

// Rules, in the order they are tried.
const (
	RuleNet Rule = iota + 1
	RuleCountry
	RuleContinent
	RuleDistance
	RuleDefault
)

var ruleNames = [...]string{"", "net", "country", "continent", "distance", "default"}

func (r Rule) String() string {
	if int(r) < len(ruleNames) {
		return ruleNames[r]
	}
	return fmt.Sprintf("rule(%d)", r)
}

// MaxRegions is the most regions a preference list may index (a region is
// a byte).
const MaxRegions = 255

// Table is a compiled topology. It is immutable once built.
type Table struct {
	regions []string  // config order; lists index it
	lists   [][]uint8 // distinct preference lists
	v4, v6  ranges
	def     int32 // index in lists of the default list
	// Country and continent lists by code, for GeoIP (geo.go).
	countries  map[[2]byte]int32
	continents map[[2]byte]int32
	locs       []location // per region; ok false without a location
	// Prefixes is the number of networks in the table.
	Prefixes int
}

type location struct {
	ok       bool
	lat, lon float64 // radians
}

// ranges are sorted, disjoint address ranges with their list. For IPv4,
// start32 holds the starts' 32 bits, which the binary search reads: a
// quarter of the memory of start, so most of a search stays in cache.
type ranges struct {
	start, end []u128
	list       []int32
	start32    []uint32 // IPv4 tables only
}

// Build compiles the topology of a normalised config (state.Normalize has
// validated it). A config without a topology gets one whose default list is
// the regions in config order.
func Build(c *state.Config) (*Table, error) {
	if len(c.Regions) > MaxRegions {
		return nil, fmt.Errorf("topology: at most %d regions, got %d", MaxRegions, len(c.Regions))
	}
	t := &Table{countries: map[[2]byte]int32{}, continents: map[[2]byte]int32{}}
	index := map[string]uint8{}
	for i, r := range c.Regions {
		t.regions = append(t.regions, r.Name)
		index[r.Name] = uint8(i)
		loc := location{}
		if r.Location != nil {
			loc = location{ok: true, lat: radians(r.Location.Lat), lon: radians(r.Location.Lon)}
		}
		t.locs = append(t.locs, loc)
	}
	seen := map[string]int32{}
	// intern returns the index of the list of names, adding it once.
	var key []byte
	intern := func(field string, names []string) (int32, error) {
		key = key[:0]
		for _, n := range names {
			i, ok := index[n]
			if !ok {
				return 0, fmt.Errorf("%s: unknown region %q", field, n)
			}
			key = append(key, i)
		}
		if i, ok := seen[string(key)]; ok {
			return i, nil
		}
		t.lists = append(t.lists, slices.Clone(key))
		seen[string(key)] = int32(len(t.lists) - 1)
		return seen[string(key)], nil
	}
	tp := c.Topology
	if tp == nil {
		tp = &state.Topology{}
	}
	def := tp.Default
	if len(def) == 0 {
		def = t.regions
	}
	var err error
	if t.def, err = intern("topology.default", def); err != nil {
		return nil, err
	}
	var p4, p6 []prefix
	for k, names := range tp.Nets {
		p, perr := netip.ParsePrefix(k)
		if perr != nil {
			return nil, fmt.Errorf("topology.nets[%q]: %w", k, perr)
		}
		li, err := intern("topology.nets", names)
		if err != nil {
			return nil, err
		}
		p = p.Masked()
		start := fromAddr(p.Addr())
		end := start.or(mask(p.Bits()).not())
		if p.Addr().Is4() {
			p4 = append(p4, prefix{start, end, p.Bits(), li})
		} else {
			p6 = append(p6, prefix{start, end, p.Bits(), li})
		}
	}
	t.Prefixes = len(p4) + len(p6)
	t.v4, t.v6 = flatten(p4), flatten(p6)
	t.v4.start32 = make([]uint32, len(t.v4.start))
	for i, s := range t.v4.start {
		t.v4.start32[i] = uint32(s.hi >> 32)
	}
	for code, names := range tp.Countries {
		li, err := intern("topology.countries."+code, names)
		if err != nil {
			return nil, err
		}
		t.countries[code2(code)] = li
	}
	for code, names := range tp.Continents {
		li, err := intern("topology.continents."+code, names)
		if err != nil {
			return nil, err
		}
		t.continents[code2(code)] = li
	}
	return t, nil
}

func code2(s string) [2]byte {
	var b [2]byte
	copy(b[:], s)
	return b
}

type prefix struct {
	start, end u128
	bits       int
	list       int32
}

// flatten turns possibly nested prefixes into disjoint ranges, each with
// the list of the longest prefix covering it.
func flatten(ps []prefix) ranges {
	slices.SortFunc(ps, func(a, b prefix) int {
		if a.start != b.start {
			if a.start.less(b.start) {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.bits, b.bits)
	})
	var out ranges
	emit := func(s, e u128, l int32) {
		out.start = append(out.start, s)
		out.end = append(out.end, e)
		out.list = append(out.list, l)
	}
	var stack []prefix
	var cursor u128 // the first address not yet emitted (valid while stack is non-empty)
	done := false   // cursor passed the end of the space
	pop := func() {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !done && !top.end.less(cursor) {
			emit(cursor, top.end, top.list)
			if top.end == u128Max {
				done = true
			} else {
				cursor = top.end.inc()
			}
		}
	}
	for _, p := range ps {
		for len(stack) > 0 && stack[len(stack)-1].end.less(p.start) {
			pop()
		}
		if len(stack) > 0 && cursor.less(p.start) {
			emit(cursor, p.start.dec(), stack[len(stack)-1].list)
		}
		cursor, done = p.start, false
		stack = append(stack, p)
	}
	for len(stack) > 0 {
		pop()
	}
	out.start, out.end, out.list = slices.Clip(out.start), slices.Clip(out.end), slices.Clip(out.list)
	return out
}

// find returns the range holding a, or the gap around it (list -1), as
// [lo, hi].
func (r *ranges) find(a u128) (list int32, lo, hi u128) {
	// The first range starting after a.
	i, j := 0, len(r.start)
	if r.start32 != nil {
		a32 := uint32(a.hi >> 32)
		for i < j {
			h := int(uint(i+j) >> 1)
			if a32 < r.start32[h] {
				j = h
			} else {
				i = h + 1
			}
		}
	} else {
		for i < j {
			h := int(uint(i+j) >> 1)
			if a.less(r.start[h]) {
				j = h
			} else {
				i = h + 1
			}
		}
	}
	// r.start[i-1] <= a < r.start[i].
	lo, hi = u128{}, u128Max
	if i < len(r.start) {
		hi = r.start[i].dec()
	}
	if i > 0 {
		if !r.end[i-1].less(a) {
			return r.list[i-1], r.start[i-1], r.end[i-1]
		}
		lo = r.end[i-1].inc()
	}
	return -1, lo, hi
}

// Regions is the table's region names in config order, which Match.List
// indexes.
func (t *Table) Regions() []string { return t.regions }
