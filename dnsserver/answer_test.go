package dnsserver

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

const soaLine = "example.com. 30 IN SOA ns1.example.com. hostmaster.example.com. 1 3600 600 1209600 30"

func TestAnswers(t *testing.T) {
	srv := startServer(t, configured(t, testConfig()))

	tests := []struct {
		name     string
		qname    string
		qtype    uint16
		qclass   uint16
		net      string // udp (default) or tcp
		rcode    int
		noAA     bool
		answer   []string
		ns       []string
		extra    []string
		regions  []string // instead of answer: the regions the answer comes from
		nAnswers int      // with regions: how many records
	}{
		{name: "SOA", qname: "example.com.", qtype: dns.TypeSOA, answer: []string{soaLine}},
		{name: "NS with glue", qname: "example.com.", qtype: dns.TypeNS,
			answer: []string{
				"example.com. 30 IN NS ns1.example.com.",
				"example.com. 30 IN NS ns2.example.com.",
				"example.com. 30 IN NS ns3.dns.example.com.",
				"example.com. 30 IN NS x.other.net.",
			},
			extra: []string{
				"ns1.example.com. 30 IN A 192.0.2.53",
				"ns2.example.com. 30 IN AAAA 2001:db8::53",
				"ns3.dns.example.com. 30 IN A 192.0.2.54",
			}},
		{name: "NS over TCP", qname: "example.com.", qtype: dns.TypeNS, net: "tcp",
			answer: []string{
				"example.com. 30 IN NS ns1.example.com.",
				"example.com. 30 IN NS ns2.example.com.",
				"example.com. 30 IN NS ns3.dns.example.com.",
				"example.com. 30 IN NS x.other.net.",
			},
			extra: []string{
				"ns1.example.com. 30 IN A 192.0.2.53",
				"ns2.example.com. 30 IN AAAA 2001:db8::53",
				"ns3.dns.example.com. 30 IN A 192.0.2.54",
			}},
		{name: "NS host A", qname: "ns1.example.com.", qtype: dns.TypeA,
			answer: []string{"ns1.example.com. 30 IN A 192.0.2.53"}},
		{name: "NS host AAAA", qname: "ns2.example.com.", qtype: dns.TypeAAAA,
			answer: []string{"ns2.example.com. 30 IN AAAA 2001:db8::53"}},
		{name: "NS host without AAAA", qname: "ns1.example.com.", qtype: dns.TypeAAAA, ns: []string{soaLine}},
		{name: "empty non-terminal", qname: "dns.example.com.", qtype: dns.TypeA, ns: []string{soaLine}},
		{name: "apex A is NODATA", qname: "example.com.", qtype: dns.TypeA, ns: []string{soaLine}},
		{name: "weighted A", qname: "api.example.com.", qtype: dns.TypeA, regions: []string{"*"}, nAnswers: 2},
		{name: "weighted AAAA", qname: "api.example.com.", qtype: dns.TypeAAAA, regions: []string{"*"}, nAnswers: 1},
		{name: "failover A", qname: "fo.example.com.", qtype: dns.TypeA,
			answer: []string{"fo.example.com. 30 IN A 192.0.2.11", "fo.example.com. 30 IN A 192.0.2.12"}},
		{name: "failover AAAA", qname: "fo.example.com.", qtype: dns.TypeAAAA,
			answer: []string{"fo.example.com. 30 IN AAAA 2001:db8:1::11"}},
		{name: "all A", qname: "all.example.com.", qtype: dns.TypeA,
			regions: []string{"eu-west", "us-east", "us-west"}, nAnswers: 6},
		{name: "all AAAA", qname: "all.example.com.", qtype: dns.TypeAAAA,
			answer: []string{
				"all.example.com. 30 IN AAAA 2001:db8:1::11",
				"all.example.com. 30 IN AAAA 2001:db8:2::11",
				"all.example.com. 30 IN AAAA 2001:db8:3::11",
			}},
		{name: "weighted without that family", qname: "v4only.example.com.", qtype: dns.TypeAAAA, ns: []string{soaLine}},
		{name: "NXDOMAIN", qname: "missing.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		{name: "below a service", qname: "x.api.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		{name: "NODATA", qname: "api.example.com.", qtype: dns.TypeTXT, ns: []string{soaLine}},
		{name: "NODATA CNAME", qname: "fo.example.com.", qtype: dns.TypeCNAME, ns: []string{soaLine}},
		{name: "out of zone", qname: "example.org.", qtype: dns.TypeA, rcode: dns.RcodeRefused, noAA: true},
		{name: "suffix but not below", qname: "notexample.com.", qtype: dns.TypeA, rcode: dns.RcodeRefused, noAA: true},
		{name: "parent", qname: "com.", qtype: dns.TypeNS, rcode: dns.RcodeRefused, noAA: true},
		{name: "out of zone NS host", qname: "x.other.net.", qtype: dns.TypeA, rcode: dns.RcodeRefused, noAA: true},
		{name: "case-insensitive", qname: "FO.eXaMpLe.CoM.", qtype: dns.TypeA,
			answer: []string{"fo.example.com. 30 IN A 192.0.2.11", "fo.example.com. 30 IN A 192.0.2.12"}},
		{name: "case-insensitive apex", qname: "EXAMPLE.COM.", qtype: dns.TypeSOA, answer: []string{soaLine}},
		{name: "ANY is RFC 8482", qname: "api.example.com.", qtype: dns.TypeANY,
			answer: []string{`api.example.com. 30 IN HINFO "RFC8482" ""`}},
		{name: "ANY at apex", qname: "example.com.", qtype: dns.TypeANY,
			answer: []string{`example.com. 30 IN HINFO "RFC8482" ""`}},
		{name: "ANY missing", qname: "nope.example.com.", qtype: dns.TypeANY, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		{name: "class CHAOS", qname: "example.com.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS, rcode: dns.RcodeRefused, noAA: true},
		{name: "AXFR not allowed", qname: "example.com.", qtype: dns.TypeAXFR, net: "tcp", rcode: dns.RcodeRefused, noAA: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := query(tt.qname, tt.qtype)
			if tt.qclass != 0 {
				q.Question[0].Qclass = tt.qclass
			}
			network, addr := "udp", srv.udp
			if tt.net == "tcp" {
				network, addr = "tcp", srv.tcp
			}
			r := exchange(t, network, addr, q)

			if r.Rcode != tt.rcode {
				t.Fatalf("rcode %s, want %s\n%v", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode], r)
			}
			if r.Id != q.Id || !r.Response || r.Opcode != dns.OpcodeQuery {
				t.Errorf("header: id %d/%d response %v opcode %d", r.Id, q.Id, r.Response, r.Opcode)
			}
			if r.Authoritative == tt.noAA || r.RecursionAvailable || !r.RecursionDesired || r.Truncated {
				t.Errorf("flags: aa %v ra %v rd %v tc %v", r.Authoritative, r.RecursionAvailable, r.RecursionDesired, r.Truncated)
			}
			if len(r.Question) != 1 || r.Question[0] != q.Question[0] {
				t.Errorf("question %v, want it echoed as %v", r.Question, q.Question)
			}
			if tt.regions != nil {
				regs := answerRegions(r)
				if len(r.Answer) != tt.nAnswers || (tt.regions[0] == "*" && len(regs) != 1) ||
					(tt.regions[0] != "*" && !slices.Equal(regs, tt.regions)) {
					t.Errorf("answer %v: regions %v, want %v with %d records", r.Answer, regs, tt.regions, tt.nAnswers)
				}
				for _, rr := range r.Answer {
					if !sameName(rr.Header().Name, tt.qname) || rr.Header().Ttl != ttlOf(tt.qname) {
						t.Errorf("record %v: owner or TTL", rr)
					}
				}
			} else if got, want := lower(rrStrings(r.Answer)), lower(parseRRs(t, tt.answer...)); !slices.Equal(got, want) {
				t.Errorf("answer\n got %q\nwant %q", got, want)
			}
			if got, want := lower(rrStrings(r.Ns)), lower(parseRRs(t, tt.ns...)); !slices.Equal(got, want) {
				t.Errorf("authority\n got %q\nwant %q", got, want)
			}
			if got, want := lower(rrStrings(r.Extra)), lower(parseRRs(t, tt.extra...)); !slices.Equal(got, want) {
				t.Errorf("additional\n got %q\nwant %q", got, want)
			}
			if r.IsEdns0() != nil {
				t.Errorf("OPT in the answer to a query without one")
			}
		})
	}
}

// lower lower-cases presentation lines: names in answers may take the case
// of the question (they are compressed to it), which DNS allows.
func lower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

func sameName(a, b string) bool { return dns.CanonicalName(a) == dns.CanonicalName(b) }

func ttlOf(qname string) uint32 {
	if sameName(qname, "api.example.com.") {
		return 20
	}
	return 30
}

func TestRefusedBeforeConfig(t *testing.T) {
	srv := startServer(t, nil)
	for _, qn := range []string{"example.com.", "api.example.com.", "example.org."} {
		r := exchange(t, "udp", srv.udp, query(qn, dns.TypeSOA))
		if r.Rcode != dns.RcodeRefused || r.Authoritative || len(r.Answer)+len(r.Ns) != 0 {
			t.Fatalf("%s before config: %v", qn, r)
		}
	}
	srv.Update(configured(t, testConfig()))
	r := exchange(t, "udp", srv.udp, query("example.com.", dns.TypeSOA))
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("after config: %v", r)
	}
}

