package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evac-sh/evac/dnsserver"
)

func TestTSIGKeygen(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
		key  string
	}{
		{[]string{"keygen", "--name", "Transfer-Key"}, true, "transfer-key."},
		{[]string{"keygen", "--name", "k.example.", "--algorithm", "hmac-sha512"}, true, "k.example."},
		{[]string{"keygen"}, false, ""},
		{[]string{"keygen", "--name", "k", "--algorithm", "hmac-md5"}, false, ""},
		{[]string{"keygen", "--name", "a b"}, false, ""},
	} {
		cmd := newTSIGCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&bytes.Buffer{})
		cmd.SetArgs(tc.args)
		err := cmd.Execute()
		if (err == nil) != tc.ok {
			t.Fatalf("%v: error %v", tc.args, err)
		}
		if !tc.ok {
			continue
		}
		// The whole output is a valid keys file once under keys:.
		path := filepath.Join(t.TempDir(), "tsig.yaml")
		if err := os.WriteFile(path, []byte("keys:\n"+out.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		kr, err := dnsserver.LoadKeyring(path, nil)
		if err != nil {
			t.Fatalf("%v: output is not a keys file line: %v\n%s", tc.args, err, out.String())
		}
		if got := strings.Join(kr.Names(), ","); got != tc.key {
			t.Errorf("%v: keys %s", tc.args, got)
		}
	}
}

func TestServerTSIGKeysFlag(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "server.yaml")
	if err := os.WriteFile(path, []byte("node_id: c1\ndata_dir: /tmp/x\ntsig_keys: /etc/evac/tsig.yaml\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var file serverFile
	if err := loadYAMLStrict(path, &file); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{nil, "/etc/evac/tsig.yaml"},
		{[]string{"--tsig-keys", "/flag/tsig.yaml"}, "/flag/tsig.yaml"},
	} {
		cmd := newServerCmd()
		if err := cmd.Flags().Parse(tc.flags); err != nil {
			t.Fatal(err)
		}
		var f serverFile
		if len(tc.flags) > 0 {
			f.TSIGKeys = tc.flags[1]
		}
		mergeFlags(cmd.Flags(), &f, file)
		if f.TSIGKeys != tc.want {
			t.Errorf("flags %v: tsig keys %q, want %q", tc.flags, f.TSIGKeys, tc.want)
		}
	}
}
