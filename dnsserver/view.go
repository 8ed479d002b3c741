package dnsserver

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/state"
)

// SOA timers (RFC 1912 ranges); the minimum is the zone TTL.
const (
	soaRefresh = 3600
	soaRetry   = 600
	soaExpire  = 86400
)

// view is one immutable, prepared generation of the zone, built from one
// *state.State by Update. Queries read it without locks; nothing in it is
// modified after buildView returns, and every RR slice is clipped (len ==
// cap) so that a reply appending to it can never write into shared memory.
type view struct {
	serial uint32
	cfg    *state.Config // the config it was built from (identity, for Update)
	zone   string        // lower case, absolute
	soa    []dns.RR      // the SOA alone: apex answer and negative authority
	names  map[string]*node
}

// node is everything at one lower-case owner name of the zone.
type node struct {
	name  string
	sets  []rrset  // static RR sets: SOA and NS at the apex, A/AAAA of NS hosts
	hinfo []dns.RR // the RFC 8482 answer to qtype ANY
	svc   *service // set when a service lives at this name
}

// rrset is a prepared answer: the records and what goes with them in the
// additional section (glue for NS).
type rrset struct {
	qtype uint16
	rrs   []dns.RR
	extra []dns.RR
}

// set returns the static RR set of type t, or nil.
func (n *node) set(t uint16) *rrset {
	for i := range n.sets {
		if n.sets[i].qtype == t {
			return &n.sets[i]
		}
	}
	return nil
}

// Address families, indexes of per-family record sets.
const (
	famA    = 0
	famAAAA = 1
)

// service is a steered name. For failover and all, and for weighted with a
// single serving region, the answer does not depend on the client and is
// prepared whole in fixed; otherwise regions holds the candidates.
type service struct {
	name    string
	policy  string
	fixed   [2][]dns.RR // by family; used when regions is nil
	regions []region    // weighted with two or more serving regions
}

// tailored reports whether the answer depends on the client's subnet.
func (s *service) tailored() bool { return s.regions != nil }

// region is one weighted candidate: its effective weight, the precomputed
// hash state of its name, and its endpoints as records.
type region struct {
	name   string
	weight float64
	seed   uint64
	rrs    [2][]dns.RR
}

// buildView prepares the answers for st, which must have a config.
func buildView(st *state.State) (*view, error) {
	c := st.Config
	zone := dns.CanonicalName(c.Zone)
	if _, ok := dns.IsDomainName(zone); !ok {
		return nil, fmt.Errorf("zone %q is not a domain name", c.Zone)
	}
	nss := c.NameserverHosts()
	if len(nss) == 0 {
		return nil, fmt.Errorf("zone %s has no name servers", zone)
	}
	v := &view{
		serial: max(st.Serial, 1),
		cfg:    c,
		zone:   zone,
		names:  make(map[string]*node, len(c.Services)+len(nss)+1),
	}
	b := builder{v: v, ttl: c.TTL}

	soa := &dns.SOA{
		Hdr:     b.hdr(zone, dns.TypeSOA, c.TTL),
		Ns:      dns.CanonicalName(nss[0].Host),
		Mbox:    "hostmaster." + zone,
		Serial:  v.serial,
		Refresh: soaRefresh,
		Retry:   soaRetry,
		Expire:  soaExpire,
		Minttl:  c.TTL,
	}
	v.soa = []dns.RR{soa}
	apex := b.node(zone)
	apex.sets = append(apex.sets, rrset{qtype: dns.TypeSOA, rrs: v.soa})

	var nsRRs, glue []dns.RR
	for _, ns := range nss {
		host := dns.CanonicalName(ns.Host)
		nsRRs = append(nsRRs, &dns.NS{Hdr: b.hdr(zone, dns.TypeNS, c.TTL), Ns: host})
		if !dns.IsSubDomain(zone, host) {
			continue // out of zone: no glue, not ours to answer
		}
		addr, err := netip.ParseAddr(ns.Addr)
		if err != nil {
			return nil, fmt.Errorf("name server %s: %w", host, err)
		}
		rr := b.addrRR(host, addr, c.TTL)
		glue = append(glue, rr)
		b.addStatic(b.node(host), rr)
	}
	apex.sets = append(apex.sets, rrset{qtype: dns.TypeNS, rrs: slices.Clip(nsRRs), extra: slices.Clip(glue)})

	for i := range c.Services {
		svc := &c.Services[i]
		name := svc.Name + "." + zone
		n := b.node(name)
		s, err := b.service(st, svc, name)
		if err != nil {
			return nil, err
		}
		n.svc = s
	}

	for _, n := range v.names {
		n.hinfo = []dns.RR{&dns.HINFO{Hdr: b.hdr(n.name, dns.TypeHINFO, c.TTL), Cpu: "RFC8482"}}
		for i := range n.sets {
			n.sets[i].rrs = slices.Clip(n.sets[i].rrs)
		}
	}
	return v, nil
}

