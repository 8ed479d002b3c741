package dnsserver

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap/zaptest"

	"github.com/evac-sh/evac/controlplane/state"
)

// signedXfrConfig is the test zone (weighted, failover, all and nearest-
// free services, name servers in and out of the zone) with static records
// and transfers allowed from loopback.
func signedXfrConfig() *state.Config {
	c := testConfig()
	c.TransferAllow = []string{"127.0.0.0/8"}
	c.Records = []state.Record{
		{Name: "static", Type: "A", Value: "192.0.2.80"},
		{Name: "static", Type: "TXT", Value: "hello"},
		{Name: "www", Type: "CNAME", Value: "api"},
		{Name: "deep.a.b", Type: "TXT", Value: "empty non-terminals above"},
		{Name: "@", Type: "TXT", Value: "v=spf1 -all"},
	}
	return c
}

// signedAt returns a server signing with keys at the clock *now,
// transfers signed unless unsigned.
func signedAt(t *testing.T, keys *DNSSECKeys, now *time.Time, unsigned bool) *Server {
	t.Helper()
	s := New(Config{Addr: "127.0.0.1:0", Logger: zaptest.NewLogger(t), Now: func() time.Time { return *now }})
	if err := s.EnableDNSSEC(DNSSECConfig{Keys: keys, Validity: 10 * 24 * time.Hour, Refresh: 4 * 24 * time.Hour,
		UnsignedTransfers: unsigned}); err != nil {
		t.Fatal(err)
	}
	return s
}

