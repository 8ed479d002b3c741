package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/auth"
	"github.com/evac-sh/evac/controlplane/controller"
	"github.com/evac-sh/evac/internal/tlsutil"
)

// tokenCreate runs `evac token create` and returns the token and the
// tokens-file line it printed.
func tokenCreate(t *testing.T, name, role string) (token, line string) {
	t.Helper()
	cmd := newTokenCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"create", "--name", name, "--role", role})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^token: (\S+)\n(?:#.*\n)?(  - \{.*\})$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("unexpected output:\n%s", out.String())
	}
	return m[1], m[2]
}

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTokenCreateLineAuthenticates(t *testing.T) {
	tok, line := tokenCreate(t, "alice", "operator")
	if strings.Contains(line, tok) {
		t.Fatal("the tokens-file line contains the token in clear")
	}
	path := writeFile(t, filepath.Join(t.TempDir(), "tokens.yaml"), "tokens:\n"+line+"\n")
	st, err := auth.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := st.Authenticate(tok); !ok || id.Name != "alice" || id.Role != auth.RoleOperator {
		t.Fatalf("Authenticate = %+v, %v", id, ok)
	}
	cmd := newTokenCmd()
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs([]string{"create", "--name", "bob", "--role", "root"})
	if err := cmd.Execute(); err == nil {
		t.Fatal("role root accepted")
	}
}

