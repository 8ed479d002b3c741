package dnsserver

import (
	"crypto"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/state"
)

// Online signing (docs/dnssec.md). When the server has DNSSEC keys, every
// prepared answer (view.go) gets a signed twin when the view is built: the
// same sections with an RRSIG after each RRset and, for a negative answer,
// the proof of denial. A query with DO gets the twin's bytes (one pointer
// more on the fast path, no allocation); a query without DO gets exactly
// what an unsigned zone gives, except that the apex has its DNSKEY RRset.
//
// Denial is RFC 9824 compact denial of existence ("black lies"): a
// negative answer carries one NSEC record owned by the denied name, whose
// next name is its immediate successor (\000.name) and whose type bitmap
// lists the types the name has (without the one asked for), or only NSEC,
// RRSIG and NXNAME when the name does not exist. It proves the answer with
// one signature, covers no other name (so the zone cannot be walked and
// aggressive NSEC caching, RFC 8198, learns nothing wrong), and, for a name
// that exists, is the same for every query, so it is signed once per
// generation. We chose it over RFC 4470 white lies, which need two NSECs
// and so two signatures per nonexistent name (the name and the wildcard)
// and the predecessor arithmetic of epsilon functions. As RFC 9824 says, a
// nonexistent name is answered NOERROR (NODATA) to queries with DO; queries
// without DO still get NXDOMAIN. A nonexistent name's NSEC depends on the
// name, so it is signed when asked (the general path, a bounded cache per
// generation): NXDOMAIN with DO is the one answer that is not a copy.
//
// Signing periods are aligned to the wall clock, so that every controller
// signs alike: a period of P = Validity - Refresh starts at a multiple of P
// since the Unix epoch, its signatures' inception is InceptionOffset
// before that start (clock skew) and their expiration Validity after it;
// the server rebuilds the current view, with new signatures, when the next
// period starts, so at least Refresh of validity is always left (the
// re-signing loop, owned by the server). Signatures are deterministic
// (ECDSA per RFC 6979, Ed25519 by design): controllers given the same keys
// and the same state make byte-identical ones, and so identical signed
// zone transfers (xfrsign.go). It re-signs the state it was last given,
// so a controller that lost quorum keeps valid signatures on its last
// state indefinitely. Within one period, RRsets that did not change keep
// their signatures across rebuilds (a cache keyed by the RRset).

// Signing defaults.
const (
	DefaultSignatureValidity = 14 * 24 * time.Hour
	DefaultInceptionOffset   = time.Hour
	// nxCacheSize bounds the signed denials of nonexistent names kept per
	// generation.
	nxCacheSize = 4096
)

// DNSSECConfig is how a server signs.
type DNSSECConfig struct {
	Keys *DNSSECKeys
	// Validity is how long a signature is valid from its inception;
	// 0: DefaultSignatureValidity.
	Validity time.Duration
	// Refresh: re-sign when less than this validity is left; 0: half
	// the validity. It must be below Validity.
	Refresh time.Duration
	// InceptionOffset backdates the inception (clock skew); 0:
	// DefaultInceptionOffset.
	InceptionOffset time.Duration
	// UnsignedTransfers makes AXFR and IXFR give the unsigned zone (for
	// secondaries that sign it themselves, RFC 8901 multi-signer); by
	// default they give the signed zone, with a serial that moves with
	// the signing period (xfrsign.go).
	UnsignedTransfers bool
	// AwaitKeyCheck holds signed transfers back (the unsigned zone at the
	// state serial) until DNSSECKeysChecked: a controller learns only then
	// whether the cluster signs with its keys, and a signed copy's serial
	// given to a secondary before a refusal would be ahead of the
	// cluster's for good. Moving from unsigned to signed only moves the
	// serial forward.
	AwaitKeyCheck bool
}