// testPeriodStart is the start of a signing period of signedAt's servers.
func testPeriodStart() time.Time {
	return DNSSECConfig{Validity: 10 * 24 * time.Hour, Refresh: 4 * 24 * time.Hour}.periodStart(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
}

// checkSignedZone checks a signed zone as a validator and a zone checker
// would, at the time now: zone is its records (the SOA first, no closing
// SOA). Every RRset has RRSIGs by exactly the keys of its role (DNSKEY:
// the SEP keys; others: the ZSKs, or the CSKs without ZSKs) that verify
// with the zone's DNSKEYs and are valid at now; no RRSIG covers a missing
// RRset; the NSEC chain has one NSEC per name with records, in canonical
// order, closed back to the apex, with the name's types in its bitmap.
func checkSignedZone(t *testing.T, zone []dns.RR, apex string, now time.Time) {
	t.Helper()
	type setKey struct {
		name string
		typ  uint16
	}
	sets := map[setKey][]dns.RR{}
	sigs := map[setKey][]*dns.RRSIG{}
	types := map[string][]uint16{}
	var nsecs []*dns.NSEC
	for _, rr := range zone {
		h := rr.Header()
		name := strings.ToLower(h.Name)
		if !dns.IsSubDomain(apex, name) {
			t.Errorf("out-of-zone record %s", rr)
		}
		if sig, ok := rr.(*dns.RRSIG); ok {
			k := setKey{name, sig.TypeCovered}
			sigs[k] = append(sigs[k], sig)
			continue
		}
		k := setKey{name, h.Rrtype}
		if _, ok := sets[k]; !ok {
			types[name] = append(types[name], h.Rrtype)
		}
		sets[k] = append(sets[k], rr)
		if n, ok := rr.(*dns.NSEC); ok {
			nsecs = append(nsecs, n)
		}
	}
	if _, ok := zone[0].(*dns.SOA); !ok {
		t.Fatalf("the zone does not start with its SOA: %s", zone[0])
	}
	keys := map[uint16]*dns.DNSKEY{}
	var sep, zsk []uint16
	for _, rr := range sets[setKey{apex, dns.TypeDNSKEY}] {
		k := rr.(*dns.DNSKEY)
		keys[k.KeyTag()] = k
		if k.Flags&dns.SEP != 0 {
			sep = append(sep, k.KeyTag())
		} else {
			zsk = append(zsk, k.KeyTag())
		}
	}
	if len(sep) == 0 {
		t.Fatal("no DNSKEY with the SEP flag at the apex")
	}
	if len(zsk) == 0 {
		zsk = sep // CSKs
	}
	for k, rrset := range sets {
		want := zsk
		if k.typ == dns.TypeDNSKEY {
			want = sep
		}
		var got []uint16
		for _, sig := range sigs[k] {
			key := keys[sig.KeyTag]
			if key == nil {
				t.Errorf("%s %s: RRSIG by unknown key %d", k.name, dns.TypeToString[k.typ], sig.KeyTag)
				continue
			}
			if err := sig.Verify(key, rrset); err != nil {
				t.Errorf("%s %s: RRSIG by %d does not verify: %v", k.name, dns.TypeToString[k.typ], sig.KeyTag, err)
			}
			if !sig.ValidityPeriod(now) {
				t.Errorf("%s %s: RRSIG not valid at %s", k.name, dns.TypeToString[k.typ], now)
			}
			if sig.OrigTtl != rrset[0].Header().Ttl || sig.Hdr.Ttl != rrset[0].Header().Ttl {
				t.Errorf("%s %s: RRSIG TTL %d/%d, RRset TTL %d", k.name, dns.TypeToString[k.typ], sig.Hdr.Ttl, sig.OrigTtl, rrset[0].Header().Ttl)
			}
			got = append(got, sig.KeyTag)
		}
		if !sameTags(got, want) {
			t.Errorf("%s %s: signed by %v, want %v", k.name, dns.TypeToString[k.typ], got, want)
		}
	}
	for k := range sigs {
		if _, ok := sets[k]; !ok {
			t.Errorf("RRSIG over %s %s, which the zone lacks", k.name, dns.TypeToString[k.typ])
		}
	}
	// The NSEC chain, against names sorted here by their labels from the
	// right (the test zone's names are lower-case letters, digits and
	// dashes, so comparing label strings is the canonical order).
	var names []string
	for name := range types {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int {
		la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
		slices.Reverse(la)
		slices.Reverse(lb)
		return slices.Compare(la, lb)
	})
	if len(nsecs) != len(names) {
		t.Errorf("%d NSEC records for %d names", len(nsecs), len(names))
	}
	if names[0] != apex {
		t.Errorf("first name %s, not the apex", names[0])
	}
	for i, name := range names {
		set := sets[setKey{name, dns.TypeNSEC}]
		if len(set) != 1 {
			t.Errorf("%s: %d NSEC records", name, len(set))
			continue
		}
		n := set[0].(*dns.NSEC)
		if want := names[(i+1)%len(names)]; !strings.EqualFold(n.NextDomain, want) {
			t.Errorf("%s: NSEC next %s, want %s", name, n.NextDomain, want)
		}
		want := slices.Clone(types[name])
		want = append(want, dns.TypeRRSIG)
		slices.Sort(want)
		if !slices.Equal(n.TypeBitMap, want) {
			t.Errorf("%s: NSEC types %v, want %v", name, n.TypeBitMap, want)
		}
		if n.Hdr.Ttl != zone[0].(*dns.SOA).Minttl {
			t.Errorf("%s: NSEC TTL %d, not the SOA minimum", name, n.Hdr.Ttl)
		}
	}
}

func sameTags(a, b []uint16) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// signedZoneOf transfers the zone from addr with AXFR and returns its
// records without the closing SOA.
func signedZoneOf(t *testing.T, addr string) []dns.RR {
	t.Helper()
	rrs := axfr(t, addr, "example.com.", dns.TypeAXFR)
	if len(rrs) < 2 || rrs[len(rrs)-1].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("AXFR of %d records without a closing SOA", len(rrs))
	}
	return rrs[:len(rrs)-1]
}

