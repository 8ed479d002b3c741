package dnsserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap/zaptest"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/dnsserver/conformance"
)

// listeners starts one server on a specific address (our UDP loops: fast
// and general path) and one on the wildcard address (miekg/dns's UDP
// server), and returns where to send raw queries: network name to address.
func listeners(t *testing.T, st *state.State) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, addr := range []string{"127.0.0.1:0", "0.0.0.0:0"} {
		s := New(Config{Addr: addr, Logger: zaptest.NewLogger(t)})
		s.Update(st)
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
		port := u.(*net.UDPAddr).Port
		if addr == "0.0.0.0:0" {
			out["udp-wildcard"] = net.JoinHostPort("127.0.0.1", itoa(port))
			out["tcp-wildcard"] = net.JoinHostPort("127.0.0.1", itoa(c.(*net.TCPAddr).Port))
			continue
		}
		out["udp"], out["tcp"] = u.String(), c.String()
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }

// rawExchange sends pkt as is over network ("udp…" or "tcp…") and returns
// the raw reply, nil when none came within a second.
func rawExchange(t *testing.T, network, addr string, pkt []byte) []byte {
	t.Helper()
	nw := network[:3]
	conn, err := net.DialTimeout(nw, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if nw == "tcp" {
		pkt = append(binary.BigEndian.AppendUint16(nil, uint16(len(pkt))), pkt...)
	}
	if _, err := conn.Write(pkt); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 65535)
	if nw == "tcp" {
		var l [2]byte
		if _, err := ioReadFull(conn, l[:]); err != nil {
			return nil
		}
		n := int(binary.BigEndian.Uint16(l[:]))
		if _, err := ioReadFull(conn, buf[:n]); err != nil {
			t.Fatalf("%s: short reply: %v", network, err)
		}
		return buf[:n]
	}
	n, err := conn.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func ioReadFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := c.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// packed packs m, then sets the extra header flag bits.
func packed(t *testing.T, m *dns.Msg, bits uint16) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint16(b[2:], binary.BigEndian.Uint16(b[2:])|bits)
	return b
}

// ecsQuery is an A query for api with an OPT carrying the raw ECS data.
func ecsQuery(t *testing.T, data []byte) []byte {
	b := packed(t, withEDNS(query("api.example.com.", dns.TypeA), 1232, ""), 0)
	opt := append(binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, dns.EDNS0SUBNET), uint16(len(data))), data...)
	binary.BigEndian.PutUint16(b[len(b)-2:], uint16(len(opt))) // the OPT's RDLENGTH ends the packet
	return append(b, opt...)
}

// TestStrictness runs the conformance cases (package conformance, also
// run against real processes by the integration suite) on every listener:
// each reply must pass the case's check and be byte-identical on all.
func TestStrictness(t *testing.T) {
	addrs := listeners(t, configured(t, recordsConfig()))
	cases, err := conformance.Cases("example.com.", "fo.example.com.")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			var first []byte
			var firstNet string
			for _, network := range []string{"udp", "udp-wildcard", "tcp", "tcp-wildcard"} {
				out := rawExchange(t, network, addrs[network], tc.Query)
				if out == nil {
					t.Fatalf("%s: no reply", network)
				}
				if err := tc.Check(out); err != nil {
					t.Errorf("%s: %v", network, err)
				}
				if first == nil {
					first, firstNet = out, network
				} else if !bytes.Equal(first, out) {
					t.Errorf("%s and %s answer differently:\n% x\n% x", firstNet, network, first, out)
				}
			}
		})
	}
}

