package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evac-sh/evac/internal/tlsutil"
)

// runEvac runs the CLI in process with args and returns its output.
func runEvac(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// serverFiles writes, under dir, the key, token and TLS files that
// examples/server.yaml names under /etc/evac, and returns the example with
// those paths moved to dir: `evac validate` reads every file a server
// config names, as `evac server` would.
func serverFiles(t *testing.T, dir string) []byte {
	t.Helper()
	key, err := runEvac(t, "keygen")
	if err != nil {
		t.Fatalf("evac keygen: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "gossip.key"), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("example token"))
	tokens := "tokens:\n  - {name: ops, role: admin, sha256: " + hex.EncodeToString(sum[:]) + "}\n"
	if err := os.WriteFile(filepath.Join(dir, "tokens.yaml"), []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	ca, err := tlsutil.NewTestCA(dir, "raft") // raft-ca.pem
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ca.Issue("api", "192.0.2.1"); err != nil { // api.pem, api-key.pem
		t.Fatal(err)
	}
	if _, _, err := ca.Issue("c1", "192.0.2.1"); err != nil { // c1.pem, c1-key.pem
		t.Fatal(err)
	}
	b, err := os.ReadFile("../../examples/server.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("/etc/evac/")) {
		t.Fatal("examples/server.yaml names no file under /etc/evac/")
	}
	return bytes.ReplaceAll(b, []byte("/etc/evac/"), []byte(dir+"/"))
}

// TestExamplesValidate: every file in examples/ is one `evac validate`
// accepts, as the kind it guesses from the keys, and the same file with a
// mistake is refused (the check can fail).
func TestExamplesValidate(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"steering.yaml": "steering", "agent.yaml": "agent", "server.yaml": "server"}
	seen := 0
	for _, f := range files {
		name := filepath.Base(f)
		kind, ok := want[name]
		if !ok {
			t.Errorf("examples/%s: no kind expected for it in this test", name)
			continue
		}
		seen++
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if kind == "server" {
				b = serverFiles(t, dir)
			}
			if !bytes.HasPrefix(b, []byte("#")) {
				t.Errorf("examples/%s does not open with a comment saying what it is", name)
			}
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := runEvac(t, "validate", path)
			if err != nil || !strings.Contains(out, "valid "+kind+" config") {
				t.Fatalf("evac validate examples/%s: %v\n%s", name, err, out)
			}

			bad := filepath.Join(dir, "bad-"+name)
			if err := os.WriteFile(bad, append(b, []byte("\nno_such_key: 1\n")...), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err = runEvac(t, "validate", "--kind", kind, bad)
			if err == nil {
				t.Fatalf("evac validate accepted examples/%s with an unknown key:\n%s", name, out)
			}
			if !strings.Contains(err.Error(), "no_such_key") {
				t.Errorf("error does not name the unknown key: %v", err)
			}
		})
	}
	if seen != len(want) {
		t.Errorf("examples/ has %d of the %d expected files", seen, len(want))
	}
}
