package agent

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"
)

// ReadKeyFile reads a gossip key file: base64 (standard, padded) of 16, 24
// or 32 bytes, as `evac keygen` prints (32 bytes). Surrounding whitespace
// is ignored. Errors never include the key.
func ReadKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gossip key file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil, fmt.Errorf("gossip key file %s: empty", path)
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("gossip key file %s: not base64 (generate one with `evac keygen`)", path)
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, fmt.Errorf("gossip key file %s: key is %d bytes, want 16, 24 or 32", path, len(key))
}
