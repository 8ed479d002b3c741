package dnsserver

import (
	"net/netip"
	"sync/atomic"

	"github.com/evac-sh/evac/dnsserver/topology"
)

// Policy nearest (SPEC.md "Proximity steering"): the client's subnet maps,
// through the topology, to its preference list of regions; the answer is
// the first region on it whose effective weight is above 0, where a region
// at weight w keeps w% of the clients that reach it (stable per subnet,
// the same hash as weighted) and the rest go on to each client's next
// choice. Lowering one region's weight therefore moves only clients that
// reach it, and only to their next choice.
//
// The DNS paths (handler.go, fast.go), drain tracking (due) and Explain
// all call nearest.pick: there is one implementation of the choice.

// nearest is a nearest service's candidates for one query type.
type nearest struct {
	topo  *topology.Table
	cands []nearCand // by region index in config order (topo.Regions())
	// fallback is the region answered when no region on a client's list
	// serves: the first serving region in config order.
	fallback int
	// accept is the spill plans' accept shares as [home*len(cands) + to]
	// (demand.go), nil when no plan limits any region.
	accept []float64
	// demand is the service's home-demand counters (demand.go), nil for
	// choices the DNS paths do not answer from.
	demand []atomic.Uint64
}

// nearCand is one region of a nearest service.
type nearCand struct {
	weight float64 // effective weight, 0..100; 0 when the region does not serve
	seed   uint64  // regionSeed(name)
	spill  uint64  // spillSeed(name)
	ans    *prepared
	mask   uint64
}

// nearPick is the outcome of nearest.pick.
type nearPick struct {
	match  topology.Match
	region int  // the answer's region index
	hashed bool // a partial weight decided (the answer is per key subnet)
	kept   bool // the client is in its home region's kept share
}

// pick chooses the region for the client subnet key (an address masked to
// key.bits(), hashed as weighted does). geo may be nil; buf holds a
// distance-ordered list and must have room for every region.
func (n *nearest) pick(key *subnetKey, geo topology.Locator, buf []uint8) nearPick {
	m := n.topo.Lookup(key.addr(), geo, buf)
	kb := key.bytes()
	out := nearPick{match: m, region: -1}
	first := -1
	for i, r := range m.List {
		c := &n.cands[r]
		if c.weight <= 0 {
			continue
		}
		if first < 0 {
			first = int(r)
		}
		if c.weight < 100 {
			out.hashed = true
			if unitHash(c.seed, kb)*100 >= c.weight {
				continue // past the share the region's weight keeps
			}
		}
		if i > 0 && n.accept != nil {
			// A client homed elsewhere: the home region's spill plan may
			// let this region take only a share of them (capacity).
			if a := n.accept[int(m.List[0])*len(n.cands)+int(r)]; a < 1 {
				out.hashed = true
				if unitHash(c.spill, kb) >= a {
					continue
				}
			}
		}
		out.region, out.kept = int(r), i == 0
		break
	}
	switch {
	case out.region >= 0:
	case first >= 0:
		// Every serving region on the list passed this client on: the
		// first of them takes it back rather than no answer.
		out.region = first
	default:
		out.region = n.fallback
	}
	return out
}

// scope is the ECS scope an answer from p holds for, for a key of kbits.
func (p *nearPick) scope(kbits int) uint8 {
	if p.hashed {
		return uint8(kbits)
	}
	return uint8(min(p.match.Scope, kbits))
}

// addr is the key's (masked) address.
func (k *subnetKey) addr() netip.Addr {
	if k.b[0] == 6 {
		return netip.AddrFrom16([16]byte(k.b[2:18]))
	}
	return netip.AddrFrom4([4]byte(k.b[2:6]))
}

// bits is the key's prefix length.
func (k *subnetKey) bits() int { return int(k.b[1]) }

// geoRef boxes a Locator for an atomic.Pointer.
type geoRef struct{ l topology.Locator }

// SetLocator installs the GeoIP database the nearest policy consults after
// the topology's nets (nil: none). Queries see it at once.
func (s *Server) SetLocator(l topology.Locator) {
	if l == nil {
		s.geo.Store(nil)
		return
	}
	s.geo.Store(&geoRef{l: l})
}

// locator returns the current GeoIP database, or nil.
func (s *Server) locator() topology.Locator {
	if g := s.geo.Load(); g != nil {
		return g.l
	}
	return nil
}

// steerNearest answers a nearest choice for key.
func (s *Server) steerNearest(n *nearest, key *subnetKey) (*prepared, uint64, uint8) {
	var buf [topology.MaxRegions]uint8
	p := n.pick(key, s.locator(), buf[:])
	if n.demand != nil && len(p.match.List) > 0 {
		// Home demand: the client's first and second choices.
		nr := len(n.cands)
		next := nr
		if len(p.match.List) > 1 {
			next = int(p.match.List[1])
		}
		n.demand[int(p.match.List[0])*(nr+1)+next].Add(1)
	}
	c := &n.cands[p.region]
	return c.ans, c.mask, p.scope(key.bits())
}