// withDefaults fills the zero values and checks the periods.
func (c DNSSECConfig) withDefaults() (DNSSECConfig, error) {
	if c.Validity == 0 {
		c.Validity = DefaultSignatureValidity
	}
	if c.Refresh == 0 {
		c.Refresh = c.Validity / 2
	}
	if c.InceptionOffset == 0 {
		c.InceptionOffset = DefaultInceptionOffset
	}
	switch {
	case c.Keys == nil || len(c.Keys.Keys) == 0:
		return c, ErrNoDNSSECKeys
	case c.Validity < time.Minute:
		return c, fmt.Errorf("signature validity %s: must be at least 1m", c.Validity)
	case c.Refresh <= 0 || c.Refresh > c.Validity-time.Second:
		return c, fmt.Errorf("signature refresh %s: must be above 0 and at least 1s below the validity %s", c.Refresh, c.Validity)
	case c.InceptionOffset < 0:
		return c, fmt.Errorf("inception offset %s: must not be negative", c.InceptionOffset)
	}
	return c, nil
}

// Check reports whether the periods are valid (with the defaults for
// zero values) and there are keys.
func (c DNSSECConfig) Check() error {
	_, err := c.withDefaults()
	return err
}

// signer makes the signatures of the views a server builds; it is used
// under the server's updateMu.
type signer struct {
	// all are the keys of the directory (SetDNSSECKeys replaces them);
	// keys those of the build under way or the last one: all, or the
	// part the replicated key states name (DNSSECKeys.ForState).
	all, keys *DNSSECKeys
	// keysSig identifies what signed the cached signatures (which keys,
	// which active): another set drops the cache.
	keysSig string
	cfg     DNSSECConfig
	// The current signing period: its start, its signatures' validity,
	// and when to re-sign (the next period's start; zero: now).
	// Transfers and the serial are the unsigned zone's for now while
	// hold (the cluster's keys not yet compared: DNSSECConfig.AwaitKeyCheck)
	// or unsignedCluster (the cluster does not sign: SetDNSSECRefusal).
	hold, unsignedCluster bool
	start                 time.Time
	inception, expiration uint32
	resignAt              time.Time
	// Signatures by RRset: cache from the builds of this period, next
	// those the build under way used (the next build's cache), so that
	// the cache holds only live RRsets.
	cache, next map[string][]dns.RR
}

func newSigner(cfg DNSSECConfig) (*signer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &signer{all: cfg.Keys, keys: cfg.Keys, cfg: cfg, hold: cfg.AwaitKeyCheck}, nil
}

// periodStart is the start of the signing period now is in: the last
// multiple of Validity - Refresh since the Unix epoch, the same on every
// server whose clock agrees.
func (c DNSSECConfig) periodStart(now time.Time) time.Time {
	p := int64(c.Validity - c.Refresh)
	n := now.UnixNano()
	start := n - n%p
	if n < 0 && n%p != 0 {
		start -= p
	}
	return time.Unix(0, start)
}

// period starts the signing period now is in when the current one is due
// (or there is none), dropping the cached signatures.
func (sg *signer) period(now time.Time) {
	if !sg.resignAt.IsZero() && now.Before(sg.resignAt) {
		return
	}
	sg.start = sg.cfg.periodStart(now)
	sg.inception = uint32(sg.start.Add(-sg.cfg.InceptionOffset).Unix())
	sg.expiration = uint32(sg.start.Add(sg.cfg.Validity).Unix())
	sg.resignAt = sg.start.Add(sg.cfg.Validity - sg.cfg.Refresh)
	sg.cache = nil
}

// deterministic signs as its key does but without randomness, so that
// every server with the key makes the same signature of the same data:
// ECDSA then follows RFC 6979 (crypto/ecdsa with a nil random source);
// Ed25519 is deterministic anyway. (miekg/dns passes crypto/rand.)
type deterministic struct{ crypto.Signer }

func (d deterministic) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return d.Signer.Sign(nil, digest, opts)
}

// sigs returns the RRSIGs over rrset (one RRset: same owner, type and
// class), from the cache when the same RRset was signed in this period.
func (sg *signer) sigs(zone string, rrset []dns.RR) ([]dns.RR, error) {
	var key strings.Builder
	for _, rr := range rrset {
		key.WriteString(strings.ToLower(rr.String()))
		key.WriteByte('\n')
	}
	k := key.String()
	if s, ok := sg.next[k]; ok {
		return s, nil
	}
	if s, ok := sg.cache[k]; ok {
		sg.next[k] = s
		return s, nil
	}
	h := rrset[0].Header()
	var out []dns.RR
	for _, key := range sg.keys.signers(h.Rrtype) {
		sig := &dns.RRSIG{Hdr: dns.RR_Header{Ttl: h.Ttl}, Algorithm: key.DNSKEY.Algorithm, KeyTag: key.DNSKEY.KeyTag(),
			SignerName: zone, Inception: sg.inception, Expiration: sg.expiration}
		if err := sig.Sign(key.priv, rrset); err != nil {
			return nil, fmt.Errorf("sign %s %s with key %d: %w", h.Name, dns.TypeToString[h.Rrtype], key.DNSKEY.KeyTag(), err)
		}
		out = append(out, sig)
	}
	sg.next[k] = out
	return out, nil
}

