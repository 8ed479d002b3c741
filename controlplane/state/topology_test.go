package state

import (
	"fmt"
	"strings"
	"testing"
)

const topoBase = `zone: a.com
nameservers: {ns1: 192.0.2.1}
regions:
  - {name: us-east, location: {lat: 38.9, lon: -77.0}}
  - {name: eu-west, location: {lat: 53.3, lon: -6.3}}
services: [{name: api, policy: nearest, endpoints: {us-east: [192.0.2.1], eu-west: [192.0.2.2]}}]
`

func TestTopologyValidation(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"nearest without topology", topoBase, "services[0].policy: nearest needs a topology"},
		{"bad cidr", topoBase + "topology: {nets: {10.0.0.0/33: [us-east]}}\n", `topology.nets["10.0.0.0/33"]: invalid CIDR`},
		{"not a cidr", topoBase + "topology: {nets: {10.0.0.1: [us-east]}}\n", `topology.nets["10.0.0.1"]: invalid CIDR`},
		{"duplicate after masking", topoBase + "topology: {nets: {10.0.0.0/8: [us-east], 10.1.0.0/8: [eu-west]}}\n", "duplicate network 10.0.0.0/8"},
		{"unknown region", topoBase + "topology: {nets: {10.0.0.0/8: [us-east, mars]}}\n", `topology.nets["10.0.0.0/8"][1]: unknown region "mars"`},
		{"twice", topoBase + "topology: {default: [us-east, us-east]}\n", "topology.default[1]: region \"us-east\" listed twice"},
		{"empty list", topoBase + "topology: {nets: {\"2001:db8::/32\": []}}\n", `topology.nets["2001:db8::/32"]: empty list`},
		{"country", topoBase + "topology: {countries: {DEU: [us-east]}}\n", "topology.countries.DEU"},
		{"continent", topoBase + "topology: {continents: {XX: [us-east]}}\n", "topology.continents.XX"},
		{"lat", strings.Replace(topoBase, "lat: 38.9", "lat: 91", 1) + "topology: {default: [us-east]}\n", "regions[0].location.lat"},
		{"lon", strings.Replace(topoBase, "lon: -6.3", "lon: -181", 1) + "topology: {default: [us-east]}\n", "regions[1].location.lon"},
		{"mapped v6", topoBase + "topology: {nets: {\"::ffff:10.0.0.0/104\": [us-east]}}\n", "IPv4-mapped"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestTopologyNormalised(t *testing.T) {
	c, err := ParseConfig([]byte(topoBase + `topology:
  nets: {10.1.2.3/16: [us-east, eu-west], "2001:DB8:20::1/48": [eu-west]}
  countries: {de: [eu-west, us-east]}
  continents: {na: [us-east]}
  default: [us-east, eu-west]
`))
	if err != nil {
		t.Fatal(err)
	}
	tp := c.Topology
	if _, ok := tp.Nets["10.1.0.0/16"]; !ok {
		t.Errorf("nets not masked: %v", tp.Nets)
	}
	if _, ok := tp.Nets["2001:db8:20::/48"]; !ok {
		t.Errorf("v6 net not canonical: %v", tp.Nets)
	}
	if _, ok := tp.Countries["DE"]; !ok {
		t.Errorf("country not upper-cased: %v", tp.Countries)
	}
	if _, ok := tp.Continents["NA"]; !ok {
		t.Errorf("continent not upper-cased: %v", tp.Continents)
	}
	// Normalising again changes nothing (Apply normalises what the API did).
	again := *c
	if err := again.Normalize(); err != nil {
		t.Fatalf("second normalisation: %v", err)
	}
	if len(again.Topology.Nets) != 2 {
		t.Errorf("second normalisation changed nets: %v", again.Topology.Nets)
	}
}

// BenchmarkParseConfigNets is the whole load of a large topology from YAML:
// decoding and validating (ParseConfig on the API node; Normalize again in
// Apply), for 10,000 and 50,000 networks.
func BenchmarkParseConfigNets(b *testing.B) {
	for _, n := range []int{10000, 50000} {
		var sb strings.Builder
		sb.WriteString(topoBase + "topology:\n  nets:\n")
		lists := []string{"[us-east, eu-west]", "[eu-west, us-east]"}
		for i := range n {
			fmt.Fprintf(&sb, "    %d.%d.%d.0/24: %s\n", 1+i/65536, i/256%256, i%256, lists[i%2])
		}
		data := []byte(sb.String())
		b.Run(fmt.Sprintf("prefixes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c, err := ParseConfig(data)
				if err != nil || len(c.Topology.Nets) != n {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("normalize-again/prefixes=%d", n), func(b *testing.B) {
			c, err := ParseConfig(data)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				again := *c
				if err := again.Normalize(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestTopologyDuplicateKeyNamesTheLine(t *testing.T) {
	_, err := ParseConfig([]byte(topoBase + "topology:\n  nets:\n    10.0.0.0/8: [us-east]\n    10.0.0.0/8: [eu-west]\n"))
	if err == nil || !strings.Contains(err.Error(), `line 10: topology.nets: duplicate key "10.0.0.0/8"`) {
		t.Fatalf("error %v", err)
	}
}