func TestSecurityApply(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsutil.NewTestCA(dir, "t")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue("c1", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	_, line := tokenCreate(t, "ops", "admin")
	tokens := writeFile(t, filepath.Join(dir, "tokens.yaml"), "tokens:\n"+line+"\n")
	bad := writeFile(t, filepath.Join(dir, "bad.yaml"), "tokens: [{name: x}]\n")
	chmodCopy := func(src, name string, mode os.FileMode) string {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := writeFile(t, filepath.Join(dir, name), string(b))
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	openKey, groupKey := chmodCopy(key, "open-key.pem", 0o644), chmodCopy(key, "group-key.pem", 0o640)
	groupTokens := chmodCopy(tokens, "group-tokens.yaml", 0o664)

	for _, tc := range []struct {
		name    string
		s       securityFlags
		wantErr string
		check   func(t *testing.T, cfg controller.Config, stderr string)
	}{
		{name: "no auth decision", s: securityFlags{}, wantErr: "--insecure-no-auth"},
		{name: "both", s: securityFlags{TokensFile: tokens, InsecureNoAuth: true}, wantErr: "exclude each other"},
		{name: "bad tokens file", s: securityFlags{TokensFile: bad}, wantErr: "--tokens-file"},
		{name: "insecure", s: securityFlags{InsecureNoAuth: true, InsecureNoRaftTLS: true}, check: func(t *testing.T, cfg controller.Config, stderr string) {
			if cfg.Auth != nil || !strings.Contains(stderr, "WARNING: --insecure-no-auth") || !strings.Contains(stderr, "WARNING: --insecure-no-raft-tls") {
				t.Errorf("auth %v, stderr %q", cfg.Auth, stderr)
			}
			if len(cfg.Warnings) != 2 || !strings.Contains(cfg.Warnings[1], "--insecure-no-raft-tls") {
				t.Errorf("warnings for status: %q", cfg.Warnings)
			}
		}},
		{name: "no raft tls decision", s: securityFlags{TokensFile: tokens}, wantErr: "--insecure-no-raft-tls"},
		{name: "raft key readable by others", s: securityFlags{TokensFile: tokens, RaftTLSCert: cert, RaftTLSKey: openKey, RaftTLSCA: ca.CAFile},
			wantErr: "chmod 600 " + openKey},
		{name: "api key readable by group", s: securityFlags{TokensFile: tokens, TLSCert: cert, TLSKey: groupKey, InsecureNoRaftTLS: true},
			wantErr: "chmod 600 " + groupKey},
		{name: "tokens file writable by group", s: securityFlags{TokensFile: groupTokens, InsecureNoRaftTLS: true},
			wantErr: "chmod go-w " + groupTokens},
		{name: "raft tls and insecure", s: securityFlags{TokensFile: tokens, RaftTLSCert: cert, RaftTLSKey: key, RaftTLSCA: ca.CAFile,
			InsecureNoRaftTLS: true}, wantErr: "exclude each other"},
		{name: "tls cert without key", s: securityFlags{TokensFile: tokens, TLSCert: cert, InsecureNoRaftTLS: true}, wantErr: "--tls-cert"},
		{name: "raft tls without CA", s: securityFlags{TokensFile: tokens, RaftTLSCert: cert, RaftTLSKey: key}, wantErr: "--raft-tls"},
		{name: "everything", s: securityFlags{TokensFile: tokens, TLSCert: cert, TLSKey: key, TLSClientCA: ca.CAFile,
			RaftTLSCert: cert, RaftTLSKey: key, RaftTLSCA: ca.CAFile},
			check: func(t *testing.T, cfg controller.Config, _ string) {
				if cfg.Auth == nil || cfg.TLS == nil || cfg.TLS.ClientAuth != tls.RequireAndVerifyClientCert ||
					cfg.RaftTLS == nil || cfg.RaftTLS.RootCAs == nil {
					t.Errorf("config %+v", cfg)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg controller.Config
			var stderr bytes.Buffer
			err := tc.s.apply(&cfg, zap.NewNop(), &stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg, stderr.String())
		})
	}
	err = (securityFlags{}).apply(&controller.Config{}, zap.NewNop(), &bytes.Buffer{})
	if !errors.Is(err, errNoAuth) || !errors.Is(err, errNoRaftTLS) {
		t.Errorf("no decision: %v", err)
	}
}

// TestServerFileSecurityKeys: the security settings are config file keys
// too, and flags win.
func TestServerFileSecurityKeys(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, filepath.Join(dir, "server.yaml"), `node_id: c1
data_dir: /tmp/x
tokens_file: /etc/evac/tokens.yaml
tls_cert: /file/cert.pem
tls_key: /file/key.pem
tls_client_ca: /file/ca.pem
raft_tls_cert: /file/raft.pem
raft_tls_key: /file/raft-key.pem
raft_tls_ca: /file/raft-ca.pem
`)
	cmd := newServerCmd()
	if err := cmd.Flags().Parse([]string{"--tls-cert", "/flag/cert.pem"}); err != nil {
		t.Fatal(err)
	}
	var file serverFile
	if err := loadYAMLStrict(path, &file); err != nil {
		t.Fatal(err)
	}
	f := serverFile{}
	f.TLSCert = "/flag/cert.pem"
	mergeFlags(cmd.Flags(), &f, file)
	want := securityFlags{TokensFile: "/etc/evac/tokens.yaml", TLSCert: "/flag/cert.pem", TLSKey: "/file/key.pem",
		TLSClientCA: "/file/ca.pem", RaftTLSCert: "/file/raft.pem", RaftTLSKey: "/file/raft-key.pem", RaftTLSCA: "/file/raft-ca.pem"}
	if f.securityFlags != want {
		t.Fatalf("merged %+v, want %+v", f.securityFlags, want)
	}
	var insecure serverFile
	if err := loadYAMLStrict(writeFile(t, filepath.Join(dir, "insecure.yaml"), "insecure_no_raft_tls: true\n"), &insecure); err != nil {
		t.Fatal(err)
	}
	f = serverFile{}
	mergeFlags(newServerCmd().Flags(), &f, insecure)
	if !f.InsecureNoRaftTLS {
		t.Fatal("insecure_no_raft_tls in the file was not merged")
	}
	if err := loadYAMLStrict(writeFile(t, filepath.Join(dir, "typo.yaml"), "tokens_fil: x\n"), &file); err == nil {
		t.Fatal("an unknown key was accepted")
	}
}

func TestReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	tok1, line1 := tokenCreate(t, "one", "viewer")
	tok2, line2 := tokenCreate(t, "two", "viewer")
	path := writeFile(t, filepath.Join(dir, "tokens.yaml"), "tokens:\n"+line1+"\n")
	st, err := auth.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := reloadOnSIGHUP(st, zap.NewNop())
	defer stop()
	writeFile(t, path, "tokens:\n"+line2+"\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, ok2 := st.Authenticate(tok2)
		_, ok1 := st.Authenticate(tok1)
		if ok2 && !ok1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not reload the tokens file")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
