package dnsserver

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/dnsserver/topology"
)

// SOA timers within RFC 1912 section 2.2's recommendations: refresh
// between 20 minutes and 12 hours, retry below refresh, expire two weeks
// (2 to 4 weeks), so a secondary keeps serving through a long outage of
// every controller. The minimum (negative-caching TTL) is the zone TTL.
const (
	soaRefresh = 3600
	soaRetry   = 600
	soaExpire  = 14 * 86400
)

// SecondaryLag is how long a secondary that missed a NOTIFY may serve an
// older copy of the zone: the SOA refresh plus one retry. A DNSSEC
// rollover step waits for it too when secondaries take signed copies.
const SecondaryLag = (soaRefresh + soaRetry) * time.Second

// maxChain bounds CNAME chasing inside the zone (config validation already
// rejects loops and longer chains).
const maxChain = 8

// headerLen is the length of the DNS message header.
const headerLen = 12

// view is one immutable, prepared generation of the zone, built from one
// *state.State by Update. Queries read it without locks; nothing in it is
// modified after buildView returns, and every RR slice is clipped (len ==
// cap) so that a reply appending to it can never write into shared memory.
type view struct {
	// serial is the SOA serial served: the state serial, plus a signing
	// period offset with signed transfers (xfrsign.go).
	serial      uint32
	stateSerial uint32        // max(st.Serial, 1)
	cfg         *state.Config // the config it was built from (identity, for Update)
	st          *state.State  // the state it was built from (re-signing rebuilds from it)
	zone        string        // lower case, absolute
	soa         []dns.RR      // the SOA alone: apex answer and negative authority
	// soaTail is the SOA record packed without its owner name (type to
	// RDATA, names uncompressed): the fast path writes a pointer to the zone
	// inside the question, then this.
	soaTail []byte
	zoneLen int // the zone's length in wire format
	names   map[string]*node

	// Zone transfers: who may, and what they get (SOA first, without the
	// closing SOA).
	transferAllow []netip.Prefix
	secondaries   []secondary
	axfr          []dns.RR
	signedXfr     bool // axfr is signed (xfrsign.go)
	// lacksKeys: built unsigned because this server lacks keys the
	// cluster signs with (buildSigned). Queries with DO get SERVFAIL from
	// this view whatever the server-wide refusal says at that instant, so
	// no query racing a refusal's change gets an unsigned answer.
	lacksKeys bool
	// journal is the IXFR journal up to this version (journal.go), set
	// by Update before the view is published; nil: empty.
	journal *journal

	// For drain tracking (drain.go): each region's bit in an answer's
	// region mask (the config's first 64 regions), and each service's
	// steering, indexed by choice.svc-1.
	regionBits map[string]uint64
	services   []steered

	// topo is the compiled topology when a service uses nearest: built
	// once per config and shared by the views of that config.
	topo *topology.Table
	// demand counts nearest answers by home region (demand.go); nil when
	// no service uses nearest.
	demand *demandTable

	// dnssec is the signing of this generation (sign.go); nil: unsigned.
	dnssec *viewSigning
}

// steered is how a service's answers pick regions, without the records:
// what the tracker needs to know which region a client subnet is due.
type steered struct {
	name    string
	ttl     uint32
	regions []region // weighted over two or more regions (ans unset)
	near    *nearest // nearest (ans unset, mask the region's bit)
	fixed   uint64   // otherwise: the regions every client is told
}

// due returns the regions the client subnet key is told for the service;
// geo is the server's GeoIP database, or nil.
func (st *steered) due(key *subnetKey, geo topology.Locator) uint64 {
	if st.near != nil {
		var buf [topology.MaxRegions]uint8
		return st.near.cands[st.near.pick(key, geo, buf[:]).region].mask
	}
	if st.regions == nil {
		return st.fixed
	}
	return st.regions[pick(st.regions, key.bytes())].mask
}

// node is everything at one lower-case owner name of the zone, prepared
// per query type.
type node struct {
	name  string
	types map[uint16]*choice // qtypes with data (or, at a CNAME, whose chain was followed)
	other *choice            // any other qtype: NODATA, or the CNAME chain ending there
	any   *prepared          // the RFC 8482 answer to ANY (HINFO), or the CNAME
}

// lookup returns the answer to qtype at n.
func (n *node) lookup(qtype uint16) *choice {
	if c, ok := n.types[qtype]; ok {
		return c
	}
	return n.other
}

