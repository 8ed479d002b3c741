package dnsserver

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// tcpReply is what a TCP listener answers to pkt (screen, then ServeDNS),
// nil for nothing; transfers are left out (several messages).
func (s *Server) tcpReply(t *testing.T, pkt []byte) []byte {
	if reply, ok := screenQuery(pkt); !ok {
		return reply
	}
	q := new(dns.Msg)
	if err := q.Unpack(pkt); err != nil {
		t.Fatalf("screen passed a query that does not unpack: %v", err)
	}
	if isTransfer(q) {
		return nil
	}
	w := &tsigRecorder{recorder: recorder{remote: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5300}}} // the fuzz's source
	if tsig := q.IsTsig(); tsig != nil {
		// As miekg/dns's server does before calling the handler.
		w.provider = tsigProvider{s.cfg.TSIG}
		w.status = dns.TsigVerifyWithProvider(bytes.Clone(pkt), w.provider, "", false)
		w.requestMAC = tsig.MAC
	}
	s.ServeDNS(w, q)
	return w.raw
}

// tsigRecorder is a recorder that verifies and signs as miekg/dns's
// server's ResponseWriter does.
type tsigRecorder struct {
	recorder
	provider   dns.TsigProvider
	status     error
	requestMAC string
}

func (w *tsigRecorder) TsigStatus() error { return w.status }
func (w *tsigRecorder) WriteMsg(m *dns.Msg) error {
	if w.provider == nil || m.IsTsig() == nil {
		return w.recorder.WriteMsg(m)
	}
	b, _, err := dns.TsigGenerateWithProvider(m, w.provider, w.requestMAC, false)
	if err != nil {
		return err
	}
	w.raw = b
	return nil
}

// FuzzPathsAgree is the differential test of the answer paths: for any
// packet, the fast path (when it answers), the general UDP path and the
// path of miekg/dns's listeners (TCP, wildcard UDP: screen, unpack,
// ServeDNS) must give byte-identical replies: the same rcode, flags and
// sections. TCP may differ from UDP only where UDP truncates or for
// transfers.
func FuzzPathsAgree(f *testing.F) {
	s := diffServer(f)
	pack := func(m *dns.Msg, bits uint16) []byte {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		binary.BigEndian.PutUint16(b[2:], binary.BigEndian.Uint16(b[2:])|bits)
		return b
	}
	op15 := query("api.example.com.", dns.TypeA)
	op15.Opcode = 15
	twoOPT := withEDNS(query("api.example.com.", dns.TypeA), 1232, "")
	twoOPT.Extra = append(twoOPT.Extra, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}})
	signed := query("fo.example.com.", dns.TypeA)
	signed.Opcode = dns.OpcodeNotify
	signed.SetTsig("k.", dns.HmacSHA256, 300, 1)
	signedPkt, _, err := dns.TsigGenerate(signed, "MDEyMzQ1Njc4OWFiY2RlZg==", "", false)
	if err != nil {
		f.Fatal(err)
	}
	signedPkt[0], signedPkt[1] = 0x30, 0x30 // the TSIG's original ID differs
	for _, b := range [][]byte{
		signedPkt,
		pack(query("api.example.com.", dns.TypeA), 0),
		pack(query("API.Example.com.", dns.TypeAAAA), 0x2e0),
		pack(withEDNS(query("www.example.com.", dns.TypeA), 4096, "2001:db8::/48"), 0),
		pack(withEDNS(query("aLl.example.com.", dns.TypeA), 1232, "10.1.2.0/23"), 0),
		pack(query("missing.EXAMPLE.com.", dns.TypeTXT), 0),
		pack(query("example.com.", dns.TypeNS), 0),
		pack(query("example.org.", dns.TypeA), 1<<9),
		pack(query("big.example.com.", dns.TypeA), 0),
		pack(op15, 0),
		pack(twoOPT, 0),
		append(pack(query("fo.example.com.", dns.TypeA), 0), 0),
		pack(query("fo.example.com.", dns.TypeA), 0)[:20],
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) { pathsAgree(t, s, pkt) })
}

