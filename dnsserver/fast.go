package dnsserver

import (
	"encoding/binary"
	"net/netip"

	"github.com/miekg/dns"
)

// fast answers a UDP query from its wire form without unpacking it: it
// parses only the header, the question and an OPT record carrying at most
// an ECS option, and copies a prepared answer (view.go) after the question
// as asked. It returns handled=false for anything else (several questions,
// compression in the question, unusual names, other options, EDNS versions,
// transfers, opcodes other than QUERY, answers needing truncation), which
// the general path then answers. handled with a nil out means: send nothing.
// It fills sn with the regions a service's answer named, for drain tracking
// (sn.svc stays 0 for any other reply, and when nothing is sent).
func (s *Server) fast(pkt []byte, from netip.AddrPort, out []byte, sn *seen) (_ []byte, handled bool) {
	out = out[:0] // out is only a buffer to reuse
	sn.svc = 0
	if len(pkt) < headerLen+5 {
		return nil, false
	}
	flags := binary.BigEndian.Uint16(pkt[2:])
	if flags&0x8000 != 0 {
		return nil, true // a response: never answer one (as miekg/dns)
	}
	if (flags>>11)&0xf != dns.OpcodeQuery {
		return nil, false
	}
	if binary.BigEndian.Uint16(pkt[4:]) != 1 || binary.BigEndian.Uint16(pkt[6:]) != 0 ||
		binary.BigEndian.Uint16(pkt[8:]) != 0 {
		return nil, false
	}
	ar := binary.BigEndian.Uint16(pkt[10:])
	if ar > 1 {
		return nil, false
	}

	// The question name, lower-cased into presentation form.
	var lname [256]byte
	ln, off := 0, headerLen
	for {
		if off >= len(pkt) {
			return nil, false
		}
		l := int(pkt[off])
		if l == 0 {
			off++
			break
		}
		if l > 63 || off+1+l > len(pkt) || ln+l+1 > 254 {
			return nil, false
		}
		for _, c := range pkt[off+1 : off+1+l] {
			switch {
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			default:
				return nil, false // escaped in presentation form: the general path
			}
			lname[ln] = c
			ln++
		}
		lname[ln] = '.'
		ln++
		off += 1 + l
	}
	if ln == 0 || off+4 > len(pkt) {
		return nil, false
	}

	qtype := binary.BigEndian.Uint16(pkt[off:])
	qclass := binary.BigEndian.Uint16(pkt[off+2:])
	qEnd := off + 4
	if qclass != dns.ClassINET || qtype == dns.TypeAXFR || qtype == dns.TypeIXFR {
		return nil, false
	}

	// EDNS: OPT with no option or one ECS option.
	var (
		hasOpt, do bool
		udpSize    int
		ecs        []byte // the ECS option's data: family, source, scope, address
	)
	if ar == 1 {
		o := pkt[qEnd:]
		if len(o) < 11 || o[0] != 0 || binary.BigEndian.Uint16(o[1:]) != dns.TypeOPT || o[6] != 0 {
			return nil, false // not a root OPT, or an EDNS version above 0
		}
		udpSize = int(binary.BigEndian.Uint16(o[3:]))
		do = o[7]&0x80 != 0
		rdlen := int(binary.BigEndian.Uint16(o[9:]))
		if 11+rdlen != len(o) {
			return nil, false
		}
		for opts := o[11:]; len(opts) > 0; {
			if len(opts) < 4 {
				return nil, false
			}
			code, olen := binary.BigEndian.Uint16(opts), int(binary.BigEndian.Uint16(opts[2:]))
			if code != dns.EDNS0SUBNET || ecs != nil || 4+olen > len(opts) || !validECS(opts[4:4+olen]) {
				return nil, false
			}
			ecs = opts[4 : 4+olen]
			opts = opts[4+olen:]
		}
		hasOpt = true
	} else if qEnd != len(pkt) {
		return nil, false
	}

	v := s.view.Load()
	if v == nil {
		return nil, false
	}
	name := lname[:ln]
	var (
		p       *prepared
		nx      bool
		aa      = true
		rcode   int
		scope   uint8
		refused bool
	)
	switch n := v.names[string(name)]; {
	case !inZone(name, v.zone):
		refused, aa, rcode = true, false, dns.RcodeRefused
	case n == nil:
		nx, rcode = true, dns.RcodeNameError
	case qtype == dns.TypeANY:
		p = n.any
	default:
		c := n.lookup(qtype)
		if !c.tailored() && c.svc == 0 {
			p = c.fixed
			break
		}
		if !c.tailored() {
			// The same answer for every subnet: the tracker works out the
			// subnet only if it records the answer.
			p = c.fixed
			sn.svc, sn.mask, sn.ecs, sn.from, sn.keyed = c.svc, c.mask, ecs, from.Addr(), false
			break
		}
		var key subnetKey
		k, sc, scoped := ecsWireKey(ecs)
		if scoped {
			key, scope = k, sc
		} else {
			key = sourceKey(from.Addr())
		}
		if c.near != nil {
			var mask uint64
			var nsc uint8
			p, mask, nsc = s.steerNearest(c.near, &key)
			if scoped {
				scope = nsc
			}
			sn.svc, sn.mask, sn.key, sn.keyed = c.svc, mask, key, true
			break
		}
		i := pick(c.regions, key.bytes())
		p = c.regions[i].ans
		sn.svc, sn.mask, sn.key, sn.keyed = c.svc, c.regions[i].mask, key, true
	}
	if do {
		// Signed answers (sign.go): the twin, or the general path for
		// what it must sign or refuse.
		r := s.refusal.Load()
		switch {
		case v.lacksKeys, r != nil && !r.unsigned:
			sn.svc = 0
			return nil, false
		case v.dnssec == nil, r != nil:
		case nx:
			sn.svc = 0
			return nil, false
		case p != nil && p.sig != nil:
			p = p.sig
		}
	}
	if p != nil {
		rcode = p.rcode
	}

	limit := dns.MinMsgSize
	if hasOpt {
		limit = min(max(udpSize, dns.MinMsgSize), maxUDPSize)
	}
	a := wireAnswer{p: p, nx: nx, refused: refused, aa: aa, rcode: rcode}
	o := ednsOut{has: hasOpt, do: do, ecs: ecs, scope: scope}
	out = append(out, pkt[:qEnd]...) // the header (rewritten below) and the question as asked
	f := uint16(0x8000) | flags&(1<<8|1<<4)
	out, fits := appendAnswer(out, qEnd, f, v, &a, &o, limit)
	if !fits {
		sn.svc = 0
		return nil, false // the general path truncates (and rate-limits)
	}
	if s.rrl != nil {
		switch s.rrl.check(from.Addr()) {
		case rrlDrop:
			sn.svc = 0
			return nil, true
		case rrlSlip:
			sn.svc = 0
			// Empty, with TC: a real client retries over TCP.
			out = emptyTC(out, qEnd, &o)
		}
	}
	return out, true
}

