package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/dnsserver"
	"github.com/evac-sh/evac/internal/duration"
)

// copyKeyDir copies the key files of src into a new directory.
func copyKeyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	copyKeys(t, src, dst, "K*")
	return dst
}

// copyKeys copies the files of src matching glob into dst, modes kept.
func copyKeys(t *testing.T, src, dst, glob string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(src, glob))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(f)
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// dnskeyTags asks ctl's DNS server for the DNSKEY RRset with DO and
// returns the rcode, the key tags and the tags of the RRSIGs over an A
// answer.
func dnskeyTags(ctl *Controller) (int, []int, []int, error) {
	ask := func(name string, t uint16) (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetQuestion(name, t)
		m.SetEdns0(1232, true)
		r, _, err := (&dns.Client{Timeout: 2 * time.Second}).ExchangeContext(context.Background(), m, ctl.cfg.DNSAddr)
		return r, err
	}
	kr, err := ask("example.com.", dns.TypeDNSKEY)
	if err != nil {
		return 0, nil, nil, err
	}
	var keys, sigs []int
	for _, rr := range kr.Answer {
		if k, ok := rr.(*dns.DNSKEY); ok {
			keys = append(keys, int(k.KeyTag()))
		}
	}
	ar, err := ask("api.example.com.", dns.TypeA)
	if err != nil {
		return 0, nil, nil, err
	}
	for _, rr := range ar.Answer {
		if s, ok := rr.(*dns.RRSIG); ok {
			sigs = append(sigs, int(s.KeyTag))
		}
	}
	slices.Sort(keys)
	slices.Sort(sigs)
	return max(kr.Rcode, ar.Rcode), keys, sigs, nil
}

