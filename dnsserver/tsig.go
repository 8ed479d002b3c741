package dnsserver

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/keyfile"
)

// TSIG (RFC 8945) authenticates zone transfers, IXFR and NOTIFY between
// this server and its secondaries. The keys live in a YAML file on each
// server (they are secrets, so not in the replicated state):
//
//	keys:
//	  - {name: transfer-key., algorithm: hmac-sha256, secret: BASE64}
//
// and the steering config names a secondary's key (state.Secondary.TSIG).
// A secondary with a key must sign its transfers and gets signed NOTIFY;
// a signed request that fails verification gets NOTAUTH with the TSIG
// error (BADKEY, BADSIG, BADTIME) in a TSIG record (tsigError).

// TSIG algorithms a key may use.
const (
	AlgHMACSHA256 = "hmac-sha256"
	AlgHMACSHA512 = "hmac-sha512"
)

// tsigFudge is the time skew we allow and ask for, in seconds (RFC 8945
// section 10 recommends 300).
const tsigFudge = 300

// TSIGKey is one key of a keys file.
type TSIGKey struct {
	Name      string `yaml:"name"`
	Algorithm string `yaml:"algorithm"`
	Secret    string `yaml:"secret"` // base64
}

// tsigKey is a validated key: canonical name and algorithm, raw secret.
type tsigKey struct {
	name, alg string // "transfer-key.", "hmac-sha256."
	secret    []byte
}

func (k *tsigKey) hash() hash.Hash {
	if k.alg == dns.HmacSHA512 {
		return hmac.New(sha512.New, k.secret)
	}
	return hmac.New(sha256.New, k.secret)
}

// ParseTSIGKeys reads a keys file's content: `keys: [{name, algorithm,
// secret}]`, unknown fields refused. Errors name the key and the field.
func ParseTSIGKeys(data []byte) (map[string]*tsigKey, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f struct {
		Keys []TSIGKey `yaml:"keys"`
	}
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("tsig keys: %w", err)
	}
	keys := map[string]*tsigKey{}
	var errs []error
	for i, k := range f.Keys {
		field := fmt.Sprintf("keys[%d]", i)
		name, ok := state.CanonicalKeyName(k.Name)
		if !ok {
			errs = append(errs, fmt.Errorf("%s.name: %q is not a valid key name (a domain name, e.g. transfer-key)", field, k.Name))
			continue
		}
		if _, dup := keys[name]; dup {
			errs = append(errs, fmt.Errorf("%s.name: duplicate key %s", field, name))
			continue
		}
		var alg string
		switch strings.TrimSuffix(strings.ToLower(k.Algorithm), ".") {
		case AlgHMACSHA256:
			alg = dns.HmacSHA256
		case AlgHMACSHA512:
			alg = dns.HmacSHA512
		default:
			errs = append(errs, fmt.Errorf("%s.algorithm: %q must be hmac-sha256 or hmac-sha512", field, k.Algorithm))
			continue
		}
		secret, err := base64.StdEncoding.DecodeString(k.Secret)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s.secret: not base64: %w", field, err))
			continue
		case len(secret) < 16:
			errs = append(errs, fmt.Errorf("%s.secret: %d bytes, at least 16 needed (evac tsig keygen makes one)", field, len(secret)))
			continue
		}
		keys[name] = &tsigKey{name: name, alg: alg, secret: secret}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("tsig keys: %w", err)
	}
	return keys, nil
}

// GenerateTSIGKey returns a new key with a random secret as long as the
// algorithm's hash (RFC 8945 section 6), and its keys-file line.
func GenerateTSIGKey(name, algorithm string) (TSIGKey, string, error) {
	n, ok := state.CanonicalKeyName(name)
	if !ok {
		return TSIGKey{}, "", fmt.Errorf("--name: %q is not a valid key name (a domain name, e.g. transfer-key)", name)
	}
	size := 0
	switch algorithm {
	case AlgHMACSHA256:
		size = sha256.Size
	case AlgHMACSHA512:
		size = sha512.Size
	default:
		return TSIGKey{}, "", fmt.Errorf("--algorithm: %q must be hmac-sha256 or hmac-sha512", algorithm)
	}
	secret := make([]byte, size)
	if _, err := rand.Read(secret); err != nil {
		return TSIGKey{}, "", fmt.Errorf("random secret: %w", err)
	}
	k := TSIGKey{Name: n, Algorithm: algorithm, Secret: base64.StdEncoding.EncodeToString(secret)}
	line := fmt.Sprintf("  - {name: %s, algorithm: %s, secret: %q}", k.Name, k.Algorithm, k.Secret)
	return k, line, nil
}

// Keyring is the TSIG keys of a server, read from a file and re-read by
// Reload (on SIGHUP); a file that does not load keeps the last good keys.
// A nil *Keyring has no keys.
type Keyring struct {
	path string
	log  *zap.Logger
	keys atomic.Pointer[map[string]*tsigKey]
}

// LoadKeyring reads the keys file at path. The file must not be readable
// by group or others.
func LoadKeyring(path string, log *zap.Logger) (*Keyring, error) {
	if log == nil {
		log = zap.NewNop()
	}
	k := &Keyring{path: path, log: log}
	keys, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	k.keys.Store(&keys)
	return k, nil
}