// FuzzSignedPathsAgree is FuzzPathsAgree on a signed zone (sign.go), with
// seeds that ask with DO: the signed twins, the compact denials signed on
// demand and the DNSKEY RRset are the same on every path.
func FuzzSignedPathsAgree(f *testing.F) {
	s := diffServer(f)
	if err := s.EnableDNSSEC(DNSSECConfig{Keys: testKeys(f, "", true)}); err == nil {
		f.Fatal("EnableDNSSEC after Update accepted")
	}
	s = New(Config{})
	if err := s.EnableDNSSEC(DNSSECConfig{Keys: testKeys(f, "", true)}); err != nil {
		f.Fatal(err)
	}
	s.Update(withWeights(f, configured(f, recordsConfig()), 50, 30, 20))
	for _, q := range []*dns.Msg{
		doQuery("api.example.com.", dns.TypeA),
		doQuery("API.Example.com.", dns.TypeAAAA),
		doQuery("www.example.com.", dns.TypeA),
		doQuery("example.com.", dns.TypeDNSKEY),
		doQuery("example.com.", dns.TypeNS),
		doQuery("missing.EXAMPLE.com.", dns.TypeTXT),
		doQuery("api.example.com.", dns.TypeMX),
		doQuery("big.example.com.", dns.TypeA),
		withEDNS(query("aLl.example.com.", dns.TypeA), 1232, "10.1.2.0/23"),
	} {
		if opt := q.IsEdns0(); opt != nil {
			opt.SetDo()
		}
		b, err := q.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) { pathsAgree(t, s, pkt) })
}

// pathsAgree is the body of the differential fuzz targets.
func pathsAgree(t *testing.T, s *Server, pkt []byte) {
	from := netip.MustParseAddrPort("192.0.2.1:5300")
	{
		var sn seen
		fastOut, handled := s.fast(pkt, from, nil, &sn)
		fastOut = bytes.Clone(fastOut)
		gen := bytes.Clone(s.general(pkt, from, nil))
		if handled {
			if fastOut == nil && gen != nil {
				t.Fatalf("fast path sends nothing, general path % x", gen)
			}
			if fastOut != nil && !bytes.Equal(fastOut, gen) {
				t.Fatalf("paths differ on % x:\nfast    % x\ngeneral % x\n%s", pkt, fastOut, gen, sameReply(fastOut, gen))
			}
		}
		wild := s.tcpReply(t, pkt) // the wildcard UDP listener answers as TCP does, limit aside
		if gen == nil {
			if wild != nil && len(pkt) >= headerLen && pkt[2]&0x80 == 0 && !isTransferPkt(pkt) {
				t.Fatalf("general path sends nothing, miekg's listeners % x", wild)
			}
			return
		}
		r := new(dns.Msg)
		if err := r.Unpack(gen); err != nil {
			t.Fatalf("reply does not unpack: %v\n% x", err, gen)
		}
		if !r.Response || r.Id != binary.BigEndian.Uint16(pkt) {
			t.Fatalf("reply header %v", r.MsgHdr)
		}
		if f := binary.BigEndian.Uint16(gen[2:]); f&(1<<7|1<<6|1<<5) != 0 || (r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError && f&(1<<9) != 0) {
			t.Fatalf("reply flags %016b copy RA, Z or AD, or TC on an error", f)
		}
		if len(r.Question) == 1 && r.Question[0].Qtype == 0 {
			q := new(dns.Msg)
			if q.Unpack(pkt) != nil || len(q.Question) != 1 || q.Question[0].Qtype != 0 {
				t.Fatalf("made-up TYPE0 question")
			}
		}
		if !r.Truncated && wild != nil && !bytes.Equal(gen, wild) {
			t.Fatalf("UDP and TCP differ on % x:\nudp % x\ntcp % x\n%s", pkt, gen, wild, sameReply(gen, wild))
		}
	}
}

// isTransferPkt reports whether pkt unpacks as an AXFR or IXFR query.
func isTransferPkt(pkt []byte) bool {
	q := new(dns.Msg)
	return q.Unpack(pkt) == nil && isTransfer(q)
}
