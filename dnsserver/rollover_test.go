package dnsserver

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/state"
)

// answerFor asks s q through the general path.
func answerFor(t *testing.T, s *Server, q *dns.Msg) *dns.Msg {
	t.Helper()
	w := &capture{remote: &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 53}}
	s.ServeDNS(w, q)
	r := new(dns.Msg)
	if err := r.Unpack(w.out); err != nil {
		t.Fatal(err)
	}
	return r
}

// tagsOf returns the DNSKEY tags and the RRSIG key tags (of RRSIGs
// covering covered) in rrs, each sorted.
func tagsOf(rrs []dns.RR, covered uint16) (keys, sigs []uint16) {
	for _, rr := range rrs {
		switch r := rr.(type) {
		case *dns.DNSKEY:
			keys = append(keys, r.KeyTag())
		case *dns.RRSIG:
			if r.TypeCovered == covered {
				sigs = append(sigs, r.KeyTag)
			}
		}
	}
	slices.Sort(keys)
	slices.Sort(sigs)
	return keys, sigs
}

func recorded(ks *DNSSECKeys, states map[*DNSSECKey]string) *state.DNSSECState {
	d := &state.DNSSECState{}
	for k, st := range states {
		d.Keys = append(d.Keys, state.DNSSECKeyState{ID: k.ID(), Tag: k.DNSKEY.KeyTag(), Algorithm: k.DNSKEY.Algorithm, Flags: k.DNSKEY.Flags, State: st})
	}
	return d
}

func sortedTags(ks ...*DNSSECKey) []uint16 {
	var out []uint16
	for _, k := range ks {
		out = append(out, k.DNSKEY.KeyTag())
	}
	slices.Sort(out)
	return out
}

