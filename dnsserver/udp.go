package dnsserver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// udpBatch is how many datagrams one recvmmsg/sendmmsg moves at most.
const udpBatch = 32

// udpIO moves batches of datagrams on one UDP socket: recvmmsg and sendmmsg
// as raw system calls on Linux (udpio_linux.go), golang.org/x/net elsewhere.
type udpIO interface {
	// read waits for at least one datagram and returns how many it read
	// into the buffers given to newUDPIO: datagram i is bufs[i][:ns[i]],
	// from from[i] (the zero AddrPort when the address is of no known
	// family).
	read(ns []int, from []netip.AddrPort) (int, error)
	// write sends replies[i], where not empty, to the sender of datagram i
	// of the last read. A reply that cannot be sent is passed to bad and
	// the others still go; the error is the socket's (closed).
	write(replies [][]byte, bad func(i int, err error)) error
}

// serveUDP reads queries from conn in batches and answers them on the same
// goroutine: the fast path (fast.go) first, else the general one
// (ServeDNS). Several of these run on one socket, each with its own table
// of recent answers (drain.go), locked once per batch. It returns when conn
// is closed.
func (s *Server) serveUDP(conn *net.UDPConn, rec *answerTable) {
	var (
		bufs    = make([][]byte, udpBatch)
		outs    = make([][]byte, udpBatch)
		replies = make([][]byte, udpBatch)
		ns      = make([]int, udpBatch)
		froms   = make([]netip.AddrPort, udpBatch)
		sns     = make([]seen, udpBatch)
	)
	for i := range bufs {
		bufs[i] = make([]byte, udpReadSize)
		outs[i] = make([]byte, 0, packBufSize)
	}
	io, err := newUDPIO(conn, bufs, s.cfg.BusyPoll, &s.closed, &s.busyPolled)
	if err != nil {
		s.log.Error("cannot serve UDP", zap.Error(err))
		return
	}
	bad := func(i int, err error) {
		s.log.Debug("cannot write DNS answer", zap.Stringer("client", froms[i]), zap.Error(err))
	}
	for {
		n, err := io.read(ns, froms)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.closed.Load() {
				return
			}
			s.log.Debug("UDP read", zap.Error(err))
			continue
		}
		noted := false
		for i := range n {
			sns[i].svc = 0
			replies[i] = nil
			if !froms[i].IsValid() {
				continue
			}
			reply := s.handleUDP(bufs[i][:ns[i]], froms[i], outs[i][:0], &sns[i])
			if reply == nil {
				sns[i].svc = 0
				continue
			}
			noted = noted || sns[i].svc != 0
			replies[i] = reply
		}
		if noted {
			// One clock read and one lock per batch; before the next read
			// reuses the buffers sns points into.
			now := time.Now().UnixNano()
			rec.mu.Lock()
			for i := range n {
				if sns[i].svc != 0 {
					s.note(rec, &sns[i], now)
				}
			}
			rec.mu.Unlock()
		}
		if err := io.write(replies, bad); err != nil {
			if errors.Is(err, net.ErrClosed) || s.closed.Load() {
				return
			}
			s.log.Debug("UDP write", zap.Error(err))
		}
		clear(replies[:n])
	}
}

// handleUDP returns the reply to one UDP packet, nil for none. It never
// panics: a bug in the fast path costs that query, not the server.
func (s *Server) handleUDP(pkt []byte, from netip.AddrPort, out []byte, sn *seen) (reply []byte) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic while answering a DNS query", zap.Any("panic", p), zap.Stack("stack"))
			reply, sn.svc = nil, 0
		}
	}()
	var start time.Time
	if s.cfg.Observer != nil {
		start = time.Now()
	}
	if r, ok := s.fast(pkt, from, out, sn); ok {
		if r != nil && s.cfg.Observer != nil {
			s.observeWire(pkt, r, start)
		}
		return r
	}
	return s.general(pkt, from, out)
}

// observeWire reports a fast-path reply to the Observer: the query type from
// the (uncompressed, already validated) question, the rcode from the reply.
func (s *Server) observeWire(pkt, reply []byte, start time.Time) {
	off := headerLen
	for off < len(pkt) && pkt[off] != 0 {
		off += int(pkt[off]) + 1
	}
	var qtype uint16
	if off+3 <= len(pkt) {
		qtype = binary.BigEndian.Uint16(pkt[off+1:])
	}
	s.cfg.Observer(qtype, int(reply[3]&0x0f), time.Since(start))
}

// general answers a UDP query the fast path left: screen (strict.go)
// judges its wire form, then miekg/dns unpacks it and ServeDNS answers, as
// on every other listener. Responses get nothing.
func (s *Server) general(pkt []byte, from netip.AddrPort, out []byte) []byte {
	r, reply, ok := unpackQuery(pkt, out)
	if !ok {
		return reply
	}
	w := &udpWriter{remote: net.UDPAddrFromAddrPort(from), out: out}
	if t := r.IsTsig(); t != nil {
		// As miekg/dns's server does before calling the handler; on a
		// copy, since verifying rewrites the ID and ARCOUNT in place.
		w.tsig = tsigProvider{s.cfg.TSIG}
		w.tsigStatus = dns.TsigVerifyWithProvider(bytes.Clone(pkt), w.tsig, "", false)
		w.requestMAC = t.MAC
	}
	s.ServeDNS(w, r)
	return w.reply
}

// unpackQuery screens and unpacks a query. When ok is false, reply (nil:
// none) is the answer to send instead.
func unpackQuery(pkt, out []byte) (r *dns.Msg, reply []byte, ok bool) {
	switch reply, v := screen(pkt, out); v {
	case drop:
		return nil, nil, false
	case rejected:
		return nil, reply, false
	}
	r = new(dns.Msg)
	if err := r.Unpack(pkt); err != nil {
		// Records whose data does not parse (screen checks only framing).
		return nil, errorReply(out, pkt, dns.RcodeFormatError, false, false), false
	}
	return r, nil, true
}

// udpWriter is the ResponseWriter of the general path under serveUDP: it
// keeps the reply for the loop to send.
type udpWriter struct {
	remote *net.UDPAddr
	out    []byte
	reply  []byte
	// A signed request: the verification result and what signs the reply.
	tsig       dns.TsigProvider
	tsigStatus error
	requestMAC string
}

func (w *udpWriter) LocalAddr() net.Addr  { return nil }
func (w *udpWriter) RemoteAddr() net.Addr { return w.remote }
func (w *udpWriter) Write(b []byte) (int, error) {
	w.reply = append(w.out[:0], b...)
	return len(b), nil
}
func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	if w.tsig != nil && m.IsTsig() != nil {
		b, _, err := dns.TsigGenerateWithProvider(m, w.tsig, w.requestMAC, false)
		if err != nil {
			return err
		}
		w.reply = append(w.out[:0], b...)
		return nil
	}
	b, err := m.PackBuffer(w.out)
	if err != nil {
		return err
	}
	w.reply = b
	return nil
}
func (w *udpWriter) Close() error        { return nil }
func (w *udpWriter) TsigStatus() error   { return w.tsigStatus }
func (w *udpWriter) TsigTimersOnly(bool) {}
func (w *udpWriter) Hijack()             {}
