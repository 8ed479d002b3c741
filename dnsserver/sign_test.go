package dnsserver

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap/zaptest"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/keyfile"
)

// testKeys generates keys into a temporary directory and loads them.
func testKeys(t testing.TB, alg string, pair bool) *DNSSECKeys {
	t.Helper()
	dir := t.TempDir()
	if _, err := GenerateDNSSECKeys(dir, "example.com", alg, pair); err != nil {
		t.Fatal(err)
	}
	ks, err := LoadDNSSECKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func signedServer(t testing.TB, ks *DNSSECKeys, st *state.State) *Server {
	t.Helper()
	s := New(Config{Addr: "127.0.0.1:0", Logger: zaptest.NewLogger(t)})
	if err := s.EnableDNSSEC(DNSSECConfig{Keys: ks}); err != nil {
		t.Fatal(err)
	}
	if st != nil {
		s.Update(st)
	}
	return s
}

// verifyMsg checks every RRset of every section of r against its RRSIGs
// with keys, and that each RRset (but OPT) has one: what a validator
// does once it trusts the DNSKEYs.
func verifyMsg(t *testing.T, r *dns.Msg, keys []dns.RR) {
	t.Helper()
	now := time.Now()
	for _, sec := range [][]dns.RR{r.Answer, r.Ns, r.Extra} {
		type set struct {
			rrs  []dns.RR
			sigs []*dns.RRSIG
		}
		sets := map[string]*set{}
		var order []string
		for _, rr := range sec {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			t0 := h.Rrtype
			if sig, ok := rr.(*dns.RRSIG); ok {
				t0 = sig.TypeCovered
			}
			k := strings.ToLower(h.Name) + "/" + dns.TypeToString[t0]
			if sets[k] == nil {
				sets[k] = &set{}
				order = append(order, k)
			}
			if sig, ok := rr.(*dns.RRSIG); ok {
				sets[k].sigs = append(sets[k].sigs, sig)
			} else {
				sets[k].rrs = append(sets[k].rrs, rr)
			}
		}
		for _, k := range order {
			s := sets[k]
			if len(s.sigs) == 0 {
				t.Errorf("%s: no RRSIG", k)
				continue
			}
			for _, sig := range s.sigs {
				var key *dns.DNSKEY
				for _, rr := range keys {
					if d := rr.(*dns.DNSKEY); d.KeyTag() == sig.KeyTag {
						key = d
					}
				}
				if key == nil {
					t.Errorf("%s: RRSIG by unknown key %d", k, sig.KeyTag)
					continue
				}
				if err := sig.Verify(key, s.rrs); err != nil {
					t.Errorf("%s: RRSIG by %d does not verify: %v", k, sig.KeyTag, err)
				}
				if !sig.ValidityPeriod(now) {
					t.Errorf("%s: RRSIG not valid now: %s", k, sig)
				}
			}
		}
	}
}

func doQuery(name string, qtype uint16) *dns.Msg {
	m := query(name, qtype)
	m.SetEdns0(1232, true)
	return m
}

func nsecOf(r *dns.Msg) *dns.NSEC {
	for _, rr := range r.Ns {
		if n, ok := rr.(*dns.NSEC); ok {
			return n
		}
	}
	return nil
}

func TestSignedAnswersVerify(t *testing.T) {
	for _, tc := range []struct {
		alg  string
		pair bool
	}{{AlgECDSAP256SHA256, false}, {AlgED25519, false}, {AlgECDSAP256SHA256, true}} {
		t.Run(tc.alg+map[bool]string{true: "-pair", false: "-csk"}[tc.pair], func(t *testing.T) {
			ks := testKeys(t, tc.alg, tc.pair)
			c := testConfig()
			c.Records = []state.Record{
				{Name: "www", Type: state.RecordCNAME, Value: "api"},
				{Name: "gone", Type: state.RecordCNAME, Value: "nothing.example.com."},
				{Name: "txt", Type: state.RecordTXT, Value: "hello"},
			}
			st := withWeights(t, configured(t, c), 50, 30, 20)
			srv := signedServer(t, ks, nil)
			srv.Update(st)
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Shutdown(t.Context()) })
			u, tcp := srv.Addr()
			// The DNSKEY RRset, self-signed by the KSK.
			kr := exchange(t, "udp", u.String(), doQuery("example.com.", dns.TypeDNSKEY))
			var keys []dns.RR
			for _, rr := range kr.Answer {
				if rr.Header().Rrtype == dns.TypeDNSKEY {
					keys = append(keys, rr)
				}
			}
			if len(keys) != len(ks.Keys) {
				t.Fatalf("DNSKEY answer: %v", kr.Answer)
			}
			verifyMsg(t, kr, keys)
			for _, sig := range kr.Answer {
				if s, ok := sig.(*dns.RRSIG); ok && s.KeyTag != ks.signers(dns.TypeDNSKEY)[0].DNSKEY.KeyTag() {
					t.Errorf("DNSKEY signed by %d, not the KSK", s.KeyTag)
				}
			}
			type want struct {
				name   string
				qtype  uint16
				rcode  int
				answer int // records that are not RRSIGs
				nsec   string
			}
			for _, w := range []want{
				{"api.example.com.", dns.TypeA, 0, 2, ""},
				{"API.example.com.", dns.TypeAAAA, 0, 1, ""},
				{"fo.example.com.", dns.TypeA, 0, 2, ""},
				{"all.example.com.", dns.TypeA, 0, 6, ""},
				{"example.com.", dns.TypeSOA, 0, 1, ""},
				{"example.com.", dns.TypeNS, 0, 4, ""},
				{"www.example.com.", dns.TypeA, 0, 3, ""},
				{"txt.example.com.", dns.TypeTXT, 0, 1, ""},
				{"api.example.com.", dns.TypeANY, 0, 1, ""},
				// NODATA: the name's own NSEC without the type.
				{"txt.example.com.", dns.TypeA, 0, 0, "txt.example.com. NSEC RRSIG TXT"},
				{"v4only.example.com.", dns.TypeAAAA, 0, 0, "v4only.example.com. A NSEC RRSIG"},
				{"example.com.", dns.TypeDS, 0, 0, "example.com. NS SOA RRSIG NSEC DNSKEY"},
				{"dns.example.com.", dns.TypeA, 0, 0, "dns.example.com. RRSIG NSEC"},
				{"txt.example.com.", dns.TypeNSEC, 0, 0, "txt.example.com. RRSIG TXT"},
				{"txt.example.com.", dns.TypeRRSIG, 0, 0, "txt.example.com. NSEC TXT"},
				// Nonexistent: RFC 9824 compact denial, NOERROR.
				{"nope.example.com.", dns.TypeA, 0, 0, "nope.example.com. RRSIG NSEC NXNAME"},
				{"a.b.nope.example.com.", dns.TypeMX, 0, 0, "a.b.nope.example.com. RRSIG NSEC NXNAME"},
				{"gone.example.com.", dns.TypeA, 0, 1, "nothing.example.com. RRSIG NSEC NXNAME"},
			} {
				for _, network := range []string{"udp", "tcp"} {
					addr := u.String()
					if network == "tcp" {
						addr = tcp.String()
					}
					r := exchange(t, network, addr, doQuery(w.name, w.qtype))
					what := network + " " + w.name + " " + dns.TypeToString[w.qtype]
					if r.Rcode != w.rcode || !r.Authoritative {
						t.Errorf("%s: rcode %s aa %v", what, dns.RcodeToString[r.Rcode], r.Authoritative)
					}
					n := 0
					for _, rr := range r.Answer {
						if rr.Header().Rrtype != dns.TypeRRSIG {
							n++
						}
					}
					if n != w.answer {
						t.Errorf("%s: %d answers, want %d: %v", what, n, w.answer, r.Answer)
					}
					verifyMsg(t, r, keys)
					nsec := nsecOf(r)
					switch {
					case w.nsec == "" && nsec != nil:
						t.Errorf("%s: unexpected %s", what, nsec)
					case w.nsec != "":
						if nsec == nil {
							t.Errorf("%s: no NSEC: %v", what, r.Ns)
							break
						}
						got := strings.ToLower(nsec.Hdr.Name)
						for _, ty := range nsec.TypeBitMap {
							got += " " + dns.TypeToString[ty]
						}
						if f := strings.Fields(w.nsec); !sameSet(strings.Fields(got), f) {
							t.Errorf("%s: NSEC %q, want %q", what, got, w.nsec)
						}
						if want := `\000.` + strings.ToLower(nsec.Hdr.Name); strings.ToLower(nsec.NextDomain) != want {
							t.Errorf("%s: NSEC next %q, want %q", what, nsec.NextDomain, want)
						}
					}
				}
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// Without DO, a signed zone with unsigned transfers answers exactly as the
// unsigned one, on both paths (the DNSKEY RRset aside).
func TestSignedZoneWithoutDOUnchanged(t *testing.T) {
	st := withWeights(t, configured(t, testConfig()), 50, 30, 20)
	plain := New(Config{})
	plain.Update(st)
	signed := New(Config{Addr: "127.0.0.1:0", Logger: zaptest.NewLogger(t)})
	if err := signed.EnableDNSSEC(DNSSECConfig{Keys: testKeys(t, "", false), UnsignedTransfers: true}); err != nil {
		t.Fatal(err)
	}
	signed.Update(st)
	// With unsigned transfers, secondaries get the unsigned zone and the
	// serial is the state's (with signed transfers it moves with the
	// signing period: xfrsign_test.go).
	if a, b := rrStrings(plain.view.Load().axfr), rrStrings(signed.view.Load().axfr); !slices.Equal(a, b) {
		t.Errorf("the signed zone's transfer differs:\n%v\n%v", a, b)
	}
	from := netip.MustParseAddrPort("198.51.100.7:5353")
	names := []string{"api.example.com.", "fo.example.com.", "example.com.", "nope.example.com.", "ns1.example.com.", "dns.example.com."}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSOA, dns.TypeNS, dns.TypeTXT, dns.TypeANY, dns.TypeDS}
	for _, name := range names {
		for _, qt := range types {
			for _, edns := range []bool{false, true} {
				q := query(name, qt)
				if edns {
					withEDNS(q, 1232, "10.1.2.0/24")
				}
				pkt, _ := q.Pack()
				var sn seen
				a, okA := plain.fast(pkt, from, make([]byte, 0, 4096), &sn)
				b, okB := signed.fast(pkt, from, make([]byte, 0, 4096), &sn)
				if okA != okB || !bytes.Equal(a, b) {
					t.Errorf("%s %s edns %v: fast path differs", name, dns.TypeToString[qt], edns)
				}
				wb := &capture{remote: net.UDPAddrFromAddrPort(from)}
				wc := &capture{remote: net.UDPAddrFromAddrPort(from)}
				plain.ServeDNS(wb, q)
				signed.ServeDNS(wc, q)
				if !bytes.Equal(wb.out, wc.out) {
					t.Errorf("%s %s edns %v: general path differs", name, dns.TypeToString[qt], edns)
				}
			}
		}
	}
}

// capture is a ResponseWriter keeping the bytes written.
type capture struct {
	discard
	remote net.Addr
	out    []byte
}

func (w *capture) RemoteAddr() net.Addr        { return w.remote }
func (w *capture) Write(b []byte) (int, error) { w.out = slices.Clone(b); return len(b), nil }
func (w *capture) WriteMsg(m *dns.Msg) error   { b, err := m.Pack(); w.out = b; return err }
func (w *capture) LocalAddr() net.Addr         { return w.remote }
func (w *capture) TsigStatus() error           { return nil }

// The fast path and the general path give the same signed bytes.
func TestSignedPathsAgree(t *testing.T) {
	st := withWeights(t, configured(t, testConfig()), 50, 30, 20)
	s := signedServer(t, testKeys(t, "", true), st)
	for i := range 200 {
		from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, byte(i), 7}), 5353)
		for _, name := range []string{"api.example.com.", "Fo.example.com.", "example.com.", "v4only.example.com."} {
			for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeNS, dns.TypeDNSKEY, dns.TypeMX} {
				q := doQuery(name, qt)
				pkt, _ := q.Pack()
				var sn seen
				a, ok := s.fast(pkt, from, make([]byte, 0, 4096), &sn)
				w := &capture{remote: net.UDPAddrFromAddrPort(from)}
				s.ServeDNS(w, q)
				if ok && !bytes.Equal(a, w.out) {
					t.Fatalf("%s %s from %s: paths differ", name, dns.TypeToString[qt], from)
				}
			}
		}
	}
}

