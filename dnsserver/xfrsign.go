package dnsserver

import (
	"bytes"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Signed zone transfers (docs/dnssec.md, "Zone transfers"). When the
// server signs and DNSSECConfig.UnsignedTransfers is off (the default),
// AXFR and IXFR give secondaries a signed static copy of the zone: the
// transfer records of view.transfers (a weighted or nearest service with
// the addresses of every serving region), plus the DNSKEY RRset at the
// apex, a standard NSEC chain (RFC 4034) over every name that has records,
// in canonical order, and the RRSIGs of every RRset, made by the same keys
// as the answers' (DNSKEY by the KSKs/CSKs, the rest by the ZSKs). A
// secondary serves it as any signed zone; its copy can be walked (standard
// NSEC), while evac's own answers use compact denial.
//
// Three properties make the copies consistent:
//
//   - Identical on every controller. Signatures are deterministic (sign.go)
//     and signing periods aligned to the wall clock, so two controllers with
//     the same keys and the same state transfer the same bytes (except for
//     the seconds around a period boundary their clocks disagree on), and an
//     IXFR from one applies to a copy taken from another.
//   - A new serial for new signatures. The served serial is the state
//     serial plus the seconds from serialEpoch to the signing period's start
//     (mod 2^32): a re-sign, which changes no state, still moves the serial
//     forward, so secondaries fetch the new signatures (an IXFR from the
//     journal, NOTIFY sent) before theirs expire. Both terms only grow, so
//     the serial does too in normal operation. Changing --dnssec-validity or
//     --dnssec-refresh changes the period length P; a longer P can move the
//     period's start back by up to P, and with it the serial: secondaries
//     then keep their copy (still valid: its signatures had at least the
//     old refresh left) until the serial passes theirs again, within P, or
//     until told to transfer again (docs/dnssec.md says how). Turning signed
//     transfers off moves the serial back to the state serial.
//   - Unsigned transfers or no keys: the serial is exactly the state
//     serial, as before.

// serialEpoch is where the served serial's period offset counts from,
// 2025-01-01T00:00:00Z: the offset stays below 2^31 (RFC 1982's largest
// increase) until 2093, so turning signed transfers on moves the serial
// forward.
var serialEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// signedTransfers reports whether transfers get the signed zone.
func (sg *signer) signedTransfers() bool {
	return sg != nil && !sg.cfg.UnsignedTransfers && !sg.hold && !sg.unsignedCluster
}

// serialOffset is what the served SOA serial adds to the state serial:
// the seconds from serialEpoch to the signing period's start with signed
// transfers, else 0.
func (sg *signer) serialOffset() uint32 {
	if !sg.signedTransfers() {
		return 0
	}
	return uint32(int64(sg.start.Sub(serialEpoch) / time.Second))
}

// signedTransfer returns the signed zone transfer (without the closing
// SOA) made from axfr, the unsigned one (the SOA first).
func (b *builder) signedTransfer(axfr []dns.RR) ([]dns.RR, error) {
	zone := b.v.zone
	// The records by owner name, in canonical order; at each name its
	// RRsets in the order their types first appear.
	type owner struct {
		name  string
		key   [][]byte // canonicalKey
		types []uint16
		sets  map[uint16][]dns.RR
	}
	byName := map[string]*owner{}
	var owners []*owner
	add := func(rr dns.RR) {
		h := rr.Header()
		name := strings.ToLower(h.Name)
		o := byName[name]
		if o == nil {
			o = &owner{name: name, key: canonicalKey(name), sets: map[uint16][]dns.RR{}}
			byName[name] = o
			owners = append(owners, o)
		}
		set, ok := o.sets[h.Rrtype]
		if !ok {
			o.types = append(o.types, h.Rrtype)
		}
		for _, x := range set {
			if dns.IsDuplicate(x, rr) {
				return // an RRset is a set (RFC 2181 section 5)
			}
		}
		o.sets[h.Rrtype] = append(set, rr)
	}
	for _, rr := range axfr {
		add(rr)
	}
	for _, k := range b.sg.keys.DNSKEYs(zone, b.ttl) {
		add(k)
	}
	slices.SortStableFunc(owners, func(a, b *owner) int { return compareCanonical(a.key, b.key) })

	n := len(axfr) + 2*len(owners)
	out := make([]dns.RR, 0, 2*n)
	for i, o := range owners {
		next := owners[(i+1)%len(owners)].name // the last points back to the apex
		types := append(slices.Clone(o.types), dns.TypeNSEC, dns.TypeRRSIG)
		slices.Sort(types)
		nsec := &dns.NSEC{Hdr: hdr(o.name, dns.TypeNSEC, b.ttl), NextDomain: next, TypeBitMap: slices.Compact(types)}
		o.types = append(o.types, dns.TypeNSEC)
		o.sets[dns.TypeNSEC] = []dns.RR{nsec}
		for _, t := range o.types {
			set := o.sets[t]
			sigs, err := b.sg.sigs(zone, set)
			if err != nil {
				return nil, err
			}
			out = append(append(out, set...), sigs...)
		}
	}
	return out, nil
}

// canonicalKey is name's labels from the right, in lower case wire form:
// compareCanonical orders names by it as RFC 4034 section 6.1 says.
func canonicalKey(name string) [][]byte {
	buf := make([]byte, 256)
	off, err := dns.PackDomainName(dns.CanonicalName(name), buf, 0, nil, false)
	if err != nil {
		return [][]byte{[]byte(strings.ToLower(name))} // cannot happen for a name of a view
	}
	var labels [][]byte
	for i := 0; i < off && buf[i] != 0; i += int(buf[i]) + 1 {
		labels = append(labels, bytes.ToLower(buf[i+1:i+1+int(buf[i])]))
	}
	slices.Reverse(labels)
	return labels
}

// compareCanonical compares two canonicalKeys: label by label from the
// right as octet strings, the absence of a label first.
func compareCanonical(a, b [][]byte) int {
	for i := range min(len(a), len(b)) {
		if c := bytes.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}