func TestSerialFollowsState(t *testing.T) {
	st := configured(t, testConfig())
	srv := startServer(t, st)
	serial := func() uint32 {
		r := exchange(t, "udp", srv.udp, query("example.com.", dns.TypeSOA))
		return r.Answer[0].(*dns.SOA).Serial
	}
	if got := serial(); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}
	st = withWeights(t, st, 100, 50)
	srv.Update(st)
	if got := serial(); got != st.Serial || got <= 1 {
		t.Fatalf("serial %d, want %d", got, st.Serial)
	}
}

func TestEDNS(t *testing.T) {
	srv := startServer(t, configured(t, testConfig()))

	q := withEDNS(query("fo.example.com.", dns.TypeA), 4096, "")
	q.IsEdns0().SetDo()
	r := exchange(t, "udp", srv.udp, q)
	opt := r.IsEdns0()
	if opt == nil {
		t.Fatalf("no OPT echoed: %v", r)
	}
	if opt.UDPSize() != 1232 || opt.Version() != 0 || !opt.Do() || len(opt.Option) != 0 {
		t.Errorf("OPT %v: want udp 1232, version 0, DO copied, no options", opt)
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
		t.Errorf("answer %v", r)
	}

	// EDNS on an error answer too.
	r = exchange(t, "udp", srv.udp, withEDNS(query("example.org.", dns.TypeA), 1232, ""))
	if r.Rcode != dns.RcodeRefused || r.IsEdns0() == nil {
		t.Errorf("refused with EDNS: %v", r)
	}

	// Unknown EDNS version: BADVERS.
	q = withEDNS(query("fo.example.com.", dns.TypeA), 1232, "")
	q.IsEdns0().SetVersion(1)
	r = exchange(t, "udp", srv.udp, q)
	if r.Rcode != dns.RcodeBadVers || r.IsEdns0() == nil || r.IsEdns0().Version() != 0 || len(r.Answer) != 0 {
		t.Errorf("EDNS version 1: %v", r)
	}
}

