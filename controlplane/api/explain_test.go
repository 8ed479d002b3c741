package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/evac-sh/evac/dnsserver"
)

// explainer is a Backend (its other methods unused here) that explains.
type explainer struct {
	Backend
	err error
}

func (e explainer) Explain(name, client string) (dnsserver.Explanation, error) {
	if e.err != nil {
		return dnsserver.Explanation{}, e.err
	}
	return dnsserver.Explanation{Name: name, Client: client, Rule: "net"}, nil
}

func TestExplainStatuses(t *testing.T) {
	for _, tc := range []struct {
		query string
		err   error
		code  int
	}{
		{"name=api&client=10.1.0.1", nil, http.StatusOK},
		{"name=api", nil, http.StatusBadRequest},
		{"client=10.1.0.1", nil, http.StatusBadRequest},
		{"name=api&client=x", fmt.Errorf("wrapped: %w", dnsserver.ErrBadClient), http.StatusBadRequest},
		{"name=nope&client=10.1.0.1", fmt.Errorf("wrapped: %w", dnsserver.ErrUnknownName), http.StatusNotFound},
		{"name=api&client=10.1.0.1", dnsserver.ErrNoAnswers, http.StatusConflict},
	} {
		h := NewHandler(explainer{err: tc.err}, Options{})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/explain?"+tc.query, nil))
		if rec.Code != tc.code {
			t.Errorf("%s (%v): status %d, want %d: %s", tc.query, tc.err, rec.Code, tc.code, rec.Body)
			continue
		}
		if tc.code == http.StatusOK {
			var e dnsserver.Explanation
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Name != "api" || e.Rule != "net" {
				t.Errorf("body %s: %v", rec.Body, err)
			}
		}
	}
}
