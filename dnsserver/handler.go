package dnsserver

import (
	"net"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// ServeDNS answers one query from the current view. It is the server's own
// dns.Handler (no global mux) and may also be called directly, e.g. by
// tests or another listener. A panic becomes SERVFAIL.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	var start time.Time
	if s.cfg.Observer != nil {
		start = time.Now()
	}
	defer func() {
		if p := recover(); p != nil {
			s.recovered(w, r, p)
			s.observe(r, dns.RcodeServerFailure, start)
		}
	}()
	rep := getReply()
	defer rep.release()
	limit := s.answer(rep, w.RemoteAddr(), r)
	out, buf, err := rep.pack(limit)
	defer putPack(buf)
	if err != nil {
		s.log.Error("cannot pack DNS answer", zap.String("qname", qname(r)), zap.Error(err))
		servfail(w, r)
		s.observe(r, dns.RcodeServerFailure, start)
		return
	}
	// Write's buffer is ours again once it returns (the io.Writer contract).
	if _, err := w.Write(out); err != nil {
		s.log.Debug("cannot write DNS answer", zap.Stringer("client", w.RemoteAddr()), zap.Error(err))
	}
	s.observe(r, rep.msg.Rcode, start)
}

// observe reports one reply to the Observer, if any.
func (s *Server) observe(r *dns.Msg, rcode int, start time.Time) {
	if s.cfg.Observer == nil {
		return
	}
	var qtype uint16
	if len(r.Question) > 0 {
		qtype = r.Question[0].Qtype
	}
	s.cfg.Observer(qtype, rcode, time.Since(start))
}

// answer fills rep with the reply to r from client remote and returns the
// size the packed reply must fit in (0: no limit, TCP).
func (s *Server) answer(rep *reply, remote net.Addr, r *dns.Msg) (limit int) {
	limit, glue := s.resolve(rep, remote, r)
	rep.setExtra(glue)
	return limit
}

// resolve sets the header, answer and authority sections of rep; it returns
// the size limit and the glue for the additional section.
func (s *Server) resolve(rep *reply, remote net.Addr, r *dns.Msg) (limit int, glue []dns.RR) {
	m := rep.start(r)
	_, tcp := remote.(*net.TCPAddr)
	if !tcp {
		limit = dns.MinMsgSize
	}
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return limit, nil
	}
	var ecs *dns.EDNS0_SUBNET
	if opt := r.IsEdns0(); opt != nil {
		ecs = rep.edns(opt)
		if !tcp {
			limit = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPSize)
		}
		if opt.Version() != 0 {
			m.Rcode = dns.RcodeBadVers
			return limit, nil
		}
	}
	if r.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeNotImplemented
		return limit, nil
	}
	v := s.view.Load()
	if v == nil {
		if s.refusedLogged.CompareAndSwap(false, true) {
			s.log.Warn("refusing DNS queries: no steering config applied yet")
		}
		m.Rcode = dns.RcodeRefused
		return limit, nil
	}
	q := r.Question[0]
	var buf [256]byte
	name, ok := lowerName(&buf, q.Name)
	if !ok || !inZone(name, v.zone) || q.Qclass != dns.ClassINET ||
		q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR {
		m.Rcode = dns.RcodeRefused
		return limit, nil
	}
	m.Authoritative = true
	n := v.names[string(name)]
	if n == nil {
		m.Rcode = dns.RcodeNameError
		m.Ns = v.soa
		return limit, nil
	}
	switch {
	case q.Qtype == dns.TypeANY:
		m.Answer = n.hinfo // RFC 8482
	case n.svc != nil && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA):
		fam := famA
		if q.Qtype == dns.TypeAAAA {
			fam = famAAAA
		}
		m.Answer = s.steer(rep, n.svc, fam, remote, ecs)
	default:
		if set := n.set(q.Qtype); set != nil {
			m.Answer, glue = set.rrs, set.extra
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = v.soa // NODATA
	}
	return limit, glue
}

// steer returns the service's records of one family for this client.
func (s *Server) steer(rep *reply, svc *service, fam int, remote net.Addr, ecs *dns.EDNS0_SUBNET) []dns.RR {
	if !svc.tailored() {
		return svc.fixed[fam]
	}
	var key subnetKey
	scoped := false
	if ecs != nil {
		var scope uint8
		key, scope, scoped = ecsKey(ecs)
		rep.ecs.SourceScope = scope
	}
	if !scoped {
		key = sourceKey(remote)
	}
	return svc.regions[pick(svc.regions, key.bytes())].rrs[fam]
}

// lowerName lower-cases an ASCII name into buf without allocating.
func lowerName(buf *[256]byte, name string) ([]byte, bool) {
	if len(name) > len(buf) {
		return nil, false
	}
	b := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return b, true
}

// inZone reports whether the lower-case absolute name is zone or below it.
func inZone(name []byte, zone string) bool {
	if len(name) < len(zone) || string(name[len(name)-len(zone):]) != zone {
		return false
	}
	return len(name) == len(zone) || name[len(name)-len(zone)-1] == '.'
}

func qname(r *dns.Msg) string {
	if r == nil || len(r.Question) == 0 {
		return ""
	}
	return r.Question[0].Name
}

// recovered turns a panic while answering into SERVFAIL.
func (s *Server) recovered(w dns.ResponseWriter, r *dns.Msg, p any) {
	s.log.Error("panic while answering a DNS query",
		zap.Any("panic", p), zap.String("qname", qname(r)), zap.Stack("stack"))
	servfail(w, r)
}

// servfail writes a bare SERVFAIL; it may itself fail on a broken writer or
// request, which must not take the server down either.
func servfail(w dns.ResponseWriter, r *dns.Msg) {
	defer func() { _ = recover() }()
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeServerFailure)
	_ = w.WriteMsg(m)
}