// A signed answer too big for the client's UDP size is sent empty with
// TC; over TCP it comes whole.
func TestSignedTruncation(t *testing.T) {
	st := withWeights(t, configured(t, testConfig()), 50, 30, 20)
	s := signedServer(t, testKeys(t, "", true), st)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
	u, tcp := s.Addr()
	q := query("big.example.com.", dns.TypeA)
	q.SetEdns0(512, true)
	r := exchange(t, "udp", u.String(), q)
	if !r.Truncated || len(r.Answer) != 0 {
		t.Fatalf("UDP: TC %v, %d answers", r.Truncated, len(r.Answer))
	}
	r = exchange(t, "tcp", tcp.String(), q)
	if r.Truncated || len(r.Answer) != 61 { // 60 A and one RRSIG per key: the ZSK
		t.Fatalf("TCP: TC %v, %d answers", r.Truncated, len(r.Answer))
	}
}

// A server refusing to sign answers SERVFAIL to DO, and as before without.
func TestSignedRefusal(t *testing.T) {
	st := withWeights(t, configured(t, testConfig()), 50, 30, 20)
	s := signedServer(t, testKeys(t, "", false), st)
	s.SetDNSSECRefusal("key tags 1 differ from the cluster's 2", false)
	for _, q := range []*dns.Msg{doQuery("api.example.com.", dns.TypeA), doQuery("nope.example.com.", dns.TypeA)} {
		pkt, _ := q.Pack()
		var sn seen
		if _, ok := s.fast(pkt, netip.MustParseAddrPort("198.51.100.7:53"), make([]byte, 0, 4096), &sn); ok {
			t.Error("fast path answered while refusing")
		}
		w := &capture{remote: &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 53}}
		s.ServeDNS(w, q)
		r := new(dns.Msg)
		if err := r.Unpack(w.out); err != nil || r.Rcode != dns.RcodeServerFailure {
			t.Errorf("refusing: %v %v", r, err)
		}
	}
	w := &capture{remote: &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 53}}
	s.ServeDNS(w, query("api.example.com.", dns.TypeA))
	r := new(dns.Msg)
	if err := r.Unpack(w.out); err != nil || r.Rcode != 0 || len(r.Answer) != 2 {
		t.Errorf("without DO: %v %v", r, err)
	}
	// In an unsigned cluster: DO gets the unsigned answers, on both paths.
	s.SetDNSSECRefusal("the leader has no keys", true)
	plain := New(Config{})
	plain.Update(st)
	from := netip.MustParseAddrPort("198.51.100.7:53")
	for _, q := range []*dns.Msg{doQuery("api.example.com.", dns.TypeA), doQuery("nope.example.com.", dns.TypeA), doQuery("api.example.com.", dns.TypeMX)} {
		pkt, _ := q.Pack()
		var sn seen
		a, okA := s.fast(pkt, from, make([]byte, 0, 4096), &sn)
		b, okB := plain.fast(pkt, from, make([]byte, 0, 4096), &sn)
		if okA != okB || !bytes.Equal(a, b) {
			t.Errorf("%s: unsigned-cluster fast answer differs from an unsigned server's", q.Question[0].Name)
		}
		wa, wb := &capture{remote: net.UDPAddrFromAddrPort(from)}, &capture{remote: net.UDPAddrFromAddrPort(from)}
		s.ServeDNS(wa, q)
		plain.ServeDNS(wb, q)
		if !bytes.Equal(wa.out, wb.out) {
			t.Errorf("%s: unsigned-cluster general answer differs from an unsigned server's", q.Question[0].Name)
		}
	}
	s.SetDNSSECRefusal("", false)
	pkt, _ := doQuery("api.example.com.", dns.TypeA).Pack()
	var sn seen
	if _, ok := s.fast(pkt, netip.MustParseAddrPort("198.51.100.7:53"), make([]byte, 0, 4096), &sn); !ok {
		t.Error("fast path not back after the refusal was lifted")
	}
}

