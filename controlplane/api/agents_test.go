package api

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/evac-sh/evac/controlplane/api/wire"
)

// TestAgentEnrolment: PUT enrols (the key normalised), GET lists with the
// policy, bad input is refused naming the field and changes nothing,
// DELETE revokes, and every change is in the audit log.
func TestAgentEnrolment(t *testing.T) {
	b := newFSMBackend(t, baseSnapshot(t))
	h := NewHandler(b, Options{})
	do := func(method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	list := func() wire.Agents {
		rec := do(http.MethodGet, "/v1/agents", "")
		var out wire.Agents
		if rec.Code != http.StatusOK {
			t.Fatalf("GET /v1/agents: %d %s", rec.Code, rec.Body)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := list(); got.Enforced || got.Policy != "auto" || len(got.Agents) != 0 {
		t.Fatalf("before enrolment: %+v", got)
	}
	pub, _, _ := ed25519.GenerateKey(nil)
	urlKey := base64.RawURLEncoding.EncodeToString(pub)
	for _, tc := range []struct {
		path, body, field string
	}{
		{"/v1/agents/bad%20name", `{"region":"us-east","public_key":"` + urlKey + `"}`, "name:"},
		{"/v1/agents/a1", `{"region":"US","public_key":"` + urlKey + `"}`, "region:"},
		{"/v1/agents/a1", `{"region":"us-east","public_key":"AAAA"}`, "public_key:"},
		{"/v1/agents/a1", `{"region":"us-east","public_key":"` + urlKey + `","extra":1}`, "unknown field"},
	} {
		rec := do(http.MethodPut, tc.path, tc.body)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), tc.field) {
			t.Fatalf("PUT %s %s: %d %s", tc.path, tc.body, rec.Code, rec.Body)
		}
	}
	if got := list(); len(got.Agents) != 0 {
		t.Fatalf("bad input enrolled %+v", got)
	}
	if rec := do(http.MethodPut, "/v1/agents/a1", `{"region":"us-east","public_key":"`+urlKey+`","reason":"new"}`); rec.Code != http.StatusOK {
		t.Fatalf("enrol: %d %s", rec.Code, rec.Body)
	}
	got := list()
	if !got.Enforced || len(got.Agents) != 1 || got.Agents[0].PublicKey != base64.StdEncoding.EncodeToString(pub) ||
		!got.Agents[0].Enrolled || got.Agents[0].Region != "us-east" {
		t.Fatalf("after enrolment: %+v", got)
	}
	if rec := do(http.MethodDelete, "/v1/agents/nope", ""); rec.Code != http.StatusNotFound {
		t.Fatalf("revoke unknown: %d %s", rec.Code, rec.Body)
	}
	if rec := do(http.MethodDelete, "/v1/agents/a1", `{"reason":"retired"}`); rec.Code != http.StatusOK {
		t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
	}
	if got := list(); got.Enforced || len(got.Agents) != 0 {
		t.Fatalf("after revoke: %+v", got)
	}
	evs := b.State().Events
	if n := len(evs); n < 2 || evs[n-2].Kind != "agent.enrolled" || evs[n-1].Kind != "agent.revoked" || evs[n-1].Reason != "retired" {
		t.Fatalf("audit events: %+v", evs[max(0, len(evs)-2):])
	}
}