func TestECS(t *testing.T) {
	srv := startServer(t, configured(t, testConfig()))
	ecsOf := func(r *dns.Msg) *dns.EDNS0_SUBNET {
		t.Helper()
		if opt := r.IsEdns0(); opt != nil {
			for _, o := range opt.Option {
				if e, ok := o.(*dns.EDNS0_SUBNET); ok {
					return e
				}
			}
		}
		t.Fatalf("no ECS echoed: %v", r)
		return nil
	}
	tests := []struct {
		qname    string
		qtype    uint16
		subnet   string
		family   uint16
		source   uint8
		scope    uint8
		wantAddr string
	}{
		{"api.example.com.", dns.TypeA, "10.1.2.3/32", 1, 32, 24, "10.1.2.3"},
		{"api.example.com.", dns.TypeA, "10.1.0.0/16", 1, 16, 16, "10.1.0.0"},
		{"api.example.com.", dns.TypeAAAA, "2001:db8:aa:bb::/64", 2, 64, 56, "2001:db8:aa:bb::"},
		{"api.example.com.", dns.TypeA, "2001:db8:aa::/48", 2, 48, 48, "2001:db8:aa::"},
		// Answers that do not depend on the client are scoped /0.
		{"fo.example.com.", dns.TypeA, "10.1.2.0/24", 1, 24, 0, "10.1.2.0"},
		{"missing.example.com.", dns.TypeA, "10.1.2.0/24", 1, 24, 0, "10.1.2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.qname+"/"+tt.subnet, func(t *testing.T) {
			r := exchange(t, "udp", srv.udp, withEDNS(query(tt.qname, tt.qtype), 1232, tt.subnet))
			e := ecsOf(r)
			if e.Family != tt.family || e.SourceNetmask != tt.source || e.SourceScope != tt.scope || e.Address.String() != tt.wantAddr {
				t.Errorf("ECS %v: want family %d %s/%d scope %d", e, tt.family, tt.wantAddr, tt.source, tt.scope)
			}
		})
	}

	t.Run("honoured", func(t *testing.T) {
		// The source address is the same for every query: different
		// answers can only come from the client subnet.
		seen := map[string]bool{}
		for _, region := range regionsFor(t, srv, 64) {
			seen[region] = true
		}
		if len(seen) != 3 {
			t.Fatalf("64 subnets reached regions %v, want all 3", seen)
		}
	})

	t.Run("same subnet with or without ECS", func(t *testing.T) {
		// Without ECS the source 127.0.0.1 counts as 127.0.0.0/24.
		plain := exchange(t, "udp", srv.udp, query("api.example.com.", dns.TypeA))
		ecs := exchange(t, "udp", srv.udp, withEDNS(query("api.example.com.", dns.TypeA), 1232, "127.0.0.77/32"))
		if a, b := answerRegions(plain), answerRegions(ecs); !slices.Equal(a, b) {
			t.Errorf("source /24 answered %v, ECS in the same /24 %v", a, b)
		}
	})

	t.Run("source prefix 0", func(t *testing.T) {
		q := withEDNS(query("api.example.com.", dns.TypeA), 1232, "")
		opt := q.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, Address: []byte{0, 0, 0, 0}})
		r := exchange(t, "udp", srv.udp, q)
		plain := exchange(t, "udp", srv.udp, query("api.example.com.", dns.TypeA))
		if e := ecsOf(r); e.SourceScope != 0 || e.SourceNetmask != 0 {
			t.Errorf("ECS %v, want /0 scope 0", e)
		}
		if a, b := answerRegions(r), answerRegions(plain); !slices.Equal(a, b) {
			t.Errorf("ECS /0 answered %v, want the source address's %v", a, b)
		}
	})
}

