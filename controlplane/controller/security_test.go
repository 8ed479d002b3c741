package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/auth"
	"github.com/evac-sh/evac/internal/client"
	"github.com/evac-sh/evac/internal/tlsutil"
)

// TestSecureCluster runs three controllers with mutual-TLS Raft, an HTTPS
// API that requires client certificates, and bearer tokens, and drives
// them through a follower (so leader forwarding runs over TLS too).
func TestSecureCluster(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsutil.NewTestCA(dir, "evac")
	if err != nil {
		t.Fatal(err)
	}
	other, err := tlsutil.NewTestCA(dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	tokensPath := filepath.Join(dir, "tokens.yaml")
	var file strings.Builder
	file.WriteString("tokens:\n")
	for _, n := range []string{"viewer", "operator", "admin"} {
		sum := sha256.Sum256([]byte("secret-" + n))
		fmt.Fprintf(&file, "  - {name: %s-user, role: %s, sha256: %s}\n", n, n, hex.EncodeToString(sum[:]))
	}
	if err := os.WriteFile(tokensPath, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := auth.Load(tokensPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := startClusterWith(t, 3, func(_ int, cfg *Config) {
		ip, _, _ := net.SplitHostPort(cfg.RaftAddr)
		cert, key, err := ca.Issue(cfg.NodeID, ip)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.RaftTLS, err = tlsutil.Mutual(cert, key, ca.CAFile); err != nil {
			t.Fatal(err)
		}
		if cfg.TLS, err = tlsutil.Server(cert, key, ca.CAFile); err != nil {
			t.Fatal(err)
		}
		cfg.Auth = store
	})
	f := c.follower()
	ccert, ckey, err := ca.Issue("cli")
	if err != nil {
		t.Fatal(err)
	}
	good, err := tlsutil.Client(ca.CAFile, ccert, ckey)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := func(token string) *client.Client {
		return client.New("https://"+f.HTTPAddr(), token, client.WithTLSConfig(good), client.WithTimeout(15*time.Second))
	}

	// TLS: plain HTTP, no client certificate, or one from another CA fail.
	if _, err := client.New("http://"+f.HTTPAddr(), "secret-admin").Status(ctx); err == nil {
		t.Error("plain HTTP to the HTTPS API succeeded")
	}
	noCert, _ := tlsutil.Client(ca.CAFile, "", "")
	if _, err := client.New("https://"+f.HTTPAddr(), "secret-admin", client.WithTLSConfig(noCert)).Status(ctx); err == nil {
		t.Error("a client without a certificate was served")
	}
	ocert, okey, _ := other.Issue("intruder")
	wrongCA, _ := tlsutil.Client(ca.CAFile, ocert, okey)
	if _, err := client.New("https://"+f.HTTPAddr(), "secret-admin", client.WithTLSConfig(wrongCA)).Status(ctx); err == nil {
		t.Error("a client certificate from another CA was accepted")
	}

	// Auth: no token, a wrong token, too low a role.
	wantStatus := func(what string, err error, status int) {
		t.Helper()
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != status {
			t.Errorf("%s: %v, want HTTP %d", what, err, status)
		}
	}
	_, err = cl("").Status(ctx)
	wantStatus("no token", err, http.StatusUnauthorized)
	_, err = cl("secret-nobody").Status(ctx)
	wantStatus("wrong token", err, http.StatusUnauthorized)
	if _, err := cl("secret-viewer").Status(ctx); err != nil {
		t.Fatalf("viewer status: %v", err)
	}
	_, err = cl("secret-operator").ApplyConfig(ctx, []byte(steeringYAML), "application/yaml")
	wantStatus("operator PUT /v1/config", err, http.StatusForbidden)
	if _, err := cl("secret-admin").ApplyConfig(ctx, []byte(steeringYAML), "application/yaml"); err != nil {
		t.Fatalf("admin PUT /v1/config through a follower: %v", err)
	}
	_, err = cl("secret-viewer").Evacuate(ctx, "us-east", wire.MoveRequest{Reason: "drill"})
	wantStatus("viewer evacuate", err, http.StatusForbidden)
	if _, err := cl("secret-operator").Evacuate(ctx, "us-west", wire.MoveRequest{Reason: "drill", Ramp: []int{0}}); err != nil {
		t.Fatalf("operator evacuate: %v", err)
	}
	// Overriding a safety rule takes an admin.
	_, err = cl("secret-operator").Evacuate(ctx, "us-east", wire.MoveRequest{Reason: "x", Force: true, DryRun: true})
	wantStatus("operator evacuate --force", err, http.StatusForbidden)
	if _, err := cl("secret-admin").Evacuate(ctx, "us-east", wire.MoveRequest{Reason: "x", Force: true, DryRun: true}); err != nil {
		t.Fatalf("admin evacuate --force: %v", err)
	}
	evs, err := cl("secret-viewer").Events(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	actors := map[string]string{}
	for _, e := range evs {
		actors[e.Kind] = e.Actor
	}
	if actors["config.applied"] != "admin-user" || actors["region.evacuate"] != "operator-user" {
		t.Errorf("audit actors %v: want the tokens' names", actors)
	}

	// /metrics over the same API: viewer only, and it parses.
	body := func(token string) (int, string) {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: good}}
		defer hc.CloseIdleConnections()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+f.HTTPAddr()+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := body(""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: %d", code)
	}
	eventually(t, 20*time.Second, func() error {
		code, text := body("secret-viewer")
		if code != 200 {
			return fmt.Errorf("/metrics: %d", code)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
		if err != nil {
			return fmt.Errorf("parse /metrics: %w", err)
		}
		for _, name := range []string{"evac_region_weight", "evac_region_state", "evac_raft_term",
			"evac_raft_apply_duration_seconds", "evac_gossip_members", "evac_dns_queries_total"} {
			if _, ok := fams[name]; !ok {
				return fmt.Errorf("no %s", name)
			}
		}
		// The evacuation was seen in the event log.
		for _, m := range fams["evac_evacuations_total"].Metric {
			if m.Label[0].GetValue() == "started" && m.Counter.GetValue() < 1 {
				return errors.New("evac_evacuations_total{outcome=started} is 0")
			}
		}
		return nil
	})
}
