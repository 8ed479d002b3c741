package dnsserver

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// diffServer serves recordsConfig with weights, for comparing the two paths.
func diffServer(t testing.TB) *Server {
	s := New(Config{})
	s.Update(withWeights(t, configured(t, recordsConfig()), 50, 30, 20))
	return s
}

// sameReply reports how the fast path's reply differs from the general
// path's, "" if in nothing but compression (and the case names take from
// the question).
func sameReply(fast, general []byte) string {
	f, g := new(dns.Msg), new(dns.Msg)
	if err := f.Unpack(fast); err != nil {
		return "fast reply does not unpack: " + err.Error()
	}
	if general == nil {
		return "the general path sends nothing"
	}
	if err := g.Unpack(general); err != nil {
		return "general reply does not unpack: " + err.Error()
	}
	if fs, gs := strings.ToLower(f.String()), strings.ToLower(g.String()); fs != gs {
		return "fast:\n" + fs + "\ngeneral:\n" + gs
	}
	return ""
}

// TestFastPathMatchesGeneral asks both paths the same queries: the fast
// path must answer most, and exactly as the general path does.
func TestFastPathMatchesGeneral(t *testing.T) {
	s := diffServer(t)
	names := []string{"api", "API", "fo", "all", "big", "v4only", "www", "WwW", "chain", "alias", "ext", "dangling",
		"totxt", "static", "long.txt", "sub", "host.sub", "missing", "x.api", "ns1", "ns2", "ns3.dns", "dns", "@"}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeTXT, dns.TypeNS, dns.TypeSOA, dns.TypeMX, dns.TypeANY}
	sources := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:5300"), netip.MustParseAddrPort("[2001:db8::1]:5300"),
		netip.MustParseAddrPort("198.51.100.200:1")}
	var fast, total int
	for _, n := range append(names, "example.org.", "EXAMPLE.com.") {
		qn := n + ".example.com."
		switch {
		case n == "@":
			qn = "example.com."
		case strings.HasSuffix(n, "."):
			qn = n
		}
		for _, qt := range types {
			for variant := range 6 {
				q := query(qn, qt)
				q.Id = uint16(total)
				switch variant {
				case 1:
					q.RecursionDesired, q.CheckingDisabled = false, true
				case 2:
					q = withEDNS(q, 4096, "")
					q.IsEdns0().SetDo()
				case 3:
					q = withEDNS(q, 1232, "10.1.2.3/32")
				case 4:
					q = withEDNS(q, 600, "2001:db8:77:1234::/61")
				case 5:
					q = withEDNS(q, 512, "10.9.0.0/0")
				}
				pkt, err := q.Pack()
				if err != nil {
					t.Fatal(err)
				}
				for _, from := range sources {
					total++
					var sn seen
					out, ok := s.fast(pkt, from, nil, &sn)
					if !ok {
						continue
					}
					fast++
					clear(s.generalRec.slots[:])
					if d := sameReply(out, s.general(pkt, from, nil)); d != "" {
						t.Fatalf("%s %s variant %d from %v: %s", qn, dns.TypeToString[qt], variant, from, d)
					}
					if d := sameRecord(&sn, &s.generalRec); d != "" {
						t.Fatalf("%s %s variant %d from %v: drain records differ: %s", qn, dns.TypeToString[qt], variant, from, d)
					}
				}
			}
		}
	}
	t.Logf("fast path answered %d of %d", fast, total)
	if fast < total*3/4 {
		t.Errorf("fast path answered only %d of %d", fast, total)
	}
}

// sameRecord reports how what the fast path would record for drain
// tracking (sn) differs from what the general path recorded in tbl.
func sameRecord(sn *seen, tbl *answerTable) string {
	var got []recSlot
	for _, sl := range tbl.slots {
		if sl.at != 0 {
			got = append(got, sl)
		}
	}
	if sn.svc == 0 || sn.mask == 0 {
		if len(got) != 0 {
			return fmt.Sprintf("fast: nothing; general: %+v", got)
		}
		return ""
	}
	k := sn.subnet()
	if len(got) != 1 || got[0].svc != sn.svc || got[0].key != k || got[0].mask != sn.mask {
		return fmt.Sprintf("fast: svc %d subnet %v mask %b; general: %+v", sn.svc, k.bytes(), sn.mask, got)
	}
	return ""
}

