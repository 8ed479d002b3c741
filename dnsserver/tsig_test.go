package dnsserver

import (
	"context"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap/zaptest"

	"github.com/evac-sh/evac/controlplane/state"
)

var (
	testSecret  = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	otherSecret = base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
)

func TestParseTSIGKeys(t *testing.T) {
	tests := []struct {
		name, yaml, err string
	}{
		{"good", "keys:\n  - {name: Transfer-Key, algorithm: hmac-sha256, secret: " + testSecret + "}\n  - {name: b.example., algorithm: HMAC-SHA512., secret: " + testSecret + "}\n", ""},
		{"empty", "", ""},
		{"bad algorithm", "keys: [{name: k, algorithm: hmac-md5, secret: " + testSecret + "}]", `keys[0].algorithm: "hmac-md5" must be hmac-sha256 or hmac-sha512`},
		{"bad secret", "keys: [{name: k, algorithm: hmac-sha256, secret: '!!'}]", "keys[0].secret: not base64"},
		{"short secret", "keys: [{name: k, algorithm: hmac-sha256, secret: AAAA}]", "keys[0].secret: 3 bytes"},
		{"bad name", "keys: [{name: 'a b', algorithm: hmac-sha256, secret: " + testSecret + "}]", "keys[0].name"},
		{"duplicate", "keys: [{name: k, algorithm: hmac-sha256, secret: " + testSecret + "}, {name: K., algorithm: hmac-sha256, secret: " + testSecret + "}]", "keys[1].name: duplicate key k."},
		{"unknown field", "keys: [{name: k, algo: hmac-sha256, secret: " + testSecret + "}]", "algo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := ParseTSIGKeys([]byte(tc.yaml))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "good" && (keys["transfer-key."] == nil || keys["b.example."].alg != dns.HmacSHA512) {
				t.Fatalf("keys %v", keys)
			}
		})
	}
}

func TestGenerateTSIGKey(t *testing.T) {
	for _, alg := range []string{AlgHMACSHA256, AlgHMACSHA512} {
		k, line, err := GenerateTSIGKey("Xfr", alg)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := ParseTSIGKeys([]byte("keys:\n" + line + "\n"))
		if err != nil || keys["xfr."] == nil || base64.StdEncoding.EncodeToString(keys["xfr."].secret) != k.Secret {
			t.Fatalf("%s: line %q parses to %v, %v", alg, line, keys, err)
		}
		if n := len(keys["xfr."].secret); n != map[string]int{AlgHMACSHA256: 32, AlgHMACSHA512: 64}[alg] {
			t.Errorf("%s: %d-byte secret", alg, n)
		}
	}
	if _, _, err := GenerateTSIGKey("k", "hmac-md5"); err == nil || !strings.Contains(err.Error(), "--algorithm") {
		t.Errorf("md5: %v", err)
	}
	if _, _, err := GenerateTSIGKey("a b", AlgHMACSHA256); err == nil || !strings.Contains(err.Error(), "--name") {
		t.Errorf("bad name: %v", err)
	}
}

func TestKeyringFileAndReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tsig.yaml")
	write := func(content string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("keys: [{name: a, algorithm: hmac-sha256, secret: "+testSecret+"}]\n", 0o644)
	if _, err := LoadKeyring(path, nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-readable file: %v", err)
	}
	write("keys: [{name: a, algorithm: hmac-sha256, secret: "+testSecret+"}]\n", 0o600)
	k, err := LoadKeyring(path, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(k.Names(), ","); got != "a." {
		t.Fatalf("keys %s", got)
	}
	// A bad file keeps the last good keys.
	write("keys: [{name: b, algorithm: nope, secret: x}]\n", 0o600)
	if err := k.Reload(); err == nil || !strings.Contains(err.Error(), "keys[0].algorithm") {
		t.Fatalf("bad reload: %v", err)
	}
	write("keys: [{name: b, algorithm: hmac-sha512, secret: "+testSecret+"}]\n", 0o640)
	if err := k.Reload(); err == nil {
		t.Fatal("reloaded a group-readable file")
	}
	if got := strings.Join(k.Names(), ","); got != "a." {
		t.Fatalf("after bad reloads: %s", got)
	}
	write("keys: [{name: b, algorithm: hmac-sha512, secret: "+testSecret+"}]\n", 0o600)
	if err := k.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(k.Names(), ","); got != "b." {
		t.Fatalf("after reload: %s", got)
	}
}

// tsigServers starts a server on a specific and one on a wildcard address,
// both with key "xfr." and a secondary at 127.0.0.1:5399 that must sign
// with it; it returns the listeners as listeners does, and the keyring.
func tsigServers(t *testing.T, c *state.Config) map[string]string {
	t.Helper()
	kr, err := NewKeyring(TSIGKey{Name: "xfr", Algorithm: AlgHMACSHA256, Secret: testSecret},
		TSIGKey{Name: "other", Algorithm: AlgHMACSHA512, Secret: otherSecret})
	if err != nil {
		t.Fatal(err)
	}
	st := configured(t, c)
	out := map[string]string{}
	for _, addr := range []string{"127.0.0.1:0", "0.0.0.0:0"} {
		s := New(Config{Addr: addr, Logger: zaptest.NewLogger(t), TSIG: kr})
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
		u, tc := s.Addr()
		if addr == "0.0.0.0:0" {
			out["udp-wildcard"] = net.JoinHostPort("127.0.0.1", itoa(u.(*net.UDPAddr).Port))
			out["tcp-wildcard"] = net.JoinHostPort("127.0.0.1", itoa(tc.(*net.TCPAddr).Port))
			continue
		}
		out["udp"], out["tcp"] = u.String(), tc.String()
	}
	return out
}

// signedExchange sends m signed with (key, secret, alg), shifted by skew,
// and returns the answer unverified with the TSIG verification error.
func signedExchange(t *testing.T, network, addr string, m *dns.Msg, key, alg, secret string, skew time.Duration) (*dns.Msg, error) {
	t.Helper()
	m.SetTsig(key, alg, 300, time.Now().Add(skew).Unix())
	b, mac, err := dns.TsigGenerate(m, secret, "", false)
	if err != nil {
		t.Fatal(err)
	}
	out := rawExchange(t, network, addr, b)
	if out == nil {
		t.Fatalf("%s: no answer", network)
	}
	r := new(dns.Msg)
	if err := r.Unpack(out); err != nil {
		t.Fatalf("%s: answer does not unpack: %v", network, err)
	}
	t0 := r.IsTsig()
	if t0 == nil {
		return r, dns.ErrNoSig
	}
	if r.Rcode != dns.RcodeNotAuth {
		return r, dns.TsigVerify(out, secret, mac, false)
	}
	// miekg/dns verifies no NOTAUTH answer: sign the same message again
	// and compare the MACs.
	again := r.Copy()
	again.Extra = again.Extra[:len(again.Extra)-1]
	rr := *t0
	rr.MAC, rr.MACSize = "", 0
	again.Extra = append(again.Extra, &rr)
	if _, want, err := dns.TsigGenerate(again, secret, mac, false); err != nil || want != t0.MAC {
		return r, dns.ErrSig
	}
	return r, nil
}

func TestTSIG(t *testing.T) {
	c := recordsConfig()
	c.Secondaries = []state.Secondary{{Address: "127.0.0.1:5399", TSIG: "xfr."}, {Address: "192.0.2.7:53"}}
	addrs := tsigServers(t, c)
	nets := []string{"udp", "udp-wildcard", "tcp", "tcp-wildcard"}

	for _, network := range nets {
		// A signed query gets a signed answer.
		r, err := signedExchange(t, network, addrs[network], query("fo.example.com.", dns.TypeA), "xfr.", dns.HmacSHA256, testSecret, 0)
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
			t.Errorf("%s: signed query: %v %v", network, err, r)
		}
		// IXFR signed by the secondary's key: our SOA (UDP) or the zone (TCP), signed.
		r, err = signedExchange(t, network, addrs[network], ixfrQuery("example.com.", 0), "xfr.", dns.HmacSHA256, testSecret, 0)
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			t.Errorf("%s: signed IXFR: %v %v", network, err, r)
		}
		// Bad signatures: NOTAUTH with the TSIG error, not silence.
		for _, tc := range []struct {
			name, key, alg, secret string
			skew                   time.Duration
			code                   uint16
		}{
			{"wrong secret", "xfr.", dns.HmacSHA256, otherSecret, 0, dns.RcodeBadSig},
			{"unknown key", "nokey.", dns.HmacSHA256, testSecret, 0, dns.RcodeBadKey},
			{"wrong algorithm", "xfr.", dns.HmacSHA512, testSecret, 0, dns.RcodeBadKey},
			{"clock skew", "xfr.", dns.HmacSHA256, testSecret, time.Hour, dns.RcodeBadTime},
		} {
			for _, q := range []*dns.Msg{ixfrQuery("example.com.", 0), query("fo.example.com.", dns.TypeA)} {
				r, err := signedExchange(t, network, addrs[network], q, tc.key, tc.alg, tc.secret, tc.skew)
				tsig := r.IsTsig()
				switch {
				case r.Rcode != dns.RcodeNotAuth || tsig == nil || tsig.Error != tc.code || len(r.Answer) != 0:
					t.Errorf("%s %s %s: %v", network, tc.name, dns.TypeToString[q.Question[0].Qtype], r)
				case tc.code == dns.RcodeBadTime && err != nil:
					t.Errorf("%s %s: BADTIME answer not signed: %v", network, tc.name, err)
				case tc.code != dns.RcodeBadTime && tsig.MAC != "":
					t.Errorf("%s %s: %s answer carries a MAC", network, tc.name, dns.RcodeToString[int(tc.code)])
				}
			}
		}
	}
	// Over TCP: AXFR signed, every message verified by miekg's client.
	for _, network := range []string{"tcp", "tcp-wildcard"} {
		m := new(dns.Msg)
		m.SetQuestion("example.com.", dns.TypeAXFR)
		m.SetTsig("xfr.", dns.HmacSHA256, 300, time.Now().Unix())
		tr := &dns.Transfer{DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, TsigSecret: map[string]string{"xfr.": testSecret}}
		ch, err := tr.In(m, addrs[network])
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for env := range ch {
			if env.Error != nil {
				t.Fatalf("%s: signed AXFR: %v", network, env.Error)
			}
			n += len(env.RR)
		}
		if n < 10 {
			t.Errorf("%s: signed AXFR has %d records", network, n)
		}
		// The secondary with a key asking unsigned (it comes from
		// 127.0.0.1, its address): NOTAUTH.
		r := exchange(t, "tcp", addrs[network], ixfrQuery("example.com.", 0))
		if r.Rcode != dns.RcodeNotAuth || len(r.Answer) != 0 {
			t.Errorf("%s: unsigned IXFR from the keyed secondary: %v", network, r)
		}
		// Signed with a valid key no secondary has, from no allowed
		// address: REFUSED.
		r, _ = signedExchange(t, network, addrs[network], ixfrQuery("example.com.", 0), "other.", dns.HmacSHA512, otherSecret, 0)
		if r.Rcode != dns.RcodeRefused {
			t.Errorf("%s: IXFR signed with another key: %v", network, r)
		}
	}
}

