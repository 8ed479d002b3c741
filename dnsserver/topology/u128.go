package topology

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// u128 is an address left-aligned in 128 bits: IPv6 as it is, IPv4 in the
// top 32 bits (the low 96 bits zero, or ones at the end of a range). One
// representation serves both tables, and a prefix of length L is the top L
// bits in either.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

var u128Max = u128{^uint64(0), ^uint64(0)}

func (a u128) inc() u128 {
	lo := a.lo + 1
	hi := a.hi
	if lo == 0 {
		hi++
	}
	return u128{hi, lo}
}

func (a u128) dec() u128 {
	lo := a.lo - 1
	hi := a.hi
	if a.lo == 0 {
		hi--
	}
	return u128{hi, lo}
}

// mask returns the top n bits set.
func mask(n int) u128 {
	switch {
	case n <= 0:
		return u128{}
	case n < 64:
		return u128{^uint64(0) << (64 - n), 0}
	case n == 64:
		return u128{^uint64(0), 0}
	case n < 128:
		return u128{^uint64(0), ^uint64(0) << (128 - n)}
	}
	return u128Max
}

func (a u128) or(b u128) u128 { return u128{a.hi | b.hi, a.lo | b.lo} }
func (a u128) not() u128      { return u128{^a.hi, ^a.lo} }

// commonPrefix is the number of leading bits a and b share.
func commonPrefix(a, b u128) int {
	if x := a.hi ^ b.hi; x != 0 {
		return bits.LeadingZeros64(x)
	}
	return 64 + bits.LeadingZeros64(a.lo^b.lo)
}

// trailingZeros of a (128 for 0).
func (a u128) trailingZeros() int {
	if a.lo != 0 {
		return bits.TrailingZeros64(a.lo)
	}
	return 64 + bits.TrailingZeros64(a.hi)
}

// fromAddr left-aligns a (unmapped).
func fromAddr(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{uint64(binary.BigEndian.Uint32(b[:])) << 32, 0}
	}
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// FromBytes left-aligns a 4- or 16-byte address.
func FromBytes(b []byte) u128 {
	if len(b) == 4 {
		return u128{uint64(binary.BigEndian.Uint32(b)) << 32, 0}
	}
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:16])}
}

// scope returns the shortest prefix length L such that every address
// sharing a's first L bits lies within [lo, hi] (lo <= a <= hi).
func scope(a, lo, hi u128) int {
	// The block's start, a & mask(L), is >= lo from L1 on.
	l1 := 128 - lo.trailingZeros() // where a's block start can equal lo
	if a != lo {
		l1 = min(l1, commonPrefix(a, lo)+1)
	}
	// The block's end, a | ^mask(L), is <= hi from L2 on.
	l2 := 128 - hi.not().trailingZeros()
	if a != hi {
		l2 = min(l2, commonPrefix(a, hi)+1)
	}
	return max(l1, l2)
}
