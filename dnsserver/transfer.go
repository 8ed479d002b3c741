package dnsserver

import (
	"strings"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// axfrChunk is about how many bytes of records go in one message of a zone
// transfer (far below the 64 KiB a TCP message may have).
const axfrChunk = 16 << 10

// transfer answers AXFR, and IXFR with a full transfer (RFC 1995 allows
// it), to the addresses the config allows. An IXFR from a client whose
// serial is not older than ours, or over UDP, gets our SOA alone (RFC 1995
// sections 2 and 4: up to date, or "use TCP"). It reports false when the
// general path must answer instead (REFUSED): not our zone, a client not
// allowed, AXFR over UDP, no config yet.
//
// A request signed with TSIG (tsig, verified) gets every message signed.
func (s *Server) transfer(w dns.ResponseWriter, r *dns.Msg, tcp bool, tsig *dns.TSIG) bool {
	q := r.Question[0]
	if q.Qtype == dns.TypeIXFR && !hasSOA(r.Ns) {
		// RFC 1995 section 3: an IXFR query carries the client's SOA in
		// its authority section.
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return true
	}
	v := s.view.Load()
	if v == nil || q.Qclass != dns.ClassINET || !strings.EqualFold(q.Name, v.zone) {
		return false
	}
	client := addrOf(w.RemoteAddr())
	key := ""
	if tsig != nil {
		key = dns.CanonicalName(tsig.Hdr.Name)
	}
	switch v.mayTransfer(client, key) {
	case transferRefused:
		s.log.Info("zone transfer refused", zap.Stringer("client", client), zap.String("type", dns.TypeToString[q.Qtype]),
			zap.String("key", key))
		return false
	case transferUnsigned:
		// The secondary at this address has a key and must sign: NOTAUTH
		// (no TSIG record: the request named no key).
		s.log.Warn("unsigned zone transfer from a secondary that has a TSIG key; refused",
			zap.Stringer("client", client), zap.String("type", dns.TypeToString[q.Qtype]))
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNotAuth)
		_ = w.WriteMsg(m)
		return true
	}
	if q.Qtype == dns.TypeIXFR && (!tcp || upToDate(r, v.serial)) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		m.Answer = v.soa
		if tsig != nil {
			sign(m, tsig)
		}
		_ = w.WriteMsg(m)
		return true
	}
	if !tcp {
		return false // AXFR over UDP
	}
	all := append(v.axfr[:len(v.axfr):len(v.axfr)], v.soa[0])
	for len(all) > 0 {
		n, size := 0, 0
		for n < len(all) && (n == 0 || size < axfrChunk) {
			size += dns.Len(all[n])
			n++
		}
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		m.Compress = true
		m.Answer = all[:n]
		if tsig != nil {
			sign(m, tsig)
		}
		if err := w.WriteMsg(m); err != nil {
			s.log.Warn("zone transfer aborted", zap.Stringer("client", client), zap.Error(err))
			return true
		}
		// Later messages are signed over the previous MAC and the timers
		// (RFC 8945 section 5.3.1).
		w.TsigTimersOnly(true)
		all = all[n:]
	}
	s.log.Info("zone transferred", zap.Stringer("client", client), zap.Uint32("serial", v.serial),
		zap.String("type", dns.TypeToString[q.Qtype]), zap.String("key", key))
	return true
}

func hasSOA(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if _, ok := rr.(*dns.SOA); ok {
			return true
		}
	}
	return false
}

// upToDate reports whether an IXFR query's SOA (in its authority section)
// has a serial at or past serial, in RFC 1982 serial arithmetic.
func upToDate(r *dns.Msg, serial uint32) bool {
	for _, rr := range r.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return int32(soa.Serial-serial) >= 0
		}
	}
	return false
}
