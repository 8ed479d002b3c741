// Command dnsmap is a bare github.com/miekg/dns authoritative server
// answering from a Go map loaded from one zone file: the baseline of what
// miekg/dns costs per query, for bench/dns.sh. Not part of evac.
//
//	dnsmap -addr 127.0.0.1:5307 -zone example.com.zone
package main

import (
	"flag"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/miekg/dns"
)

type zone struct {
	origin string
	soa    dns.RR
	names  map[string]map[uint16][]dns.RR
}

func load(path string) (*zone, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z := &zone{names: map[string]map[uint16][]dns.RR{}}
	zp := dns.NewZoneParser(f, "", path)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		name := strings.ToLower(h.Name)
		if z.names[name] == nil {
			z.names[name] = map[uint16][]dns.RR{}
		}
		z.names[name][h.Rrtype] = append(z.names[name][h.Rrtype], rr)
		if h.Rrtype == dns.TypeSOA {
			z.soa, z.origin = rr, name
		}
	}
	return z, zp.Err()
}

func (z *zone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	if !dns.IsSubDomain(z.origin, name) {
		m.Rcode = dns.RcodeRefused
		_ = w.WriteMsg(m)
		return
	}
	m.Authoritative = true
	types, ok := z.names[name]
	switch {
	case !ok:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{z.soa}
	case len(types[q.Qtype]) == 0:
		m.Ns = []dns.RR{z.soa}
	default:
		m.Answer = types[q.Qtype]
	}
	_ = w.WriteMsg(m)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:5307", "ip:port (UDP)")
	file := flag.String("zone", "", "zone file")
	flag.Parse()
	z, err := load(*file)
	if err != nil {
		log.Fatal(err)
	}
	srv := &dns.Server{Addr: *addr, Net: "udp", Handler: z}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		_ = srv.Shutdown()
	}()
	if err := srv.ListenAndServe(); err != nil {
		log.Fatal(err)
	}
}
