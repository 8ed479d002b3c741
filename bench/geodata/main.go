// Command geodata writes the inputs of bench/dns.sh's proximity comparison
// (policy nearest) into a directory. Not part of evac.
//
//	geodata -out DIR [-nets 10000] [-names 100] [-queries 100000]
//
// Files, for the names svc0..svc{names-1} with one address per region
// (10.1/10.2/10.3.x.y in regions a/b/c, as bench/dns.sh's other zones):
//   - weighted.yaml: the names as weighted services (weights are set by
//     evac dnsbench --weights), the baseline;
//   - nearest-nets.yaml: the names as nearest services over a topology.nets
//     table of -nets random IPv4 networks (/16 to /24, nested ones
//     included: the longest prefix wins) with rotating preference orders;
//   - nearest-geo.yaml: the names as nearest services with located regions
//     and no nets: the client's place comes from geo.mmdb (distance order);
//   - geo.mmdb: a GeoIP2-City-shaped database (internal/geoip/geoiptest,
//     github.com/maxmind/mmdbwriter) with the same networks, each with a
//     country, a continent and a location, and the regions' answer
//     networks 10.1/16, 10.2/16, 10.3/16 at the regions' locations (for
//     PowerDNS pickclosest, which locates the candidate addresses too);
//   - queries.bin: -queries wire-format A queries in dnsperf -B format (a
//     2-byte length before each), names in rotation, each with an EDNS
//     Client Subnet option for a /24 drawn from the networks, so every
//     network is asked for;
//   - pdns-closest.zone: the zone with every name a PowerDNS LUA
//     "A pickclosest({...})" record;
//   - gdnsd/: a gdnsd config directory whose geoip plugin maps the same
//     networks (a nets file) to the same preference orders, and a zone
//     with every name a DYNA geoip record.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/internal/geoip/geoiptest"
)

type region struct {
	name, cc, cont string
	lat, lon       float64
	net            string // the answers' network, located here
}

var regions = []region{
	{"a", "US", "NA", 38.9, -77.0, "10.1.0.0/16"},
	{"b", "US", "NA", 45.6, -121.2, "10.2.0.0/16"},
	{"c", "IE", "EU", 53.3, -6.3, "10.3.0.0/16"},
}

// orders are the preference lists the networks rotate through.
var orders = [][]string{{"a", "b", "c"}, {"b", "a", "c"}, {"c", "a", "b"}}

// places are where the networks are, in rotation: each near one region.
var places = []struct {
	cc, cont string
	lat, lon float64
}{{"US", "NA", 40.7, -74.0}, {"US", "NA", 47.6, -122.3}, {"DE", "EU", 50.1, 8.7}, {"BR", "SA", -23.5, -46.6}, {"JP", "AS", 35.7, 139.7}}

func main() {
	out := flag.String("out", "", "directory to write into (required)")
	nNets := flag.Int("nets", 10000, "networks in topology.nets and the GeoIP database")
	nNames := flag.Int("names", 100, "service names svc0..svcN-1")
	nQueries := flag.Int("queries", 100000, "queries in queries.bin")
	gdnsdPort := flag.Int("gdnsd-port", 5309, "port in gdnsd's config")
	flag.Parse()
	if *out == "" || *nNets < 1 || *nNames < 1 || *nQueries < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*out, *nNets, *nNames, *nQueries, *gdnsdPort); err != nil {
		log.Fatal(err)
	}
}