// NewKeyring returns a keyring holding keys (no file; Reload fails).
func NewKeyring(keys ...TSIGKey) (*Keyring, error) {
	data, err := yaml.Marshal(map[string][]TSIGKey{"keys": keys})
	if err != nil {
		return nil, err
	}
	m, err := ParseTSIGKeys(data)
	if err != nil {
		return nil, err
	}
	k := &Keyring{log: zap.NewNop()}
	k.keys.Store(&m)
	return k, nil
}

func readKeyFile(path string) (map[string]*tsigKey, error) {
	data, err := keyfile.ReadPrivate(path) // refused if group or others may read it
	if err != nil {
		return nil, fmt.Errorf("tsig keys: %w", err)
	}
	keys, err := ParseTSIGKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// Reload re-reads the keys file. On error the keys stay as they were and
// the error is logged and returned.
func (k *Keyring) Reload() error {
	if k == nil || k.path == "" {
		return errors.New("tsig keys: no keys file to reload")
	}
	keys, err := readKeyFile(k.path)
	if err != nil {
		k.log.Error("TSIG keys not reloaded; keeping the previous ones", zap.String("file", k.path), zap.Error(err))
		return err
	}
	k.keys.Store(&keys)
	k.log.Info("TSIG keys reloaded", zap.String("file", k.path), zap.Strings("keys", k.Names()))
	return nil
}

// Names returns the key names, sorted.
func (k *Keyring) Names() []string {
	var out []string
	if k == nil {
		return nil
	}
	for n := range *k.keys.Load() {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (k *Keyring) key(name string) *tsigKey {
	if k == nil {
		return nil
	}
	return (*k.keys.Load())[dns.CanonicalName(name)]
}

// tsigProvider signs and verifies with the keyring's current keys
// (dns.TsigProvider). An unknown key is dns.ErrSecret, a key used with
// another algorithm dns.ErrKeyAlg (both BADKEY), a wrong MAC dns.ErrSig.
type tsigProvider struct{ k *Keyring }

func (p tsigProvider) Generate(msg []byte, t *dns.TSIG) ([]byte, error) {
	key := p.k.key(t.Hdr.Name)
	if key == nil {
		return nil, dns.ErrSecret
	}
	if dns.CanonicalName(t.Algorithm) != key.alg {
		return nil, dns.ErrKeyAlg
	}
	h := key.hash()
	h.Write(msg)
	return h.Sum(nil), nil
}

func (p tsigProvider) Verify(msg []byte, t *dns.TSIG) error {
	mac, err := p.Generate(msg, t)
	if err != nil {
		return err
	}
	got, err := hex.DecodeString(t.MAC)
	if err != nil || !hmac.Equal(mac, got) {
		return dns.ErrSig
	}
	return nil
}

// tsigErrorCode maps a verification error to its TSIG error code.
func tsigErrorCode(err error) uint16 {
	switch {
	case errors.Is(err, dns.ErrSecret), errors.Is(err, dns.ErrKeyAlg):
		return dns.RcodeBadKey
	case errors.Is(err, dns.ErrTime):
		return dns.RcodeBadTime
	}
	return dns.RcodeBadSig
}

// tsigError answers a signed request that failed verification: NOTAUTH
// with a TSIG record carrying the error (RFC 8945 section 5.3.2): unsigned
// for BADKEY and BADSIG, signed with our time in Other Data for BADTIME.
func (s *Server) tsigError(w dns.ResponseWriter, r *dns.Msg, t *dns.TSIG, err error) {
	code := tsigErrorCode(err)
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeNotAuth)
	rr := &dns.TSIG{
		Hdr:        dns.RR_Header{Name: t.Hdr.Name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm:  t.Algorithm,
		TimeSigned: t.TimeSigned,
		Fudge:      t.Fudge,
		OrigId:     r.Id,
		Error:      code,
	}
	if code == dns.RcodeBadTime {
		now := uint64(time.Now().Unix())
		rr.OtherLen = 6
		rr.OtherData = fmt.Sprintf("%012x", now&0xffffffffffff)
	}
	m.Extra = []dns.RR{rr}
	s.log.Info("TSIG verification failed", zap.Stringer("client", w.RemoteAddr()), zap.String("key", t.Hdr.Name),
		zap.String("qname", qname(r)), zap.String("tsig-error", dns.RcodeToString[int(code)]), zap.Error(err))
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("cannot write DNS answer", zap.Stringer("client", w.RemoteAddr()), zap.Error(err))
	}
}

// sign adds to m a TSIG record for the key that signed request t; the
// ResponseWriter computes the MAC when it writes m.
func sign(m *dns.Msg, t *dns.TSIG) {
	m.Extra = append(m.Extra[:len(m.Extra):len(m.Extra)], &dns.TSIG{
		Hdr:        dns.RR_Header{Name: t.Hdr.Name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm:  t.Algorithm,
		Fudge:      tsigFudge,
		TimeSigned: uint64(time.Now().Unix()),
		OrigId:     m.Id,
	})
}
