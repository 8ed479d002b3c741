package dnsserver

import (
	"encoding/binary"
)

// wireAnswer is a reply from the zone that both paths render the same way
// (appendAnswer): the header, the question as asked, the prepared bytes.
type wireAnswer struct {
	p       *prepared // the answer; nil for NXDOMAIN and REFUSED
	nx      bool      // NXDOMAIN: the SOA in authority
	refused bool      // out of the zone: no records
	aa      bool
	rcode   int
}

// ednsOut is what our OPT record in a reply carries.
type ednsOut struct {
	has   bool
	do    bool
	ecs   []byte // the query's Client Subnet option data (family, source, scope, address)
	scope uint8
}

// appendAnswer completes a reply whose first qEnd bytes in out are a
// header (rewritten here) and the question, exactly as asked: it writes
// the flags f (QR, RD, CD) with AA and the rcode, the counts, the answer
// and our OPT. Every owner name in the prepared bytes points into the
// question, so the reply spells the zone's names as the question did (0x20).
// fits reports whether the reply is within limit (0: no limit).
func appendAnswer(out []byte, qEnd int, f uint16, v *view, a *wireAnswer, o *ednsOut, limit int) (_ []byte, fits bool) {
	f |= uint16(a.rcode & 0xf)
	if a.aa {
		f |= 1 << 10
	}
	var counts [3]uint16
	switch {
	case a.p != nil:
		counts = a.p.counts
	case a.nx:
		counts[1] = 1
	}
	binary.BigEndian.PutUint16(out[2:], f)
	binary.BigEndian.PutUint16(out[4:], 1)
	binary.BigEndian.PutUint16(out[6:], counts[0])
	binary.BigEndian.PutUint16(out[8:], counts[1])
	arOut := counts[2]
	if o.has {
		arOut++
	}
	binary.BigEndian.PutUint16(out[10:], arOut)
	switch {
	case a.refused:
	case a.p != nil:
		out = append(out, a.p.wire...)
	case a.nx:
		// The SOA, its owner a pointer to the zone's labels in the question.
		ptr := qEnd - 4 - v.zoneLen
		out = append(out, 0xc0|byte(ptr>>8), byte(ptr))
		out = append(out, v.soaTail...)
	}
	if o.has {
		out = appendOPT(out, o.do, o.ecs, o.scope)
	}
	return out, limit <= 0 || len(out) <= limit
}

// emptyTC cuts a reply down to its header and question, with TC set and
// our OPT: an answer that does not fit over UDP carries no partial RRset
// (as Knot and BIND do); the client retries over TCP.
func emptyTC(out []byte, qEnd int, o *ednsOut) []byte {
	out = out[:qEnd]
	out[2] |= 1 << 1 // TC
	clear(out[6:12])
	if o.has {
		out[11] = 1
		out = appendOPT(out, o.do, o.ecs, o.scope)
	}
	return out
}
