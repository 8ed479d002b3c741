package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestFailureFloodIsRateLimited: a flood of refused requests of each kind is
// counted one by one but logged as one line per reason and interval.
func TestFailureFloodIsRateLimited(t *testing.T) {
	s, _ := newStore(t)
	core, logs := observer.New(zapcore.InfoLevel)
	fails := NewFailureLog(zap.New(core), time.Hour)
	defer fails.Close()
	h := Middleware(s, Options{WriteRate: -1, Failures: fails}, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	for _, tc := range []struct {
		reason, method, token string
		status                int
		n                     int
	}{
		{FailUnknownToken, http.MethodGet, "wrong", http.StatusUnauthorized, 17000},
		{FailMissingToken, http.MethodGet, "", http.StatusUnauthorized, 500},
		{FailForbidden, http.MethodPost, "tok-viewer", http.StatusForbidden, 500},
	} {
		for range tc.n {
			req := httptest.NewRequest(tc.method, "/v1/freeze", nil)
			if tc.method == http.MethodGet {
				req = httptest.NewRequest(tc.method, "/v1/status", nil)
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("%s: status %d, want %d", tc.reason, rec.Code, tc.status)
			}
		}
		if got := fails.Total(tc.reason); got != uint64(tc.n) {
			t.Errorf("%s: counted %d, want %d", tc.reason, got, tc.n)
		}
	}
	// One line per reason within the interval (the first refusal), with
	// where it came from.
	if logs.Len() != 3 {
		t.Fatalf("%d log lines for 18,000 refusals, want 3: %v", logs.Len(), logs.All())
	}
	if e := logs.FilterMessage("request with an unknown token refused").All(); len(e) != 1 || e[0].ContextMap()["remote-addr"] == nil {
		t.Fatalf("unknown-token line: %v", e)
	}
	// Close writes what the interval summed.
	fails.Close()
	sums := logs.FilterFieldKey("suppressed").All()
	if len(sums) != 3 {
		t.Fatalf("%d summary lines after Close, want 3", len(sums))
	}
	for _, e := range sums {
		if e.Message == "request with an unknown token refused" && e.ContextMap()["suppressed"] != uint64(16999) {
			t.Fatalf("unknown-token summary %v, want 16999 suppressed", e.ContextMap())
		}
	}
	// A valid token is no failure.
	req := httptest.NewRequest(http.MethodGet, "/v1/status", nil)
	req.Header.Set("Authorization", "Bearer tok-viewer")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNoContent || fails.Total(FailUnknownToken) != 17000 {
		t.Fatalf("valid token: %d, unknown count %d", rec.Code, fails.Total(FailUnknownToken))
	}
}
