package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestJoinFlagsValidation(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyToken := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(emptyToken, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		f    joinFlags
		want string // "" for no error
	}{
		{joinFlags{}, ""},
		{joinFlags{JoinNonvoter: true}, "need --join-cluster"},
		{joinFlags{JoinCluster: "127.0.0.1:8080"}, "not an http(s)://host:port URL"},
		{joinFlags{JoinCluster: "ftp://x:1"}, "not an http(s)://host:port URL"},
		{joinFlags{JoinCluster: "http://127.0.0.1:8080", JoinTokenFile: "/nonexistent/token"}, "--join-token-file"},
		{joinFlags{JoinCluster: "https://127.0.0.1:8443", JoinCACert: "/nonexistent/ca.pem"}, "--join-ca-cert"},
		{joinFlags{JoinCluster: "http://127.0.0.1:8080", JoinTokenFile: tokenFile}, ""},
		{joinFlags{JoinCluster: "http://127.0.0.1:8080", JoinTokenFile: emptyToken}, "is empty"},
	}
	for _, tt := range tests {
		_, err := tt.f.newJoiner("c4", "127.0.0.1:7300", false, zap.NewNop())
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: %v; want %q", tt.f, err, tt.want)
		}
	}
	if _, err := (joinFlags{JoinCluster: "http://127.0.0.1:8080"}).newJoiner("bad id", "127.0.0.1:7300", false, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "id:") {
		t.Errorf("bad node id: %v", err)
	}
}

// The joiner asks until the cluster answers 200, with its id, address,
// suffrage and token, and stops once it is a member.
func TestJoinerRetriesUntilAdded(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.URL.Path != "/v1/cluster/join" || r.Header.Get("Authorization") != "Bearer secret" {
			t.Errorf("request %s with %q", r.URL.Path, r.Header.Get("Authorization"))
		}
		if n < 3 {
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"error":"below quorum","code":"below_quorum"}`))
			return
		}
		_, _ = w.Write([]byte(`{"changed":true,"peers":[]}`))
	}))
	defer srv.Close()
	t.Setenv("EVAC_TOKEN", "secret")
	j, err := joinFlags{JoinCluster: srv.URL, JoinNonvoter: true}.newJoiner("c4", "127.0.0.1:7300", false, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	j.backoff = time.Millisecond
	if *j.req.Voter {
		t.Fatal("--join-nonvoter asks to join as a voter")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	j.member = func() bool { return false }
	j.run(ctx)
	if calls.Load() < 3 || ctx.Err() != nil {
		t.Fatalf("%d calls, ctx %v; want retries until the 200", calls.Load(), ctx.Err())
	}
	before := calls.Load()
	j.member = func() bool { return true }
	j.run(ctx)
	if calls.Load() != before {
		t.Fatal("a member asked to join again")
	}
}
