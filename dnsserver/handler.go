package dnsserver

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// ServeDNS answers one query from the current view: the general path, for
// TCP and for whatever the UDP fast path (fast.go) leaves to it. It is the
// server's own dns.Handler (no global mux) and may also be called directly,
// e.g. by tests or another listener. A panic becomes SERVFAIL.
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
	remote := w.RemoteAddr()
	_, tcp := remote.(*net.TCPAddr)
	if t := r.IsTsig(); t != nil {
		s.serveSigned(w, r, t, tcp, start)
		return
	}
	if isTransfer(r) && s.transfer(w, r, tcp, nil) {
		return
	}
	rep := getReply()
	defer rep.release()
	limit := s.answer(rep, remote, r)
	if !tcp && s.rrl != nil {
		switch s.rrl.check(addrOf(remote)) {
		case rrlDrop:
			return
		case rrlSlip:
			rep.slip()
		}
	}
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
	} else if !rep.msg.Truncated {
		s.noteGeneral(&rep.seen)
	}
	s.observe(r, rep.msg.Rcode, start)
}

// serveSigned answers a request signed with TSIG: NOTAUTH with the TSIG
// error when its signature does not verify (the ResponseWriter verified
// it), else the answer signed with the same key. It takes the general
// path's slow road (a dns.Msg the writer signs), outside rate limiting.
func (s *Server) serveSigned(w dns.ResponseWriter, r *dns.Msg, t *dns.TSIG, tcp bool, start time.Time) {
	if err := w.TsigStatus(); err != nil {
		s.tsigError(w, r, t, err)
		s.observe(r, dns.RcodeNotAuth, start)
		return
	}
	if isTransfer(r) && s.transfer(w, r, tcp, t) {
		return
	}
	rep := getReply()
	defer rep.release()
	limit := s.answer(rep, w.RemoteAddr(), r)
	m := new(dns.Msg)
	*m = rep.msg
	m.Question = slices.Clone(m.Question)
	if limit > 0 && m.Len()+dns.Len(&dns.TSIG{Algorithm: t.Algorithm, Hdr: t.Hdr, MAC: strings.Repeat("00", 64)}) > limit {
		m.Truncated = true
		m.Answer, m.Ns = nil, nil
		m.Extra = m.Extra[len(m.Extra)-min(len(m.Extra), b2i(rep.hasOpt)):]
	}
	sign(m, t)
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("cannot write DNS answer", zap.Stringer("client", w.RemoteAddr()), zap.Error(err))
	}
	s.observe(r, m.Rcode, start)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
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
	m := rep.start(r)
	_, tcp := remote.(*net.TCPAddr)
	if !tcp {
		limit = dns.MinMsgSize
	}
	var ecs *dns.EDNS0_SUBNET
	opt := r.IsEdns0()
	if opt != nil {
		ecs = rep.edns(opt)
		if !tcp {
			limit = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPSize)
		}
	}
	// As screen (strict.go) answers them on the wire: no question, our
	// OPT bare.
	bare := func(rcode int) int {
		m.Rcode, m.Question = rcode, nil
		rep.opt.Option = nil
		rep.setExtra(nil)
		return limit
	}
	switch {
	case r.Opcode != dns.OpcodeQuery && r.Opcode != dns.OpcodeNotify:
		return bare(dns.RcodeNotImplemented)
	case len(r.Question) != 1:
		return bare(dns.RcodeFormatError)
	case opt != nil && opt.Version() != 0:
		m.Rcode = dns.RcodeBadVers
		rep.setExtra(nil)
		return limit
	}
	defer func() { rep.setExtra(m.Extra) }()
	v := s.view.Load()
	if v == nil {
		if s.refusedLogged.CompareAndSwap(false, true) {
			s.log.Warn("refusing DNS queries: no steering config applied yet")
		}
		m.Rcode = dns.RcodeRefused
		return limit
	}
	q := r.Question[0]
	var buf [256]byte
	name, ok := lowerName(&buf, q.Name)
	if !ok || !inZone(name, v.zone) || q.Qclass != dns.ClassINET || isTransfer(r) {
		m.Rcode = dns.RcodeRefused
		return limit
	}
	m.Authoritative = true
	if r.Opcode == dns.OpcodeNotify {
		// We are the primary of our zone and have no primary of our own: a
		// NOTIFY can only come from an address that is not a configured
		// primary, so it is refused (RFC 1996 section 3.10 lets a slave
		// ignore NOTIFY from unknown masters; an answer is kinder).
		m.Authoritative = false
		m.Rcode = dns.RcodeRefused
		return limit
	}
	do := opt != nil && opt.Do()
	signed := do && v.dnssec != nil
	if r := s.refusal.Load(); do && (r != nil || v.lacksKeys) {
		if v.lacksKeys || !r.unsigned {
			// A server that cannot sign as the cluster does says so rather
			// than answer as if the zone were unsigned (SetDNSSECRefusal).
			m.Authoritative = false
			m.Rcode = dns.RcodeServerFailure
			return limit
		}
		signed = false // the cluster is unsigned: answer as it does
	}
	n := v.names[string(name)]
	if n == nil && signed {
		// RFC 9824: NODATA at the nonexistent name, signed on demand.
		ns, err := v.dnssec.nxDenial(string(name))
		if err != nil {
			m.Rcode = dns.RcodeServerFailure
			return limit
		}
		m.Ns = ns
		return limit
	}
	rep.v = v
	if n == nil {
		m.Rcode = dns.RcodeNameError
		m.Ns = v.soa
		rep.zone = wireAnswer{nx: true, aa: true, rcode: m.Rcode}
		return limit
	}
	var p *prepared
	if q.Qtype == dns.TypeANY {
		p = n.any // RFC 8482
	} else {
		p = s.steer(rep, n.lookup(q.Qtype), remote, ecs)
	}
	if signed && p.sig != nil {
		p = p.sig
	}
	m.Rcode = p.rcode
	m.Answer, m.Ns, m.Extra = p.answer, p.ns, p.extra
	rep.zone = wireAnswer{p: p, aa: true, rcode: p.rcode}
	return limit
}