// withSigs returns rrs (whole RRsets, each in one run) with the RRSIGs of
// each RRset after it.
func (sg *signer) withSigs(zone string, rrs []dns.RR) ([]dns.RR, error) {
	var out []dns.RR
	for i := 0; i < len(rrs); {
		j := i + 1
		for j < len(rrs) && sameRRset(rrs[i], rrs[j]) {
			j++
		}
		s, err := sg.sigs(zone, rrs[i:j])
		if err != nil {
			return nil, err
		}
		out = append(append(out, rrs[i:j]...), s...)
		i = j
	}
	return out, nil
}

func sameRRset(a, b dns.RR) bool {
	ha, hb := a.Header(), b.Header()
	return ha.Rrtype == hb.Rrtype && ha.Class == hb.Class && strings.EqualFold(ha.Name, hb.Name)
}

// viewSigning is what a signed view keeps to answer: the signing period,
// the signed SOA, and the denials of nonexistent names made on demand.
type viewSigning struct {
	keys                  *DNSSECKeys
	zone                  string
	ttl                   uint32
	inception, expiration uint32
	soa                   []dns.RR // the SOA and its RRSIGs

	mu sync.Mutex
	nx map[string][]dns.RR // lower-case name: its NSEC and RRSIGs
}

// signing returns the view's signing, nil when the zone is unsigned.
func (b *builder) signing() *viewSigning {
	if b.sg == nil {
		return nil
	}
	soa, _ := b.sg.withSigs(b.v.zone, b.v.soa) // signed already by every negative answer
	return &viewSigning{keys: b.sg.keys, zone: b.v.zone, ttl: b.ttl, inception: b.sg.inception,
		expiration: b.sg.expiration, soa: slices.Clip(soa), nx: map[string][]dns.RR{}}
}

// signed returns p's signed twin (not yet packed).
func (b *builder) signed(p *prepared) (*prepared, error) {
	zone := b.v.zone
	q := &prepared{rcode: p.rcode}
	var err error
	if q.answer, err = b.sg.withSigs(zone, p.answer); err != nil {
		return nil, err
	}
	ns := p.ns
	if p.deny != "" {
		if p.denyNX {
			q.rcode = dns.RcodeSuccess // RFC 9824: NODATA at the nonexistent name
		}
		ns = append(slices.Clip(ns), compactNSEC(p.deny, b.ttl, b.typesAt(p.deny, p.denyType, p.denyNX)))
	}
	if q.ns, err = b.sg.withSigs(zone, ns); err != nil {
		return nil, err
	}
	if q.extra, err = b.sg.withSigs(zone, p.extra); err != nil {
		return nil, err
	}
	return q, nil
}

// typesAt is the NSEC type bitmap of a denial at name: the types name has
// (a service's A and AAAA, the apex's DNSKEY), without qtype, with RRSIG
// and NSEC; or, for a name that does not exist, RRSIG, NSEC and NXNAME.
func (b *builder) typesAt(name string, qtype uint16, nx bool) []uint16 {
	types := []uint16{dns.TypeRRSIG, dns.TypeNSEC}
	if nx {
		return append(types, dns.TypeNXNAME)
	}
	if rn := b.raw[name]; rn != nil {
		types = append(types, rn.order...)
		if rn.svc != nil {
			types = append(types, dns.TypeA, dns.TypeAAAA)
		}
	}
	types = slices.DeleteFunc(types, func(t uint16) bool { return t == qtype })
	slices.Sort(types)
	return slices.Compact(types)
}

