package dnsserver

import (
	"encoding/binary"
	"math"
	"net"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/internal/fnvmix"
)

// The client subnet a weighted answer is stable for: the EDNS Client Subnet
// (RFC 7871) when the query carries one, else the source address, truncated
// to at most these prefixes.
const (
	maxPrefix4 = 24
	maxPrefix6 = 56
)

// subnetKey identifies a client subnet: family (4 or 6), prefix length, and
// the address masked to it (4 or 16 bytes). It is what the weighted choice
// hashes, so a /24 learnt from ECS and the same /24 seen as a source address
// pick the same region.
type subnetKey struct {
	b [2 + 16]byte
	n int
}

func (k *subnetKey) bytes() []byte { return k.b[:k.n] }

// makeKey masks a to bits and returns its key; a must be valid and unmapped.
func makeKey(a netip.Addr, bits int) subnetKey {
	var k subnetKey
	k.b[1] = byte(bits)
	if a.Is4() {
		// The common case, masked by hand (as a.Prefix would).
		ip := a.As4()
		v := binary.BigEndian.Uint32(ip[:])
		if bits < 32 {
			v &^= 1<<(32-bits) - 1
		}
		k.b[0] = 4
		binary.BigEndian.PutUint32(k.b[2:], v)
		k.n = 2 + 4
		return k
	}
	p, _ := a.Prefix(bits)
	m := p.Addr()
	k.b[0] = 6
	ip := m.As16()
	copy(k.b[2:], ip[:])
	k.n = 2 + 16
	return k
}

// sourceKey truncates the source address of the query to /24 or /56.
func sourceKey(addr netip.Addr) subnetKey {
	if !addr.IsValid() {
		return makeKey(netip.IPv4Unspecified(), 0)
	}
	addr = addr.Unmap()
	if addr.Is4() {
		return makeKey(addr, maxPrefix4)
	}
	return makeKey(addr, maxPrefix6)
}

// ecsKey returns the key for an ECS option and the scope prefix length to
// answer with; ok is false when the option carries no usable address
// (source prefix 0, RFC 7871 section 7.1.2: then the source address is used
// and the answer is scoped /0).
func ecsKey(e *dns.EDNS0_SUBNET) (k subnetKey, scope uint8, ok bool) {
	if e.SourceNetmask == 0 {
		return k, 0, false
	}
	switch e.Family {
	case 1:
		ip4 := e.Address.To4()
		if ip4 == nil {
			return k, 0, false
		}
		bits := min(int(e.SourceNetmask), maxPrefix4)
		return makeKey(netip.AddrFrom4([4]byte(ip4)), bits), uint8(bits), true
	case 2:
		if len(e.Address) != net.IPv6len {
			return k, 0, false
		}
		bits := min(int(e.SourceNetmask), maxPrefix6)
		return makeKey(netip.AddrFrom16([16]byte(e.Address)), bits), uint8(bits), true
	}
	return k, 0, false
}

// regionSeed is the FNV-1a state after the region name and a 0 separator;
// hashing a subnet key continues from it. The hash (internal/fnvmix) is
// part of evac's contract: every controller, of every version, must send a
// given subnet to the same region for the same weights. Changing it (or how
// subnetKey is laid out) moves every client.
func regionSeed(name string) uint64 {
	return fnvmix.Separator(fnvmix.String(fnvmix.Offset, name))
}

// unitHash maps (region, subnet) to a number uniformly spread over (0, 1):
// FNV-1a of the key from the region's seed, then the murmur3 finaliser,
// whose avalanche FNV alone lacks on short, similar keys.
func unitHash(seed uint64, key []byte) float64 {
	h := fnvmix.Mix64(fnvmix.Bytes(seed, key))
	return (float64(h>>11) + 0.5) / (1 << 53)
}

// pick chooses a region by weighted rendezvous hashing: each region scores
// weight / -ln(u), u the region's hash of the subnet, and the highest score
// wins. Region i wins for a share weight_i / sum(weights) of subnets, and a
// change to one region's weight moves only subnets to or from that region.
func pick(regions []region, key []byte) int {
	best, bestScore := 0, -1.0
	for i := range regions {
		score := regions[i].weight / -math.Log(unitHash(regions[i].seed, key))
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}