// choice is the answer to one (name, qtype): fixed, or one per weighted
// region when it depends on the client's subnet.
type choice struct {
	fixed   *prepared
	regions []region // weighted with two or more serving regions
	near    *nearest // policy nearest
	// svc is 1 + the index of the service whose endpoints the answer
	// holds (0: none, or past the 255th service), and mask the regions a
	// fixed answer names, for drain tracking.
	svc  uint8
	mask uint64
}

// tailored reports whether the answer depends on the client's subnet.
func (c *choice) tailored() bool { return c.regions != nil || c.near != nil }

// region is one weighted candidate: its effective weight, the precomputed
// hash state of its name, and the answer when it is chosen.
type region struct {
	name   string
	weight float64
	seed   uint64
	ans    *prepared
	mask   uint64 // the region's bit when ans has addresses, else 0
}

// prepared is one complete answer: the records (for the general path,
// which packs them with miekg/dns) and the same sections already packed
// in wire format after the question of the lower-case owner name (for the
// fast path, which copies them after the question as asked: the question
// has the same length in any case, so compression pointers stay valid).
type prepared struct {
	rcode  int
	answer []dns.RR
	ns     []dns.RR
	extra  []dns.RR
	wire   []byte
	counts [3]uint16 // answer, authority, additional
	// A negative answer says which name it denies (the last of a CNAME
	// chain) and which type (0: every type the name lacks), and whether
	// the name does not exist: the signed twin proves it (sign.go).
	deny     string
	denyType uint16
	denyNX   bool
	// sig is the same answer with its DNSSEC records, for queries with
	// DO, when the zone is signed (sign.go); nil otherwise.
	sig *prepared
}

// buildView prepares the answers for st, which must have a config.
// prev, the current view or nil, lends its compiled topology when the
// config is the same. sg signs it (nil: unsigned); serialOffset is what
// the served SOA serial adds to the state's (xfrsign.go).
func buildView(st *state.State, prev *view, sg *signer, serialOffset uint32) (*view, error) {
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
		serial:      max(st.Serial, 1) + serialOffset,
		stateSerial: max(st.Serial, 1),
		cfg:         c,
		st:          st,
		zone:        zone,
		names:       make(map[string]*node, len(c.Services)+len(nss)+len(c.Records)+1),
		regionBits:  map[string]uint64{},
		services:    make([]steered, len(c.Services)),
	}
	for i, r := range c.Regions[:min(len(c.Regions), 64)] {
		v.regionBits[r.Name] = 1 << i
	}
	b := &builder{v: v, ttl: c.TTL, raw: map[string]*rawNode{}, regionIdx: map[string]int{}, sg: sg}
	for i, r := range c.Regions {
		b.regionIdx[r.Name] = i
	}
	var prevDemand *demandTable
	if prev != nil {
		prevDemand = prev.demand
	}
	v.demand = newDemandTable(c, prevDemand)
	b.accept = spillAccepts(st, b.regionIdx, len(c.Regions))
	for i := range c.Services {
		if c.Services[i].Policy != state.PolicyNearest {
			continue
		}
		if prev != nil && prev.cfg == c && prev.topo != nil {
			v.topo = prev.topo
			break
		}
		t, err := topology.Build(c)
		if err != nil {
			return nil, err
		}
		v.topo = t
		break
	}

	soa := &dns.SOA{
		Hdr:     hdr(zone, dns.TypeSOA, c.TTL),
		Ns:      dns.CanonicalName(nss[0].Host),
		Mbox:    "hostmaster." + zone,
		Serial:  v.serial,
		Refresh: soaRefresh,
		Retry:   soaRetry,
		Expire:  soaExpire,
		Minttl:  c.TTL,
	}
	v.soa = []dns.RR{soa}
	tail, zoneLen, err := packTail(soa)
	if err != nil {
		return nil, err
	}
	v.soaTail, v.zoneLen = tail, zoneLen
	apex := b.rawNode(zone)
	apex.add(soa)
	if sg != nil {
		for _, k := range sg.keys.DNSKEYs(zone, c.TTL) {
			apex.add(k)
		}
	}

	for _, ns := range nss {
		host := dns.CanonicalName(ns.Host)
		apex.add(&dns.NS{Hdr: hdr(zone, dns.TypeNS, c.TTL), Ns: host})
		if !dns.IsSubDomain(zone, host) {
			continue // out of zone: no glue, not ours to answer
		}
		addr, err := netip.ParseAddr(ns.Addr)
		if err != nil {
			return nil, fmt.Errorf("name server %s: %w", host, err)
		}
		rr := addrRR(host, addr, c.TTL)
		b.glue = append(b.glue, rr)
		b.rawNode(host).add(rr)
	}
	for i, r := range c.Records {
		rr, err := recordRR(r, zone)
		if err != nil {
			return nil, fmt.Errorf("records[%d]: %w", i, err)
		}
		b.rawNode(r.Owner(zone)).add(rr)
	}
	for i := range c.Services {
		svc := &c.Services[i]
		name := svc.Name + "." + zone
		s, err := b.service(st, svc, name)
		if err != nil {
			return nil, err
		}
		if i < 255 {
			s.idx = uint8(i + 1)
		}
		b.rawNode(name).svc = s
		v.services[i] = s.steered(b, svc.Name, svc.TTL)
		if v.services[i].ttl == 0 {
			v.services[i].ttl = c.TTL
		}
	}
	if err := b.prepare(); err != nil {
		return nil, err
	}
	v.dnssec = b.signing()
	if err := v.transfers(b); err != nil {
		return nil, err
	}
	return v, nil
}