// TestSignedNotify: NOTIFY to a secondary with a key is signed with it.
func TestSignedNotify(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		status []error
		got    = make(chan struct{}, 10)
	)
	sec := &dns.Server{PacketConn: pc, TsigSecret: map[string]string{"xfr.": testSecret},
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			mu.Lock()
			if r.IsTsig() == nil {
				status = append(status, dns.ErrNoSig)
			} else {
				status = append(status, w.TsigStatus())
			}
			mu.Unlock()
			m := new(dns.Msg)
			m.SetReply(r)
			if t := r.IsTsig(); t != nil {
				m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
			}
			_ = w.WriteMsg(m)
			got <- struct{}{}
		})}
	started := make(chan struct{})
	sec.NotifyStartedFunc = func() { close(started) }
	done := make(chan struct{})
	go func() { defer close(done); _ = sec.ActivateAndServe() }()
	t.Cleanup(func() { _ = sec.Shutdown(); <-done })
	<-started

	c := recordsConfig()
	c.Secondaries = []state.Secondary{{Address: pc.LocalAddr().String(), TSIG: "xfr."}}
	tsigServers(t, c)
	for range 2 { // one NOTIFY from each server
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("no NOTIFY within 10s")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i, err := range status {
		if err != nil {
			t.Errorf("NOTIFY %d: %v", i, err)
		}
	}
}
