package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"
)

// Role is what a token may do. Each role includes the ones below it.
type Role int

const (
	// RoleNone is no role: only the open endpoints.
	RoleNone Role = iota
	// RoleViewer may read (every GET).
	RoleViewer
	// RoleOperator may also evacuate, restore, freeze, unfreeze and run drills.
	RoleOperator
	// RoleAdmin may also change the config, runbooks, schedules and the cluster.
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleOperator:
		return "operator"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// ParseRole parses viewer, operator or admin.
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return RoleViewer, nil
	case "operator":
		return RoleOperator, nil
	case "admin":
		return RoleAdmin, nil
	}
	return RoleNone, fmt.Errorf("unknown role %q (want viewer, operator or admin)", s)
}

// tokensFile is the YAML of --tokens-file.
type tokensFile struct {
	Tokens []tokenEntry `yaml:"tokens"`
}

type tokenEntry struct {
	Name   string `yaml:"name"`
	Role   string `yaml:"role"`
	SHA256 string `yaml:"sha256"`
}

// identity is one parsed token entry.
type identity struct {
	name string
	role Role
	hash [sha256.Size]byte
}

// Identity is an authenticated caller.
type Identity struct {
	Name string
	Role Role
}

// Store holds the tokens of a tokens file. Authenticate is safe to call
// concurrently with Reload; a reload swaps the whole table at once.
type Store struct {
	path   string
	log    *zap.Logger
	table  atomic.Pointer[[]identity]
	reload sync.Mutex
}

// Load reads the tokens file at path.
func Load(path string, log *zap.Logger) (*Store, error) {
	if log == nil {
		log = zap.NewNop()
	}
	s := &Store{path: path, log: log}
	ids, err := readFile(path)
	if err != nil {
		return nil, err
	}
	s.table.Store(&ids)
	return s, nil
}

// Path is the tokens file's path.
func (s *Store) Path() string { return s.path }

// Reload reads the tokens file again. On error the current tokens stay in
// force, the error is logged and returned.
func (s *Store) Reload() error {
	s.reload.Lock()
	defer s.reload.Unlock()
	ids, err := readFile(s.path)
	if err != nil {
		s.log.Error("tokens file reload failed; keeping the previous tokens", zap.String("path", s.path), zap.Error(err))
		return err
	}
	s.table.Store(&ids)
	s.log.Info("tokens file reloaded", zap.String("path", s.path), zap.Int("tokens", len(ids)))
	return nil
}

// Len is the number of tokens in force.
func (s *Store) Len() int { return len(*s.table.Load()) }

// Authenticate returns the identity whose hash matches token. Every entry is
// compared, in constant time, whatever matches.
func (s *Store) Authenticate(token string) (Identity, bool) {
	if token == "" {
		return Identity{}, false
	}
	sum := sha256.Sum256([]byte(token))
	var found *identity
	ids := *s.table.Load()
	for i := range ids {
		if subtle.ConstantTimeCompare(sum[:], ids[i].hash[:]) == 1 {
			found = &ids[i]
		}
	}
	if found == nil {
		return Identity{}, false
	}
	return Identity{Name: found.name, Role: found.role}, true
}

func readFile(path string) ([]identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tokens file: %w", err)
	}
	ids, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	return ids, nil
}

// parse decodes and validates a tokens file.
func parse(b []byte) ([]identity, error) {
	var f tokensFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if len(f.Tokens) == 0 {
		return nil, errors.New("no tokens: want tokens: [{name, role, sha256}]")
	}
	names := map[string]bool{}
	hashes := map[[sha256.Size]byte]string{}
	ids := make([]identity, 0, len(f.Tokens))
	for i, t := range f.Tokens {
		where := fmt.Sprintf("tokens[%d]", i)
		if t.Name == "" || len(t.Name) > 64 || strings.ContainsAny(t.Name, " \t\r\n") {
			return nil, fmt.Errorf("%s.name: want 1-64 characters without spaces, got %q", where, t.Name)
		}
		if names[t.Name] {
			return nil, fmt.Errorf("%s.name: %q is used twice", where, t.Name)
		}
		names[t.Name] = true
		role, err := ParseRole(t.Role)
		if err != nil {
			return nil, fmt.Errorf("%s.role: %w", where, err)
		}
		raw, err := hex.DecodeString(t.SHA256)
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("%s.sha256: want 64 hex digits (the SHA-256 of the token; `evac token create` prints it)", where)
		}
		id := identity{name: t.Name, role: role}
		copy(id.hash[:], raw)
		if other, dup := hashes[id.hash]; dup {
			return nil, fmt.Errorf("%s.sha256: same token as %q", where, other)
		}
		hashes[id.hash] = t.Name
		ids = append(ids, id)
	}
	return ids, nil
}

// tokenPrefix marks evac tokens, so they are recognisable in a leak scan.
const tokenPrefix = "evac_"

// NewToken returns a random token (256 bits) and the hex SHA-256 to put in
// the tokens file.
func NewToken() (token, sum string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	token = tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	h := sha256.Sum256([]byte(token))
	return token, hex.EncodeToString(h[:]), nil
}

// FileLine is the tokens-file entry for name, role and sum.
func FileLine(name string, role Role, sum string) string {
	return fmt.Sprintf("  - {name: %s, role: %s, sha256: %s}", name, role, sum)
}