// ecsWireKey is ecsKey for the option's data (validECS holds).
func ecsWireKey(d []byte) (subnetKey, uint8, bool) {
	if d == nil {
		return subnetKey{}, 0, false
	}
	family, source := binary.BigEndian.Uint16(d), int(d[2])
	if source == 0 {
		return subnetKey{}, 0, false
	}
	if family == 1 {
		var a [4]byte
		copy(a[:], d[4:])
		bits := min(source, maxPrefix4)
		return makeKey(netip.AddrFrom4(a), bits), uint8(bits), true
	}
	var a [16]byte
	copy(a[:], d[4:])
	bits := min(source, maxPrefix6)
	return makeKey(netip.AddrFrom16(a), bits), uint8(bits), true
}

// appendOPT appends our OPT record: UDP size 1232, version 0, DO copied,
// and the client subnet echoed with our scope (address masked to its
// source prefix, as miekg/dns packs it).
func appendOPT(out []byte, do bool, ecs []byte, scope uint8) []byte {
	out = append(out, 0, 0, byte(dns.TypeOPT), byte(maxUDPSize>>8), byte(maxUDPSize&0xff), 0, 0)
	if do {
		out = append(out, 0x80, 0)
	} else {
		out = append(out, 0, 0)
	}
	if ecs == nil {
		return append(out, 0, 0)
	}
	out = binary.BigEndian.AppendUint16(out, uint16(4+len(ecs)))
	out = binary.BigEndian.AppendUint16(out, dns.EDNS0SUBNET)
	out = binary.BigEndian.AppendUint16(out, uint16(len(ecs)))
	out = append(out, ecs[0], ecs[1], ecs[2], scope)
	start := len(out)
	out = append(out, ecs[4:]...)
	if rem := int(ecs[2]) % 8; rem != 0 && len(out) > start {
		out[len(out)-1] &= 0xff << (8 - rem)
	}
	return out
}