func TestTruncation(t *testing.T) {
	srv := startServer(t, configured(t, testConfig()))

	// 60 A records do not fit in 512 bytes: no partial RRset, only TC
	// (as Knot and BIND answer).
	r := exchange(t, "udp", srv.udp, query("big.example.com.", dns.TypeA))
	if !r.Truncated || len(r.Answer)+len(r.Ns)+len(r.Extra) != 0 || r.Rcode != dns.RcodeSuccess ||
		!r.Authoritative || len(r.Question) != 1 {
		t.Fatalf("UDP without EDNS: tc %v, %d answers", r.Truncated, len(r.Answer))
	}
	// They fit in 1232 with compression.
	r = exchange(t, "udp", srv.udp, withEDNS(query("big.example.com.", dns.TypeA), 1232, ""))
	if r.Truncated || len(r.Answer) != 60 || r.IsEdns0() == nil {
		t.Fatalf("UDP with EDNS 1232: tc %v, %d answers", r.Truncated, len(r.Answer))
	}
	r.Compress = true
	if n, _ := r.Pack(); len(n) > 1232 {
		t.Errorf("answer is %d bytes", len(n))
	}
	// A client advertising less than 512 still gets 512.
	r = exchange(t, "udp", srv.udp, withEDNS(query("big.example.com.", dns.TypeA), 256, ""))
	if !r.Truncated || len(r.Answer) != 0 || len(r.Extra) != 1 || r.IsEdns0() == nil {
		t.Fatalf("UDP with EDNS 256: tc %v, %d answers", r.Truncated, len(r.Answer))
	}
	// TCP: everything.
	r = exchange(t, "tcp", srv.tcp, query("big.example.com.", dns.TypeA))
	if r.Truncated || len(r.Answer) != 60 {
		t.Fatalf("TCP: tc %v, %d answers", r.Truncated, len(r.Answer))
	}
	if regs := answerRegions(r); len(regs) != 3 {
		t.Errorf("TCP answer regions %v", regs)
	}
}

