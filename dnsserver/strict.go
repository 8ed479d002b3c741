package dnsserver

import (
	"encoding/binary"
	"net"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// Strict handling of malformed queries, one verdict for every listener:
// the UDP loops' general path (udp.go) and miekg/dns's servers for TCP and
// wildcard UDP (screenReader in listen.go) both check the query's wire form
// with screen before anything unpacks it, so that miekg/dns's lenient
// unpacking (trailing bytes ignored, a question without type or class read
// as TYPE0, an OPT anywhere) never decides an answer, and no error reply
// copies TC, RA, AD or Z from the query.

// verdict is what screen decided about a query.
type verdict uint8

const (
	pass     verdict = iota // well-formed: unpack and answer it
	drop                    // send nothing (too short, or a response)
	rejected                // the reply screen appended is the answer
)

// screen checks the wire form of pkt. For a malformed query it appends the
// error reply to out and returns it with rejected:
//   - an opcode other than QUERY and NOTIFY: NOTIMP, whatever follows the
//     header (RFC 1035 section 4.1.1);
//   - anything that does not parse as header, questions and records, a
//     question without type and class, bytes after the last record, two OPT
//     records, an OPT outside the additional section or not owned by the
//     root (RFC 6891 section 6.1.1), a TSIG record anywhere but last (RFC
//     8945 section 5.1) or too short to hold its fields, a malformed
//     option list, a malformed
//     Client Subnet option (RFC 7871 section 6), or a question count other
//     than 1: FORMERR.
//
// Error replies carry the ID, the opcode, RD and CD, no question, and our
// OPT record when the query had one (RFC 6891 section 7).
func screen(pkt, out []byte) ([]byte, verdict) {
	if len(pkt) < headerLen || pkt[2]&0x80 != 0 {
		return nil, drop
	}
	rcode := dns.RcodeSuccess
	opt, optBad := -1, false // the OPT record's offset; a second or misplaced one
	off := headerLen
	counts := [4]int{
		int(binary.BigEndian.Uint16(pkt[4:])), int(binary.BigEndian.Uint16(pkt[6:])),
		int(binary.BigEndian.Uint16(pkt[8:])), int(binary.BigEndian.Uint16(pkt[10:])),
	}
	ok := true
	for i := 0; i < counts[0] && ok; i++ {
		if off, ok = skipName(pkt, off); ok && off+4 > len(pkt) {
			ok = false // no type or class
		}
		off += 4
	}
	for sec := 1; sec < 4 && ok; sec++ {
		for i := 0; i < counts[sec] && ok; i++ {
			start := off
			if off, ok = skipName(pkt, off); !ok || off+10 > len(pkt) {
				ok = false
				break
			}
			rdlen := int(binary.BigEndian.Uint16(pkt[off+8:]))
			if binary.BigEndian.Uint16(pkt[off:]) == dns.TypeTSIG && (sec != 3 || i != counts[3]-1 || rdlen < 17) {
				// TSIG is the last record (RFC 8945 section 5.1), and
				// holds at least an algorithm name and its fixed fields.
				optBad = true
			}
			if binary.BigEndian.Uint16(pkt[off:]) == dns.TypeOPT {
				if sec != 3 || opt >= 0 || off != start+1 {
					optBad = true
				}
				if opt < 0 {
					opt = start
				}
			}
			off += 10 + rdlen
			if off > len(pkt) {
				ok = false
			}
		}
	}
	switch opcode := int(pkt[2]>>3) & 0xf; {
	case opcode != dns.OpcodeQuery && opcode != dns.OpcodeNotify:
		rcode = dns.RcodeNotImplemented
	case !ok || off != len(pkt) || optBad || counts[0] != 1:
		rcode = dns.RcodeFormatError
	case opt >= 0 && !validOptions(pkt[opt+11:opt+11+int(binary.BigEndian.Uint16(pkt[opt+9:]))]):
		rcode = dns.RcodeFormatError
	default:
		return nil, pass
	}
	hasOpt, do := false, false
	if ok && opt >= 0 && pkt[opt] == 0 && opt+11 <= len(pkt) {
		hasOpt, do = true, pkt[opt+7]&0x80 != 0
	}
	return errorReply(out, pkt, rcode, hasOpt, do), rejected
}

// skipName returns the offset after the (possibly compressed) name at off.
func skipName(pkt []byte, off int) (int, bool) {
	for n := 0; ; {
		if off >= len(pkt) {
			return off, false
		}
		l := int(pkt[off])
		switch {
		case l == 0:
			return off + 1, true
		case l&0xc0 == 0xc0:
			if off+2 > len(pkt) {
				return off, false
			}
			return off + 2, true
		case l > 63:
			return off, false // the reserved label types
		}
		n += l + 1
		if n > 254 {
			return off, false
		}
		off += 1 + l
	}
}

// validOptions checks an OPT record's option list: each option within it,
// and a Client Subnet option well-formed.
func validOptions(opts []byte) bool {
	for len(opts) > 0 {
		if len(opts) < 4 {
			return false
		}
		code, olen := binary.BigEndian.Uint16(opts), int(binary.BigEndian.Uint16(opts[2:]))
		if 4+olen > len(opts) {
			return false
		}
		if code == dns.EDNS0SUBNET && !validECS(opts[4:4+olen]) {
			return false
		}
		opts = opts[4+olen:]
	}
	return true
}

// validECS checks a Client Subnet option's data (RFC 7871 section 6): a
// known family, prefixes within the family's length, exactly the octets
// the source prefix needs, and no address bit set beyond it.
func validECS(d []byte) bool {
	if len(d) < 4 {
		return false
	}
	family, source, scope := binary.BigEndian.Uint16(d), int(d[2]), int(d[3])
	var max int
	switch family {
	case 1:
		max = 32
	case 2:
		max = 128
	default:
		return false
	}
	addr := d[4:]
	if source > max || scope > max || len(addr) != (source+7)/8 {
		return false
	}
	if rem := source % 8; rem != 0 && addr[len(addr)-1]&(0xff>>rem) != 0 {
		return false
	}
	return true
}

// errorReply appends to out the reply to pkt with rcode: the ID, QR, the
// opcode, RD and CD (nothing else of the query's flags), no sections but
// our OPT when the query had one.
func errorReply(out, pkt []byte, rcode int, hasOpt, do bool) []byte {
	out = append(out[:0], pkt[0], pkt[1])
	f := uint16(0x8000) | binary.BigEndian.Uint16(pkt[2:])&(0xf<<11|1<<8|1<<4) | uint16(rcode&0xf)
	out = binary.BigEndian.AppendUint16(out, f)
	out = append(out, 0, 0, 0, 0, 0, 0, 0, 0)
	if hasOpt {
		out[11] = 1
		out = appendOPT(out, do, nil, 0)
	}
	return out
}

// screenReader puts screen in front of miekg/dns's servers (TCP, and UDP on
// a wildcard address): a query it rejects is answered here and handed on
// empty, which miekg/dns then ignores; a query that passes is handed on
// as read. So every listener gives malformed queries the same answer.
type screenReader struct {
	dns.Reader
	s *Server
}

// screenQuery returns the reply to send instead of answering pkt, and
// whether miekg/dns may go on with it.
func screenQuery(pkt []byte) (reply []byte, ok bool) {
	if _, reply, ok := unpackQuery(pkt, nil); !ok {
		return reply, false
	}
	return nil, true
}

func (r screenReader) ReadTCP(conn net.Conn, timeout time.Duration) ([]byte, error) {
	m, err := r.Reader.ReadTCP(conn, timeout)
	if err != nil {
		return m, err
	}
	reply, ok := screenQuery(m)
	if ok {
		return m, nil
	}
	if reply != nil {
		b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reply)), uint16(len(reply)))
		if _, err := conn.Write(append(b, reply...)); err != nil {
			r.s.log.Debug("cannot write DNS answer", zap.Stringer("client", conn.RemoteAddr()), zap.Error(err))
		}
	}
	return m[:0], nil
}

func (r screenReader) ReadUDP(conn *net.UDPConn, timeout time.Duration) ([]byte, *dns.SessionUDP, error) {
	m, sess, err := r.Reader.ReadUDP(conn, timeout)
	if err != nil {
		return m, sess, err
	}
	reply, ok := screenQuery(m)
	if ok {
		return m, sess, nil
	}
	if reply != nil {
		if _, err := dns.WriteToSessionUDP(conn, reply, sess); err != nil {
			r.s.log.Debug("cannot write DNS answer", zap.Stringer("client", sess.RemoteAddr()), zap.Error(err))
		}
	}
	return m[:0], sess, nil
}

// decorate is the DecorateReader of our miekg/dns servers.
func (s *Server) decorate(r dns.Reader) dns.Reader { return screenReader{Reader: r, s: s} }

// acceptQuery is the MsgAcceptFunc of our miekg/dns servers: screen has
// already answered whatever miekg/dns's default would reject (with the
// query's flags copied), so everything but a response goes on.
func acceptQuery(dh dns.Header) dns.MsgAcceptAction {
	if dh.Bits&(1<<15) != 0 {
		return dns.MsgIgnore
	}
	return dns.MsgAccept
}
