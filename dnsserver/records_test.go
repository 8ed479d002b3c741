package dnsserver

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/state"
)

// recordsConfig is testConfig with static records of every kind.
func recordsConfig() *state.Config {
	c := testConfig()
	c.Records = []state.Record{
		{Name: "www", Type: "CNAME", Value: "api.example.com."}, // to a weighted service
		{Name: "alias", Type: "CNAME", Value: "fo"},             // relative: fo.example.com.
		{Name: "chain", Type: "cname", Value: "www"},            // two hops
		{Name: "ext", Type: "CNAME", Value: "target.other.net."},
		{Name: "dangling", Type: "CNAME", Value: "nothere"},
		{Name: "totxt", Type: "CNAME", Value: "static"},
		{Name: "@", Type: "TXT", Value: "v=spf1 -all"},
		{Name: "_dmarc", Type: "TXT", Value: "v=DMARC1; p=none"},
		{Name: "static", Type: "A", Value: "192.0.2.99"},
		{Name: "static", Type: "AAAA", Value: "2001:db8::99"},
		{Name: "static", Type: "TXT", Value: "hello", TTL: 60},
		{Name: "long.txt", Type: "TXT", Value: strings.Repeat("x", 300)},
		{Name: "Host.Sub.example.com.", Type: "A", Value: "192.0.2.98"},
	}
	return c
}