// TestRolloverSigning: per phase of a ZSK pre-publish and a KSK
// double-signature rollover, the DNSKEY RRset holds the keys the states
// name, the DNSKEY RRset is signed by every SEP key named, other RRsets by
// the active ZSK; keys the states do not name are ignored; a server
// lacking a named key refuses answers with DO.
func TestRolloverSigning(t *testing.T) {
	dir := t.TempDir()
	if _, err := GenerateDNSSECKeys(dir, "example.com", "", true); err != nil {
		t.Fatal(err)
	}
	for _, sep := range []bool{false, true} {
		if _, err := GenerateDNSSECKey(dir, "example.com", "", sep); err != nil {
			t.Fatal(err)
		}
	}
	all, err := LoadDNSSECKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ksks, zsks []*DNSSECKey
	for _, k := range all.Keys {
		if k.KSK() {
			ksks = append(ksks, k)
		} else {
			zsks = append(zsks, k)
		}
	}
	if len(ksks) != 2 || len(zsks) != 2 {
		t.Fatalf("keys %v", all.Describe())
	}
	ksk, newKSK, zsk, newZSK := ksks[0], ksks[1], zsks[0], zsks[1]
	base := withWeights(t, configured(t, testConfig()), 50, 30, 20)
	srv := signedServer(t, all, nil)
	type phase struct {
		name                 string
		states               map[*DNSSECKey]string
		dnskey, keySig, aSig []uint16
	}
	phases := []phase{
		{"not recorded: every key", nil, sortedTags(all.Keys...), sortedTags(ksks...), sortedTags(zsks...)},
		{"recorded", map[*DNSSECKey]string{ksk: state.KeyActive, zsk: state.KeyActive},
			sortedTags(ksk, zsk), sortedTags(ksk), sortedTags(zsk)},
		{"zsk published", map[*DNSSECKey]string{ksk: state.KeyActive, zsk: state.KeyActive, newZSK: state.KeyPublished},
			sortedTags(ksk, zsk, newZSK), sortedTags(ksk), sortedTags(zsk)},
		{"zsk active", map[*DNSSECKey]string{ksk: state.KeyActive, zsk: state.KeyPublished, newZSK: state.KeyActive},
			sortedTags(ksk, zsk, newZSK), sortedTags(ksk), sortedTags(newZSK)},
		{"zsk done", map[*DNSSECKey]string{ksk: state.KeyActive, newZSK: state.KeyActive},
			sortedTags(ksk, newZSK), sortedTags(ksk), sortedTags(newZSK)},
		{"ksk published", map[*DNSSECKey]string{ksk: state.KeyActive, newKSK: state.KeyPublished, newZSK: state.KeyActive},
			sortedTags(ksk, newKSK, newZSK), sortedTags(ksk, newKSK), sortedTags(newZSK)},
		{"ksk active", map[*DNSSECKey]string{ksk: state.KeyPublished, newKSK: state.KeyActive, newZSK: state.KeyActive},
			sortedTags(ksk, newKSK, newZSK), sortedTags(ksk, newKSK), sortedTags(newZSK)},
		{"ksk done", map[*DNSSECKey]string{newKSK: state.KeyActive, newZSK: state.KeyActive},
			sortedTags(newKSK, newZSK), sortedTags(newKSK), sortedTags(newZSK)},
	}
	for i, ph := range phases {
		st := *base
		st.Serial = base.Serial + uint32(i) + 1
		if ph.states != nil {
			st.DNSSEC = recorded(all, ph.states)
		}
		srv.Update(&st)
		kr := answerFor(t, srv, doQuery("example.com.", dns.TypeDNSKEY))
		keys, keySigs := tagsOf(kr.Answer, dns.TypeDNSKEY)
		if !slices.Equal(keys, ph.dnskey) || !slices.Equal(keySigs, ph.keySig) {
			t.Errorf("%s: DNSKEY %v signed by %v, want %v signed by %v", ph.name, keys, keySigs, ph.dnskey, ph.keySig)
		}
		var published []dns.RR
		for _, rr := range kr.Answer {
			if rr.Header().Rrtype == dns.TypeDNSKEY {
				published = append(published, rr)
			}
		}
		for _, q := range []*dns.Msg{doQuery("api.example.com.", dns.TypeA), doQuery("example.com.", dns.TypeSOA), doQuery("api.example.com.", dns.TypeMX)} {
			r := answerFor(t, srv, q)
			verifyMsg(t, r, published)
			covered := q.Question[0].Qtype
			sec := r.Answer
			if len(r.Answer) == 0 {
				sec, covered = r.Ns, dns.TypeNSEC
			}
			if _, sigs := tagsOf(sec, covered); !slices.Equal(sigs, ph.aSig) {
				t.Errorf("%s: %s %s signed by %v, want %v", ph.name, q.Question[0].Name, dns.TypeToString[q.Question[0].Qtype], sigs, ph.aSig)
			}
		}
		if srv.DNSSECRefusal() != "" {
			t.Errorf("%s: refusing: %s", ph.name, srv.DNSSECRefusal())
		}
	}

	// A server whose directory lacks a named key refuses answers with DO,
	// saying which, and signs again once it has it (SetDNSSECKeys).
	partial := &DNSSECKeys{Dir: dir, Keys: []*DNSSECKey{ksk, zsk}}
	lacking := signedServer(t, partial, nil)
	st := *base
	st.Serial = base.Serial + 100
	st.DNSSEC = recorded(all, map[*DNSSECKey]string{ksk: state.KeyActive, zsk: state.KeyActive, newZSK: state.KeyPublished})
	lacking.Update(&st)
	if r := answerFor(t, lacking, doQuery("api.example.com.", dns.TypeA)); r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("lacking a key: rcode %s", dns.RcodeToString[r.Rcode])
	}
	if why := lacking.DNSSECRefusal(); !strings.Contains(why, newZSK.ID()) {
		t.Fatalf("refusal %q does not name the key", why)
	}
	if r := answerFor(t, lacking, query("api.example.com.", dns.TypeA)); r.Rcode != 0 || len(r.Answer) != 2 {
		t.Fatalf("without DO: %v", r)
	}
	if err := lacking.SetDNSSECKeys(all); err != nil {
		t.Fatal(err)
	}
	if r := answerFor(t, lacking, doQuery("example.com.", dns.TypeDNSKEY)); r.Rcode != 0 || lacking.DNSSECRefusal() != "" {
		t.Fatalf("after the reload: %s, refusal %q", dns.RcodeToString[r.Rcode], lacking.DNSSECRefusal())
	} else if keys, _ := tagsOf(r.Answer, dns.TypeDNSKEY); !slices.Equal(keys, sortedTags(ksk, zsk, newZSK)) {
		t.Fatalf("after the reload: DNSKEY %v", keys)
	}

	// A server without keys in a cluster that records some refuses too.
	plain := New(Config{})
	plain.Update(&st)
	if r := answerFor(t, plain, doQuery("api.example.com.", dns.TypeA)); r.Rcode != dns.RcodeServerFailure || !strings.Contains(plain.DNSSECRefusal(), "no DNSSEC keys") {
		t.Fatalf("no keys: %s, %q", dns.RcodeToString[r.Rcode], plain.DNSSECRefusal())
	}
}
