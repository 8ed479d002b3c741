// Package conformance is the table of DNS protocol cases every evac DNS
// listener must answer the same way, written once and run twice: against
// in-process servers on every listener (dnsserver's TestStrictness: the UDP
// fast and general paths, wildcard-address UDP, TCP) and against real
// `evac server` processes (integration's TestDNSConformance, part of
// `make dns-conformance`). Each case is a raw query (so malformed ones can
// be sent) and what the reply must be: rcode and opcode, no TC, RA, Z or AD
// copied from the query, the question echoed or not, an OPT or not, AA.
//
// The cases need a zone with an address record at a name given to Cases
// (the answer case) and no zone example.org.
package conformance

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/miekg/dns"
)

// Header flag bits an error reply must never copy from the query.
const (
	FlagTC = 1 << 9
	FlagRA = 1 << 7
	FlagZ  = 1 << 6
	FlagAD = 1 << 5
)

// dirty are the flag bits set in the queries that test they are not copied.
const dirty = FlagTC | FlagRA | FlagZ | FlagAD

// Case is one query and what its reply must be.
type Case struct {
	Name   string
	Query  []byte // the wire form, sent as is
	Rcode  int    // the low four bits (BADVERS is 16: 0 in the header)
	Opcode int
	QD     int  // questions in the reply
	OPT    bool // the reply carries an OPT
	AA     bool
}

// Cases returns the cases for a zone (absolute, "example.com.") with an A
// record at name (absolute, in the zone).
func Cases(zone, name string) ([]Case, error) {
	var err error
	pack := func(m *dns.Msg, bits uint16) []byte {
		b, e := m.Pack()
		if e != nil {
			err = errors.Join(err, e)
			return nil
		}
		binary.BigEndian.PutUint16(b[2:], binary.BigEndian.Uint16(b[2:])|bits)
		return b
	}
	q := func(qname string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(qname, qtype)
		return m
	}
	edns := func(m *dns.Msg) *dns.Msg {
		m.SetEdns0(1232, false)
		return m
	}
	opcode := func(op int, withQ bool) []byte {
		m := q(name, dns.TypeA)
		m.Opcode = op
		if !withQ {
			m.Question = nil
		}
		return pack(m, dirty)
	}
	// ecs is an A query with an OPT carrying a raw Client Subnet option.
	ecs := func(data []byte) []byte {
		b := pack(edns(q(name, dns.TypeA)), 0)
		if b == nil {
			return nil
		}
		opt := append(binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, dns.EDNS0SUBNET), uint16(len(data))), data...)
		binary.BigEndian.PutUint16(b[len(b)-2:], uint16(len(opt))) // the OPT's RDLENGTH ends the packet
		return append(b, opt...)
	}
	nameOnly := func(keep int) []byte {
		b := pack(q(name, dns.TypeA), 0)
		return b[:len(b)-4+keep] // the name, and keep bytes of type and class
	}
	rootOPT := func() *dns.OPT { return &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 1232}} }
	with := func(f func(m *dns.Msg), bits uint16) []byte {
		m := q(name, dns.TypeA)
		f(m)
		return pack(m, bits)
	}
	overrun := ecs([]byte{0, 1, 0, 0})
	if overrun != nil {
		binary.BigEndian.PutUint16(overrun[len(overrun)-6:], 9) // option length 9, 4 bytes follow
	}
	notify := new(dns.Msg)
	notify.SetNotify(zone)

	cases := []Case{
		{"unknown opcode, no question", opcode(15, false), dns.RcodeNotImplemented, 15, 0, false, false},
		{"unknown opcode with a question", opcode(15, true), dns.RcodeNotImplemented, 15, 0, false, false},
		{"UPDATE", opcode(dns.OpcodeUpdate, true), dns.RcodeNotImplemented, dns.OpcodeUpdate, 0, false, false},
		{"STATUS", opcode(dns.OpcodeStatus, true), dns.RcodeNotImplemented, dns.OpcodeStatus, 0, false, false},
		{"no question", with(func(m *dns.Msg) { m.Question = nil }, dirty), dns.RcodeFormatError, 0, 0, false, false},
		{"two questions", with(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }, dirty), dns.RcodeFormatError, 0, 0, false, false},
		{"two OPT records", with(func(m *dns.Msg) { edns(m).Extra = append(m.Extra, rootOPT()) }, 0), dns.RcodeFormatError, 0, 0, true, false},
		{"OPT in authority", with(func(m *dns.Msg) { m.Ns = []dns.RR{rootOPT()} }, 0), dns.RcodeFormatError, 0, 0, true, false},
		{"OPT not owned by the root", with(func(m *dns.Msg) {
			m.Extra = []dns.RR{&dns.OPT{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeOPT, Class: 1232}}}
		}, 0), dns.RcodeFormatError, 0, 0, false, false},
		{"trailing byte", append(pack(q(name, dns.TypeA), 0), 0), dns.RcodeFormatError, 0, 0, false, false},
		{"trailing byte after OPT", append(pack(edns(q(name, dns.TypeA)), 0), 0), dns.RcodeFormatError, 0, 0, true, false},
		{"question without type and class", nameOnly(0), dns.RcodeFormatError, 0, 0, false, false},
		{"question without class", nameOnly(2), dns.RcodeFormatError, 0, 0, false, false},
		{"ECS bits beyond the source prefix", ecs([]byte{0, 1, 23, 0, 10, 1, 3}), dns.RcodeFormatError, 0, 0, true, false},
		{"ECS address too long", ecs([]byte{0, 1, 16, 0, 10, 1, 0}), dns.RcodeFormatError, 0, 0, true, false},
		{"ECS address too short", ecs([]byte{0, 1, 24, 0, 10, 1}), dns.RcodeFormatError, 0, 0, true, false},
		{"ECS unknown family", ecs([]byte{0, 3, 8, 0, 10}), dns.RcodeFormatError, 0, 0, true, false},
		{"ECS prefix too long", ecs([]byte{0, 1, 40, 0, 10, 1, 2, 3, 4}), dns.RcodeFormatError, 0, 0, true, false},
		{"ECS option overruns the OPT", overrun, dns.RcodeFormatError, 0, 0, true, false},
		{"out of zone, dirty flags", pack(q("example.org.", dns.TypeA), dirty), dns.RcodeRefused, 0, 1, false, false},
		{"NOTIFY from a non-primary", pack(notify, 0), dns.RcodeRefused, dns.OpcodeNotify, 1, false, false},
		{"BADVERS", with(func(m *dns.Msg) { edns(m).IsEdns0().SetVersion(1) }, dirty), dns.RcodeBadVers & 0xf, 0, 1, true, false},
		{"TSIG not last", with(func(m *dns.Msg) {
			m.Extra = []dns.RR{&dns.TSIG{Hdr: dns.RR_Header{Name: "k.", Rrtype: dns.TypeTSIG, Class: dns.ClassANY}, Algorithm: dns.HmacSHA256},
				rootOPT()}
		}, 0), dns.RcodeFormatError, 0, 0, true, false},
		{"IXFR without the client's SOA", pack(q(zone, dns.TypeIXFR), 0), dns.RcodeFormatError, 0, 1, false, false},
		{"answer, dirty flags", pack(q(name, dns.TypeA), dirty), dns.RcodeSuccess, 0, 1, false, true},
	}
	if err != nil {
		return nil, fmt.Errorf("conformance cases: %w", err)
	}
	return cases, nil
}

