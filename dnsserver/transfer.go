package dnsserver

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// axfrChunk is about how many bytes of records go in one message of a zone
// transfer (far below the 64 KiB a TCP message may have).
const axfrChunk = 16 << 10

// transfer answers AXFR over TCP, and IXFR (RFC 1995), to the addresses
// the config allows. An IXFR gets:
//   - our SOA alone when the client's serial is not older than ours
//     (section 2: up to date);
//   - the changes since the client's serial from the journal (journal.go)
//     when it reaches that far: our SOA, per change the old SOA, the
//     deletions, the new SOA and the additions, and our SOA again;
//   - otherwise the whole zone (an AXFR-style IXFR, section 4) over TCP;
//     over UDP, our SOA alone, which tells the client to use TCP, as it
//     does when the changes do not fit the client's UDP size (section 2).
//
// It reports false when the general path must answer instead (REFUSED):
// not our zone, a client not allowed, AXFR over UDP, no config yet.
//
// A request signed with TSIG (tsig, verified) gets every message signed.
func (s *Server) transfer(w dns.ResponseWriter, r *dns.Msg, tcp bool, tsig *dns.TSIG) bool {
	q := r.Question[0]
	clientSOA := requestSOA(r)
	if q.Qtype == dns.TypeIXFR && clientSOA == nil {
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
	if ref := s.refusal.Load(); (v.lacksKeys || ref != nil && !ref.unsigned) && (s.signer == nil || !s.signer.cfg.UnsignedTransfers) {
		// Our keys are not the cluster's, or we lack one it signs with,
		// or have none: a copy signed with ours would fail validation at
		// the secondary as our answers would, and an unsigned copy of a
		// signed zone would too (under the parent's DS).
		reason := "this server lacks the cluster's DNSSEC keys"
		if ref != nil {
			reason = ref.reason
		}
		s.log.Warn("zone transfer refused: not signing", zap.Stringer("client", client),
			zap.String("type", dns.TypeToString[q.Qtype]), zap.String("reason", reason))
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeServerFailure)
		_ = w.WriteMsg(m)
		return true
	}
	if q.Qtype == dns.TypeAXFR {
		if !tcp {
			return false // AXFR over UDP
		}
		s.stream(w, r, tsig, append(v.axfr[:len(v.axfr):len(v.axfr)], v.soa[0]), client)
		s.log.Info("zone transferred", zap.Stringer("client", client), zap.Uint32("serial", v.serial),
			zap.String("type", "AXFR"), zap.String("key", key))
		return true
	}

	// IXFR.
	from := clientSOA.Serial
	if int32(from-v.serial) >= 0 {
		s.soaOnly(w, r, v, tcp, tsig)
		return true
	}
	deltas, incremental := v.journal.since(from)
	if !tcp {
		if !incremental || !s.ixfrUDP(w, r, v, tsig, deltas) {
			s.soaOnly(w, r, v, tcp, tsig) // use TCP
			return true
		}
	} else if incremental {
		s.stream(w, r, tsig, ixfrRecords(v.soa[0], deltas), client)
	} else {
		s.stream(w, r, tsig, append(v.axfr[:len(v.axfr):len(v.axfr)], v.soa[0]), client)
	}
	style := "full"
	if incremental {
		style = "incremental"
	}
	s.log.Info("zone transferred", zap.Stringer("client", client), zap.Uint32("serial", v.serial),
		zap.String("type", "IXFR"), zap.String("style", style), zap.Uint32("from-serial", from),
		zap.Int("changes", len(deltas)), zap.Bool("tcp", tcp), zap.String("key", key))
	return true
}

// soaOnly answers an IXFR with our SOA alone: the client is up to date,
// or (over UDP) must ask again over TCP.
func (s *Server) soaOnly(w dns.ResponseWriter, r *dns.Msg, v *view, tcp bool, tsig *dns.TSIG) {
	m := transferReply(r, v.soa, tcp)
	if tsig != nil {
		sign(m, tsig)
	}
	_ = w.WriteMsg(m)
}

// transferReply is a reply to the transfer request r with answer; over
// UDP it carries our OPT when r had one.
func transferReply(r *dns.Msg, answer []dns.RR, tcp bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.Compress = true
	m.Answer = answer
	if opt := r.IsEdns0(); opt != nil && !tcp {
		m.SetEdns0(maxUDPSize, opt.Do())
	}
	return m
}

// ixfrUDP answers an IXFR over UDP with the changes deltas when they fit
// the client's UDP size, and reports whether they did.
func (s *Server) ixfrUDP(w dns.ResponseWriter, r *dns.Msg, v *view, tsig *dns.TSIG, deltas []delta) bool {
	limit := dns.MinMsgSize
	if opt := r.IsEdns0(); opt != nil {
		limit = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPSize)
	}
	m := transferReply(r, ixfrRecords(v.soa[0], deltas), false)
	size := m.Len()
	if tsig != nil {
		size += dns.Len(&dns.TSIG{Hdr: tsig.Hdr, Algorithm: tsig.Algorithm, MAC: strings.Repeat("00", 64)})
		sign(m, tsig)
	}
	if size > limit {
		return false
	}
	_ = w.WriteMsg(m)
	return true
}

// stream writes all (a transfer's records, opening and closing SOA
// included) in messages of about axfrChunk bytes over TCP.
func (s *Server) stream(w dns.ResponseWriter, r *dns.Msg, tsig *dns.TSIG, all []dns.RR, client netip.Addr) {
	for len(all) > 0 {
		n, size := 0, 0
		for n < len(all) && (n == 0 || size < axfrChunk) {
			size += dns.Len(all[n])
			n++
		}
		m := transferReply(r, all[:n], true)
		if tsig != nil {
			sign(m, tsig)
		}
		if err := w.WriteMsg(m); err != nil {
			s.log.Warn("zone transfer aborted", zap.Stringer("client", client), zap.Error(err))
			return
		}
		// Later messages are signed over the previous MAC and the timers
		// (RFC 8945 section 5.3.1).
		w.TsigTimersOnly(true)
		all = all[n:]
	}
}

// requestSOA returns the SOA in an IXFR query's authority section, nil
// when there is none.
func requestSOA(r *dns.Msg) *dns.SOA {
	for _, rr := range r.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa
		}
	}
	return nil
}
