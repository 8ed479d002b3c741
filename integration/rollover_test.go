package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// copyFiles copies the files of src matching glob into dst, modes kept.
func copyFiles(t *testing.T, src, dst, glob string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(src, glob))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s in %s: %v", glob, src, err)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// validating queries a validating resolver without pause from several
// goroutines until stopped, over several names and answer kinds, and
// counts every answer that is not the expected rcode with AD set.
type validating struct {
	ask   func(name string, qtype uint16, subnet string) (*dns.Msg, error)
	phase atomic.Pointer[string]
	stop  chan struct{}
	wg    sync.WaitGroup

	mu       sync.Mutex
	answers  map[string]int // secure answers by phase
	bad      []string       // the first failures
	nbad     int
	timeouts int
}

func startValidating(ask func(string, uint16, string) (*dns.Msg, error), phase string) *validating {
	v := &validating{ask: ask, stop: make(chan struct{}), answers: map[string]int{}}
	v.setPhase(phase)
	type q struct {
		name   string
		qtype  uint16
		rcode  int
		answer bool
	}
	qs := []q{
		{"api.example.com", dns.TypeA, dns.RcodeSuccess, true},
		{"www.example.com", dns.TypeA, dns.RcodeSuccess, true}, // CNAME to api
		{"example.com", dns.TypeSOA, dns.RcodeSuccess, true},
		{"example.com", dns.TypeDNSKEY, dns.RcodeSuccess, true},
		{"example.com", dns.TypeTXT, dns.RcodeSuccess, true},
		{"api.example.com", dns.TypeMX, dns.RcodeSuccess, false},      // NODATA
		{"missing%d.example.com", dns.TypeA, dns.RcodeSuccess, false}, // RFC 9824 compact denial
	}
	for g := range 3 {
		v.wg.Go(func() {
			// Paced (about 1500 queries a second in all): the machine is
			// shared, and Unbound answers most from its cache anyway.
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for i := g; ; i++ {
				select {
				case <-v.stop:
					return
				case <-tick.C:
				}
				c := qs[i%len(qs)]
				name, subnet := c.name, ""
				if strings.Contains(name, "%d") {
					name = fmt.Sprintf(name, i%50)
				}
				if c.qtype == dns.TypeA && name == "api.example.com" {
					subnet = fmt.Sprintf("10.%d.%d.0", g, i%64)
				}
				phase := *v.phase.Load()
				r, err := v.ask(name, c.qtype, subnet)
				v.mu.Lock()
				switch {
				case err != nil:
					v.timeouts++
				default:
					has := false
					for _, rr := range r.Answer {
						has = has || rr.Header().Rrtype == c.qtype
					}
					if r.Rcode != c.rcode || !r.AuthenticatedData || has != c.answer {
						v.nbad++
						if len(v.bad) < 10 {
							v.bad = append(v.bad, fmt.Sprintf("phase %s: %s %s: rcode %s AD %v answer %v\n%s", phase, name,
								dns.TypeToString[c.qtype], dns.RcodeToString[r.Rcode], r.AuthenticatedData, has, r))
						}
					} else {
						v.answers[phase]++
					}
				}
				v.mu.Unlock()
			}
		})
	}
	return v
}

func (v *validating) setPhase(p string) { v.phase.Store(&p) }

// secure returns the secure answers counted in phase so far.
func (v *validating) secure(phase string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.answers[phase]
}

// waitSecure waits until phase has n more secure answers than when it
// was called, so that every phase is queried a while.
func (v *validating) waitSecure(t *testing.T, phase string, n int) {
	t.Helper()
	from := v.secure(phase)
	eventually(t, 60*time.Second, fmt.Sprintf("%d secure answers in phase %s", n, phase), func() error {
		if got := v.secure(phase) - from; got < n {
			return fmt.Errorf("%d", got)
		}
		return nil
	})
}

// finish stops the queries and fails t on any answer that was not secure.
func (v *validating) finish(t *testing.T) {
	t.Helper()
	close(v.stop)
	v.wg.Wait()
	v.mu.Lock()
	defer v.mu.Unlock()
	total := 0
	for _, n := range v.answers {
		total += n
	}
	t.Logf("validating resolver: %d secure answers by phase %v, %d not secure, %d timeouts", total, v.answers, v.nbad, v.timeouts)
	if v.nbad > 0 {
		t.Errorf("%d answers were not secure (SERVFAIL, no AD or wrong), the first:\n%s", v.nbad, strings.Join(v.bad, "\n"))
	}
	if v.timeouts > total/20 {
		t.Errorf("%d of %d queries timed out", v.timeouts, total+v.timeouts+v.nbad)
	}
}