// recordRR turns a validated static record into its RR.
func recordRR(r state.Record, zone string) (dns.RR, error) {
	owner := r.Owner(zone)
	switch r.Type {
	case state.RecordA, state.RecordAAAA:
		a, err := netip.ParseAddr(r.Value)
		if err != nil {
			return nil, err
		}
		return addrRR(owner, a, r.TTL), nil
	case state.RecordCNAME:
		return &dns.CNAME{Hdr: hdr(owner, dns.TypeCNAME, r.TTL), Target: dns.CanonicalName(r.Value)}, nil
	case state.RecordTXT:
		var txt []string
		for s := r.Value; ; s = s[255:] {
			if len(s) <= 255 {
				txt = append(txt, s)
				break
			}
			txt = append(txt, s[:255])
		}
		return &dns.TXT{Hdr: hdr(owner, dns.TypeTXT, r.TTL), Txt: txt}, nil
	}
	return nil, fmt.Errorf("type %q is not supported", r.Type)
}

// packTail packs rr without compression and returns what follows its owner
// name, and the owner name's length.
func packTail(rr dns.RR) ([]byte, int, error) {
	buf := make([]byte, dns.Len(rr)+64)
	off, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return nil, 0, err
	}
	nameLen, err := dns.PackDomainName(rr.Header().Name, make([]byte, 256), 0, nil, false)
	if err != nil {
		return nil, 0, err
	}
	return slices.Clip(buf[nameLen:off:off]), nameLen, nil
}

func hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

func addrRR(name string, a netip.Addr, ttl uint32) dns.RR {
	if a.Is4() {
		ip := a.As4()
		return &dns.A{Hdr: hdr(name, dns.TypeA, ttl), A: ip[:]}
	}
	ip := a.As16()
	return &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA, ttl), AAAA: ip[:]}
}

// builder holds the zone's data by name while the view is prepared.
type builder struct {
	v    *view
	ttl  uint32
	raw  map[string]*rawNode
	glue []dns.RR // A/AAAA of the in-zone name servers
	// regionIdx is each region's index in config order.
	regionIdx map[string]int
	// accept is the spill plans' accept shares (demand.go), nil: none.
	accept []float64
	// sg signs the answers when the zone is signed (sign.go); nil: unsigned.
	sg *signer
}

// rawNode is the data at one name before it is prepared.
type rawNode struct {
	name  string
	sets  map[uint16][]dns.RR
	order []uint16 // types in the order first added
	svc   *service
}

func (n *rawNode) add(rr dns.RR) {
	t := rr.Header().Rrtype
	if _, ok := n.sets[t]; !ok {
		n.order = append(n.order, t)
	}
	n.sets[t] = append(n.sets[t], rr)
}