// compactNSEC is the RFC 9824 NSEC at name: next name \000.name.
func compactNSEC(name string, ttl uint32, types []uint16) *dns.NSEC {
	return &dns.NSEC{Hdr: hdr(name, dns.TypeNSEC, ttl), NextDomain: `\000.` + name, TypeBitMap: types}
}

// nxDenial returns the authority section denying the nonexistent
// lower-case name: the SOA and the name's NSEC, signed. It signs on the
// first query for the name in this generation.
func (vs *viewSigning) nxDenial(name string) ([]dns.RR, error) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if ns, ok := vs.nx[name]; ok {
		return ns, nil
	}
	if _, ok := dns.IsDomainName(`\000.` + name); !ok {
		return nil, errors.New("name too long for a compact denial")
	}
	nsec := compactNSEC(name, vs.ttl, []uint16{dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNXNAME})
	ns := append(slices.Clone(vs.soa), nsec)
	for _, key := range vs.keys.signers(dns.TypeNSEC) {
		sig := &dns.RRSIG{Hdr: dns.RR_Header{Ttl: vs.ttl}, Algorithm: key.DNSKEY.Algorithm, KeyTag: key.DNSKEY.KeyTag(),
			SignerName: vs.zone, Inception: vs.inception, Expiration: vs.expiration}
		if err := sig.Sign(key.priv, []dns.RR{nsec}); err != nil {
			return nil, err
		}
		ns = append(ns, sig)
	}
	if len(vs.nx) >= nxCacheSize {
		clear(vs.nx)
	}
	vs.nx[name] = ns
	return ns, nil
}

// use makes keys the signing keys of the next build, dropping the cached
// signatures when they differ from the last build's.
func (sg *signer) use(keys *DNSSECKeys) {
	sig := keys.signature()
	if sig != sg.keysSig {
		sg.cache, sg.keysSig = nil, sig
	}
	sg.keys = keys
}

// buildSigned builds the view of st with the server's signer, if any,
// signing with the keys st's recorded key states name. It also returns
// why this server cannot sign st as the cluster does ("" when it can):
// it lacks a key the states name, or has no keys at all while they name
// some; the view is then unsigned and the caller installs the reason
// (installView) so that queries with DO get SERVFAIL. Call it under
// updateMu.
func (s *Server) buildSigned(st *state.State, prev *view) (*view, string, error) {
	sg := s.signer
	if sg == nil {
		reason := ""
		if st.DNSSEC != nil && len(st.DNSSEC.Keys) > 0 {
			reason = fmt.Sprintf("this server has no DNSSEC keys (--dnssec-keys) while the cluster signs with %s", strings.Join(st.DNSSEC.KeyIDs(), ", "))
		}
		v, err := buildView(st, prev, nil, 0)
		if err == nil {
			v.lacksKeys = reason != ""
		}
		return v, reason, err
	}
	// A failed build leaves the signer as it was: had it kept the new
	// period, the live view's signatures would not be renewed until the
	// next period and could expire meanwhile.
	saved := *sg
	sg.period(s.now())
	// The served serial follows the signing period even when this server
	// cannot sign (it lacks a key): it must never go back for secondaries.
	offset := sg.serialOffset()
	keys, missing := sg.all.ForState(st.DNSSEC)
	if len(missing) > 0 {
		reason := fmt.Sprintf("this server's key directory %s lacks DNSSEC key %s, which the cluster's key states name (evac dnssec rollover status): copy the key files into it and send SIGHUP",
			sg.all.Dir, strings.Join(missing, ", "))
		v, err := buildView(st, prev, nil, offset)
		if err != nil {
			*sg = saved
			return nil, reason, err
		}
		v.lacksKeys = true
		return v, reason, nil
	}
	sg.use(keys)
	sg.next = map[string][]dns.RR{}
	v, err := buildView(st, prev, sg, offset)
	if err != nil {
		*sg = saved
		return nil, "", err
	}
	sg.cache, sg.next = sg.next, nil
	return v, "", nil
}

// installView stores v, with keyReason, buildSigned's reason to refuse
// signed answers: set before the view goes live, lifted after it, so that
// no query with DO ever gets an unsigned answer from a signed cluster.
// Call it under updateMu.
func (s *Server) installView(v *view, keyReason string) {
	if keyReason != "" {
		s.setKeyRefusal(keyReason)
	}
	s.view.Store(v)
	if keyReason == "" {
		s.setKeyRefusal("")
	}
}

