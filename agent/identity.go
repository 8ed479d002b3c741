package agent

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/evac-sh/evac/internal/keyfile"
)

// An agent's identity is an Ed25519 key pair: the private key in a file
// only its owner can read (agent config key_file), the public key enrolled
// on the controllers (`evac agent enroll`), which then accept only reports
// signed with it (gossip/identity.go).

// GenerateIdentity writes a new private key to path (PEM, PKCS #8, mode
// 0600; an existing file is never overwritten) and returns the public key.
func GenerateIdentity(path string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate agent key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode agent key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("agent key file %s exists: remove it first (its public key is enrolled under its agent's name)", path)
		}
		return nil, fmt.Errorf("agent key file: %w", err)
	}
	werr := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("write agent key file %s: %w", path, werr)
	}
	return pub, nil
}

// ReadIdentity reads an agent's private key file. A file that group or
// others may read is refused: the key is the agent's identity.
func ReadIdentity(path string) (ed25519.PrivateKey, error) {
	b, err := keyfile.ReadPrivate(path) // the key is the agent's identity: refused if others may read it
	if err != nil {
		return nil, fmt.Errorf("agent key file: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("agent key file %s: no PEM PRIVATE KEY block (create one with `evac agent keygen --out %s`)", path, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("agent key file %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("agent key file %s: a %T key, want Ed25519", path, k)
	}
	return priv, nil
}

// EncodePublicKey is a public key as `evac agent enroll --public-key`
// takes it: standard base64.
func EncodePublicKey(pub ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(pub) }