// servedTags asks a controller directly (with DO) for the DNSKEY RRset
// and an A answer: the DNSKEY tags, and the tags of the RRSIGs over each.
func servedTags(dnsAddr string) (keys, keySigs, aSigs []int, err error) {
	ask := func(name string, qtype uint16) (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.SetEdns0(1232, true)
		r, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(m, dnsAddr)
		if err == nil && r.Rcode != dns.RcodeSuccess {
			err = fmt.Errorf("%s %s: rcode %s", name, dns.TypeToString[qtype], dns.RcodeToString[r.Rcode])
		}
		return r, err
	}
	kr, err := ask("example.com.", dns.TypeDNSKEY)
	if err != nil {
		return nil, nil, nil, err
	}
	ar, err := ask("api.example.com.", dns.TypeA)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, rr := range kr.Answer {
		switch r := rr.(type) {
		case *dns.DNSKEY:
			keys = append(keys, int(r.KeyTag()))
		case *dns.RRSIG:
			keySigs = append(keySigs, int(r.KeyTag))
		}
	}
	for _, rr := range ar.Answer {
		if r, ok := rr.(*dns.RRSIG); ok {
			aSigs = append(aSigs, int(r.KeyTag))
		}
	}
	slices.Sort(keys)
	slices.Sort(keySigs)
	slices.Sort(aSigs)
	return keys, keySigs, aSigs, nil
}

// keyTagOf reads the key tag from a .key file's name (K<zone>+alg+tag.key).
func keyTagOf(t *testing.T, file string) int {
	t.Helper()
	base := strings.TrimSuffix(filepath.Base(file), ".key")
	n, err := strconv.Atoi(base[strings.LastIndex(base, "+")+1:])
	if err != nil {
		t.Fatalf("key file %s: %v", file, err)
	}
	return n
}