// SetDNSSECKeys replaces the keys of a server that signs (EnableDNSSEC)
// with ks, a directory read again (SIGHUP), and re-signs the current
// answers with them at once.
func (s *Server) SetDNSSECKeys(ks *DNSSECKeys) error {
	if ks == nil || len(ks.Keys) == 0 {
		return fmt.Errorf("dnssec: %w", ErrNoDNSSECKeys)
	}
	s.updateMu.Lock()
	defer s.updateMu.Unlock()
	if s.signer == nil {
		return errors.New("dnssec: the server was started without keys (--dnssec-keys): restart it to sign")
	}
	cur := s.view.Load()
	if cur == nil {
		s.signer.all = ks
		s.dirKeys.Store(ks)
		return nil
	}
	was := s.signer.all
	s.signer.all = ks
	v, reason, err := s.buildSigned(cur.st, cur)
	if err != nil {
		s.signer.all = was // the old keys stay in force
		return fmt.Errorf("dnssec: sign the answers with the new keys: %w", err)
	}
	s.dirKeys.Store(ks)
	// The same serial: with signed transfers and keys the replicated key
	// states do not govern, the content may differ, and then the journal
	// no longer ends at this version (nextJournal drops it).
	v.journal = nextJournal(cur, v, s.journalSize())
	s.installView(v, reason)
	s.log.Info("DNSSEC keys reloaded", zap.Strings("keys", ks.Describe()), zap.Uint32("serial", v.serial))
	return nil
}

// resignLoop rebuilds the current view with new signatures when the
// signing period is due, until stop is closed.
func (s *Server) resignLoop(stop <-chan struct{}, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.resignIfDue()
		}
	}
}

// resignIfDue re-signs the current view when its signatures are due.
func (s *Server) resignIfDue() {
	if s.signer == nil {
		return
	}
	s.updateMu.Lock()
	defer s.updateMu.Unlock()
	cur := s.view.Load()
	if cur == nil || s.now().Before(s.signer.resignAt) {
		return
	}
	v, reason, err := s.buildSigned(cur.st, cur)
	if err != nil {
		s.log.Error("cannot re-sign the DNS answers; keeping the current signatures", zap.Error(err))
		return
	}
	// Unsigned transfers: the same serial and transfer records, and the
	// journal that ends at this version still does. Signed transfers: a
	// new serial (xfrsign.go) and new signatures, one more change in the
	// journal, and a NOTIFY.
	v.journal = nextJournal(cur, v, s.journalSize())
	s.installView(v, reason)
	if n := s.notifier(); n != nil && v.serial != cur.serial {
		n.changed()
	}
	s.log.Info("DNS answers re-signed", zap.Uint32("serial", v.serial),
		zap.Time("expiration", time.Unix(int64(s.signer.expiration), 0).UTC()))
}

// resignEvery is how often the re-signing loop checks: often enough to
// re-sign well before expiry whatever the refresh.
func resignEvery(refresh time.Duration) time.Duration {
	return min(max(refresh/16, time.Second), time.Minute)
}

// refusal is why the server does not sign as it could, and how it
// answers queries with DO meanwhile.
type refusal struct {
	reason string
	// unsigned: the cluster does not sign, so neither does this server
	// (queries with DO get the unsigned answers); else SERVFAIL.
	unsigned bool
}

// SetDNSSECRefusal makes the server stop signing, for reason (logged
// once here): when unsigned is set (the cluster does not sign) queries with
// DO get unsigned answers, as from the rest of the cluster; otherwise
// (the cluster signs with other keys, or this server has none) they get
// SERVFAIL, instead of signatures no resolver can validate or unsigned
// answers in a signed zone. "" lifts it. Queries without DO are answered
// as before either way. A server that lacks a key the replicated key
// states name refuses on its own (buildSigned), whatever this says.
//
// With signed transfers, a refusal with unsigned set also makes the
// transfers and the SOA serial those of the unsigned zone the rest of the
// cluster serves (xfrsign.go); a refusal without it answers transfers
// SERVFAIL (transfer.go), as it does queries with DO.
func (s *Server) SetDNSSECRefusal(reason string, unsigned bool) {
	// The refusal first, then the transfers: a view rebuilt for the new
	// verdict (and its NOTIFY) must never be transferred under the old
	// one (a copy signed with keys the cluster does not use).
	s.refusalMu.Lock()
	if reason == "" {
		s.ctlRefusal = nil
	} else {
		s.ctlRefusal = &refusal{reason: reason, unsigned: unsigned}
	}
	s.storeRefusal()
	s.refusalMu.Unlock()
	s.plainTransfers(func(sg *signer) { sg.unsignedCluster = reason != "" && unsigned })
}

