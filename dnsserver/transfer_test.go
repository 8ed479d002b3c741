package dnsserver

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/state"
)

// secondaries returns unsigned secondaries at addrs.
func secondaries(addrs ...string) []state.Secondary {
	var out []state.Secondary
	for _, a := range addrs {
		out = append(out, state.Secondary{Address: a})
	}
	return out
}

// ixfrQuery is an IXFR query from a client at serial.
func ixfrQuery(zone string, serial uint32) *dns.Msg {
	m := query(zone, dns.TypeIXFR)
	m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET},
		Ns: "ns.", Mbox: "mbox.", Serial: serial}}
	return m
}

// axfr transfers the zone from addr: AXFR with miekg's transfer client
// (several messages), IXFR as one exchange over TCP.
func axfr(t *testing.T, addr, zone string, qtype uint16) []dns.RR {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(zone, qtype)
	if qtype == dns.TypeIXFR {
		m = ixfrQuery(zone, 0) // older than ours
		r := exchange(t, "tcp", addr, m)
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
			t.Fatalf("IXFR: %v", r)
		}
		return r.Answer
	}
	tr := &dns.Transfer{DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second}
	ch, err := tr.In(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	var rrs []dns.RR
	for env := range ch {
		if env.Error != nil {
			t.Fatalf("transfer: %v", env.Error)
		}
		rrs = append(rrs, env.RR...)
	}
	return rrs
}

func transferConfig(allow ...string) *state.Config {
	c := recordsConfig()
	c.Secondaries = secondaries("192.0.2.1:53")
	c.TransferAllow = allow
	return c
}

func TestAXFR(t *testing.T) {
	st := configured(t, transferConfig("127.0.0.0/8"))
	srv := startServer(t, st)

	for _, qtype := range []uint16{dns.TypeAXFR, dns.TypeIXFR} {
		rrs := axfr(t, srv.tcp, "Example.COM.", qtype)
		if len(rrs) < 3 {
			t.Fatalf("%s: %d records", dns.TypeToString[qtype], len(rrs))
		}
		first, last := rrs[0], rrs[len(rrs)-1]
		if first.Header().Rrtype != dns.TypeSOA || last.Header().Rrtype != dns.TypeSOA ||
			first.(*dns.SOA).Serial != st.Serial {
			t.Fatalf("%s: does not begin and end with the SOA: %v ... %v", dns.TypeToString[qtype], first, last)
		}
		got := rrStrings(rrs[1 : len(rrs)-1])
		for _, want := range parseRRs(t,
			"example.com. 30 IN NS ns1.example.com.",
			"ns1.example.com. 30 IN A 192.0.2.53",
			`example.com. 30 IN TXT "v=spf1 -all"`,
			"www.example.com. 30 IN CNAME api.example.com.",
			// a weighted service: every serving region
			"api.example.com. 20 IN A 192.0.2.11", "api.example.com. 20 IN A 198.51.100.11", "api.example.com. 20 IN A 203.0.113.11",
			"api.example.com. 20 IN AAAA 2001:db8:1::11",
			// failover: the first region only
			"fo.example.com. 30 IN A 192.0.2.11",
		) {
			if !slices.Contains(got, want) {
				t.Errorf("%s: %q missing", dns.TypeToString[qtype], want)
			}
		}
		for _, rr := range rrs[1 : len(rrs)-1] {
			if typ := rr.Header().Rrtype; typ == dns.TypeSOA || typ == dns.TypeHINFO {
				t.Errorf("%s: unexpected %v", dns.TypeToString[qtype], rr)
			}
		}
		if slices.Contains(got, parseRRs(t, "fo.example.com. 30 IN A 198.51.100.11")[0]) {
			t.Errorf("failover's second region in the transfer")
		}
	}

	// After an evacuation the transfer follows, with a higher serial.
	st2 := withWeights(t, st, 0)
	srv.Update(st2)
	rrs := axfr(t, srv.tcp, "example.com.", dns.TypeAXFR)
	if rrs[0].(*dns.SOA).Serial <= st.Serial {
		t.Errorf("serial %d did not rise", rrs[0].(*dns.SOA).Serial)
	}
	for _, rr := range rrs {
		if a, ok := rr.(*dns.A); ok && regionOf[a.A.String()] == "us-east" && sameName(a.Hdr.Name, "api.example.com.") {
			t.Errorf("evacuated region in the transfer: %v", rr)
		}
	}

	// IXFR over UDP: our SOA alone. AXFR over UDP, or another zone: REFUSED.
	q := ixfrQuery("example.com.", 1)
	if r := exchange(t, "udp", srv.udp, q); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 ||
		r.Answer[0].(*dns.SOA).Serial != st2.Serial {
		t.Errorf("IXFR over UDP: %v", r)
	}
	// IXFR without the client's SOA in authority (RFC 1995 section 3):
	// FORMERR, over UDP and TCP.
	for _, network := range []string{"udp", "tcp"} {
		addr := map[string]string{"udp": srv.udp, "tcp": srv.tcp}[network]
		q := query("example.com.", dns.TypeIXFR)
		q.Id = 0x4242
		if r := exchange(t, network, addr, q); r.Rcode != dns.RcodeFormatError || len(r.Answer) != 0 || r.Id != 0x4242 {
			t.Errorf("IXFR without SOA over %s: %v", network, r)
		}
	}
	// IXFR over TCP from a client that is up to date (or, by serial
	// arithmetic, ahead): our SOA alone.
	for _, serial := range []uint32{st2.Serial, st2.Serial + 5} {
		q := ixfrQuery("example.com.", serial)
		if r := exchange(t, "tcp", srv.tcp, q); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 ||
			r.Answer[0].(*dns.SOA).Serial != st2.Serial {
			t.Errorf("IXFR from serial %d: %v", serial, r)
		}
	}
	if r := exchange(t, "udp", srv.udp, query("example.com.", dns.TypeAXFR)); r.Rcode != dns.RcodeRefused {
		t.Errorf("AXFR over UDP: %v", r)
	}
	if r := exchange(t, "tcp", srv.tcp, query("example.org.", dns.TypeAXFR)); r.Rcode != dns.RcodeRefused {
		t.Errorf("AXFR of another zone: %v", r)
	}
	if r := exchange(t, "tcp", srv.tcp, query("www.example.com.", dns.TypeAXFR)); r.Rcode != dns.RcodeRefused {
		t.Errorf("AXFR of a name below the zone: %v", r)
	}
}