// TestDNSSECRollover rolls a three-controller cluster's ZSK over
// (pre-publish: init, start, next, next through the CLI), then its KSK
// (double signature, the trust anchor changed to the DS the middle step
// prints, as a parent's DS would be), while a real
// Unbound, with the KSK's DS as its trust anchor and every controller and
// an edge replica as its stubs, validates a steady stream of queries over several names and
// answer kinds: no answer is anything but secure (AD) at any step, and
// every controller publishes and signs with the keys each phase says.
// The zone TTL is 2 s, so each step's safe wait (TTL + margin) is short.
func TestDNSSECRollover(t *testing.T) {
	needTool(t, "unbound", "unbound")
	needTool(t, "unbound-control", "unbound")
	dir := t.TempDir()
	// A KSK and a ZSK, the same in every controller's directory.
	src := filepath.Join(dir, "keys")
	files := strings.Fields(runEvac(t, "dnssec", "keygen", "--dir", src, "--zone", "example.com", "--ksk-zsk"))
	if len(files) != 2 {
		t.Fatalf("keygen: %v", files)
	}
	ksk, zsk := keyTagOf(t, files[0]), keyTagOf(t, files[1])
	ds := strings.TrimSpace(runEvac(t, "dnssec", "ds", "--dir", src))
	dirs := map[string]string{}
	for _, id := range []string{"c1", "c2", "c3", "e01"} {
		dirs[id] = filepath.Join(dir, "keys-"+id)
		copyFiles(t, src, dirs[id], "K*")
	}
	tc := startClusterOpts(t, clusterOpts{ctrlSubnet: 67, serverArgsFor: func(id string) []string {
		return []string{"--dnssec-keys", dirs[id]}
	}})
	steering := strings.Replace(testSteering(), "ttl: 30\n", "ttl: 2\n", 1)
	steering = strings.Replace(steering, "nameservers: {ns1: 192.0.2.53}\n",
		"nameservers: {ns1: 192.0.2.53}\nrecords:\n  - {name: www, type: CNAME, value: api}\n  - {name: \"@\", type: TXT, value: \"v=spf1 -all\"}\n", 1)
	tc.applySteering(steering)
	// An edge replica, with a key directory of its own.
	if err := os.WriteFile(filepath.Join(tc.dir, "edge-join.token"), []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	edge := tc.startEdgeProc(1, tc.controllers[0], "--dnssec-keys", dirs["e01"])
	nodes := append(slices.Clone(tc.controllers), edge)
	eventually(t, 60*time.Second, "the edge signs", func() error {
		if edge.Exited() {
			t.Fatal("the edge is not running (its log is printed at the end)")
		}
		st, err := newClient(edge.http).Status(ctxT(t, 5*time.Second))
		if err != nil {
			return err
		}
		if st.Role != "edge" || st.DNSSEC == nil || !st.DNSSEC.Signing || st.Serial == 0 {
			return fmt.Errorf("edge: role %s, serial %d, dnssec %+v", st.Role, st.Serial, st.DNSSEC)
		}
		return nil
	})
	var stubs []string
	for _, c := range nodes {
		stubs = append(stubs, c.dns)
	}
	// Every controller serves the keys and signatures a phase says; and
	// from one phase to the next a resolver's cache never holds a
	// signature without its key: the signatures of either phase are by
	// keys of both phases' DNSKEY RRsets (Unbound re-fetches a DNSKEY
	// RRset when a signature's key is missing, which would hide such a
	// gap from the query stream).
	var lastKeys, lastSigs []int
	subset := func(a, b []int) bool {
		for _, x := range a {
			if !slices.Contains(b, x) {
				return false
			}
		}
		return true
	}
	expect := func(phase string, keys, keySigs, aSigs []int) {
		t.Helper()
		slices.Sort(keys)
		slices.Sort(keySigs)
		slices.Sort(aSigs)
		if lastKeys != nil && (!subset(aSigs, lastKeys) || !subset(lastSigs, keys)) {
			t.Fatalf("phase %s: signatures by %v, DNSKEY %v; the phase before: signatures by %v, DNSKEY %v: a cached RRset would not validate",
				phase, aSigs, keys, lastSigs, lastKeys)
		}
		lastKeys, lastSigs = keys, aSigs
		eventually(t, 30*time.Second, "every server serves phase "+phase, func() error {
			for _, c := range nodes {
				k, ks, as, err := servedTags(c.dns)
				if err != nil {
					return fmt.Errorf("%s: %v", c.id, err)
				}
				if !slices.Equal(k, keys) || !slices.Equal(ks, keySigs) || !slices.Equal(as, aSigs) {
					return fmt.Errorf("%s: DNSKEY %v signed by %v, A signed by %v; want %v, %v, %v", c.id, k, ks, as, keys, keySigs, aSigs)
				}
			}
			return nil
		})
	}
	expect("before", []int{ksk, zsk}, []int{ksk}, []int{zsk})

	ub := startUnbound(t, filepath.Join(dir, "unbound"), "127.0.67.100", ds, stubs...)
	v := startValidating(ub.ask, "before")
	defer v.finish(t)
	v.waitSecure(t, "before", 50)

	c1 := tc.controllers[0]
	step := func(args ...string) string {
		t.Helper()
		out, err := tc.evac(c1, append([]string{"dnssec", "rollover"}, args...)...)
		if err != nil {
			t.Fatalf("evac dnssec rollover %v: %v\n%s", args, err, out)
		}
		return out
	}
	// Once the key states are recorded, a new key in the directories
	// changes nothing until a rollover names it.
	step("init", "--reason", "before the first rollover")
	v.setPhase("recorded")
	newFile := strings.TrimSpace(runEvac(t, "dnssec", "keygen", "--dir", src, "--zone", "example.com", "--role", "zsk"))
	newZSK := keyTagOf(t, newFile)
	base := strings.TrimSuffix(filepath.Base(newFile), ".key")
	// install copies the new key into the servers' directories and has
	// them reload it.
	install := func(servers []*controllerProc, tag int) {
		t.Helper()
		for _, c := range servers {
			copyFiles(t, src, dirs[c.id], base+".*")
			c.Signal(syscall.SIGHUP)
		}
		eventually(t, 30*time.Second, "the servers have reloaded the new key", func() error {
			for _, c := range servers {
				st, err := newClient(c.http).Status(ctxT(t, 5*time.Second))
				if err != nil {
					return err
				}
				if d := st.DNSSEC; d == nil || d.ReloadError != "" ||
					!slices.ContainsFunc(d.Unpublished, func(id string) bool { return strings.HasPrefix(id, strconv.Itoa(tag)+"/") }) {
					return fmt.Errorf("%s: dnssec %+v", c.id, d)
				}
			}
			return nil
		})
	}
	install(tc.controllers, newZSK)
	expect("recorded", []int{ksk, zsk}, []int{ksk}, []int{zsk})
	// The edge lacks the new key: start is refused, naming it.
	if out, err := tc.evac(c1, "dnssec", "rollover", "start", "--key", strconv.Itoa(newZSK)); err == nil || !strings.Contains(out, "e01 (lacks "+strconv.Itoa(newZSK)+"/") {
		t.Errorf("start while the edge lacks the key: %v\n%s", err, out)
	}
	install([]*controllerProc{edge}, newZSK)
	v.waitSecure(t, "recorded", 30)

	// start: the new ZSK is published; the old one signs.
	out := step("start", "--key", strconv.Itoa(newZSK), "--reason", "integration test")
	v.setPhase("published")
	if !strings.Contains(out, "published") {
		t.Errorf("start printed:\n%s", out)
	}
	expect("published", []int{ksk, zsk, newZSK}, []int{ksk}, []int{zsk})
	// The next step waits for the DNSKEY TTL and a margin.
	if out, err := tc.evac(c1, "dnssec", "rollover", "next"); err == nil || !strings.Contains(out, "left") {
		t.Errorf("next right after start: %v\n%s", err, out)
	}
	v.waitSecure(t, "published", 30)
	nextWhenSafe := func() string {
		t.Helper()
		var out string
		eventually(t, 60*time.Second, "the next step is safe", func() error {
			o, err := tc.evac(c1, "dnssec", "rollover", "next", "--reason", "integration test")
			if err != nil {
				if strings.Contains(o, "left") {
					return fmt.Errorf("%s", strings.TrimSpace(o))
				}
				t.Fatalf("next: %v\n%s", err, o)
			}
			out = o
			return nil
		})
		return out
	}
	// next: the new ZSK signs; the old one stays published.
	nextWhenSafe()
	v.setPhase("active")
	expect("active", []int{ksk, zsk, newZSK}, []int{ksk}, []int{newZSK})
	v.waitSecure(t, "active", 30)
	// next: the old ZSK is removed.
	nextWhenSafe()
	v.setPhase("done")
	expect("done", []int{ksk, newZSK}, []int{ksk}, []int{newZSK})
	// Past every TTL of the old RRsets: resolvers re-fetch them.
	v.waitSecure(t, "done", 60)
	st := step("status")
	if !strings.Contains(st, "no rollover in progress") {
		t.Errorf("status after the rollover:\n%s", st)
	}

	// A KSK by double signature: both KSKs sign the DNSKEY RRset while
	// the parent's DS (here Unbound's trust anchor) changes.
	newFile = strings.TrimSpace(runEvac(t, "dnssec", "keygen", "--dir", src, "--zone", "example.com", "--role", "ksk"))
	newKSK := keyTagOf(t, newFile)
	base = strings.TrimSuffix(filepath.Base(newFile), ".key")
	install(nodes, newKSK)
	step("start", "--key", strconv.Itoa(newKSK), "--ds-ttl", "2s", "--reason", "KSK rollover")
	v.setPhase("ksk-published")
	expect("ksk-published", []int{ksk, newKSK, newZSK}, []int{ksk, newKSK}, []int{newZSK})
	v.waitSecure(t, "ksk-published", 30)
	out = nextWhenSafe()
	// The step prints the new KSK's DS: the parent (here Unbound's trust
	// anchor) takes it now.
	var newDS string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[3] == "DS" && f[4] == strconv.Itoa(newKSK) {
			newDS = strings.TrimSpace(line)
		}
	}
	if newDS == "" || !strings.Contains(out, "replace the zone's DS records at the parent") {
		t.Fatalf("next (KSK active) printed no DS of key %d:\n%s", newKSK, out)
	}
	v.setPhase("ksk-active")
	expect("ksk-active", []int{ksk, newKSK, newZSK}, []int{ksk, newKSK}, []int{newZSK})
	ub.setAnchor(newDS)
	v.waitSecure(t, "ksk-active", 30)
	nextWhenSafe()
	v.setPhase("ksk-done")
	expect("ksk-done", []int{newKSK, newZSK}, []int{newKSK}, []int{newZSK})
	v.waitSecure(t, "ksk-done", 60)

	// The audit log has each step, with its actor and reason.
	evs, err := newClient(c1.http).Events(ctxT(t, 5*time.Second), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, e := range evs {
		if strings.HasPrefix(e.Kind, "dnssec.") {
			steps = append(steps, e.Kind+" "+strings.SplitN(e.Detail, ":", 2)[0]+" by "+e.Actor+": "+e.Reason)
		}
	}
	want := []string{"dnssec.keys recorded the keys in use, all active by ci-admin: before the first rollover",
		"dnssec.rollover start by ci-admin: integration test", "dnssec.rollover next by ci-admin: integration test",
		"dnssec.rollover done by ci-admin: integration test",
		"dnssec.rollover start by ci-admin: KSK rollover", "dnssec.rollover next by ci-admin: integration test",
		"dnssec.rollover done by ci-admin: integration test"}
	if !slices.Equal(steps, want) {
		t.Errorf("audit events:\n%s\nwant:\n%s", strings.Join(steps, "\n"), strings.Join(want, "\n"))
	}
}