type builder struct {
	v   *view
	ttl uint32
}

func (b *builder) hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

// node returns the node at name, creating it and the empty non-terminals
// between it and the apex (which must answer NODATA, not NXDOMAIN).
func (b *builder) node(name string) *node {
	if n, ok := b.v.names[name]; ok {
		return n
	}
	n := &node{name: name}
	b.v.names[name] = n
	if name != b.v.zone {
		if i := strings.IndexByte(name, '.'); i >= 0 && i+1 < len(name) {
			b.node(name[i+1:])
		}
	}
	return n
}

func (b *builder) addStatic(n *node, rr dns.RR) {
	t := rr.Header().Rrtype
	if s := n.set(t); s != nil {
		s.rrs = append(s.rrs, rr)
		return
	}
	n.sets = append(n.sets, rrset{qtype: t, rrs: []dns.RR{rr}})
}

func (b *builder) addrRR(name string, a netip.Addr, ttl uint32) dns.RR {
	if a.Is4() {
		ip := a.As4()
		return &dns.A{Hdr: b.hdr(name, dns.TypeA, ttl), A: ip[:]}
	}
	ip := a.As16()
	return &dns.AAAA{Hdr: b.hdr(name, dns.TypeAAAA, ttl), AAAA: ip[:]}
}

// endpoints returns a region's endpoints as A and AAAA records, in config
// order, without duplicates.
func (b *builder) endpoints(name string, ttl uint32, addrs []string, seen map[netip.Addr]bool) ([2][]dns.RR, error) {
	var out [2][]dns.RR
	for _, s := range addrs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return out, fmt.Errorf("service %s: endpoint %q: %w", name, s, err)
		}
		if seen[a] {
			continue
		}
		seen[a] = true
		fam := famA
		if !a.Is4() {
			fam = famAAAA
		}
		out[fam] = append(out[fam], b.addrRR(name, a, ttl))
	}
	return out, nil
}

// service prepares the candidates of one service from the effective weights.
func (b *builder) service(st *state.State, svc *state.Service, name string) (*service, error) {
	s := &service{name: name, policy: svc.Policy}
	ttl := svc.TTL
	if ttl == 0 {
		ttl = b.ttl
	}
	var serving []region
	for _, rw := range st.EffectiveWeights(svc) {
		if rw.Weight <= 0 {
			continue
		}
		rrs, err := b.endpoints(name, ttl, svc.Endpoints[rw.Region], map[netip.Addr]bool{})
		if err != nil {
			return nil, err
		}
		serving = append(serving, region{name: rw.Region, weight: float64(rw.Weight), seed: regionSeed(rw.Region), rrs: rrs})
	}
	if len(serving) == 0 {
		return s, nil // no endpoints at all: NODATA
	}
	switch svc.Policy {
	case state.PolicyAll:
		seen := map[netip.Addr]bool{}
		for _, r := range serving {
			rrs, err := b.endpoints(name, ttl, svc.Endpoints[r.name], seen)
			if err != nil {
				return nil, err
			}
			s.fixed[famA] = append(s.fixed[famA], rrs[famA]...)
			s.fixed[famAAAA] = append(s.fixed[famAAAA], rrs[famAAAA]...)
		}
	case state.PolicyFailover:
		s.fixed = serving[0].rrs
	default: // weighted
		if len(serving) == 1 {
			s.fixed = serving[0].rrs
			break
		}
		for i := range serving {
			serving[i].rrs[famA] = slices.Clip(serving[i].rrs[famA])
			serving[i].rrs[famAAAA] = slices.Clip(serving[i].rrs[famAAAA])
		}
		s.regions = slices.Clip(serving)
	}
	s.fixed[famA] = slices.Clip(s.fixed[famA])
	s.fixed[famAAAA] = slices.Clip(s.fixed[famAAAA])
	return s, nil
}