// rawNode returns the node at name, creating it and the empty
// non-terminals between it and the apex (which answer NODATA, not NXDOMAIN).
func (b *builder) rawNode(name string) *rawNode {
	if n, ok := b.raw[name]; ok {
		return n
	}
	n := &rawNode{name: name, sets: map[uint16][]dns.RR{}}
	b.raw[name] = n
	if name != b.v.zone {
		if i := strings.IndexByte(name, '.'); i >= 0 && i+1 < len(name) {
			b.rawNode(name[i+1:])
		}
	}
	return n
}

// Address families, indexes of per-family record sets.
const (
	famA    = 0
	famAAAA = 1
)

// service is a steered name: either the answer does not depend on the
// client (fixed, by family) or regions holds the weighted candidates.
type service struct {
	fixed     [2][]dns.RR
	fixedMask [2]uint64 // the regions named by fixed, per family
	regions   []svcRegion
	near      bool  // policy nearest: regions are its serving regions
	idx       uint8 // 1 + the service's index, 0 past 255
	name      string
}

type svcRegion struct {
	name   string
	weight float64
	rrs    [2][]dns.RR
	bit    uint64
}

// steered returns how s picks regions, for drain tracking.
func (s *service) steered(b *builder, name string, ttl uint32) steered {
	st := steered{name: name, ttl: ttl, fixed: s.fixedMask[famA] | s.fixedMask[famAAAA]}
	if s.near {
		st.fixed = 0
		st.near = s.nearest(b, famA, nil)
		for _, r := range s.regions {
			st.near.cands[b.regionIdx[r.name]].mask = r.bit
		}
		return st
	}
	if s.regions != nil {
		st.fixed = 0
		for _, r := range s.regions {
			st.regions = append(st.regions, region{name: r.name, weight: r.weight, seed: regionSeed(r.name), mask: r.bit})
		}
	}
	return st
}

// familyMask is bit when rrs has records, else 0.
func familyMask(rrs []dns.RR, bit uint64) uint64 {
	if len(rrs) == 0 {
		return 0
	}
	return bit
}

// endpoints returns a region's endpoints as A and AAAA records, in config
// order, without duplicates.
func endpoints(name string, ttl uint32, addrs []string, seen map[netip.Addr]bool) ([2][]dns.RR, error) {
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
		out[fam] = append(out[fam], addrRR(name, a, ttl))
	}
	return out, nil
}

// service prepares the candidates of one service from the effective weights.
func (b *builder) service(st *state.State, svc *state.Service, name string) (*service, error) {
	s := &service{name: svc.Name}
	ttl := svc.TTL
	if ttl == 0 {
		ttl = b.ttl
	}
	var serving []svcRegion
	for _, rw := range st.EffectiveWeights(svc) {
		if rw.Weight <= 0 {
			continue
		}
		rrs, err := endpoints(name, ttl, svc.Endpoints[rw.Region], map[netip.Addr]bool{})
		if err != nil {
			return nil, err
		}
		serving = append(serving, svcRegion{name: rw.Region, weight: float64(rw.Weight), rrs: rrs, bit: b.v.regionBits[rw.Region]})
	}
	switch {
	case len(serving) == 0:
		// no endpoints at all: NODATA
	case svc.Policy == state.PolicyNearest:
		s.regions, s.near = serving, true
	case svc.Policy == state.PolicyAll:
		seen := map[netip.Addr]bool{}
		for _, r := range serving {
			rrs, err := endpoints(name, ttl, svc.Endpoints[r.name], seen)
			if err != nil {
				return nil, err
			}
			s.fixed[famA] = append(s.fixed[famA], rrs[famA]...)
			s.fixed[famAAAA] = append(s.fixed[famAAAA], rrs[famAAAA]...)
			s.fixedMask[famA] |= familyMask(rrs[famA], r.bit)
			s.fixedMask[famAAAA] |= familyMask(rrs[famAAAA], r.bit)
		}
	case svc.Policy == state.PolicyFailover, len(serving) == 1:
		s.fixed = serving[0].rrs
		s.fixedMask = [2]uint64{familyMask(s.fixed[famA], serving[0].bit), familyMask(s.fixed[famAAAA], serving[0].bit)}
	default: // weighted over two or more regions
		s.regions = serving
	}
	return s, nil
}