func TestAXFRAllowList(t *testing.T) {
	tests := []struct {
		name        string
		secondaries []string
		allow       []string
		ok          bool
	}{
		{"nobody", nil, nil, false},
		{"another secondary", []string{"192.0.2.1:53"}, nil, false},
		{"a secondary's address", []string{"127.0.0.1:5300"}, nil, true},
		{"an allowed network", nil, []string{"127.0.0.0/24"}, true},
		{"another network", []string{"192.0.2.1:53"}, []string{"10.0.0.0/8", "::1/128"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := recordsConfig()
			c.Secondaries, c.TransferAllow = secondaries(tt.secondaries...), tt.allow
			srv := startServer(t, configured(t, c))
			for _, qtype := range []uint16{dns.TypeAXFR, dns.TypeIXFR} {
				q := query("example.com.", qtype)
				if qtype == dns.TypeIXFR {
					q = ixfrQuery("example.com.", 0)
				}
				r := exchange(t, "tcp", srv.tcp, q)
				if ok := r.Rcode == dns.RcodeSuccess && len(r.Answer) > 1; ok != tt.ok {
					t.Errorf("%s: %s with %d records, want allowed %v", dns.TypeToString[qtype], dns.RcodeToString[r.Rcode], len(r.Answer), tt.ok)
				}
				if !tt.ok && (r.Authoritative || len(r.Answer) > 0) {
					t.Errorf("%s refused: %v", dns.TypeToString[qtype], r)
				}
			}
		})
	}
}

// fakeSecondary records the NOTIFY messages it receives and answers all
// but the first.
type fakeSecondary struct {
	pc   net.PacketConn
	msgs chan *dns.Msg
	from chan net.Addr
}

func startFakeSecondary(t *testing.T) *fakeSecondary {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSecondary{pc: pc, msgs: make(chan *dns.Msg, 100), from: make(chan net.Addr, 100)}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for i := 0; ; i++ {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			m := new(dns.Msg)
			if err := m.Unpack(buf[:n]); err != nil {
				t.Errorf("NOTIFY does not unpack: %v", err)
				continue
			}
			f.msgs <- m
			f.from <- from
			if i == 0 {
				continue // lost: the primary must retry
			}
			r := new(dns.Msg)
			r.SetReply(m)
			b, _ := r.Pack()
			_, _ = pc.WriteTo(b, from)
		}
	}()
	return f
}

func (f *fakeSecondary) next(t *testing.T) *dns.Msg {
	t.Helper()
	select {
	case m := <-f.msgs:
		<-f.from
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no NOTIFY within 10s")
		return nil
	}
}

func TestNotify(t *testing.T) {
	old := notifyTimeout
	t.Cleanup(func() { notifyTimeout = old }) // after the server's cleanup
	notifyTimeout = 100 * time.Millisecond
	sec := startFakeSecondary(t)
	c := recordsConfig()
	c.Secondaries = secondaries(sec.pc.LocalAddr().String())
	st := configured(t, c)
	srv := startServer(t, st)

	check := func(m *dns.Msg, serial uint32) {
		t.Helper()
		if m.Opcode != dns.OpcodeNotify || !m.Authoritative || m.Response || len(m.Question) != 1 ||
			m.Question[0].Name != "example.com." || m.Question[0].Qtype != dns.TypeSOA {
			t.Fatalf("not a NOTIFY for example.com.: %v", m)
		}
		if len(m.Answer) != 1 || m.Answer[0].(*dns.SOA).Serial != serial {
			t.Fatalf("NOTIFY answer %v, want SOA serial %d", m.Answer, serial)
		}
	}
	// At start: the first is lost, the retry arrives.
	first := sec.next(t)
	check(first, st.Serial)
	retry := sec.next(t)
	check(retry, st.Serial)
	// A change: one NOTIFY with the new serial, answered at once.
	st = withWeights(t, st, 10)
	srv.Update(st)
	check(sec.next(t), st.Serial)
	// No change, no NOTIFY.
	srv.Update(st)
	select {
	case m := <-sec.msgs:
		t.Fatalf("NOTIFY without a change: %v", m)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestAXFRManyMessages(t *testing.T) {
	c := testConfig()
	c.TransferAllow = []string{"127.0.0.0/8"}
	for i := range 600 {
		c.Records = append(c.Records, state.Record{Name: fmt.Sprintf("t%d", i), Type: "TXT", Value: strings.Repeat("x", 100)})
	}
	srv := startServer(t, configured(t, c))
	m := new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeAXFR)
	tr := &dns.Transfer{DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second}
	ch, err := tr.In(m, srv.tcp)
	if err != nil {
		t.Fatal(err)
	}
	msgs, txt := 0, 0
	for env := range ch {
		if env.Error != nil {
			t.Fatal(env.Error)
		}
		msgs++
		for _, rr := range env.RR {
			if rr.Header().Rrtype == dns.TypeTXT {
				txt++
			}
		}
	}
	if msgs < 3 || txt != 600 {
		t.Fatalf("%d messages, %d TXT records; want several messages and 600", msgs, txt)
	}
}