// TestSignedAXFR: the transferred zone is the unsigned one plus the
// DNSKEYs, an NSEC chain and the RRSIGs, and verifies, for a CSK
// (ECDSA) and a KSK/ZSK pair (Ed25519); its serial is the state's plus
// the seconds from serialEpoch to the signing period's start.
func TestSignedAXFR(t *testing.T) {
	for _, tc := range []struct {
		alg  string
		pair bool
	}{{AlgECDSAP256SHA256, false}, {AlgED25519, true}, {AlgECDSAP256SHA256, true}} {
		t.Run(fmt.Sprintf("%s pair %v", tc.alg, tc.pair), func(t *testing.T) {
			now := time.Now()
			st := withWeights(t, configured(t, signedXfrConfig()), 50, 30, 20)
			srv := signedAt(t, testKeys(t, tc.alg, tc.pair), &now, false)
			srv.Update(st)
			ts := startAt(t, srv)
			zone := signedZoneOf(t, ts.tcp)
			checkSignedZone(t, zone, "example.com.", now)

			start := srv.signer.cfg.periodStart(now)
			if got, want := zone[0].(*dns.SOA).Serial, st.Serial+uint32(start.Sub(serialEpoch)/time.Second); got != want {
				t.Errorf("serial %d, want %d", got, want)
			}
			// The answers' SOA has the same serial.
			r := exchange(t, "udp", ts.udp, query("example.com.", dns.TypeSOA))
			if len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != zone[0].(*dns.SOA).Serial {
				t.Errorf("SOA answer %v, transfer serial %d", r.Answer, zone[0].(*dns.SOA).Serial)
			}
			// Without the DNSSEC records it is the unsigned transfer.
			plain := New(Config{})
			plain.Update(st)
			var stripped []string
			for _, rr := range zone[1:] {
				switch rr.Header().Rrtype {
				case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeDNSKEY:
				default:
					stripped = append(stripped, rr.String())
				}
			}
			slices.Sort(stripped)
			if want := rrStrings(plain.view.Load().axfr[1:]); !slices.Equal(stripped, want) {
				t.Errorf("the signed transfer's data differs from the unsigned one:\n%v\n%v", stripped, want)
			}
			// A full IXFR gives the same zone.
			ix := axfr(t, ts.tcp, "example.com.", dns.TypeIXFR)
			if !slices.Equal(rrStrings(ix[:len(ix)-1]), rrStrings(zone)) {
				t.Error("AXFR-style IXFR differs from AXFR")
			}
		})
	}
}

// TestSignedIXFR: a secondary keeps a verifying copy by IXFR through a
// state change, a re-sign (new period: new signatures and serial, with
// a NOTIFY) and a change after it.
func TestSignedIXFR(t *testing.T) {
	old := notifyTimeout
	t.Cleanup(func() { notifyTimeout = old })
	notifyTimeout = 100 * time.Millisecond
	sec := startFakeSecondary(t)
	c := signedXfrConfig()
	c.Secondaries = secondaries(sec.pc.LocalAddr().String())
	for i := range 40 { // data enough that a re-sign's IXFR is shorter than the zone
		c.Records = append(c.Records, state.Record{Name: "bulk", Type: "TXT", Value: fmt.Sprintf("record %d %s", i, strings.Repeat("z", 100))})
	}
	st := withWeights(t, configured(t, c), 50, 30, 20)
	now := testPeriodStart().Add(time.Hour)
	srv := signedAt(t, testKeys(t, "", true), &now, false)
	srv.Update(st)
	ts := startAt(t, srv)
	_ = sec.next(t) // lost
	_ = sec.next(t) // the retry

	type copyAt struct {
		serial uint32
		zone   []string // without the SOA
	}
	take := func() copyAt {
		z := signedZoneOf(t, ts.tcp)
		checkSignedZone(t, z, "example.com.", now)
		return copyAt{z[0].(*dns.SOA).Serial, rrStrings(z[1:])}
	}
	secondary := take()
	step := func(what string, wantIncremental bool) {
		t.Helper()
		cur := take()
		if int32(cur.serial-secondary.serial) <= 0 {
			t.Fatalf("%s: serial %d not after %d", what, cur.serial, secondary.serial)
		}
		got, incremental := applyIXFR(t, secondary.zone, secondary.serial, ixfrIn(t, ts.tcp, secondary.serial, ""))
		if incremental != wantIncremental {
			t.Errorf("%s: incremental %v", what, incremental)
		}
		if !slices.Equal(got, cur.zone) {
			t.Errorf("%s: after the IXFR the secondary has %d records, the zone %d", what, len(got), len(cur.zone))
		}
		if m := sec.next(t); len(m.Answer) != 1 || m.Answer[0].(*dns.SOA).Serial != cur.serial {
			t.Errorf("%s: NOTIFY %v, want serial %d", what, m.Answer, cur.serial)
		}
		secondary = cur
	}

	now = now.Add(time.Minute)
	st = withWeights(t, st, 10, 30, 60)
	srv.Update(st)
	step("a state change", true)

	before := srv.view.Load().serial
	now = srv.signer.resignAt
	srv.resignIfDue()
	if d := srv.view.Load().serial - before; d != 6*86400 {
		t.Errorf("re-sign moved the serial by %d, want one period", d)
	}
	step("a re-sign", true)

	now = now.Add(time.Minute)
	st = withWeights(t, st, 50, 50, 0)
	srv.Update(st)
	step("a change after the re-sign", true)
}

