package dnsserver

import (
	"encoding/binary"
	"sync"

	"github.com/miekg/dns"
)

// maxUDPSize is the EDNS0 UDP payload size advertised and never exceeded
// over UDP (the DNS flag day 2020 value: no IP fragmentation).
const maxUDPSize = 1232

// Pack buffers: big enough for any UDP answer and most TCP ones; a larger
// buffer grown by a big TCP answer is kept unless it is huge.
const (
	packBufSize   = 4096
	maxPooledPack = dns.MaxMsgSize + 1
)

// reply holds everything one answer needs, so that answering a query costs
// one pooled object instead of an allocation per part. Answer, Ns and the
// glue in Extra point into the immutable view and are never written.
type reply struct {
	msg    dns.Msg
	q      [1]dns.Question
	hasOpt bool
	opt    dns.OPT
	opts   [1]dns.EDNS0
	hasECS bool
	ecs    dns.EDNS0_SUBNET
	extra  [4]dns.RR // backing array for Extra when the OPT joins glue
	seen   seen      // the regions the answer names (drain.go)
	// An answer from the zone, rendered as the fast path does (wire.go)
	// when v is set: the prepared bytes after the question as asked.
	v       *view
	zone    wireAnswer
	ecsWire [4 + 16]byte // the query's ECS option data, as sent
}

var replyPool = sync.Pool{New: func() any { return new(reply) }}

var packPool = sync.Pool{New: func() any {
	b := make([]byte, packBufSize)
	return &b
}}

func getReply() *reply { return replyPool.Get().(*reply) }

// release drops the references into the view and returns rep to the pool.
func (rep *reply) release() {
	rep.msg = dns.Msg{}
	rep.q[0] = dns.Question{}
	rep.hasOpt, rep.hasECS = false, false
	rep.opt = dns.OPT{}
	rep.opts[0] = nil
	rep.ecs = dns.EDNS0_SUBNET{}
	clear(rep.extra[:])
	rep.seen = seen{}
	rep.v, rep.zone = nil, wireAnswer{}
	replyPool.Put(rep)
}

// start fills the header of the reply to r: ID, opcode and RD/CD copied,
// the question echoed exactly as asked (when there is exactly one).
func (rep *reply) start(r *dns.Msg) *dns.Msg {
	m := &rep.msg
	m.Id = r.Id
	m.Response = true
	m.Opcode = r.Opcode
	m.RecursionDesired = r.RecursionDesired
	m.CheckingDisabled = r.CheckingDisabled
	m.Compress = true
	if len(r.Question) == 1 {
		rep.q[0] = r.Question[0]
		m.Question = rep.q[:]
	}
	return m
}

// edns prepares the OPT record answering req's: our UDP size, version 0, the
// DO bit copied (RFC 3225), and the client subnet echoed (RFC 7871) with
// scope 0 until a tailored answer sets it.
func (rep *reply) edns(req *dns.OPT) *dns.EDNS0_SUBNET {
	rep.hasOpt = true
	rep.opt.Hdr = dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: maxUDPSize}
	if req.Do() {
		rep.opt.SetDo()
	}
	for _, o := range req.Option {
		e, ok := o.(*dns.EDNS0_SUBNET)
		if !ok {
			continue
		}
		rep.hasECS = true
		rep.ecs = dns.EDNS0_SUBNET{
			Code:          dns.EDNS0SUBNET,
			Family:        e.Family,
			SourceNetmask: e.SourceNetmask,
			Address:       e.Address,
		}
		rep.opts[0] = &rep.ecs
		rep.opt.Option = rep.opts[:1]
		return e
	}
	return nil
}

// setExtra sets the additional section: the glue, then our OPT if any.
func (rep *reply) setExtra(glue []dns.RR) {
	if !rep.hasOpt {
		rep.msg.Extra = glue
		return
	}
	rep.msg.Extra = append(append(rep.extra[:0], glue...), &rep.opt)
}

// pack renders the reply into a pooled buffer; when it exceeds limit bytes
// (limit > 0: UDP) it sends the header and question alone with TC (no
// partial RRset). The caller must call putPack(buf) once done with out.
func (rep *reply) pack(limit int) (out []byte, buf *[]byte, err error) {
	buf = packPool.Get().(*[]byte)
	if rep.v != nil && !rep.msg.Truncated {
		out, err = rep.packWire(*buf, limit)
	} else {
		m := &rep.msg
		out, err = m.PackBuffer(*buf)
		if err == nil && limit > 0 && len(out) > limit {
			rep.slip()
			out, err = m.PackBuffer(*buf)
		}
	}
	if err == nil && cap(out) > cap(*buf) && cap(out) <= maxPooledPack {
		*buf = out[:cap(out)]
	}
	return out, buf, err
}

func putPack(buf *[]byte) { packPool.Put(buf) }

// packWire renders an answer from the zone as the fast path does: the
// header, the question as asked, the prepared bytes, our OPT.
func (rep *reply) packWire(buf []byte, limit int) ([]byte, error) {
	m := &rep.msg
	q := m.Question[0]
	out := append(buf[:0], byte(m.Id>>8), byte(m.Id), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	out = out[:cap(out)]
	if len(out) < headerLen+256+4 {
		out = make([]byte, headerLen+256+4)
	}
	n, err := dns.PackDomainName(q.Name, out, headerLen, nil, false)
	if err != nil {
		return nil, err
	}
	out = binary.BigEndian.AppendUint16(out[:n], q.Qtype)
	out = binary.BigEndian.AppendUint16(out, q.Qclass)
	qEnd := len(out)
	var f uint16 = 0x8000
	if m.RecursionDesired {
		f |= 1 << 8
	}
	if m.CheckingDisabled {
		f |= 1 << 4
	}
	o := ednsOut{has: rep.hasOpt, do: rep.opt.Do()}
	if rep.hasECS {
		e := &rep.ecs
		addr := e.Address.To4()
		if e.Family == 2 || addr == nil {
			addr = e.Address.To16()
		}
		d := append(rep.ecsWire[:0], byte(e.Family>>8), byte(e.Family), e.SourceNetmask, 0)
		o.ecs = append(d, addr[:min(len(addr), (int(e.SourceNetmask)+7)/8)]...)
		o.scope = e.SourceScope
	}
	out, fits := appendAnswer(out, qEnd, f, rep.v, &rep.zone, &o, limit)
	if !fits {
		m.Truncated = true
		m.Answer, m.Ns = nil, nil
		out = emptyTC(out, qEnd, &o)
	}
	return out, nil
}

// slip turns the reply into an empty one with TC set (rate limiting).
func (rep *reply) slip() {
	m := &rep.msg
	m.Truncated = true
	m.Answer, m.Ns = nil, nil
	rep.setExtra(nil)
}
