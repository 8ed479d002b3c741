package dnsserver

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/keyfile"
)

// DNSSEC keys (docs/dnssec.md): a directory of BIND-style key pairs, as
// dnssec-keygen writes them and `evac dnssec keygen` makes them:
// K<zone>.+<alg>+<tag>.key holds the DNSKEY record (public, mode 644) and
// K<zone>.+<alg>+<tag>.private the private key (mode 600, checked by
// internal/keyfile). The owner name in the .key file is only a label: the
// server publishes the keys at the apex of its config's zone.
//
// A key with the SEP flag (flags 257) is a KSK, or a combined signing key
// (CSK) when the directory has no key without it; a key without it (256)
// is a ZSK. The DNSKEY RRset is signed by every KSK/CSK, every other RRset
// by every ZSK (by every CSK when there is none).

// DNSSEC algorithms evac signs with, by their names on the command line.
const (
	AlgECDSAP256SHA256 = "ecdsap256sha256" // algorithm 13, the default
	AlgED25519         = "ed25519"         // algorithm 15
)

// Flags of a DNSKEY: ZONE, and ZONE|SEP.
const (
	flagsZSK = 256
	flagsKSK = 257
)

// DNSSECKey is one key of a directory: its public record, where it came
// from, and the private key, which no method ever prints.
type DNSSECKey struct {
	DNSKEY *dns.DNSKEY
	File   string // the .private file
	priv   crypto.Signer
}

// KSK reports whether the key has the SEP flag (a KSK or a CSK).
func (k *DNSSECKey) KSK() bool { return k.DNSKEY.Flags&dns.SEP != 0 }

// Role is "csk", "ksk" or "zsk" within set.
func (k *DNSSECKey) role(set *DNSSECKeys) string {
	switch {
	case !k.KSK():
		return "zsk"
	case set.hasZSK():
		return "ksk"
	}
	return "csk"
}

// ID names the key in the replicated key states (state.DNSSECKeyState):
// "tag/algorithm/flags/hash", hash the first 16 hex digits of SHA-256
// over the public key. Public metadata only.
func (k *DNSSECKey) ID() string {
	h := sha256.Sum256([]byte(k.DNSKEY.PublicKey))
	return fmt.Sprintf("%d/%d/%d/%s", k.DNSKEY.KeyTag(), k.DNSKEY.Algorithm, k.DNSKEY.Flags, hex.EncodeToString(h[:8]))
}

// DNSSECKeys is the key set of a --dnssec-keys directory, or the part of
// it the cluster's recorded key states name (ForState).
type DNSSECKeys struct {
	Dir  string
	Keys []*DNSSECKey // by key tag
	// active are the keys that sign what their role signs; nil: every
	// key. The others are only published (a SEP key among them still
	// signs the DNSKEY RRset).
	active map[*DNSSECKey]bool
}

// IDs lists the keys' ids (DNSSECKey.ID), in key tag order.
func (s *DNSSECKeys) IDs() []string {
	out := make([]string, len(s.Keys))
	for i, k := range s.Keys {
		out[i] = k.ID()
	}
	return out
}

// Find returns the key with id, nil when the set has none.
func (s *DNSSECKeys) Find(id string) *DNSSECKey {
	for _, k := range s.Keys {
		if k.ID() == id {
			return k
		}
	}
	return nil
}

// isActive reports whether k signs what its role signs.
func (s *DNSSECKeys) isActive(k *DNSSECKey) bool { return s.active == nil || s.active[k] }