// TestSignedTransferSameOnEveryServer: two servers with the same keys and
// states, building at different times of the same signing period (and one
// skipping a state), transfer identical zones, and an IXFR from one
// applies to a copy taken from the other.
func TestSignedTransferSameOnEveryServer(t *testing.T) {
	for _, alg := range []string{AlgECDSAP256SHA256, AlgED25519} {
		t.Run(alg, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := GenerateDNSSECKeys(dir, "example.com", alg, false); err != nil {
				t.Fatal(err)
			}
			load := func() *DNSSECKeys {
				ks, err := LoadDNSSECKeys(dir)
				if err != nil {
					t.Fatal(err)
				}
				return ks
			}
			base := testPeriodStart().Add(24 * time.Hour)
			nowA, nowB := base, base.Add(3*time.Hour)
			a, b := signedAt(t, load(), &nowA, false), signedAt(t, load(), &nowB, false)
			st1 := withWeights(t, configured(t, signedXfrConfig()), 50, 30, 20)
			st2 := withWeights(t, st1, 0, 50, 50)
			st3 := withConfig(t, st2, func(c *state.Config) {
				*c = *signedXfrConfig()
				c.Records[0].Value = "192.0.2.81"
			})
			a.Update(st1)
			a.Update(st2)
			b.Update(st2)
			nowA, nowB = nowA.Add(time.Hour), nowB.Add(-time.Hour)
			a.Update(st3)
			b.Update(st3)
			ta, tb := startAt(t, a), startAt(t, b)
			za, zb := signedZoneOf(t, ta.tcp), signedZoneOf(t, tb.tcp)
			checkSignedZone(t, za, "example.com.", base)
			if !slices.Equal(rrStrings(za), rrStrings(zb)) {
				t.Fatal("the servers' signed zones differ")
			}
			// A copy at st2 (from a), brought up to date by b.
			oldA := signedAt(t, load(), &nowA, false)
			oldA.Update(st2)
			old := signedZoneOf(t, startAt(t, oldA).tcp)
			got, incremental := applyIXFR(t, rrStrings(old[1:]), old[0].(*dns.SOA).Serial, ixfrIn(t, tb.tcp, old[0].(*dns.SOA).Serial, ""))
			if !incremental || !slices.Equal(got, rrStrings(za[1:])) {
				t.Errorf("IXFR from the other server: incremental %v, zone equal %v", incremental, slices.Equal(got, rrStrings(za[1:])))
			}
		})
	}
}