func TestTCPSeveralQueriesOneConnection(t *testing.T) {
	srv := startServer(t, configured(t, testConfig()))
	c := &dns.Client{Net: "tcp"}
	conn, err := c.Dial(srv.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i, qn := range []string{"fo.example.com.", "big.example.com.", "missing.example.com."} {
		r, _, err := c.ExchangeWithConn(query(qn, dns.TypeA), conn)
		if err != nil {
			t.Fatalf("query %d on the connection: %v", i, err)
		}
		if want := []int{2, 60, 0}[i]; len(r.Answer) != want || r.Question[0].Name != qn {
			t.Errorf("query %d: %d answers, want %d", i, len(r.Answer), want)
		}
	}
}

func TestOpcodes(t *testing.T) {
	srv := startServer(t, configured(t, testConfig()))

	upd := new(dns.Msg)
	upd.SetUpdate("example.com.")
	upd.Insert([]dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "x.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: []byte{192, 0, 2, 1}}})
	r := exchange(t, "udp", srv.udp, upd)
	if r.Rcode != dns.RcodeNotImplemented || r.Opcode != dns.OpcodeUpdate {
		t.Errorf("UPDATE: rcode %s opcode %d", dns.RcodeToString[r.Rcode], r.Opcode)
	}

	notify := new(dns.Msg)
	notify.SetNotify("example.com.")
	r = exchange(t, "udp", srv.udp, notify)
	// We are the primary and have no primary: NOTIFY comes from an address
	// that is not a configured primary, and is refused.
	if r.Rcode != dns.RcodeRefused || r.Opcode != dns.OpcodeNotify || r.Authoritative {
		t.Errorf("NOTIFY: rcode %s opcode %d aa %v", dns.RcodeToString[r.Rcode], r.Opcode, r.Authoritative)
	}
	notify.SetNotify("example.org.")
	r = exchange(t, "udp", srv.udp, notify)
	if r.Rcode != dns.RcodeRefused || r.Opcode != dns.OpcodeNotify {
		t.Errorf("NOTIFY out of zone: rcode %s opcode %d", dns.RcodeToString[r.Rcode], r.Opcode)
	}
	// Other opcodes: NOTIMP.
	st := new(dns.Msg)
	st.SetQuestion("example.com.", dns.TypeSOA)
	st.Opcode = dns.OpcodeStatus
	if r = exchange(t, "udp", srv.udp, st); r.Rcode != dns.RcodeNotImplemented {
		t.Errorf("STATUS: rcode %s", dns.RcodeToString[r.Rcode])
	}
}