// TestECSEcho: the echoed option copies the client's family, source
// prefix and address as sent; only the scope is ours.
func TestECSEcho(t *testing.T) {
	addrs := listeners(t, configured(t, recordsConfig()))
	for _, data := range [][]byte{
		{0, 1, 24, 0, 10, 1, 2},
		{0, 1, 32, 0, 10, 1, 2, 3},
		{0, 1, 23, 0, 10, 1, 2},
		{0, 1, 0, 0},
		{0, 2, 56, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 2},
		{0, 2, 64, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 2, 3},
	} {
		for _, network := range []string{"udp", "udp-wildcard", "tcp"} {
			out := rawExchange(t, network, addrs[network], ecsQuery(t, data))
			r := new(dns.Msg)
			if err := r.Unpack(out); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
				t.Fatalf("%s % x: %v %v", network, data, err, r)
			}
			i := bytes.Index(out, []byte{0, 8, 0, byte(len(data))})
			if i < 0 {
				t.Fatalf("%s % x: no ECS option in % x", network, data, out)
			}
			got := out[i+4 : i+4+len(data)]
			if !bytes.Equal(got[:3], data[:3]) || !bytes.Equal(got[4:], data[4:]) {
				t.Errorf("%s: echoed % x, sent % x", network, got, data)
			}
			want := min(int(data[2]), map[byte]int{1: 24, 2: 56}[data[1]])
			if int(got[3]) != want {
				t.Errorf("%s % x: scope %d, want %d", network, data, got[3], want)
			}
		}
	}
}

// TestCaseEcho: owner names in the zone take the question's spelling
// (0x20) in every section, on every listener.
func TestCaseEcho(t *testing.T) {
	addrs := listeners(t, configured(t, recordsConfig()))
	for _, tc := range []struct {
		name  string
		qtype uint16
		edns  bool
	}{
		{"aPi.ExAmPlE.cOm.", dns.TypeA, false},
		{"AlIaS.eXaMpLe.CoM.", dns.TypeA, true},
		{"NoThErE.EXAMPLE.com.", dns.TypeA, false},
		{"ExAmPlE.cOm.", dns.TypeNS, true},
		{"StAtIc.ExAmPlE.CoM.", dns.TypeMX, false},
		{"ChAiN.ExAmPlE.CoM.", dns.TypeAAAA, true},
	} {
		m := query(tc.name, tc.qtype)
		if tc.edns {
			m = withEDNS(m, 1232, "")
		}
		zone := tc.name[strings.Index(strings.ToLower(tc.name), "example.com."):]
		for _, network := range []string{"udp", "udp-wildcard", "tcp"} {
			out := rawExchange(t, network, addrs[network], packed(t, m, 0))
			r := new(dns.Msg)
			if err := r.Unpack(out); err != nil {
				t.Fatal(err)
			}
			if r.Question[0].Name != tc.name {
				t.Errorf("%s %s: question %s", network, tc.name, r.Question[0].Name)
			}
			n := 0
			for _, rr := range append(append(append([]dns.RR{}, r.Answer...), r.Ns...), r.Extra...) {
				owner := rr.Header().Name
				if rr.Header().Rrtype == dns.TypeOPT || !strings.HasSuffix(strings.ToLower(owner), "example.com.") {
					continue
				}
				n++
				if !strings.HasSuffix(owner, zone) {
					t.Errorf("%s %s: owner %s does not echo the question's %s", network, tc.name, owner, zone)
				}
				if strings.EqualFold(owner, tc.name) && owner != tc.name {
					t.Errorf("%s %s: owner %s", network, tc.name, owner)
				}
			}
			if n == 0 {
				t.Errorf("%s %s: no records to check: %v", network, tc.name, r)
			}
		}
	}
}

// TestTruncatedNoPartialRRset: a UDP answer too big for the client gets
// the question alone with TC, on both UDP listeners.
func TestTruncatedNoPartialRRset(t *testing.T) {
	addrs := listeners(t, configured(t, recordsConfig()))
	for _, m := range []*dns.Msg{query("big.example.com.", dns.TypeA), withEDNS(query("Big.example.com.", dns.TypeA), 512, "10.1.2.0/24")} {
		for _, network := range []string{"udp", "udp-wildcard"} {
			out := rawExchange(t, network, addrs[network], packed(t, m, 0))
			r := new(dns.Msg)
			if err := r.Unpack(out); err != nil {
				t.Fatal(err)
			}
			if !r.Truncated || len(r.Answer)+len(r.Ns) != 0 || len(r.Question) != 1 || r.Rcode != dns.RcodeSuccess ||
				(r.IsEdns0() != nil) != (m.IsEdns0() != nil) || len(r.Extra) > 1 {
				t.Errorf("%s: %v", network, r)
			}
		}
		r := exchange(t, "tcp", addrs["tcp"], m)
		if r.Truncated || len(r.Answer) != 60 {
			t.Errorf("TCP: tc %v, %d answers", r.Truncated, len(r.Answer))
		}
	}
}
