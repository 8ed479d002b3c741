package state

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// PolicyNearest sends each client to the first region of its preference
// list (Topology) whose effective weight is above 0; see SPEC.md
// "Proximity steering".
const PolicyNearest = "nearest"

// Location is where a region is, for ordering regions by great-circle
// distance from a client (GeoIP City data).
type Location struct {
	Lat float64 `yaml:"lat" json:"lat"`
	Lon float64 `yaml:"lon" json:"lon"`
}

// Topology maps clients to an ordered list of regions (their preference
// order). Rules, in order: Nets (longest prefix wins), then, with a GeoIP
// database, Countries, Continents and the distance from regions' locations,
// then Default.
type Topology struct {
	// Nets maps a CIDR (IPv4 or IPv6) to a preference list. Normalize
	// rewrites keys to their canonical masked form.
	Nets Lists `yaml:"nets,omitempty" json:"nets,omitempty"`
	// Countries maps an ISO 3166 alpha-2 code (upper case) to a list.
	Countries Lists `yaml:"countries,omitempty" json:"countries,omitempty"`
	// Continents maps a continent code (AF AN AS EU NA OC SA) to a list.
	Continents Lists `yaml:"continents,omitempty" json:"continents,omitempty"`
	// Default is the list for clients no rule matches; when empty, the
	// regions in config order.
	Default []string `yaml:"default,omitempty" json:"default,omitempty"`
}

// Continents are the codes GeoIP2 databases use.
var continentCodes = map[string]bool{"AF": true, "AN": true, "AS": true, "EU": true, "NA": true, "OC": true, "SA": true}

var countryRE = regexp.MustCompile(`^[A-Z]{2}$`)

// normalizeTopology validates the topology against the regions and
// canonicalises it: CIDR keys masked (two keys naming the same network are
// an error), country and continent codes upper-cased. Errors name the
// field, e.g. `topology.nets["10.0.0.0/33"]`.
func (c *Config) normalizeTopology(regions map[string]bool) []error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	for i, r := range c.Regions {
		if l := r.Location; l != nil {
			if l.Lat < -90 || l.Lat > 90 {
				fail(fmt.Sprintf("regions[%d].location.lat", i), "must be between -90 and 90, got %v", l.Lat)
			}
			if l.Lon < -180 || l.Lon > 180 {
				fail(fmt.Sprintf("regions[%d].location.lon", i), "must be between -180 and 180, got %v", l.Lon)
			}
		}
	}
	for i, s := range c.Services {
		if s.Policy == PolicyNearest {
			if c.Topology == nil {
				fail(fmt.Sprintf("services[%d].policy", i), "nearest needs a topology (at least topology.default)")
			}
		}
	}
	t := c.Topology
	if t == nil {
		return errs
	}
	list := func(field string, l []string) {
		if len(l) == 0 {
			fail(field, "empty list: name at least one region")
			return
		}
		seen := map[string]bool{}
		for j, r := range l {
			switch {
			case !regions[r]:
				fail(fmt.Sprintf("%s[%d]", field, j), "unknown region %q (not in regions)", r)
			case seen[r]:
				fail(fmt.Sprintf("%s[%d]", field, j), "region %q listed twice", r)
			}
			seen[r] = true
		}
	}
	if len(t.Nets) > 0 {
		nets := make(Lists, len(t.Nets))
		from := make(map[string]string, len(t.Nets))
		for _, k := range sortedKeys(t.Nets) {
			field := fmt.Sprintf("topology.nets[%q]", k)
			p, err := netip.ParsePrefix(strings.TrimSpace(k))
			if err != nil || p.Addr().Zone() != "" {
				fail(field, "invalid CIDR (e.g. 10.20.0.0/16 or 2001:db8::/48)")
				continue
			}
			if p.Addr().Is4In6() {
				fail(field, "IPv4-mapped IPv6 prefix: write it as IPv4")
				continue
			}
			canon := p.Masked().String()
			if other, dup := from[canon]; dup {
				fail(field, "duplicate network %s (also %q)", canon, other)
				continue
			}
			from[canon] = k
			list(field, t.Nets[k])
			nets[canon] = t.Nets[k]
		}
		t.Nets = nets
	}
	if len(t.Countries) > 0 {
		out := make(Lists, len(t.Countries))
		for _, k := range sortedKeys(t.Countries) {
			field := fmt.Sprintf("topology.countries.%s", k)
			code := strings.ToUpper(strings.TrimSpace(k))
			if !countryRE.MatchString(code) {
				fail(field, "%q is not an ISO 3166 alpha-2 country code (e.g. DE)", k)
				continue
			}
			if _, dup := out[code]; dup {
				fail(field, "duplicate country %s", code)
				continue
			}
			list(field, t.Countries[k])
			out[code] = t.Countries[k]
		}
		t.Countries = out
	}
	if len(t.Continents) > 0 {
		out := make(Lists, len(t.Continents))
		for _, k := range sortedKeys(t.Continents) {
			field := fmt.Sprintf("topology.continents.%s", k)
			code := strings.ToUpper(strings.TrimSpace(k))
			if !continentCodes[code] {
				fail(field, "%q is not a continent code (AF, AN, AS, EU, NA, OC, SA)", k)
				continue
			}
			if _, dup := out[code]; dup {
				fail(field, "duplicate continent %s", code)
				continue
			}
			list(field, t.Continents[k])
			out[code] = t.Continents[k]
		}
		t.Continents = out
	}
	if t.Default != nil {
		list("topology.default", t.Default)
	}
	return errs
}

// Lists maps keys (networks, countries, continents) to preference lists.
type Lists map[string][]string

// UnmarshalYAML decodes the mapping entry by entry. yaml.v3 checks a
// mapping's keys for duplicates pairwise when it decodes into a map, which
// takes seconds for 50,000 networks; here a duplicate is found with a set,
// and reported with its line.
func (l *Lists) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping of keys to lists of regions", n.Line)
	}
	out := make(Lists, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var key string
		if err := k.Decode(&key); err != nil {
			return err
		}
		if _, dup := out[key]; dup {
			return fmt.Errorf("line %d: duplicate key %q", k.Line, key)
		}
		var list []string
		if err := v.Decode(&list); err != nil {
			return err
		}
		out[key] = list
	}
	*l = out
	return nil
}
