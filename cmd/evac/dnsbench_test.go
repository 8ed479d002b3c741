package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap/zaptest"

	"github.com/evac-sh/evac/dnsserver"
)

// TestDNSBenchSigned: with --dnssec-keys the bench server signs (a query
// with DO gets the A RRset and an RRSIG by the directory's key), without it
// answers carry no RRSIG; a directory without keys is an error naming the flag.
func TestDNSBenchSigned(t *testing.T) {
	path := t.TempDir() + "/steering.yaml"
	writeFile(t, path, `zone: example.com.
nameservers: {ns1: 127.0.0.1}
regions: [{name: a}, {name: b}, {name: c}]
services:
  - {name: svc0, policy: weighted, endpoints: {a: [10.1.0.0], b: [10.2.0.0], c: [10.3.0.0]}}
`)
	st, err := benchState(path, "50,30,20")
	if err != nil {
		t.Fatal(err)
	}
	keys := t.TempDir()
	if _, err := dnsserver.GenerateDNSSECKeys(keys, "example.com", "", false); err != nil {
		t.Fatal(err)
	}
	ks, err := dnsserver.LoadDNSSECKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	tag := ks.Tags()[0]

	if _, err := newBenchServer(st, dnsserver.Config{Addr: "127.0.0.1:0"}, t.TempDir()); !errors.Is(err, dnsserver.ErrNoDNSSECKeys) {
		t.Errorf("empty key directory: %v, want %v", err, dnsserver.ErrNoDNSSECKeys)
	} else if err != nil && !strings.Contains(err.Error(), "--dnssec-keys") {
		t.Errorf("empty key directory: %v does not name --dnssec-keys", err)
	}

	for _, tc := range []struct {
		name    string
		keys    string
		do      bool
		wantSig bool
	}{
		{"signed DO", keys, true, true},
		{"signed no DO", keys, false, false},
		{"unsigned DO", "", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := newBenchServer(st, dnsserver.Config{Addr: "127.0.0.1:0", Logger: zaptest.NewLogger(t), RateLimit: 0}, tc.keys)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = s.Shutdown(ctx)
			})
			udp, _ := s.Addr()
			q := new(dns.Msg)
			q.SetQuestion("svc0.example.com.", dns.TypeA)
			q.SetEdns0(1232, tc.do)
			c := &dns.Client{Timeout: 10 * time.Second}
			r, _, err := c.Exchange(q, udp.String())
			if err != nil {
				t.Fatal(err)
			}
			var a int
			var sig *dns.RRSIG
			for _, rr := range r.Answer {
				switch rr := rr.(type) {
				case *dns.A:
					a++
				case *dns.RRSIG:
					sig = rr
				}
			}
			if r.Rcode != dns.RcodeSuccess || a != 1 {
				t.Fatalf("svc0 A: rcode %s, %d A records, want NOERROR and 1:\n%v", dns.RcodeToString[r.Rcode], a, r)
			}
			if (sig != nil) != tc.wantSig {
				t.Fatalf("RRSIG in the answer: %v, want %v:\n%v", sig != nil, tc.wantSig, r)
			}
			if sig != nil && (sig.TypeCovered != dns.TypeA || sig.KeyTag != tag) {
				t.Errorf("RRSIG covers %s with key %d, want A with %d", dns.TypeToString[sig.TypeCovered], sig.KeyTag, tag)
			}
		})
	}
}