// prepare turns every raw node into its prepared answers.
func (b *builder) prepare() error {
	for name, rn := range b.raw {
		n := &node{name: name, types: map[uint16]*choice{}}
		if cn, ok := rn.sets[dns.TypeCNAME]; ok {
			n.types[dns.TypeCNAME] = &choice{fixed: &prepared{answer: cn}}
			n.any = &prepared{answer: cn}
			// Follow the chain for the types its end has, and A/AAAA.
			types := []uint16{dns.TypeA, dns.TypeAAAA}
			end := b.chainEnd(name)
			if end != nil {
				for _, t := range end.order {
					if !slices.Contains(types, t) && t != dns.TypeCNAME {
						types = append(types, t)
					}
				}
			}
			for _, t := range types {
				n.types[t] = b.resolve(name, t, 0)
			}
			n.other = b.resolve(name, dns.TypeNULL, 0) // a type nothing has
		} else {
			for _, t := range rn.order {
				n.types[t] = b.resolve(name, t, 0)
			}
			if rn.svc != nil {
				n.types[dns.TypeA] = b.resolve(name, dns.TypeA, 0)
				n.types[dns.TypeAAAA] = b.resolve(name, dns.TypeAAAA, 0)
			}
			n.other = &choice{fixed: b.nodata(name, 0)}
			if b.sg != nil {
				// The compact-denial NSEC lists NSEC and RRSIG: a query
				// for either gets a denial that leaves it out (sign.go).
				for _, t := range []uint16{dns.TypeNSEC, dns.TypeRRSIG} {
					if _, ok := n.types[t]; !ok {
						n.types[t] = &choice{fixed: b.nodata(name, t)}
					}
				}
			}
			n.any = &prepared{answer: []dns.RR{&dns.HINFO{Hdr: hdr(name, dns.TypeHINFO, b.ttl), Cpu: "RFC8482"}}}
		}
		if err := n.pack(b); err != nil {
			return fmt.Errorf("prepare %s: %w", name, err)
		}
		b.v.names[name] = n
	}
	return nil
}

// chainEnd returns the in-zone node a CNAME chain from name ends at, or nil.
func (b *builder) chainEnd(name string) *rawNode {
	for range maxChain + 1 {
		rn := b.raw[name]
		if rn == nil {
			return nil
		}
		cn, ok := rn.sets[dns.TypeCNAME]
		if !ok {
			return rn
		}
		name = cn[0].(*dns.CNAME).Target
	}
	return nil
}

// nodata is the answer denying qtype (0: any type name lacks) at name.
func (b *builder) nodata(name string, qtype uint16) *prepared {
	return &prepared{ns: b.v.soa, deny: name, denyType: qtype}
}

// resolve computes the answer to (name, qtype) from the raw data,
// following CNAMEs inside the zone. Every call returns new prepared values,
// which the caller's node packs for its own name.
func (b *builder) resolve(name string, qtype uint16, depth int) *choice {
	rn := b.raw[name]
	if rn == nil {
		if depth > 0 && dns.IsSubDomain(b.v.zone, name) {
			return &choice{fixed: &prepared{rcode: dns.RcodeNameError, ns: b.v.soa, deny: name, denyNX: true}}
		}
		return &choice{fixed: &prepared{}} // out of zone: the resolver goes on
	}
	if cn, ok := rn.sets[dns.TypeCNAME]; ok && qtype != dns.TypeCNAME {
		if depth >= maxChain {
			return &choice{fixed: &prepared{answer: cn}}
		}
		return prefixed(cn, b.resolve(cn[0].(*dns.CNAME).Target, qtype, depth+1))
	}
	if rn.svc != nil && (qtype == dns.TypeA || qtype == dns.TypeAAAA) {
		fam := famA
		if qtype == dns.TypeAAAA {
			fam = famAAAA
		}
		if rn.svc.regions == nil {
			return &choice{fixed: b.rrsOrNodata(name, qtype, rn.svc.fixed[fam]), svc: rn.svc.idx, mask: rn.svc.fixedMask[fam]}
		}
		if rn.svc.near {
			return &choice{svc: rn.svc.idx, near: rn.svc.nearest(b, fam, func(rrs []dns.RR) *prepared { return b.rrsOrNodata(name, qtype, rrs) })}
		}
		c := &choice{svc: rn.svc.idx}
		for _, r := range rn.svc.regions {
			c.regions = append(c.regions, region{name: r.name, weight: r.weight, seed: regionSeed(r.name),
				ans: b.rrsOrNodata(name, qtype, r.rrs[fam]), mask: familyMask(r.rrs[fam], r.bit)})
		}
		return c
	}
	rrs := rn.sets[qtype]
	if len(rrs) == 0 {
		return &choice{fixed: b.nodata(name, qtype)}
	}
	p := &prepared{answer: rrs}
	if qtype == dns.TypeNS && name == b.v.zone {
		p.extra = b.glue
	}
	return &choice{fixed: p}
}