// ForState returns the keys of s that the cluster's recorded key states
// name, each published or active as recorded, and the ids of the named
// keys s lacks. With nothing recorded (d nil) it is s itself: every key
// active.
func (s *DNSSECKeys) ForState(d *state.DNSSECState) (*DNSSECKeys, []string) {
	if d == nil {
		return s, nil
	}
	out := &DNSSECKeys{Dir: s.Dir, active: map[*DNSSECKey]bool{}}
	var missing []string
	for _, rec := range d.Keys {
		k := s.Find(rec.ID)
		if k == nil {
			missing = append(missing, rec.ID)
			continue
		}
		out.Keys = append(out.Keys, k)
		if rec.State == state.KeyActive {
			out.active[k] = true
		}
	}
	slices.SortFunc(out.Keys, func(a, b *DNSSECKey) int { return int(a.DNSKEY.KeyTag()) - int(b.DNSKEY.KeyTag()) })
	return out, missing
}

// Unnamed lists the ids of the keys of s that d does not name (none when
// nothing is recorded): they are neither published nor used.
func (s *DNSSECKeys) Unnamed(d *state.DNSSECState) []string {
	if d == nil {
		return nil
	}
	var out []string
	for _, k := range s.Keys {
		if _, ok := d.Key(k.ID()); !ok {
			out = append(out, k.ID())
		}
	}
	return out
}

// signature is what signs with the set: its keys and which are active.
func (s *DNSSECKeys) signature() string {
	var b strings.Builder
	for _, k := range s.Keys {
		fmt.Fprintf(&b, "%s %v\n", k.ID(), s.isActive(k))
	}
	return b.String()
}

func (s *DNSSECKeys) hasZSK() bool {
	return slices.ContainsFunc(s.Keys, func(k *DNSSECKey) bool { return !k.KSK() })
}

// Tags returns the key tags, sorted.
func (s *DNSSECKeys) Tags() []uint16 {
	out := make([]uint16, len(s.Keys))
	for i, k := range s.Keys {
		out[i] = k.DNSKEY.KeyTag()
	}
	slices.Sort(out)
	return out
}

// Describe lists the keys as "tag/alg/role", e.g. "12345/13/csk", sorted
// by tag: public metadata for logs and status.
func (s *DNSSECKeys) Describe() []string {
	out := make([]string, len(s.Keys))
	for i, k := range s.Keys {
		out[i] = fmt.Sprintf("%d/%d/%s", k.DNSKEY.KeyTag(), k.DNSKEY.Algorithm, k.role(s))
	}
	return out
}

// DNSKEYs returns the public keys as records owned by zone.
func (s *DNSSECKeys) DNSKEYs(zone string, ttl uint32) []dns.RR {
	out := make([]dns.RR, len(s.Keys))
	for i, k := range s.Keys {
		d := *k.DNSKEY
		d.Hdr = hdr(zone, dns.TypeDNSKEY, ttl)
		out[i] = &d
	}
	return out
}

// DS returns the DS records (SHA-256) of the KSKs/CSKs for zone, for the
// parent zone.
func (s *DNSSECKeys) DS(zone string, ttl uint32) []*dns.DS {
	var out []*dns.DS
	for _, rr := range s.DNSKEYs(dns.CanonicalName(zone), ttl) {
		k := rr.(*dns.DNSKEY)
		if k.Flags&dns.SEP == 0 {
			continue
		}
		if ds := k.ToDS(dns.SHA256); ds != nil {
			out = append(out, ds)
		}
	}
	return out
}

