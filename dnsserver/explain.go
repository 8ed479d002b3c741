package dnsserver

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/dnsserver/topology"
)

// Errors of Explain, for the API to map.
var (
	ErrNoAnswers   = errors.New("no steering config is served yet")
	ErrUnknownName = errors.New("no such service")
	ErrBadClient   = errors.New("client must be an IP address or a CIDR")
)

// Explanation says why a client gets the answer it gets for a service
// (GET /v1/explain). It is computed by the code that answers DNS queries,
// from the view this server is serving.
type Explanation struct {
	Name   string `json:"name"`
	Policy string `json:"policy"`
	// Client is the client subnet the answer is keyed on: an address is
	// taken as a query's source address (/24 or /56), a CIDR as an ECS
	// option.
	Client string `json:"client"`
	// Rule is the topology rule that matched (net, country, continent,
	// distance, default); empty for policies other than nearest.
	Rule       string          `json:"rule,omitempty"`
	Preference []string        `json:"preference"`
	Regions    []ExplainRegion `json:"regions"`
	// KeptShare: the client is in its home region's kept share (its first
	// choice answers it); for other policies, the answer is its region.
	KeptShare bool `json:"kept_share"`
	// AnswerRegion is the region whose endpoints are the answer.
	AnswerRegion string `json:"answer_region,omitempty"`
	// Answer is the A and AAAA records' addresses.
	Answer []string `json:"answer"`
	// Scope is the ECS scope prefix length a reply to an ECS query from
	// Client carries.
	Scope  int    `json:"scope"`
	Serial uint32 `json:"serial"`
}

// ExplainRegion is one region of a service as the answer sees it.
type ExplainRegion struct {
	Name            string `json:"name"`
	Weight          int    `json:"weight"`
	Health          string `json:"health"` // healthy | unhealthy
	EffectiveWeight int    `json:"effective_weight"`
}

// Explain explains the answer to name (a service name, relative or
// absolute) for client (an address or a CIDR) from the view being served;
// st supplies the regions' traffic weights and health.
func (s *Server) Explain(st *state.State, name, client string) (Explanation, error) {
	v := s.view.Load()
	if v == nil || st == nil || st.Config == nil {
		return Explanation{}, ErrNoAnswers
	}
	svcName := strings.TrimSuffix(strings.ToLower(strings.TrimSuffix(name, ".")), "."+strings.TrimSuffix(v.zone, "."))
	svc := v.cfg.Service(svcName)
	if svc == nil {
		return Explanation{}, fmt.Errorf("%w: %q", ErrUnknownName, name)
	}
	key, ecs, err := explainKey(client)
	if err != nil {
		return Explanation{}, err
	}
	e := Explanation{Name: svc.Name + "." + v.zone, Policy: svc.Policy, Serial: v.serial,
		Client: netip.PrefixFrom(key.addr(), key.bits()).String(), Preference: []string{}, Answer: []string{}}
	eff := map[string]int{}
	for _, rw := range st.EffectiveWeights(svc) {
		eff[rw.Region] = rw.Weight
	}
	for _, r := range v.cfg.Regions {
		if _, ok := svc.Endpoints[r.Name]; !ok {
			continue
		}
		h := "healthy"
		if st.IsUnhealthy(r.Name, svc.Name) {
			h = "unhealthy"
		}
		e.Regions = append(e.Regions, ExplainRegion{Name: r.Name, Weight: st.Regions[r.Name].Weight, Health: h, EffectiveWeight: eff[r.Name]})
	}
	n := v.names[e.Name]
	if n == nil {
		return Explanation{}, fmt.Errorf("%w: %q", ErrUnknownName, name)
	}
	geo := s.locator()
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		c := n.lookup(qt)
		var p *prepared
		switch {
		case c.near != nil:
			var buf [topology.MaxRegions]uint8
			pk := c.near.pick(&key, geo, buf[:])
			p = c.near.cands[pk.region].ans
			e.Rule = pk.match.Rule.String()
			e.Preference = c.near.topo.ListNames(pk.match.List)
			e.KeptShare = pk.kept
			e.AnswerRegion = c.near.topo.Regions()[pk.region]
			e.Scope = int(pk.scope(key.bits()))
		case c.regions != nil:
			i := pick(c.regions, key.bytes())
			p = c.regions[i].ans
			e.AnswerRegion, e.KeptShare, e.Scope = c.regions[i].name, true, key.bits()
		default:
			p = c.fixed
			e.KeptShare = true
		}
		for _, rr := range p.answer {
			switch rr := rr.(type) {
			case *dns.A:
				e.Answer = append(e.Answer, rr.A.String())
			case *dns.AAAA:
				e.Answer = append(e.Answer, rr.AAAA.String())
			}
		}
	}
	if !ecs {
		e.Scope = 0
	}
	if e.AnswerRegion == "" && len(e.Answer) > 0 {
		e.AnswerRegion = regionOfAnswer(svc, e.Answer[0])
	}
	return e, nil
}

// explainKey turns the client parameter into the subnet key a query would
// be answered by: a CIDR as an ECS option, an address as a source address.
func explainKey(client string) (subnetKey, bool, error) {
	client = strings.TrimSpace(client)
	if p, err := netip.ParsePrefix(client); err == nil {
		a := p.Addr().Unmap()
		if p.Bits() == 0 {
			return subnetKey{}, false, fmt.Errorf("%w: a /0 prefix names no client", ErrBadClient)
		}
		if a.Is4() {
			return makeKey(a, min(p.Bits(), maxPrefix4)), true, nil
		}
		return makeKey(a, min(p.Bits(), maxPrefix6)), true, nil
	}
	a, err := netip.ParseAddr(client)
	if err != nil || a.Zone() != "" {
		return subnetKey{}, false, fmt.Errorf("%w, got %q", ErrBadClient, client)
	}
	return sourceKey(a), false, nil
}

// regionOfAnswer is the first region of svc listing addr.
func regionOfAnswer(svc *state.Service, addr string) string {
	var out string
	for r, addrs := range svc.Endpoints {
		for _, a := range addrs {
			if a == addr && (out == "" || r < out) {
				out = r
			}
		}
	}
	return out
}
