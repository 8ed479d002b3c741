package integration

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/dnsserver/conformance"
)

// rawDNS sends pkt as is over network ("udp" or "tcp") to addr, from the
// address from ("": any), and returns the raw reply.
func rawDNS(network, addr, from string, pkt []byte) ([]byte, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	if from != "" {
		ip := net.ParseIP(from)
		d.LocalAddr = &net.UDPAddr{IP: ip}
		if network == "tcp" {
			d.LocalAddr = &net.TCPAddr{IP: ip}
		}
	}
	c, err := d.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if network == "tcp" {
		pkt = append(binary.BigEndian.AppendUint16(nil, uint16(len(pkt))), pkt...)
	}
	if _, err := c.Write(pkt); err != nil {
		return nil, err
	}
	if network == "udp" {
		buf := make([]byte, 65535)
		n, err := c.Read(buf)
		return buf[:n], err
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(l[:]))
	_, err = io.ReadFull(c, buf)
	return buf, err
}

// TestDNSConformance asks a real `evac server` the protocol conformance
// cases (package dnsserver/conformance: malformed queries, unknown opcodes,
// flags never copied, EDNS and Client Subnet errors, NOTIFY, IXFR without
// SOA), each over UDP (our fast path and its general fallback) and TCP,
// and wants replies that pass each case and are byte-identical on both;
// then the letter case of the question echoed (0x20), a UDP answer too big
// sent empty with TC, and IXFR over UDP per RFC 1995 (our SOA when up to
// date; the change when it fits) and over TCP (the change) to an allowed
// address. (The wildcard-address listener, which needs a 0.0.0.0 bind,
// is covered in process by dnsserver's TestStrictness.)
func TestDNSConformance(t *testing.T) {
	t.Parallel()
	const evacIP, xfrIP = "127.0.23.1", "127.0.23.9"
	dir := t.TempDir()
	c1 := startSingleNode(t, dir, evacIP, "--dns-rate-limit", "0")
	api, dnsAddr := c1.api, c1.dns
	steering := func(txt string) []byte {
		extra := fmt.Sprintf("transfer_allow: [%s/32]\nrecords:\n  - {name: change, type: TXT, value: %q}\n", xfrIP, txt)
		for i := range 60 { // one record set too big for 512 bytes
			extra += fmt.Sprintf("  - {name: big, type: A, value: 198.18.0.%d}\n", i+1)
		}
		return []byte(strings.Replace(testSteering(), "nameservers: {ns1: 192.0.2.53}\n", "nameservers: {ns1: 192.0.2.53}\n"+extra, 1))
	}
	if _, err := api.ApplyConfig(ctxT(t, 10*time.Second), steering("one"), ""); err != nil {
		t.Fatalf("apply: %v", err)
	}
	soa := func() (uint32, error) {
		r, err := dns.Exchange(new(dns.Msg).SetQuestion("example.com.", dns.TypeSOA), dnsAddr)
		if err != nil {
			return 0, err
		}
		if len(r.Answer) != 1 {
			return 0, fmt.Errorf("SOA: %v", r)
		}
		return r.Answer[0].(*dns.SOA).Serial, nil
	}
	var serial uint32
	eventually(t, 30*time.Second, "evac serves the zone", func() error {
		var err error
		serial, err = soa()
		return err
	})

	cases, err := conformance.Cases("example.com.", "api.example.com.")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			var first []byte
			for _, network := range []string{"udp", "tcp"} {
				out, err := rawDNS(network, dnsAddr, "", tc.Query)
				if err != nil {
					t.Fatalf("%s: %v", network, err)
				}
				if err := tc.Check(out); err != nil {
					t.Errorf("%s: %v", network, err)
				}
				if first == nil {
					first = out
				} else if !bytes.Equal(first, out) {
					t.Errorf("UDP and TCP answer differently:\n% x\n% x", first, out)
				}
			}
		})
	}

	exchange := func(network, from string, m *dns.Msg) *dns.Msg {
		t.Helper()
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		out, err := rawDNS(network, dnsAddr, from, b)
		if err != nil {
			t.Fatalf("%s %v: %v", network, m.Question, err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(out); err != nil {
			t.Fatal(err)
		}
		return r
	}
	// 0x20: the question's spelling in every owner name of the zone.
	for _, network := range []string{"udp", "tcp"} {
		r := exchange(network, "", new(dns.Msg).SetQuestion("aPi.ExAmPlE.cOm.", dns.TypeA))
		if len(r.Answer) == 0 {
			t.Fatalf("%s: api A: %v", network, r)
		}
		for _, rr := range r.Answer {
			if rr.Header().Name != "aPi.ExAmPlE.cOm." {
				t.Errorf("%s: owner %s, asked aPi.ExAmPlE.cOm.", network, rr.Header().Name)
			}
		}
	}
	// Too big for UDP: no partial RRset, TC; whole over TCP.
	if r := exchange("udp", "", new(dns.Msg).SetQuestion("big.example.com.", dns.TypeA)); !r.Truncated || len(r.Answer) != 0 {
		t.Errorf("big over UDP: TC %v, %d answers", r.Truncated, len(r.Answer))
	}
	if r := exchange("tcp", "", new(dns.Msg).SetQuestion("big.example.com.", dns.TypeA)); r.Truncated || len(r.Answer) != 60 {
		t.Errorf("big over TCP: TC %v, %d answers", r.Truncated, len(r.Answer))
	}

	// IXFR (RFC 1995) from the allowed address.
	ixfr := func(from uint32) *dns.Msg {
		m := new(dns.Msg).SetQuestion("example.com.", dns.TypeIXFR)
		m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeSOA, Class: dns.ClassINET},
			Ns: "ns.", Mbox: "mbox.", Serial: from}}
		return m
	}
	if r := exchange("udp", xfrIP, ixfr(serial)); len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != serial {
		t.Errorf("IXFR over UDP, up to date: %v", r)
	}
	if r := exchange("udp", "", ixfr(serial-1)); r.Rcode != dns.RcodeRefused {
		t.Errorf("IXFR from an address not allowed: %v", r)
	}
	if _, err := api.ApplyConfig(ctxT(t, 10*time.Second), steering("two"), ""); err != nil {
		t.Fatalf("apply: %v", err)
	}
	var next uint32
	eventually(t, 30*time.Second, "a new serial", func() error {
		var err error
		if next, err = soa(); err == nil && next == serial {
			err = fmt.Errorf("serial still %d", serial)
		}
		return err
	})
	// The answer: our SOA, the client's, the TXT deleted, (our SOA), the
	// TXT added, our SOA; a change of nothing the transfer holds, applied
	// in between, adds a pair of SOAs and no records.
	for _, network := range []string{"udp", "tcp"} {
		r := exchange(network, xfrIP, ixfr(serial))
		var soas []uint32
		var recs []string
		for _, rr := range r.Answer {
			switch rr := rr.(type) {
			case *dns.SOA:
				soas = append(soas, rr.Serial)
			case *dns.TXT:
				recs = append(recs, fmt.Sprintf("TXT %q", strings.Join(rr.Txt, "")))
			default:
				recs = append(recs, rr.String())
			}
		}
		if len(soas) < 4 || soas[0] != next || soas[1] != serial || soas[len(soas)-1] != next ||
			strings.Join(recs, ", ") != `TXT "one", TXT "two"` {
			t.Errorf("IXFR over %s from %d to %d: SOA serials %v, records %q", network, serial, next, soas, recs)
		}
	}
	if r := exchange("udp", xfrIP, new(dns.Msg).SetQuestion("example.com.", dns.TypeAXFR)); r.Rcode != dns.RcodeRefused {
		t.Errorf("AXFR over UDP: %v", r)
	}
}
