package agent

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/evac-sh/evac/internal/keyfile"
)

// ReadKeyFile reads a gossip key file and returns its primary (first) key;
// see ReadKeyring.
func ReadKeyFile(path string) ([]byte, error) {
	keys, err := ReadKeyring(path)
	if err != nil {
		return nil, err
	}
	return keys[0], nil
}

// ReadKeyring reads a gossip key file: one key per line, each base64
// (standard, padded) of 16, 24 or 32 bytes as `evac keygen` prints (32
// bytes). The first key is the primary one, used to encrypt; every key is
// accepted to decrypt, which is how a key is rotated without a node dropping
// out (add the new key second everywhere, then make it first, then remove
// the old one; SIGHUP after each step). Blank lines and surrounding
// whitespace are ignored; lines starting with # are comments. Errors never
// include a key.
func ReadKeyring(path string) ([][]byte, error) {
	b, err := keyfile.ReadPrivate(path) // refuses a file group or others may read
	if err != nil {
		return nil, fmt.Errorf("gossip key file: %w", err)
	}
	var keys [][]byte
	for i, line := range strings.Split(string(b), "\n") {
		s := strings.TrimSpace(line)
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		key, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("gossip key file %s, line %d: not base64 (generate one with `evac keygen`)", path, i+1)
		}
		switch len(key) {
		case 16, 24, 32:
		default:
			return nil, fmt.Errorf("gossip key file %s, line %d: key is %d bytes, want 16, 24 or 32", path, i+1, len(key))
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("gossip key file %s: empty", path)
	}
	return keys, nil
}