// steer returns the answer of c for this client.
func (s *Server) steer(rep *reply, c *choice, remote net.Addr, ecs *dns.EDNS0_SUBNET) *prepared {
	if !c.tailored() && c.svc == 0 {
		return c.fixed
	}
	var key subnetKey
	scoped := false
	if ecs != nil {
		var scope uint8
		key, scope, scoped = ecsKey(ecs)
		if c.tailored() {
			rep.ecs.SourceScope = scope
		}
	}
	if !scoped {
		key = sourceKey(addrOf(remote))
	}
	rep.seen = seen{svc: c.svc, keyed: true, key: key}
	if !c.tailored() {
		rep.seen.mask = c.mask
		return c.fixed
	}
	if c.near != nil {
		p, mask, scope := s.steerNearest(c.near, &key)
		if scoped {
			rep.ecs.SourceScope = scope
		}
		rep.seen.mask = mask
		return p
	}
	i := pick(c.regions, key.bytes())
	rep.seen.mask = c.regions[i].mask
	return c.regions[i].ans
}

// addrOf returns the IP of a UDP or TCP address (invalid otherwise).
func addrOf(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}

func isTransfer(r *dns.Msg) bool {
	return r != nil && len(r.Question) == 1 && r.Opcode == dns.OpcodeQuery &&
		(r.Question[0].Qtype == dns.TypeAXFR || r.Question[0].Qtype == dns.TypeIXFR)
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
// a nil request, which must not kill the server either.
func servfail(w dns.ResponseWriter, r *dns.Msg) {
	defer func() { _ = recover() }()
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeServerFailure)
	_ = w.WriteMsg(m)
}