func (b *builder) rrsOrNodata(name string, qtype uint16, rrs []dns.RR) *prepared {
	if len(rrs) == 0 {
		return b.nodata(name, qtype)
	}
	return &prepared{answer: rrs}
}

// prefixed puts the CNAME in front of every answer of c.
func prefixed(cn []dns.RR, c *choice) *choice {
	pre := func(p *prepared) *prepared {
		return &prepared{rcode: p.rcode, answer: append(slices.Clip(cn), p.answer...), ns: p.ns, extra: p.extra,
			deny: p.deny, denyType: p.denyType, denyNX: p.denyNX}
	}
	if !c.tailored() {
		return &choice{fixed: pre(c.fixed), svc: c.svc, mask: c.mask}
	}
	if c.near != nil {
		n := *c.near
		n.cands = slices.Clone(n.cands)
		for i := range n.cands {
			if n.cands[i].ans != nil {
				n.cands[i].ans = pre(n.cands[i].ans)
			}
		}
		return &choice{near: &n, svc: c.svc}
	}
	out := &choice{regions: make([]region, len(c.regions)), svc: c.svc}
	for i, r := range c.regions {
		r.ans = pre(r.ans)
		out.regions[i] = r
	}
	return out
}

// pack fills the wire form of every answer at n (and, when the zone is
// signed, of its signed twin) and clips its slices.
func (n *node) pack(b *builder) error {
	all := []*prepared{n.any}
	for _, c := range n.types {
		all = append(all, c.all()...)
	}
	all = append(all, n.other.all()...)
	for _, p := range all {
		if err := p.pack(n.name); err != nil {
			return err
		}
		if b.sg == nil || p.sig != nil {
			continue
		}
		sig, err := b.signed(p)
		if err != nil {
			return err
		}
		if err := sig.pack(n.name); err != nil {
			return err
		}
		p.sig = sig
	}
	for _, c := range n.types {
		c.regions = slices.Clip(c.regions)
	}
	return nil
}

func (c *choice) all() []*prepared {
	if !c.tailored() {
		return []*prepared{c.fixed}
	}
	if c.near != nil {
		var out []*prepared
		for i := range c.near.cands {
			if c.near.cands[i].ans != nil {
				out = append(out, c.near.cands[i].ans)
			}
		}
		return out
	}
	out := make([]*prepared, len(c.regions))
	for i := range c.regions {
		out[i] = c.regions[i].ans
	}
	return out
}

// pack renders p after a question for name.
func (p *prepared) pack(name string) error {
	if p.wire != nil {
		return nil // shared by two choices of the node
	}
	p.answer, p.ns, p.extra = slices.Clip(p.answer), slices.Clip(p.ns), slices.Clip(p.extra)
	m := &dns.Msg{Compress: true, Question: []dns.Question{{Name: name, Qtype: dns.TypeA, Qclass: dns.ClassINET}},
		Answer: p.answer, Ns: p.ns, Extra: p.extra}
	m.Rcode = p.rcode
	w, err := m.Pack()
	if err != nil {
		return err
	}
	qlen, err := dns.PackDomainName(name, make([]byte, 256), 0, nil, false)
	if err != nil {
		return err
	}
	p.wire = slices.Clip(w[headerLen+qlen+4:]) // after the header and the question
	p.counts = [3]uint16{uint16(len(p.answer)), uint16(len(p.ns)), uint16(len(p.extra))}
	return nil
}