// Signatures are renewed when the next signing period starts (periods of
// Validity - Refresh aligned to the clock), from the last state given, and
// RRsets unchanged by an update keep their signatures. With unsigned
// transfers, re-signing keeps the serial and the IXFR journal; with signed
// ones it moves the serial forward by the period (xfrsign.go).
func TestResign(t *testing.T) {
	for _, unsigned := range []bool{true, false} {
		t.Run(fmt.Sprintf("unsigned transfers %v", unsigned), func(t *testing.T) {
			now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			s := New(Config{Now: func() time.Time { return now }})
			cfg := DNSSECConfig{Keys: testKeys(t, "", false), Validity: 10 * 24 * time.Hour, Refresh: 4 * 24 * time.Hour,
				UnsignedTransfers: unsigned}
			if err := s.EnableDNSSEC(cfg); err != nil {
				t.Fatal(err)
			}
			const period = 6 * 24 * time.Hour
			start := time.Unix(0, now.UnixNano()-now.UnixNano()%int64(period))
			st := withWeights(t, configured(t, testConfig()), 50, 30, 20)
			s.Update(st)
			sigOf := func(name string, qt uint16) *dns.RRSIG {
				w := &capture{remote: &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 53}}
				s.ServeDNS(w, doQuery(name, qt))
				r := new(dns.Msg)
				if err := r.Unpack(w.out); err != nil {
					t.Fatal(err)
				}
				for _, rr := range r.Answer {
					if sig, ok := rr.(*dns.RRSIG); ok {
						return sig
					}
				}
				t.Fatalf("%s: no RRSIG", name)
				return nil
			}
			first := sigOf("fo.example.com.", dns.TypeA)
			if first.Inception != uint32(start.Add(-time.Hour).Unix()) || first.Expiration != uint32(start.Add(240*time.Hour).Unix()) {
				t.Fatalf("validity %d..%d, period start %s", first.Inception, first.Expiration, start)
			}
			// A change elsewhere: the same signature (cache), a new SOA one.
			st2 := withWeights(t, st, 60, 30, 10)
			soa1 := sigOf("example.com.", dns.TypeSOA)
			now = now.Add(time.Hour)
			s.Update(st2)
			if got := sigOf("fo.example.com.", dns.TypeA); got.Signature != first.Signature {
				t.Error("unchanged RRset re-signed")
			}
			if got := sigOf("example.com.", dns.TypeSOA); got.Signature == soa1.Signature {
				t.Error("new SOA not re-signed")
			}
			now = start.Add(period - time.Second) // the period's last second
			s.resignIfDue()
			if got := sigOf("fo.example.com.", dns.TypeA); got.Expiration != first.Expiration {
				t.Error("re-signed too early")
			}
			now = start.Add(period)
			before := s.view.Load()
			if before.journal == nil {
				t.Fatal("no IXFR journal after a change")
			}
			s.resignIfDue()
			got := sigOf("fo.example.com.", dns.TypeA)
			if got.Expiration != uint32(now.Add(240*time.Hour).Unix()) {
				t.Errorf("not re-signed: expiration %d", got.Expiration)
			}
			after := s.view.Load()
			if after == before {
				t.Fatal("no new view")
			}
			if unsigned {
				// Re-signing changes no transfer record: secondaries keep
				// getting the changes since their serial.
				if after.journal != before.journal || after.serial != before.serial {
					t.Error("re-signing dropped the IXFR journal or moved the serial")
				}
				return
			}
			if d := after.serial - before.serial; d != uint32(period/time.Second) {
				t.Errorf("serial moved by %d, want the period %d", d, uint32(period/time.Second))
			}
		})
	}
}

func TestLoadDNSSECKeysErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadDNSSECKeys(dir); err == nil || !strings.Contains(err.Error(), "evac dnssec keygen") {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := LoadDNSSECKeys(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing dir loaded")
	}
	files, err := GenerateDNSSECKeys(dir, "", AlgED25519, true)
	if err != nil || len(files) != 2 {
		t.Fatal(files, err)
	}
	ks, err := LoadDNSSECKeys(dir)
	if err != nil || len(ks.Keys) != 2 || len(ks.DS("example.com", 3600)) != 1 {
		t.Fatalf("%v %v", ks, err)
	}
	priv := strings.TrimSuffix(files[0], ".key") + ".private"
	if err := os.Chmod(priv, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDNSSECKeys(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("open private key: %v", err)
	} else if !errors.Is(err, keyfile.ErrTooOpen) {
		t.Errorf("not ErrTooOpen: %v", err)
	}
	// A private key swapped with another key's fails its self-test.
	other := t.TempDir()
	ofiles, err := GenerateDNSSECKeys(other, "", AlgED25519, false)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(strings.TrimSuffix(ofiles[0], ".key") + ".private")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(priv, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(priv, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadDNSSECKeys(dir)
	if err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched private key: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "PrivateKey:") {
		t.Errorf("error shows key material: %v", err)
	}
	if _, err := GenerateDNSSECKeys(t.TempDir(), "", "rsasha1", false); err == nil {
		t.Error("rsasha1 accepted")
	}
}
