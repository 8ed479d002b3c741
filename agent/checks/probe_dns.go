package checks

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/miekg/dns"
)

// dnsProber asks one server one question and judges the rcode and,
// optionally, whether an expected address is in the answer.
type dnsProber struct {
	dial      *sourceDialer // for its source address and resolver
	server    string        // host:port
	proto     string        // udp | tcp
	qname     string
	qtype     uint16
	rcode     int
	rcodeName string
	addr      net.IP // nil: any answer passes
}

func newDNSProber(c Check, dial *sourceDialer) *dnsProber {
	p := &dnsProber{dial: dial, server: c.Target, proto: c.Protocol, qname: dns.Fqdn(c.Query),
		qtype: dns.StringToType[c.QueryType], rcode: dns.StringToRcode[c.ExpectRcode], rcodeName: c.ExpectRcode}
	if c.ExpectAddress != "" {
		p.addr = net.ParseIP(c.ExpectAddress)
	}
	return p
}

func (p *dnsProber) probe(ctx context.Context) (Status, string) {
	what := fmt.Sprintf("DNS %s %s @%s", p.qname, dns.TypeToString[p.qtype], p.server)
	host, port, err := net.SplitHostPort(p.server)
	if err != nil {
		return StatusFailing, what + ": " + err.Error()
	}
	ip := net.ParseIP(host)
	if ip == nil {
		ips, err := p.dial.resolver.LookupIP(ctx, "ip", host)
		if err != nil || len(ips) == 0 {
			return StatusFailing, describeErr(what, fmt.Errorf("resolve server %s: %v", host, err))
		}
		ip = ips[0]
	}
	d := &net.Dialer{}
	if p.dial.src != nil && bindable(p.dial.src, ip) {
		if p.proto == "tcp" {
			d.LocalAddr = &net.TCPAddr{IP: p.dial.src}
		} else {
			d.LocalAddr = &net.UDPAddr{IP: p.dial.src}
		}
	}
	cl := &dns.Client{Net: p.proto, Dialer: d}
	if dl, ok := ctx.Deadline(); ok {
		cl.Timeout = timeUntil(dl)
	}
	m := new(dns.Msg)
	m.SetQuestion(p.qname, p.qtype)
	m.RecursionDesired = false
	resp, _, err := cl.ExchangeContext(ctx, m, net.JoinHostPort(ip.String(), port))
	if err != nil {
		return StatusFailing, describeErr(what, err)
	}
	got := dns.RcodeToString[resp.Rcode]
	if resp.Rcode != p.rcode {
		return StatusFailing, fmt.Sprintf("%s: rcode %s, want %s", what, got, p.rcodeName)
	}
	var addrs []string
	found := false
	for _, rr := range resp.Answer {
		var a net.IP
		switch v := rr.(type) {
		case *dns.A:
			a = v.A
		case *dns.AAAA:
			a = v.AAAA
		default:
			continue
		}
		addrs = append(addrs, a.String())
		if p.addr != nil && a.Equal(p.addr) {
			found = true
		}
	}
	out := fmt.Sprintf("%s: %s, %d answers", what, got, len(resp.Answer))
	if len(addrs) > 0 {
		out += " (" + strings.Join(addrs, ", ") + ")"
	}
	if p.addr != nil && !found {
		return StatusFailing, fmt.Sprintf("%s; want %s", out, p.addr)
	}
	return StatusPassing, out
}
