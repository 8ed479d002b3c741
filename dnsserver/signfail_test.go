package dnsserver

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/state"
)

// A server that lacks a key the cluster's key states name neither hands a
// secondary an unsigned copy of the signed zone nor moves its serial back:
// transfers get SERVFAIL, queries with DO too, and the SOA serial stays
// the signed one (state serial plus the period offset).
func TestLackingKeyRefusesTransfersKeepsSerial(t *testing.T) {
	now := time.Now()
	ksA, ksB := testKeys(t, "", false), testKeys(t, "", false)
	a, b := ksA.Keys[0], ksB.Keys[0]
	st := withWeights(t, configured(t, signedXfrConfig()), 50, 30, 20)
	st1 := *st
	st1.DNSSEC = recorded(ksA, map[*DNSSECKey]string{a: state.KeyActive})
	srv := signedAt(t, ksA, &now, false)
	srv.Update(&st1)
	ts := startAt(t, srv)
	signed := srv.view.Load().serial
	if signed == max(st1.Serial, 1) {
		t.Fatalf("signed transfers serve serial %d, the bare state serial", signed)
	}

	// The states now name b, which this server lacks.
	st2 := st1
	st2.Serial = st1.Serial + 1
	d := recorded(ksA, map[*DNSSECKey]string{a: state.KeyActive})
	d.Keys = append(d.Keys, state.DNSSECKeyState{ID: b.ID(), Tag: b.DNSKEY.KeyTag(), Algorithm: b.DNSKEY.Algorithm,
		Flags: b.DNSKEY.Flags, State: state.KeyPublished})
	st2.DNSSEC = d
	srv.Update(&st2)
	if srv.DNSSECRefusal() == "" {
		t.Fatal("no refusal while lacking a key the states name")
	}
	if got := srv.view.Load().serial; int32(got-signed) <= 0 {
		t.Errorf("serial %d after a change, was %d: it must move forward", got, signed)
	}
	for _, qt := range []uint16{dns.TypeAXFR, dns.TypeIXFR} {
		m := query("example.com.", dns.TypeAXFR)
		if qt == dns.TypeIXFR {
			m = ixfrQuery("example.com.", 1)
		}
		if r := exchange(t, "tcp", ts.tcp, m); r.Rcode != dns.RcodeServerFailure {
			t.Errorf("%s while lacking a key: rcode %s, %d records; want SERVFAIL", dns.TypeToString[qt], dns.RcodeToString[r.Rcode], len(r.Answer))
		}
	}
	m := new(dns.Msg)
	m.SetQuestion("api.example.com.", dns.TypeA)
	m.SetEdns0(1232, true)
	for _, addr := range []string{ts.udp, ts.tcp} {
		netw := "udp"
		if addr == ts.tcp {
			netw = "tcp"
		}
		if r := exchange(t, netw, addr, m); r.Rcode != dns.RcodeServerFailure {
			t.Errorf("DO query over %s while lacking a key: rcode %s; want SERVFAIL", netw, dns.RcodeToString[r.Rcode])
		}
	}
	// Lacking keys, the server still keeps to the signing periods: no
	// rebuild on every re-sign tick.
	v := srv.view.Load()
	srv.resignIfDue()
	if srv.view.Load() != v {
		t.Error("the re-sign loop rebuilt the view within a signing period while lacking a key")
	}
}

// A build that fails (a state whose view cannot be built) after the
// signing period is due leaves the signer as it was, so the live view is
// still re-signed before its signatures expire.
func TestFailedBuildKeepsResignDue(t *testing.T) {
	now := time.Now()
	ks := testKeys(t, "", false)
	st := withWeights(t, configured(t, signedXfrConfig()), 50, 30, 20)
	srv := signedAt(t, ks, &now, false)
	srv.Update(st)
	before := srv.view.Load().dnssec.expiration
	now = srv.signer.resignAt.Add(time.Second)
	bad := *st
	c := *st.Config
	c.Zone = "bad..zone"
	bad.Config = &c
	bad.Serial++
	srv.Update(&bad) // fails: the current view stays
	srv.resignIfDue()
	if after := srv.view.Load().dnssec.expiration; after == before {
		t.Fatalf("the live view was not re-signed after a failed build: expiration still %d", before)
	}
}