func TestRecords(t *testing.T) {
	srv := startServer(t, configured(t, recordsConfig()))
	const (
		wwwCNAME   = "www.example.com. 30 IN CNAME api.example.com."
		aliasCNAME = "alias.example.com. 30 IN CNAME fo.example.com."
	)
	tests := []struct {
		name    string
		qname   string
		qtype   uint16
		rcode   int
		answer  []string // exact records (any order), or the leading ones when regions is set
		regions int      // > 0: then that many records of one weighted region follow
		ns      []string
	}{
		{name: "CNAME to weighted, A", qname: "www.example.com.", qtype: dns.TypeA, answer: []string{wwwCNAME}, regions: 2},
		{name: "CNAME to weighted, AAAA", qname: "WWW.example.com.", qtype: dns.TypeAAAA, answer: []string{wwwCNAME}, regions: 1},
		{name: "CNAME asked for", qname: "www.example.com.", qtype: dns.TypeCNAME, answer: []string{wwwCNAME}},
		{name: "CNAME, target has no such type", qname: "www.example.com.", qtype: dns.TypeTXT,
			answer: []string{wwwCNAME}, ns: []string{soaLine}},
		{name: "CNAME ANY", qname: "www.example.com.", qtype: dns.TypeANY, answer: []string{wwwCNAME}},
		{name: "CNAME to failover", qname: "alias.example.com.", qtype: dns.TypeA,
			answer: []string{aliasCNAME, "fo.example.com. 30 IN A 192.0.2.11", "fo.example.com. 30 IN A 192.0.2.12"}},
		{name: "two hops", qname: "chain.example.com.", qtype: dns.TypeA,
			answer: []string{"chain.example.com. 30 IN CNAME www.example.com.", wwwCNAME}, regions: 2},
		{name: "CNAME out of zone", qname: "ext.example.com.", qtype: dns.TypeA,
			answer: []string{"ext.example.com. 30 IN CNAME target.other.net."}},
		{name: "dangling CNAME", qname: "dangling.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			answer: []string{"dangling.example.com. 30 IN CNAME nothere.example.com."}, ns: []string{soaLine}},
		{name: "CNAME to static TXT", qname: "totxt.example.com.", qtype: dns.TypeTXT,
			answer: []string{"totxt.example.com. 30 IN CNAME static.example.com.", `static.example.com. 60 IN TXT "hello"`}},
		{name: "underscore name", qname: "_DMARC.example.com.", qtype: dns.TypeTXT, answer: []string{`_dmarc.example.com. 30 IN TXT "v=DMARC1; p=none"`}},
		{name: "apex TXT", qname: "example.com.", qtype: dns.TypeTXT, answer: []string{`example.com. 30 IN TXT "v=spf1 -all"`}},
		{name: "static A", qname: "static.example.com.", qtype: dns.TypeA, answer: []string{"static.example.com. 30 IN A 192.0.2.99"}},
		{name: "static AAAA", qname: "static.example.com.", qtype: dns.TypeAAAA, answer: []string{"static.example.com. 30 IN AAAA 2001:db8::99"}},
		{name: "static without MX", qname: "static.example.com.", qtype: dns.TypeMX, ns: []string{soaLine}},
		{name: "long TXT split", qname: "long.txt.example.com.", qtype: dns.TypeTXT,
			answer: []string{`long.txt.example.com. 30 IN TXT "` + strings.Repeat("x", 255) + `" "` + strings.Repeat("x", 45) + `"`}},
		{name: "empty non-terminal of a record", qname: "sub.example.com.", qtype: dns.TypeA, ns: []string{soaLine}},
		{name: "record below it", qname: "host.sub.example.com.", qtype: dns.TypeA, answer: []string{"host.sub.example.com. 30 IN A 192.0.2.98"}},
		{name: "below a CNAME", qname: "x.www.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		// No wildcards: "*" is a name like any other, and it does not exist.
		{name: "no wildcard", qname: "*.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soaLine}},
		{name: "no wildcard below", qname: "nope.sub.example.com.", qtype: dns.TypeTXT, rcode: dns.RcodeNameError, ns: []string{soaLine}},
	}
	for _, tt := range tests {
		for _, network := range []string{"udp", "tcp"} {
			for _, edns := range []bool{false, true} {
				t.Run(tt.name+"/"+network+map[bool]string{true: "/edns"}[edns], func(t *testing.T) {
					q := query(tt.qname, tt.qtype)
					if edns {
						q = withEDNS(q, 1232, "10.20.30.0/24")
					}
					addr := srv.udp
					if network == "tcp" {
						addr = srv.tcp
					}
					r := exchange(t, network, addr, q)
					if r.Rcode != tt.rcode || !r.Authoritative || r.RecursionAvailable || r.Truncated {
						t.Fatalf("rcode %s aa %v ra %v tc %v, want %s\n%v", dns.RcodeToString[r.Rcode], r.Authoritative,
							r.RecursionAvailable, r.Truncated, dns.RcodeToString[tt.rcode], r)
					}
					if len(r.Question) != 1 || r.Question[0] != q.Question[0] {
						t.Errorf("question %v not echoed as asked", r.Question)
					}
					ans := r.Answer
					if tt.regions > 0 {
						if len(ans) != len(tt.answer)+tt.regions {
							t.Fatalf("answer %v: want %d records then %d of one region", ans, len(tt.answer), tt.regions)
						}
						tail := &dns.Msg{Answer: ans[len(tt.answer):]}
						if regs := answerRegions(tail); len(regs) != 1 {
							t.Errorf("steered part %v from regions %v", tail.Answer, regs)
						}
						for _, rr := range tail.Answer {
							if !sameName(rr.Header().Name, "api.example.com.") {
								t.Errorf("steered record %v: owner", rr)
							}
						}
						ans = ans[:len(tt.answer)]
					}
					if got, want := lower(rrStrings(ans)), lower(parseRRs(t, tt.answer...)); !slices.Equal(got, want) {
						t.Errorf("answer\n got %q\nwant %q", got, want)
					}
					if got, want := lower(rrStrings(r.Ns)), lower(parseRRs(t, tt.ns...)); !slices.Equal(got, want) {
						t.Errorf("authority\n got %q\nwant %q", got, want)
					}
					if (r.IsEdns0() != nil) != edns {
						t.Errorf("OPT in answer: %v, want %v", r.IsEdns0() != nil, edns)
					}
				})
			}
		}
	}
}

func TestRecordsCNAMEFollowsWeights(t *testing.T) {
	st := configured(t, recordsConfig())
	srv := startServer(t, withWeights(t, st, 0, 100, 0))
	r := exchange(t, "udp", srv.udp, query("www.example.com.", dns.TypeA))
	if regs := answerRegions(r); !slices.Equal(regs, []string{"us-west"}) {
		t.Fatalf("CNAME to api with only us-west weighted: %v", r.Answer)
	}
}
