package cli

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestHTTPS: the CLI talks to an https address with --ca-cert (or
// EVAC_CA_CERT), and hints at the fix when the CA or the scheme is wrong.
func TestHTTPS(t *testing.T) {
	clearEnv(t)
	t.Setenv(EnvCACert, "")
	var gotAuth atomic.Value
	gotAuth.Store("")
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth.Store(r.Header.Get("Authorization"))
		io.WriteString(w, statusJSON)
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemCert, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	code, _, errs := run(ctx, t, "status", "--addr", srv.URL)
	if code != 1 || !strings.Contains(errs, "--ca-cert") {
		t.Errorf("untrusted server: exit %d, stderr %q; want 1 and a --ca-cert hint", code, errs)
	}
	code, out, errs := run(ctx, t, "status", "--addr", srv.URL, "--ca-cert", caFile, "--token", "s3cret")
	if code != 0 || !strings.Contains(out, "c0") || gotAuth.Load() != "Bearer s3cret" {
		t.Errorf("with --ca-cert: exit %d, auth %q, out %q, stderr %q", code, gotAuth.Load(), out, errs)
	}
	t.Setenv(EnvCACert, caFile)
	if code, _, errs := run(ctx, t, "status", "--addr", srv.URL); code != 0 {
		t.Errorf("with %s: exit %d, stderr %q", EnvCACert, code, errs)
	}
	code, _, errs = run(ctx, t, "status", "--addr", strings.Replace(srv.URL, "https://", "http://", 1))
	if code != 1 || !strings.Contains(errs, "https://") {
		t.Errorf("http to an HTTPS server: exit %d, stderr %q; want 1 and an https hint", code, errs)
	}
	if code, _, _ := run(ctx, t, "status", "--addr", srv.URL, "--ca-cert", filepath.Join(t.TempDir(), "missing.pem")); code != 2 {
		t.Errorf("missing CA file: exit %d, want 2", code)
	}
}