// A ZSK rollover through the API on three controllers: init records the
// keys; start is refused while a member lacks the new key and applies
// once every directory holds it (SIGHUP reload); each next is refused
// before its wait; every controller publishes and signs as each phase
// says; a controller whose directory loses a named key refuses answers
// with DO and says why.
func TestDNSSECRolloverAPI(t *testing.T) {
	src := t.TempDir()
	if _, err := dnsserver.GenerateDNSSECKeys(src, "example.com", "", true); err != nil {
		t.Fatal(err)
	}
	dirs := []string{copyKeyDir(t, src), copyKeyDir(t, src), copyKeyDir(t, src)}
	c := startClusterWith(t, 3, func(i int, cfg *Config) {
		ks, err := dnsserver.LoadDNSSECKeys(dirs[i])
		if err != nil {
			t.Fatal(err)
		}
		cfg.DNSSEC = &dnsserver.DNSSECConfig{Keys: ks}
	})
	ctl := c.ctls[0]
	if code := call(t, ctl, "PUT", "/v1/config", "ttl: 1\n"+steeringYAML, nil); code != 200 {
		t.Fatalf("apply: %d", code)
	}
	old, _ := dnsserver.LoadDNSSECKeys(src)
	var ksk, zsk int
	for _, k := range old.Keys {
		if k.KSK() {
			ksk = int(k.DNSKEY.KeyTag())
		} else {
			zsk = int(k.DNSKEY.KeyTag())
		}
	}
	step := func(action, body string, want int) wire.DNSSECRolloverResult {
		t.Helper()
		var out wire.DNSSECRolloverResult
		var e struct{ Error, Code string }
		code := call(t, ctl, "POST", "/v1/dnssec/rollover/"+action, body, &out)
		if code != want {
			call(t, ctl, "POST", "/v1/dnssec/rollover/"+action, body, &e)
			t.Fatalf("%s: %d, want %d (%s)", action, code, want, e.Error)
		}
		return out
	}
	errOf := func(action, body string) (int, string) {
		var e struct{ Error, Code string }
		code := call(t, ctl, "POST", "/v1/dnssec/rollover/"+action, body, &e)
		return code, e.Error
	}
	// Every controller serves keys and signatures as want says.
	expect := func(what string, keys, sigs []int) {
		t.Helper()
		slices.Sort(keys)
		eventually(t, 30*time.Second, func() error {
			for _, x := range c.ctls {
				rcode, k, s, err := dnskeyTags(x)
				if err != nil {
					return err
				}
				if rcode != 0 || !slices.Equal(k, keys) || !slices.Equal(s, sigs) {
					return fmt.Errorf("%s: %s: rcode %s, DNSKEY %v, A signed by %v; want %v and %v", what, x.cfg.NodeID, dns.RcodeToString[rcode], k, s, keys, sigs)
				}
			}
			return nil
		})
	}
	expect("before", []int{ksk, zsk}, []int{zsk})
	step("init", `{"reason":"record"}`, 200)
	if code, msg := errOf("init", `{}`); code != 409 || !strings.Contains(msg, "recorded already") {
		t.Fatalf("init twice: %d %s", code, msg)
	}

	// A new ZSK in c1's directory only: unpublished there, refused.
	file, err := dnsserver.GenerateDNSSECKey(dirs[0], "example.com", "", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ctls[0].ReloadDNSSECKeys(); err != nil {
		t.Fatal(err)
	}
	all, _ := dnsserver.LoadDNSSECKeys(dirs[0])
	var nk *dnsserver.DNSSECKey
	for _, k := range all.Keys {
		if old.Find(k.ID()) == nil {
			nk = k
		}
	}
	newZSK := int(nk.DNSKEY.KeyTag())
	if st := c.ctls[0].Status().DNSSEC; !slices.Equal(st.Unpublished, []string{nk.ID()}) {
		t.Fatalf("unpublished %v", st.Unpublished)
	}
	expect("new key unpublished", []int{ksk, zsk}, []int{zsk})
	body := fmt.Sprintf(`{"key":"%d","reason":"scheduled"}`, newZSK)
	eventually(t, 30*time.Second, func() error {
		code, msg := errOf("start", body)
		if code != 409 || !strings.Contains(msg, "c2 (lacks "+nk.ID()) || !strings.Contains(msg, "c3 (lacks") {
			return fmt.Errorf("start without the key everywhere: %d %s", code, msg)
		}
		return nil
	})
	base := strings.TrimSuffix(filepath.Base(file), ".key")
	for i := 1; i < 3; i++ {
		copyKeys(t, dirs[0], dirs[i], base+".*")
		if err := c.ctls[i].ReloadDNSSECKeys(); err != nil {
			t.Fatal(err)
		}
	}
	var res wire.DNSSECRolloverResult
	eventually(t, 30*time.Second, func() error {
		code, msg := errOf("start", body)
		if code == 409 && strings.Contains(msg, "lacks") {
			return fmt.Errorf("%d %s", code, msg) // a probe from before the reloads
		}
		if code != 200 {
			t.Fatalf("start: %d %s", code, msg)
		}
		return nil
	})
	expect("published", []int{ksk, zsk, newZSK}, []int{zsk})
	if code, msg := errOf("next", `{}`); code != 409 || !strings.Contains(msg, "left") {
		t.Fatalf("early next: %d %s", code, msg)
	}
	if code, msg := errOf("start", body); code != 409 {
		t.Fatalf("second start: %d %s", code, msg)
	}
	res = step("next", `{"force":true,"reason":"test"}`, 200)
	if res.Rollover == nil || res.Rollover.Phase != state.RolloverActive || len(res.Notes) == 0 {
		t.Fatalf("after next: %+v", res)
	}
	expect("active", []int{ksk, zsk, newZSK}, []int{newZSK})
	if code, msg := errOf("abort", `{}`); code != 409 || !strings.Contains(msg, "signs already") {
		t.Fatalf("abort once active: %d %s", code, msg)
	}
	eventually(t, 30*time.Second, func() error {
		code, msg := errOf("next", `{"reason":"done"}`)
		if code == 409 && strings.Contains(msg, "left") {
			return fmt.Errorf("%s", msg)
		}
		if code != 200 {
			t.Fatalf("last next: %d %s", code, msg)
		}
		return nil
	})
	expect("done", []int{ksk, newZSK}, []int{newZSK})
	st := ctl.fsm.State()
	var kinds []string
	for _, e := range st.Events {
		if strings.HasPrefix(e.Kind, "dnssec.") {
			kinds = append(kinds, e.Kind+":"+strings.SplitN(e.Detail, ":", 2)[0])
		}
	}
	if want := []string{"dnssec.keys:recorded the keys in use, all active", "dnssec.rollover:start", "dnssec.rollover:next", "dnssec.rollover:done"}; !slices.Equal(kinds, want) {
		t.Fatalf("audit %v, want %v", kinds, want)
	}

	// c3 loses the new key: it refuses answers with DO and says why; the
	// others list what it lacks.
	gone, _ := filepath.Glob(filepath.Join(dirs[2], base+".*"))
	for _, f := range gone {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.ctls[2].ReloadDNSSECKeys(); err != nil {
		t.Fatal(err)
	}
	if rcode, _, _, err := dnskeyTags(c.ctls[2]); err != nil || rcode != dns.RcodeServerFailure {
		t.Fatalf("c3 without the key: %s %v", dns.RcodeToString[rcode], err)
	}
	if d := c.ctls[2].Status().DNSSEC; d.Signing || !strings.Contains(d.Refusal, nk.ID()) {
		t.Fatalf("c3 status: signing %v refusal %q", d.Signing, d.Refusal)
	}
	eventually(t, 30*time.Second, func() error {
		for _, m := range ctl.Status().DNSSEC.Members {
			if m.ID == "c3" && slices.Equal(m.Lacks, []string{nk.ID()}) {
				return nil
			}
		}
		return fmt.Errorf("members %+v", ctl.Status().DNSSEC.Members)
	})
	// A broken directory keeps the keys in force and says why.
	if err := os.WriteFile(filepath.Join(dirs[1], "Kbroken.private"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.ctls[1].ReloadDNSSECKeys(); err == nil {
		t.Fatal("reload of a broken directory succeeded")
	}
	if d := c.ctls[1].Status().DNSSEC; d.ReloadError == "" || !d.Signing {
		t.Fatalf("c2 after a failed reload: %+v", d)
	}
	expect2 := func() error {
		rcode, k, _, err := dnskeyTags(c.ctls[1])
		if err != nil || rcode != 0 || len(k) != 2 {
			return fmt.Errorf("c2: %s %v %v", dns.RcodeToString[rcode], k, err)
		}
		return nil
	}
	if err := expect2(); err != nil {
		t.Fatal(err)
	}
}

// The safe waits come from the zone's TTLs (and the DS TTL for a SEP
// key, and the secondaries' catch-up when the zone may be transferred),
// each with its margin.
func TestRolloverWaits(t *testing.T) {
	cfg := func(ttl, svc, rec uint32) *state.Config {
		return &state.Config{TTL: ttl, Services: []state.Service{{Name: "api", TTL: svc}}, Records: []state.Record{{Name: "www", TTL: rec}}}
	}
	xfr := func(c *state.Config) *state.Config {
		c.TransferAllow = []string{"127.0.0.0/8"}
		return c
	}
	ds := &state.DNSSECRollover{DSTTL: duration.Duration(time.Hour)}
	for _, tc := range []struct {
		name            string
		c               *state.Config
		sep             bool
		publish, active time.Duration
	}{
		{"small ttl: the 5s margin", cfg(2, 2, 2), false, 7 * time.Second, 7 * time.Second},
		{"a service's longer ttl", cfg(30, 300, 30), false, 35 * time.Second, 330 * time.Second},
		{"a record's longer ttl", cfg(60, 60, 3600), false, 66 * time.Second, 3960 * time.Second},
		{"ksk: the ds ttl", cfg(30, 30, 30), true, 35 * time.Second, 66 * time.Minute},
		{"ksk: data ttl above the ds ttl", cfg(86400, 86400, 86400), true, 24 * time.Hour * 11 / 10, 24 * time.Hour * 11 / 10},
		// Secondaries may serve an older signed copy for the SOA refresh
		// and a retry (4200 s) more.
		{"secondaries: the soa refresh and retry", xfr(cfg(30, 30, 30)), false, 4653 * time.Second, 4653 * time.Second},
		{"secondaries, ksk: above the ds ttl", xfr(cfg(30, 30, 30)), true, 4653 * time.Second, 4653 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := publishWait(tc.c); got != tc.publish {
				t.Errorf("publish wait %s, want %s", got, tc.publish)
			}
			if got := activeWait(tc.c, ds, tc.sep); got != tc.active {
				t.Errorf("active wait %s, want %s", got, tc.active)
			}
		})
	}
}