// transfers prepares the zone transfer and who may ask for it. A transfer
// cannot steer per client: a weighted service's records there are those of
// every region serving it (as for the all policy).
func (v *view) transfers(b *builder) error {
	for _, s := range v.cfg.Secondaries {
		ap, err := netip.ParseAddrPort(s.Address)
		if err != nil {
			return fmt.Errorf("secondary %q: %w", s.Address, err)
		}
		key := ""
		if s.TSIG != "" {
			key = dns.CanonicalName(s.TSIG)
		}
		v.secondaries = append(v.secondaries, secondary{addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), key: key})
	}
	for _, s := range v.cfg.TransferAllow {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("transfer_allow %q: %w", s, err)
		}
		v.transferAllow = append(v.transferAllow, p.Masked())
	}
	names := make([]string, 0, len(b.raw))
	for name := range b.raw {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return canonicalLess(names[i], names[j]) })
	for _, name := range names {
		rn := b.raw[name]
		for _, t := range rn.order {
			if name == v.zone && (t == dns.TypeSOA || t == dns.TypeDNSKEY) {
				continue // the SOA comes first; DNSKEY only in a signed transfer (xfrsign.go)
			}
			v.axfr = append(v.axfr, rn.sets[t]...)
		}
		if s := rn.svc; s != nil {
			for fam := range 2 {
				if s.regions == nil {
					v.axfr = append(v.axfr, s.fixed[fam]...)
					continue
				}
				seen := map[string]bool{}
				for _, r := range s.regions {
					for _, rr := range r.rrs[fam] {
						if k := rr.String(); !seen[k] {
							seen[k] = true
							v.axfr = append(v.axfr, rr)
						}
					}
				}
			}
		}
	}
	v.axfr = slices.Clip(append([]dns.RR{v.soa[0]}, v.axfr...))
	if b.sg.signedTransfers() && (len(v.secondaries) > 0 || len(v.transferAllow) > 0) {
		// (Signed only when someone may transfer it: the signatures
		// would be wasted work otherwise.)
		signed, err := b.signedTransfer(v.axfr)
		if err != nil {
			return fmt.Errorf("sign the zone transfer: %w", err)
		}
		v.axfr, v.signedXfr = slices.Clip(signed), true
	}
	return nil
}

// canonicalLess orders names by their labels from the right, so the apex
// comes first and a name's children follow it.
func canonicalLess(a, b string) bool {
	la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if la[i] != lb[j] {
			return la[i] < lb[j]
		}
	}
	return len(la) < len(lb)
}

// secondary is a configured secondary: where it is, and the TSIG key it
// must sign with ("" for none).
type secondary struct {
	addr netip.AddrPort
	key  string
}

// transferAuth is mayTransfer's verdict.
type transferAuth uint8

const (
	transferRefused  transferAuth = iota // not a secondary, not allowed
	transferAllowed                      // go ahead
	transferUnsigned                     // a secondary with a key asked without it
)

// mayTransfer decides whether a client at addr may transfer the zone,
// having signed its request with the verified key ("" unsigned):
//   - signed with the key of a configured secondary: allowed, from any
//     address (the key authenticates it);
//   - unsigned from the address of a secondary that has a key: refused
//     (transferUnsigned): a secondary with a key must sign;
//   - otherwise, signed with another key or unsigned: allowed from the
//     address of a secondary without a key or a transfer_allow network.
func (v *view) mayTransfer(addr netip.Addr, key string) transferAuth {
	addr = addr.Unmap()
	byAddr := false
	for _, s := range v.secondaries {
		if key != "" && s.key == key {
			return transferAllowed
		}
		if s.addr.Addr() == addr {
			if s.key != "" && key == "" {
				return transferUnsigned
			}
			byAddr = byAddr || s.key == ""
		}
	}
	if byAddr {
		return transferAllowed
	}
	for _, p := range v.transferAllow {
		if p.Contains(addr) {
			return transferAllowed
		}
	}
	return transferRefused
}

// nearest builds the nearest candidates of s for family fam; ans makes a
// region's answer from its records (nil: no answers, for drain tracking).
func (s *service) nearest(b *builder, fam int, ans func([]dns.RR) *prepared) *nearest {
	n := &nearest{topo: b.v.topo, cands: make([]nearCand, len(b.regionIdx)), fallback: -1, accept: b.accept}
	if ans != nil {
		n.demand = b.v.demand.slots(s.name)
	}
	for _, r := range s.regions { // serving regions, in config order
		i := b.regionIdx[r.name]
		c := &n.cands[i]
		c.weight, c.seed, c.spill = r.weight, regionSeed(r.name), spillSeed(r.name)
		if ans != nil {
			c.ans, c.mask = ans(r.rrs[fam]), familyMask(r.rrs[fam], r.bit)
		}
		if n.fallback < 0 {
			n.fallback = i
		}
	}
	return n
}
