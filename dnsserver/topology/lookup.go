package topology

import (
	"math"
	"net/netip"
)

// Place is what a GeoIP database says about an address.
type Place struct {
	Country, Continent [2]byte // ISO codes; zero when unknown
	Lat, Lon           float64 // degrees, when HasLocation
	HasLocation        bool
	// Bits is the prefix length of the database network holding the
	// address (the answer's scope when a GeoIP rule matches).
	Bits int
}

// Locator answers GeoIP questions (package geoip). Locate must not
// allocate: it is on the DNS answer path. It sets Place.Bits whether or not
// the address is found (then, the length of the network without data).
type Locator interface {
	Locate(addr netip.Addr) (Place, bool)
}

// Match is a client's preference order.
type Match struct {
	// List is the preference list as indexes into Regions(); for the
	// distance rule it is the caller's buffer.
	List []uint8
	Rule Rule
	// Scope is the prefix length of the client address the match holds
	// for: every address sharing that many leading bits matches the same.
	Scope int
}

// Lookup finds the preference order of the client address a (unmapped;
// IPv4 or IPv6) by the rules in order: nets (longest prefix), then, with a
// locator, country, continent and distance from the regions' locations,
// then default. buf holds the list the distance rule builds; it needs
// len(Regions()) bytes (the distance rule is skipped when it is shorter).
// Lookup does not allocate.
func (t *Table) Lookup(a netip.Addr, geo Locator, buf []uint8) Match {
	x := fromAddr(a)
	width := 128
	r := &t.v6
	if a.Is4() {
		width, r = 32, &t.v4
	}
	li, lo, hi := r.find(x)
	sc := min(scope(x, lo, hi), width)
	if li >= 0 {
		return Match{List: t.lists[li], Rule: RuleNet, Scope: sc}
	}
	if geo != nil {
		p, ok := geo.Locate(a)
		// The GeoIP network (or the gap it is in) and the gap between nets
		// both bound the scope.
		sc = max(sc, min(p.Bits, width))
		if ok {
			if l, ok := t.countries[p.Country]; ok && p.Country != [2]byte{} {
				return Match{List: t.lists[l], Rule: RuleCountry, Scope: sc}
			}
			if l, ok := t.continents[p.Continent]; ok && p.Continent != [2]byte{} {
				return Match{List: t.lists[l], Rule: RuleContinent, Scope: sc}
			}
			if p.HasLocation {
				if l := t.byDistance(p.Lat, p.Lon, buf); l != nil {
					return Match{List: l, Rule: RuleDistance, Scope: sc}
				}
			}
		}
	}
	return Match{List: t.lists[t.def], Rule: RuleDefault, Scope: sc}
}

// byDistance orders the regions with locations by great-circle distance
// from (lat, lon) into buf, then those without one in config order; nil when no region has a location or buf is
// too short. Insertion sort: a handful of regions.
func (t *Table) byDistance(lat, lon float64, buf []uint8) []uint8 {
	if len(buf) < len(t.regions) {
		return nil
	}
	var dist [MaxRegions]float64
	la, lo := radians(lat), radians(lon)
	n := 0
	for i, l := range t.locs {
		if !l.ok {
			continue
		}
		d := haversine(la, lo, l.lat, l.lon)
		j := n
		for j > 0 && dist[j-1] > d {
			dist[j], buf[j] = dist[j-1], buf[j-1]
			j--
		}
		dist[j], buf[j] = d, uint8(i)
		n++
	}
	if n == 0 {
		return nil
	}
	for i, l := range t.locs { // regions without a location, last
		if !l.ok {
			buf[n] = uint8(i)
			n++
		}
	}
	return buf[:n]
}

func radians(deg float64) float64 { return deg * math.Pi / 180 }

// haversine is the central angle between two points (radians in, radians
// out): the great-circle distance on a unit sphere.
func haversine(lat1, lon1, lat2, lon2 float64) float64 {
	s1 := math.Sin((lat2 - lat1) / 2)
	s2 := math.Sin((lon2 - lon1) / 2)
	h := s1*s1 + math.Cos(lat1)*math.Cos(lat2)*s2*s2
	return 2 * math.Asin(math.Sqrt(min(h, 1)))
}

// ListNames returns the names of a preference list (for explanations).
func (t *Table) ListNames(l []uint8) []string {
	out := make([]string, len(l))
	for i, r := range l {
		out[i] = t.regions[r]
	}
	return out
}
