package dnsserver

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/evac-sh/evac/controlplane/state"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var regionNames = []string{"us-east", "us-west", "eu-west"}

// testConfig is the steering config most tests serve.
func testConfig() *state.Config {
	three := func(v4a, v4b, v6 [3]string) map[string][]string {
		m := map[string][]string{}
		for i, r := range regionNames {
			m[r] = []string{v4a[i], v4b[i], v6[i]}
		}
		return m
	}
	v4a := [3]string{"192.0.2.11", "198.51.100.11", "203.0.113.11"}
	v4b := [3]string{"192.0.2.12", "198.51.100.12", "203.0.113.12"}
	v6 := [3]string{"2001:db8:1::11", "2001:db8:2::11", "2001:db8:3::11"}
	big := map[string][]string{}
	for ri, r := range regionNames {
		for i := range 20 {
			big[r] = append(big[r], fmt.Sprintf("10.%d.0.%d", ri, i+1))
		}
	}
	v4only := map[string][]string{}
	for i, r := range regionNames {
		v4only[r] = []string{v4a[i]}
	}
	return &state.Config{
		Zone: "Example.COM",
		TTL:  30,
		Nameservers: map[string]string{
			"ns1":          "192.0.2.53",
			"ns2":          "2001:db8::53",
			"ns3.dns":      "192.0.2.54",
			"x.other.net.": "198.51.100.53",
		},
		Regions: []state.Region{{Name: "us-east"}, {Name: "us-west"}, {Name: "eu-west"}},
		Services: []state.Service{
			{Name: "api", Policy: state.PolicyWeighted, TTL: 20, Endpoints: three(v4a, v4b, v6)},
			{Name: "fo", Policy: state.PolicyFailover, Endpoints: three(v4a, v4b, v6)},
			{Name: "all", Policy: state.PolicyAll, Endpoints: three(v4a, v4b, v6)},
			{Name: "big", Policy: state.PolicyAll, Endpoints: big},
			{Name: "v4only", Policy: state.PolicyWeighted, Endpoints: v4only},
		},
	}
}

// regionOf maps every endpoint address of testConfig to its region.
var regionOf = func() map[string]string {
	m := map[string]string{}
	for _, svc := range testConfig().Services {
		for r, addrs := range svc.Endpoints {
			for _, a := range addrs {
				m[net.ParseIP(a).String()] = r
			}
		}
	}
	return m
}()

// apply applies one encoded command to st at the next index and fails the
// test if it is refused.
func apply(t testing.TB, st *state.State, typ state.CommandType, body any) *state.State {
	t.Helper()
	n, res, err := state.ApplyNext(st, typ, "", "test", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), body)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Fatalf("apply %s: %v", typ, err)
	}
	return n
}

func configured(t testing.TB, c *state.Config) *state.State {
	return apply(t, state.Empty(), state.CmdApplyConfig, normalized(t, c))
}

// normalized is the apply-config command the API proposes for c: normalised
// first, since Apply does not parse.
func normalized(t testing.TB, c *state.Config) state.ApplyConfig {
	t.Helper()
	if err := c.Normalize(); err != nil {
		t.Fatalf("config: %v", err)
	}
	return state.NewApplyConfig(c)
}

// withWeights sets the regions' traffic weights, in regionNames order.
func withWeights(t testing.TB, st *state.State, weights ...int) *state.State {
	for i, w := range weights {
		st = apply(t, st, state.CmdSetWeight, state.SetWeight{Region: regionNames[i], Weight: w, Reason: "test"})
	}
	return st
}

// testServer is a started Server with its addresses.
type testServer struct {
	*Server
	udp, tcp string
}

func startServer(t testing.TB, st *state.State) *testServer {
	t.Helper()
	s := New(Config{Addr: "127.0.0.1:0", Logger: zaptest.NewLogger(t)})
	if st != nil {
		s.Update(st)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	u, c := s.Addr()
	return &testServer{Server: s, udp: u.String(), tcp: c.String()}
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

// withEDNS adds an OPT record advertising size, with an ECS option when
// subnet is not empty ("10.1.2.0/24").
func withEDNS(m *dns.Msg, size uint16, subnet string) *dns.Msg {
	m.SetEdns0(size, false)
	if subnet != "" {
		_, n, err := net.ParseCIDR(subnet)
		if err != nil {
			panic(err)
		}
		ones, _ := n.Mask.Size()
		e := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: uint8(ones), Address: n.IP.To4()}
		if n.IP.To4() == nil {
			e.Family, e.Address = 2, n.IP
		}
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, e)
	}
	return m
}

func exchange(t testing.TB, network, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], err)
	}
	return r
}

// rrStrings renders records (OPT excluded) as sorted presentation lines.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, rr.String())
	}
	sort.Strings(out)
	return out
}

// parseRRs renders presentation lines the way rrStrings does.
func parseRRs(t testing.TB, lines ...string) []string {
	t.Helper()
	var rrs []dns.RR
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		rrs = append(rrs, rr)
	}
	return rrStrings(rrs)
}

// answerRegions returns the regions of the addresses in r's answer.
func answerRegions(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		var ip net.IP
		switch rr := rr.(type) {
		case *dns.A:
			ip = rr.A
		case *dns.AAAA:
			ip = rr.AAAA
		default:
			continue
		}
		if reg := regionOf[ip.String()]; !slices.Contains(out, reg) {
			out = append(out, reg)
		}
	}
	sort.Strings(out)
	return out
}

// ecsSubnet returns the i-th distinct IPv4 /24 used by the split tests.
func ecsSubnet(i int) string {
	return fmt.Sprintf("10.%d.%d.0/24", i>>8&255, i&255)
}

// weightedRegion asks for api A from ECS subnet sub over conn and returns
// the one region answered.
func weightedRegion(t testing.TB, c *dns.Client, conn *dns.Conn, sub string) string {
	t.Helper()
	r, _, err := c.ExchangeWithConn(withEDNS(query("api.example.com.", dns.TypeA), 1232, sub), conn)
	if err != nil {
		t.Fatalf("%s: %v", sub, err)
	}
	regs := answerRegions(r)
	if len(regs) != 1 || len(r.Answer) != 2 {
		t.Fatalf("%s: want the 2 addresses of one region, got %v", sub, r.Answer)
	}
	return regs[0]
}

// regionsFor maps each of n ECS subnets to the region srv answers with.
func regionsFor(t testing.TB, srv *testServer, n int) []string {
	t.Helper()
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	conn, err := c.Dial(srv.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	out := make([]string, n)
	for i := range n {
		out[i] = weightedRegion(t, c, conn, ecsSubnet(i))
	}
	return out
}
