package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runDNSSEC(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newDNSSECCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestDNSSECKeygenAndDS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	for _, tc := range []struct {
		args []string
		ok   bool
		keys int // .key files printed
	}{
		{[]string{"keygen"}, false, 0},                                           // --dir missing
		{[]string{"keygen", "--dir", dir, "--algorithm", "rsasha256"}, false, 0}, // not offered
		{[]string{"keygen", "--dir", dir, "--zone", "Example.COM"}, true, 1},
		{[]string{"keygen", "--dir", dir, "--zone", "example.com", "--algorithm", "ed25519", "--ksk-zsk"}, true, 2},
	} {
		out, err := runDNSSEC(t, tc.args...)
		if (err == nil) != tc.ok {
			t.Fatalf("%v: error %v", tc.args, err)
		}
		if got := strings.Count(out, ".key\n"); got != tc.keys {
			t.Errorf("%v: printed %q", tc.args, out)
		}
		if strings.Contains(out, "PrivateKey") {
			t.Errorf("%v: printed private key material", tc.args)
		}
	}
	privs, _ := filepath.Glob(filepath.Join(dir, "*.private"))
	if len(privs) != 3 {
		t.Fatalf("private keys %v", privs)
	}
	for _, p := range privs {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", p, fi.Mode(), err)
		}
	}
	// Two KSK/CSK: two DS records, for the zone of the key files.
	out, err := runDNSSEC(t, "ds", "--dir", dir)
	if err != nil || strings.Count(out, "example.com.\t3600\tIN\tDS\t") != 2 {
		t.Fatalf("ds: %q %v", out, err)
	}
	// Keys made without a zone need --zone.
	bare := t.TempDir()
	if _, err := runDNSSEC(t, "keygen", "--dir", bare); err != nil {
		t.Fatal(err)
	}
	if _, err := runDNSSEC(t, "ds", "--dir", bare); err == nil || !strings.Contains(err.Error(), "--zone") {
		t.Errorf("ds without a zone: %v", err)
	}
	if out, err := runDNSSEC(t, "ds", "--dir", bare, "--zone", "example.org", "--ttl", "1m"); err != nil || !strings.HasPrefix(out, "example.org.\t60\tIN\tDS\t") {
		t.Errorf("ds --zone: %q %v", out, err)
	}
	// A private key others can read is refused, naming the fix.
	if err := os.Chmod(privs[0], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := runDNSSEC(t, "ds", "--dir", dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("open private key: %v", err)
	}
}