func run(dir string, nNets, nNames, nQueries, gdnsdPort int) error {
	if err := os.MkdirAll(filepath.Join(dir, "gdnsd", "zones"), 0o755); err != nil {
		return err
	}
	nets := randomNets(nNets)

	addr := func(r, i int) string { return fmt.Sprintf("10.%d.%d.%d", r+1, i/256, i%256) }
	steering := func(policy, extra string, located bool) string {
		var b strings.Builder
		b.WriteString("zone: example.com.\nttl: 300\nnameservers: {ns1: 127.0.0.1}\nregions:\n")
		for _, r := range regions {
			if located {
				fmt.Fprintf(&b, "  - {name: %s, location: {lat: %g, lon: %g}}\n", r.name, r.lat, r.lon)
			} else {
				fmt.Fprintf(&b, "  - {name: %s}\n", r.name)
			}
		}
		b.WriteString(extra)
		b.WriteString("services:\n")
		for i := range nNames {
			fmt.Fprintf(&b, "  - {name: svc%d, policy: %s, endpoints: {a: [%s], b: [%s], c: [%s]}}\n",
				i, policy, addr(0, i), addr(1, i), addr(2, i))
		}
		return b.String()
	}
	var topo strings.Builder
	topo.WriteString("topology:\n  default: [a, b, c]\n  nets:\n")
	for i, p := range nets {
		fmt.Fprintf(&topo, "    %s: [%s]\n", p, strings.Join(orders[i%len(orders)], ", "))
	}
	files := map[string]string{
		"weighted.yaml":     steering("weighted", "", false),
		"nearest-nets.yaml": steering("nearest", topo.String(), false),
		"nearest-geo.yaml":  steering("nearest", "topology:\n  default: [a, b, c]\n", true),
	}

	// GeoIP database: the networks at their places, and the regions' answer networks.
	var tn []geoiptest.TestNetwork
	for i, p := range nets {
		pl := places[i%len(places)]
		tn = append(tn, geoiptest.TestNetwork{CIDR: p.String(), Country: pl.cc, Continent: pl.cont, Lat: pl.lat, Lon: pl.lon, HasLocation: true})
	}
	for _, r := range regions {
		tn = append(tn, geoiptest.TestNetwork{CIDR: r.net, Country: r.cc, Continent: r.cont, Lat: r.lat, Lon: r.lon, HasLocation: true})
	}
	if err := geoiptest.WriteTestDB(filepath.Join(dir, "geo.mmdb"), 1700000000, tn); err != nil {
		return fmt.Errorf("geo.mmdb: %w", err)
	}

	// PowerDNS: the zone with LUA pickclosest records.
	var pz strings.Builder
	pz.WriteString(zoneHead)
	for i := range nNames {
		fmt.Fprintf(&pz, "svc%d IN LUA A \"pickclosest({'%s','%s','%s'})\"\n", i, addr(0, i), addr(1, i), addr(2, i))
	}
	files["pdns-closest.zone"] = pz.String()

	// gdnsd: geoip plugin, a map from the same nets to datacenter lists.
	var gn, gr, gz strings.Builder
	for i, p := range nets {
		fmt.Fprintf(&gn, "%s => [%s]\n", p, strings.Join(orders[i%len(orders)], ", "))
	}
	gn.WriteString("0.0.0.0/0 => [a, b, c]\n")
	for i := range nNames {
		fmt.Fprintf(&gr, "      svc%d => { map => m, dcmap => { a => %s, b => %s, c => %s } }\n", i, addr(0, i), addr(1, i), addr(2, i))
	}
	gz.WriteString(zoneHead)
	for i := range nNames {
		fmt.Fprintf(&gz, "svc%d 300 DYNA geoip!svc%d\n", i, i)
	}
	files["gdnsd/geoip/nets"] = gn.String()
	files["gdnsd/zones/example.com"] = gz.String()
	files["gdnsd/config"] = fmt.Sprintf(`options => {
  listen => [ 127.0.0.1:%d ]
  udp_threads => 1
  tcp_threads => 1
}
plugins => {
  geoip => {
    maps => {
      m => {
        datacenters => [a, b, c]
        nets => nets
      }
    }
    resources => {
%s    }
  }
}
`, gdnsdPort, gr.String())

	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return err
		}
	}
	return writeQueries(filepath.Join(dir, "queries.bin"), nets, nNames, nQueries)
}

const zoneHead = `$ORIGIN example.com.
$TTL 300
@ IN SOA ns1.example.com. hostmaster.example.com. 2024010101 3600 900 604800 300
@ IN NS ns1.example.com.
ns1 IN A 127.0.0.1
`

// randomNets returns n distinct random IPv4 networks, /16 to /24, outside
// 10/8 and the loopback and multicast ranges, in a fixed pseudo-random order
// (xorshift: the same every run).
func randomNets(n int) []netip.Prefix {
	seen := make(map[netip.Prefix]bool, n)
	out := make([]netip.Prefix, 0, n)
	x := uint32(2463534242)
	for len(out) < n {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		first := byte(11 + x%212) // 11..222: not 10/8, 127/8 or multicast
		if first == 127 {
			continue
		}
		a := netip.AddrFrom4([4]byte{first, byte(x >> 8), byte(x >> 16), 0})
		p := netip.PrefixFrom(a, 16+int(x>>24)%9).Masked()
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// writeQueries writes n A queries in dnsperf's -B format: names in
// rotation, each with ECS for a /24 inside network i mod len(nets).
func writeQueries(path string, nets []netip.Prefix, names, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	x := uint32(88172645)
	for i := range n {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		p := nets[i%len(nets)]
		a := p.Addr().As4()
		// a random /24 inside p
		free := 24 - p.Bits()
		v := binary.BigEndian.Uint32(a[:]) | (x&(1<<free-1))<<8
		binary.BigEndian.PutUint32(a[:], v)
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("svc%d.example.com.", (i*7+int(x>>8))%names), dns.TypeA)
		m.RecursionDesired = false
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(1232)
		o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24,
			Address: netip.AddrFrom4(a).AsSlice()})
		m.Extra = append(m.Extra, o)
		b, err := m.Pack()
		if err != nil {
			return err
		}
		var l [2]byte
		binary.BigEndian.PutUint16(l[:], uint16(len(b)))
		w.Write(l[:])
		w.Write(b)
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