// Check reports how reply, the raw answer to c.Query, breaks the case.
func (c Case) Check(reply []byte) error {
	r := new(dns.Msg)
	if err := r.Unpack(reply); err != nil {
		return fmt.Errorf("reply does not unpack: %w", err)
	}
	flags := binary.BigEndian.Uint16(reply[2:])
	switch {
	case r.Id != binary.BigEndian.Uint16(c.Query):
		return fmt.Errorf("id %d, the query's %d", r.Id, binary.BigEndian.Uint16(c.Query))
	case r.Rcode&0xf != c.Rcode || r.Opcode != c.Opcode:
		return fmt.Errorf("rcode %s opcode %d, want %s %d", dns.RcodeToString[r.Rcode], r.Opcode, dns.RcodeToString[c.Rcode], c.Opcode)
	case flags&dirty != 0:
		return fmt.Errorf("reply flags %016b copy TC, RA, Z or AD", flags)
	case len(r.Question) != c.QD:
		return fmt.Errorf("%d questions, want %d", len(r.Question), c.QD)
	case len(r.Question) == 1 && r.Question[0].Qtype == 0:
		return fmt.Errorf("made-up question %v", r.Question[0])
	case (r.IsEdns0() != nil) != c.OPT:
		return fmt.Errorf("OPT %v, want %v", r.IsEdns0() != nil, c.OPT)
	case r.Authoritative != c.AA:
		return fmt.Errorf("AA %v, want %v", r.Authoritative, c.AA)
	case c.Rcode != dns.RcodeSuccess && len(r.Answer)+len(r.Ns) != 0:
		return fmt.Errorf("an error with records: %v", r)
	case c.AA && len(r.Answer) == 0:
		return fmt.Errorf("no answer: %v", r)
	}
	return nil
}
