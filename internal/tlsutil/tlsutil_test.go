package tlsutil

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evac-sh/evac/internal/keyfile"
)

// handshake runs a TLS handshake between server and client configs over
// a loopback connection and returns the client's and server's errors.
func handshake(t *testing.T, server, client *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		tc := tls.Server(c, server)
		err = tc.Handshake()
		if err == nil {
			_, err = tc.Write([]byte("x")) // the client reads it: TLS 1.3 client-cert errors show here
		}
		done <- err
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(c, client)
	clientErr = tc.Handshake()
	if clientErr == nil {
		var b [1]byte
		_, clientErr = tc.Read(b[:])
	}
	return clientErr, <-done
}

func TestMutual(t *testing.T) {
	dir := t.TempDir()
	good, err := NewTestCA(dir, "good")
	if err != nil {
		t.Fatal(err)
	}
	evil, err := NewTestCA(dir, "evil")
	if err != nil {
		t.Fatal(err)
	}
	mk := func(ca *TestCA, name string) *tls.Config {
		cert, key, err := ca.Issue(name, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := Mutual(cert, key, good.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	srv, cli, intruder := mk(good, "a"), mk(good, "b"), mk(evil, "c")
	cli.ServerName, intruder.ServerName = "127.0.0.1", "127.0.0.1"
	if ce, se := handshake(t, srv, cli); ce != nil || se != nil {
		t.Fatalf("same CA: client %v, server %v", ce, se)
	}
	if ce, se := handshake(t, srv, intruder); ce == nil || se == nil {
		t.Fatalf("client cert from another CA: client %v, server %v; want both to fail", ce, se)
	}
	if ce, _ := handshake(t, intruder, cli); ce == nil {
		t.Fatal("server cert from another CA accepted by the client")
	}
	noCert := &tls.Config{RootCAs: cli.RootCAs, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	if _, se := handshake(t, srv, noCert); se == nil {
		t.Fatal("a client without a certificate was accepted")
	}
	wrongName := cli.Clone()
	wrongName.ServerName = "10.1.2.3"
	if ce, _ := handshake(t, srv, wrongName); ce == nil {
		t.Fatal("a server certificate for another address was accepted")
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewTestCA(dir, "t")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue("x", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	openKey := filepath.Join(dir, "open-key.pem")
	kb, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(openKey, kb, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(openKey, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"server key readable by others": func() error { _, err := Server(cert, openKey, ""); return err }(),
		"mutual key readable by others": func() error { _, err := Mutual(cert, openKey, ca.CAFile); return err }(),
		"client key readable by others": func() error { _, err := Client(ca.CAFile, cert, openKey); return err }(),
	} {
		if !errors.Is(err, keyfile.ErrTooOpen) || !strings.Contains(err.Error(), "chmod 600 "+openKey) {
			t.Errorf("%s: %v, want a chmod 600 error", name, err)
		}
	}
	if _, err := Mutual(cert, key, ca.CAFile); err != nil {
		t.Errorf("0600 key refused: %v", err)
	}
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"server without key":  func() error { _, err := Server(cert, "", ""); return err }(),
		"server key mismatch": func() error { _, err := Server(cert, junk, ""); return err }(),
		"server junk CA":      func() error { _, err := Server(cert, key, junk); return err }(),
		"mutual without CA":   func() error { _, err := Mutual(cert, key, ""); return err }(),
		"client cert no key":  func() error { _, err := Client(ca.CAFile, cert, ""); return err }(),
		"client missing CA":   func() error { _, err := Client(filepath.Join(dir, "nope.pem"), "", ""); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	cfg, err := Client("", "", "")
	if cfg != nil || err != nil {
		t.Errorf("Client with nothing = %v, %v; want nil, nil", cfg, err)
	}
	s, err := Server(cert, key, ca.CAFile)
	if err != nil || s.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("Server with a client CA: %v, %v", s, err)
	}
	if _, err := CertPool(junk); err == nil || !strings.Contains(err.Error(), "no PEM") {
		t.Errorf("CertPool(junk) = %v", err)
	}
}