// Fingerprint is a short hash of the public keys (flags, algorithm, key),
// the same on every server given the same directory.
func (s *DNSSECKeys) Fingerprint() string {
	h := sha256.New()
	for _, k := range s.Keys {
		fmt.Fprintf(h, "%d %d %s\n", k.DNSKEY.Flags, k.DNSKEY.Algorithm, k.DNSKEY.PublicKey)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// signers returns the keys that sign an RRset of type t: the DNSKEY
// RRset every SEP key (a published one too: the KSK double signature),
// the other RRsets the active ZSKs (the active CSKs when the set has no
// ZSK).
func (s *DNSSECKeys) signers(t uint16) []*DNSSECKey {
	var out []*DNSSECKey
	if t == dns.TypeDNSKEY {
		for _, k := range s.Keys {
			if k.KSK() {
				out = append(out, k)
			}
		}
		return out
	}
	ksk := !s.hasZSK()
	for _, k := range s.Keys {
		if k.KSK() == ksk && s.isActive(k) {
			out = append(out, k)
		}
	}
	return out
}

// dnssecAlgorithm maps a --algorithm name to its number.
func dnssecAlgorithm(name string) (uint8, error) {
	switch strings.ToLower(name) {
	case AlgECDSAP256SHA256, "13", "":
		return dns.ECDSAP256SHA256, nil
	case AlgED25519, "15":
		return dns.ED25519, nil
	}
	return 0, fmt.Errorf("algorithm %q is not supported: use %s (13) or %s (15)", name, AlgECDSAP256SHA256, AlgED25519)
}

// GenerateDNSSECKeys writes a new combined signing key (pair false), or a
// KSK and a ZSK (pair true), into dir (created 0700 if missing), for zone
// ("" writes the owner "." and leaves the zone to the server's config).
// It returns the new keys' .key files. Nothing secret is returned.
func GenerateDNSSECKeys(dir, zone, algorithm string, pair bool) ([]string, error) {
	flags := []uint16{flagsKSK}
	if pair {
		flags = append(flags, flagsZSK)
	}
	var files []string
	for _, f := range flags {
		file, err := GenerateDNSSECKey(dir, zone, algorithm, f == flagsKSK)
		if err != nil {
			return nil, err
		}
		files = append(files, file)
	}
	return files, nil
}

// GenerateDNSSECKey writes one new key into dir: with the SEP flag (a
// KSK or CSK, flags 257) when sep is set, else a ZSK (256); e.g. the new
// key of a rollover. It returns its .key file.
func GenerateDNSSECKey(dir, zone, algorithm string, sep bool) (string, error) {
	alg, err := dnssecAlgorithm(algorithm)
	if err != nil {
		return "", err
	}
	owner := "."
	if zone != "" {
		owner = dns.CanonicalName(zone)
		if _, ok := dns.IsDomainName(owner); !ok {
			return "", fmt.Errorf("zone %q is not a domain name", zone)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("key directory: %w", err)
	}
	f := uint16(flagsZSK)
	if sep {
		f = flagsKSK
	}
	k := &dns.DNSKEY{Hdr: hdr(owner, dns.TypeDNSKEY, 3600), Flags: f, Protocol: 3, Algorithm: alg}
	priv, err := k.Generate(256)
	if err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	base := filepath.Join(dir, fmt.Sprintf("K%s+%03d+%05d", owner, alg, k.KeyTag()))
	if _, err := os.Stat(base + ".private"); err == nil {
		return "", fmt.Errorf("%s.private exists already (key tag collision): run keygen again", base)
	}
	kind := "zone-signing key"
	if sep {
		kind = "key-signing key"
	}
	pub := fmt.Sprintf("; This is a %s, keyid %d, for %s\n; Created by evac dnssec keygen on %s\n%s\n",
		kind, k.KeyTag(), owner, time.Now().UTC().Format(time.RFC3339), k.String())
	if err := writeNew(base+".private", []byte(k.PrivateKeyString(priv)), 0o600); err != nil {
		return "", err
	}
	if err := writeNew(base+".key", []byte(pub), 0o644); err != nil {
		return "", err
	}
	return base + ".key", nil
}

// writeNew creates path with mode, refusing to overwrite.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write key %s: %w", path, err)
	}
	return nil
}

// ErrNoDNSSECKeys: the directory holds no key pair.
var ErrNoDNSSECKeys = errors.New("no DNSSEC keys")

// LoadDNSSECKeys reads every K*.private file of dir and its .key file. A
// private file that group or others can access, a .private without its
// .key, a key of an algorithm evac does not sign with, or a private key
// that does not match its public key is an error naming the file; so is a
// directory without keys or without a KSK/CSK.
func LoadDNSSECKeys(dir string) (*DNSSECKeys, error) {
	privs, err := filepath.Glob(filepath.Join(dir, "K*.private"))
	if err != nil {
		return nil, fmt.Errorf("dnssec keys: %w", err)
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("dnssec keys: %w", err)
	}
	if len(privs) == 0 {
		return nil, fmt.Errorf("%w in %s (no K*.private file): run evac dnssec keygen --dir %s", ErrNoDNSSECKeys, dir, dir)
	}
	set := &DNSSECKeys{Dir: dir}
	for _, p := range privs {
		k, err := loadKey(p)
		if err != nil {
			return nil, err
		}
		set.Keys = append(set.Keys, k)
	}
	slices.SortFunc(set.Keys, func(a, b *DNSSECKey) int { return int(a.DNSKEY.KeyTag()) - int(b.DNSKEY.KeyTag()) })
	if !slices.ContainsFunc(set.Keys, (*DNSSECKey).KSK) {
		return nil, fmt.Errorf("dnssec keys in %s: no key has the SEP flag (257): a KSK or CSK is needed", dir)
	}
	return set, nil
}

func loadKey(privPath string) (*DNSSECKey, error) {
	pubPath := strings.TrimSuffix(privPath, ".private") + ".key"
	pubData, err := os.ReadFile(pubPath)
	if err != nil {
		return nil, fmt.Errorf("dnssec key %s: its public key: %w", privPath, err)
	}
	var dk *dns.DNSKEY
	zp := dns.NewZoneParser(bytes.NewReader(pubData), ".", pubPath)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if k, isKey := rr.(*dns.DNSKEY); isKey && dk == nil {
			dk = k
		}
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("dnssec key %s: %w", pubPath, err)
	}
	if dk == nil {
		return nil, fmt.Errorf("dnssec key %s: no DNSKEY record", pubPath)
	}
	if dk.Algorithm != dns.ECDSAP256SHA256 && dk.Algorithm != dns.ED25519 {
		return nil, fmt.Errorf("dnssec key %s: algorithm %d is not supported (13 or 15)", pubPath, dk.Algorithm)
	}
	if dk.Flags&dns.ZONE == 0 || dk.Protocol != 3 {
		return nil, fmt.Errorf("dnssec key %s: not a zone key (flags %d, protocol %d)", pubPath, dk.Flags, dk.Protocol)
	}
	data, err := keyfile.ReadPrivate(privPath)
	if err != nil {
		return nil, fmt.Errorf("dnssec key: %w", err)
	}
	// The private key's bytes stay out of every error message.
	priv, err := dk.ReadPrivateKey(bytes.NewReader(data), privPath)
	clear(data)
	if err != nil {
		return nil, fmt.Errorf("dnssec key %s: cannot read the private key: %w", privPath, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("dnssec key %s: not a signing key", privPath)
	}
	k := &DNSSECKey{DNSKEY: dk, File: privPath, priv: deterministic{signer}} // same signatures on every server (sign.go)
	if err := k.selfTest(); err != nil {
		return nil, fmt.Errorf("dnssec key %s does not match %s: %w", privPath, pubPath, err)
	}
	return k, nil
}

// selfTest signs a record and verifies it with the public key: a private
// key that does not belong to its DNSKEY fails.
func (k *DNSSECKey) selfTest() error {
	owner := k.DNSKEY.Hdr.Name
	rrset := []dns.RR{&dns.TXT{Hdr: hdr(owner, dns.TypeTXT, 60), Txt: []string{"evac key check"}}}
	sig := &dns.RRSIG{Algorithm: k.DNSKEY.Algorithm, KeyTag: k.DNSKEY.KeyTag(), SignerName: owner,
		Inception: 1, Expiration: 1<<32 - 1}
	if err := sig.Sign(k.priv, rrset); err != nil {
		return err
	}
	return sig.Verify(k.DNSKEY, rrset)
}
