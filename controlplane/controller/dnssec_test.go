package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/dnsserver"
)

func dnssecKeys(t *testing.T) *dnsserver.DNSSECKeys {
	t.Helper()
	dir := t.TempDir()
	if _, err := dnsserver.GenerateDNSSECKeys(dir, "example.com", "", false); err != nil {
		t.Fatal(err)
	}
	ks, err := dnsserver.LoadDNSSECKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// Three controllers, the third with other keys: those whose keys differ
// from the leader's refuse signed answers (SERVFAIL to DO) and say why in
// their status; the others sign. Status lists every member's keys.
func TestDNSSECKeysAgreeWithTheLeader(t *testing.T) {
	a, b := dnssecKeys(t), dnssecKeys(t)
	c := startClusterWith(t, 3, func(i int, cfg *Config) {
		ks := a
		if i == 2 {
			ks = b
		}
		cfg.DNSSEC = &dnsserver.DNSSECConfig{Keys: ks}
	})
	leader := c.ctls[0]
	eventually(t, 30*time.Second, func() error {
		for _, ctl := range c.ctls {
			if ctl.IsLeader() {
				leader = ctl
				return nil
			}
		}
		return fmt.Errorf("no leader")
	})
	if code := call(t, leader, "PUT", "/v1/config", steeringYAML, nil); code != 200 {
		t.Fatalf("apply: %d", code)
	}
	leaderFP := leader.cfg.DNSSECKeys().Fingerprint()
	eventually(t, 30*time.Second, func() error {
		for _, ctl := range c.ctls {
			st := ctl.Status()
			d := st.DNSSEC
			if d == nil || len(d.Members) != 3 {
				return fmt.Errorf("%s: dnssec status %+v", ctl.cfg.NodeID, d)
			}
			differs := ctl.cfg.DNSSECKeys().Fingerprint() != leaderFP
			if d.Signing == differs || (d.Refusal != "") != differs {
				return fmt.Errorf("%s: signing %v refusal %q, keys differ from the leader's: %v", ctl.cfg.NodeID, d.Signing, d.Refusal, differs)
			}
			if differs && !strings.Contains(strings.Join(st.Warnings, "\n"), "differ") {
				return fmt.Errorf("%s: no warning: %v", ctl.cfg.NodeID, st.Warnings)
			}
			// DNS with DO: SERVFAIL where refused, signed elsewhere.
			m := new(dns.Msg)
			m.SetQuestion("api.example.com.", dns.TypeA)
			m.SetEdns0(1232, true)
			r, _, err := (&dns.Client{Timeout: 2 * time.Second}).ExchangeContext(context.Background(), m, ctl.cfg.DNSAddr)
			if err != nil {
				return err
			}
			signed := false
			for _, rr := range r.Answer {
				signed = signed || rr.Header().Rrtype == dns.TypeRRSIG
			}
			if differs != (r.Rcode == dns.RcodeServerFailure) || differs == signed {
				return fmt.Errorf("%s: rcode %s, signed %v", ctl.cfg.NodeID, dns.RcodeToString[r.Rcode], signed)
			}
		}
		return nil
	})
}