// TestSignedTransferRefusal: a server whose keys are not the cluster's
// answers transfers SERVFAIL; one in a cluster that does not sign
// transfers the unsigned zone at the state serial, as the others do, and
// the signed one again when the refusal is lifted.
func TestSignedTransferRefusal(t *testing.T) {
	now := time.Now()
	st := withWeights(t, configured(t, signedXfrConfig()), 50, 30, 20)
	srv := signedAt(t, testKeys(t, "", false), &now, false)
	srv.Update(st)
	ts := startAt(t, srv)
	signedSerial := srv.view.Load().serial

	srv.SetDNSSECRefusal("key tags 1 differ from the cluster's 2", false)
	m := new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeAXFR)
	if r := exchange(t, "tcp", ts.tcp, m); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("AXFR while refusing: %s", dns.RcodeToString[r.Rcode])
	}

	srv.SetDNSSECRefusal("the leader has no keys", true)
	plain := New(Config{})
	plain.Update(st)
	rrs := axfr(t, ts.tcp, "example.com.", dns.TypeAXFR)
	if rrs[0].(*dns.SOA).Serial != st.Serial {
		t.Errorf("serial %d in an unsigned cluster, want the state's %d", rrs[0].(*dns.SOA).Serial, st.Serial)
	}
	if got, want := rrStrings(rrs[:len(rrs)-1]), rrStrings(plain.view.Load().axfr); !slices.Equal(got, want) {
		t.Error("the transfer in an unsigned cluster differs from an unsigned server's")
	}

	srv.SetDNSSECRefusal("", false)
	zone := signedZoneOf(t, ts.tcp)
	checkSignedZone(t, zone, "example.com.", now)
	if zone[0].(*dns.SOA).Serial != signedSerial {
		t.Errorf("serial %d after the refusal, want %d", zone[0].(*dns.SOA).Serial, signedSerial)
	}
}

// The canonical order of RFC 4034 section 6.1, its own example.
func TestCanonicalOrder(t *testing.T) {
	want := []string{"example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.", "zABC.a.EXAMPLE.",
		"z.example.", `\001.z.example.`, "*.z.example.", `\200.z.example.`}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortStableFunc(got, func(a, b string) int { return compareCanonical(canonicalKey(a), canonicalKey(b)) })
	if !slices.Equal(got, want) {
		t.Errorf("canonical order:\n%v\nwant\n%v", got, want)
	}
}

// TestSignedTransferAwaitKeyCheck: with AwaitKeyCheck (as controllers
// run), transfers are unsigned at the state serial until the keys have
// been compared; then signed, the serial only moving forward.
func TestSignedTransferAwaitKeyCheck(t *testing.T) {
	now := time.Now()
	st := withWeights(t, configured(t, signedXfrConfig()), 50, 30, 20)
	srv := New(Config{Addr: "127.0.0.1:0", Logger: zaptest.NewLogger(t), Now: func() time.Time { return now }})
	if err := srv.EnableDNSSEC(DNSSECConfig{Keys: testKeys(t, "", false), AwaitKeyCheck: true}); err != nil {
		t.Fatal(err)
	}
	srv.Update(st)
	ts := startAt(t, srv)
	rrs := axfr(t, ts.tcp, "example.com.", dns.TypeAXFR)
	plain := New(Config{})
	plain.Update(st)
	if got, want := rrStrings(rrs[:len(rrs)-1]), rrStrings(plain.view.Load().axfr); !slices.Equal(got, want) {
		t.Error("transfer before the key check differs from an unsigned server's")
	}
	// A verdict alone (answers signed) does not lift the hold; the check does.
	srv.SetDNSSECRefusal("", false)
	if s := srv.Serial(); s != st.Serial {
		t.Errorf("serial %d before the key check, want %d", s, st.Serial)
	}
	srv.DNSSECKeysChecked()
	zone := signedZoneOf(t, ts.tcp)
	checkSignedZone(t, zone, "example.com.", now)
	if s := zone[0].(*dns.SOA).Serial; int32(s-st.Serial) <= 0 || s != srv.Serial() {
		t.Errorf("serial %d after the key check (state %d, served %d)", s, st.Serial, srv.Serial())
	}
}