// TestFastPathDeclines checks the queries the fast path must leave to the
// general one.
func TestFastPathDeclines(t *testing.T) {
	s := diffServer(t)
	from := netip.MustParseAddrPort("192.0.2.1:5300")
	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	two := query("fo.example.com.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	notify := new(dns.Msg)
	notify.SetNotify("example.com.")
	v1 := withEDNS(query("fo.example.com.", dns.TypeA), 1232, "")
	v1.IsEdns0().SetVersion(1)
	cookie := withEDNS(query("fo.example.com.", dns.TypeA), 1232, "")
	cookie.IsEdns0().Option = append(cookie.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	chaos := query("example.com.", dns.TypeTXT)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	escaped := query(`a\.b.example.com.`, dns.TypeA)
	trailing := append(pack(query("fo.example.com.", dns.TypeA)), 0)
	for name, pkt := range map[string][]byte{
		"two questions": pack(two),
		"NOTIFY":        pack(notify),
		"EDNS version":  pack(v1),
		"cookie":        pack(cookie),
		"AXFR":          pack(query("example.com.", dns.TypeAXFR)),
		"IXFR":          pack(query("example.com.", dns.TypeIXFR)),
		"class":         pack(chaos),
		"escaped label": pack(escaped),
		"truncation":    pack(query("big.example.com.", dns.TypeA)),
		"trailing byte": trailing,
		"short":         pack(query("fo.example.com.", dns.TypeA))[:14],
	} {
		if _, ok := s.fast(pkt, from, nil, &seen{}); ok {
			t.Errorf("%s: answered by the fast path", name)
		}
		if out := s.handleUDP(pkt, from, nil, &seen{}); out != nil {
			if err := new(dns.Msg).Unpack(out); err != nil {
				t.Errorf("%s: reply does not unpack: %v", name, err)
			}
		}
	}
	// A response is never answered.
	resp := query("fo.example.com.", dns.TypeA)
	resp.Response = true
	if out := s.handleUDP(pack(resp), from, nil, &seen{}); out != nil {
		t.Error("answered a response")
	}
}

// FuzzServeDNS feeds arbitrary packets to the UDP query handler: it must
// not panic, every reply must unpack and carry the query's ID, and where
// the fast path answers, the general path must answer the same.
func FuzzServeDNS(f *testing.F) {
	s := diffServer(f)
	for _, q := range []*dns.Msg{
		query("api.example.com.", dns.TypeA),
		withEDNS(query("API.example.com.", dns.TypeAAAA), 1232, "10.1.2.0/24"),
		withEDNS(query("www.example.com.", dns.TypeA), 4096, "2001:db8::/48"),
		query("missing.example.com.", dns.TypeTXT),
		query("example.com.", dns.TypeNS),
		query("example.org.", dns.TypeA),
		query("example.com.", dns.TypeAXFR),
	} {
		b, err := q.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	from := netip.MustParseAddrPort("192.0.2.1:5300")
	f.Fuzz(func(t *testing.T, pkt []byte) {
		var sn seen
		fastOut, handled := s.fast(pkt, from, nil, &sn) // no recover: a panic fails
		out := s.handleUDP(pkt, from, nil, &seen{})
		if out == nil {
			if handled && fastOut != nil {
				t.Fatal("fast path answered, handleUDP did not")
			}
			return
		}
		r := new(dns.Msg)
		if err := r.Unpack(out); err != nil {
			t.Fatalf("reply does not unpack: %v\n% x", err, out)
		}
		if !r.Response || len(pkt) < 2 || r.Id != uint16(pkt[0])<<8|uint16(pkt[1]) {
			t.Fatalf("reply header %v", r.MsgHdr)
		}
		if handled && fastOut != nil {
			clear(s.generalRec.slots[:])
			if d := sameReply(fastOut, s.general(pkt, from, nil)); d != "" {
				t.Fatalf("paths differ on % x: %s", pkt, d)
			}
			if d := sameRecord(&sn, &s.generalRec); d != "" {
				t.Fatalf("drain records differ on % x: %s", pkt, d)
			}
		}
		// The same query over TCP (no size limit) must answer and pack too.
		q := new(dns.Msg)
		if q.Unpack(pkt) == nil && !q.Response {
			w := &recorder{remote: tcpClient()}
			s.ServeDNS(w, q)
			if w.msg == nil {
				t.Fatal("no TCP answer")
			}
		}
	})
}

func tcpClient() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 99), Port: 5300} }