// setKeyRefusal sets (or, with "", lifts) the refusal for want of keys.
func (s *Server) setKeyRefusal(reason string) {
	s.refusalMu.Lock()
	defer s.refusalMu.Unlock()
	if reason == "" {
		s.keyRefusal = nil
	} else {
		s.keyRefusal = &refusal{reason: reason}
	}
	s.storeRefusal()
}

// storeRefusal publishes the refusal in force (the key refusal first) for
// the answer paths. Call it under refusalMu.
func (s *Server) storeRefusal() {
	r := s.keyRefusal
	if r == nil {
		r = s.ctlRefusal
	}
	old := s.refusal.Load()
	switch {
	case r == nil && old == nil:
		return
	case r == nil:
		s.log.Info("DNSSEC: refusal lifted")
		s.refusal.Store(nil)
		return
	case old != nil && *old == *r:
		return
	}
	s.refusal.Store(r)
	what := "SERVFAIL to queries with DO"
	if r.unsigned {
		what = "unsigned answers, as the rest of the cluster gives"
	}
	s.log.Error("DNSSEC: not signing", zap.String("reason", r.reason), zap.String("answers", what))
}

// DNSSECRefusal is why the server refuses signed answers ("" when it
// does not).
func (s *Server) DNSSECRefusal() string {
	if r := s.refusal.Load(); r != nil {
		return r.reason
	}
	return ""
}

// DNSSECKeys returns the server's key directory as last loaded (nil when
// it does not sign).
func (s *Server) DNSSECKeys() *DNSSECKeys { return s.dirKeys.Load() }

// DNSSECKeyTags returns the tags of the keys the server signs with, nil
// when it does not sign.
func (s *Server) DNSSECKeyTags() []uint16 {
	s.updateMu.Lock()
	defer s.updateMu.Unlock()
	if s.signer == nil {
		return nil
	}
	return s.signer.keys.Tags()
}

// DNSSECKeysChecked tells a server made with DNSSECConfig.AwaitKeyCheck
// that its keys have been compared with the cluster's (the verdict is
// SetDNSSECRefusal's): signed transfers may start.
func (s *Server) DNSSECKeysChecked() {
	s.plainTransfers(func(sg *signer) { sg.hold = false })
}

// plainTransfers applies set to the signer and, when that changes whether
// transfers are signed, rebuilds the current view: the transfers and the
// serial become those of the unsigned zone, or of the signed one again.
// Nothing changes with unsigned transfers configured.
func (s *Server) plainTransfers(set func(*signer)) {
	if s.signer == nil || s.signer.cfg.UnsignedTransfers {
		return
	}
	s.updateMu.Lock()
	defer s.updateMu.Unlock()
	was := s.signer.signedTransfers()
	set(s.signer)
	signed := s.signer.signedTransfers()
	if signed == was {
		return
	}
	cur := s.view.Load()
	if cur == nil {
		return
	}
	v, reason, err := s.buildSigned(cur.st, cur)
	if err != nil {
		s.log.Error("cannot rebuild the DNS answers; keeping the current ones", zap.Error(err))
		return
	}
	v.journal = nextJournal(cur, v, s.journalSize())
	s.installView(v, reason)
	if n := s.notifier(); n != nil && v.serial != cur.serial {
		n.changed()
	}
	s.log.Info("DNS zone transfers", zap.Bool("signed", signed), zap.Uint32("serial", v.serial))
}

// keyReason is the refusal for want of keys in force ("" none).
func (s *Server) keyReason() string {
	s.refusalMu.Lock()
	defer s.refusalMu.Unlock()
	if s.keyRefusal == nil {
		return ""
	}
	return s.keyRefusal.reason
}
