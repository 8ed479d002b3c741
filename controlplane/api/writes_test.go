package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/raftnode"
	"github.com/evac-sh/evac/controlplane/state"
)

func TestWriteErrorStatus(t *testing.T) {
	tests := []struct {
		err        error
		status     int
		code       string
		retryAfter bool
	}{
		{fmt.Errorf("apply freeze: gave up: %w: %w (last error: %w)", raftnode.ErrOutcomeUnknown, context.DeadlineExceeded, raftnode.ErrNoLeader),
			http.StatusGatewayTimeout, wire.CodeOutcomeUnknown, true},
		{fmt.Errorf("apply: %w (last error: %w)", context.DeadlineExceeded, raftnode.ErrNoLeader), http.StatusServiceUnavailable, wire.CodeNoLeader, true},
		{fmt.Errorf("apply: %w", raftnode.ErrNotLeader), http.StatusServiceUnavailable, wire.CodeNoLeader, true},
		{fmt.Errorf("apply: %w", raftnode.ErrShutdown), http.StatusServiceUnavailable, wire.CodeShuttingDown, true},
		{fmt.Errorf("apply: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, wire.CodeUnavailable, true},
		{fmt.Errorf("apply: %w: %w", raftnode.ErrOutcomeUnknown, raftnode.ErrShutdown), http.StatusGatewayTimeout, wire.CodeOutcomeUnknown, true},
		{fmt.Errorf("apply: %w", raftnode.ErrBadFSMResponse), http.StatusInternalServerError, wire.CodeInternal, false},
		{errors.New("encode: boom"), http.StatusInternalServerError, wire.CodeInternal, false},
	}
	for _, tt := range tests {
		status, code, after := writeErrorStatus(tt.err)
		if status != tt.status || code != tt.code || (after > 0) != tt.retryAfter {
			t.Errorf("%v: got %d %s Retry-After %d; want %d %s (Retry-After: %v)", tt.err, status, code, after, tt.status, tt.code, tt.retryAfter)
		}
	}
}

// ambiguousBackend commits the first proposal of each id and then reports
// ErrOutcomeUnknown, as a leader that lost leadership after the commit
// does; a retry reaches the FSM normally.
type ambiguousBackend struct {
	*fsmBackend
	seen map[string]bool
}

func (b *ambiguousBackend) Propose(ctx context.Context, t state.CommandType, actor, id string, body any) (state.Result, error) {
	res, err := b.fsmBackend.Propose(ctx, t, actor, id, body)
	if err != nil || b.seen[id] {
		return res, err
	}
	b.seen[id] = true
	return state.Result{}, fmt.Errorf("apply %s: %w: %w", t, raftnode.ErrOutcomeUnknown, raft.ErrLeadershipLost)
}

// A write whose outcome is unknown answers 504 outcome_unknown with a
// Retry-After; its retry with the same Idempotency-Key answers as the first
// attempt would have: the same drill, the same schedule, no 409.
func TestRetryAfterOutcomeUnknownReturnsFirstAnswer(t *testing.T) {
	b := &ambiguousBackend{fsmBackend: newFSMBackend(t, baseSnapshot(t)), seen: map[string]bool{}}
	h := NewHandler(b, Options{})
	send := func(method, path, key, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Idempotency-Key", key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	tests := []struct {
		path, body, idField string
		count               func(*state.State) int
	}{
		{"/v1/drills", `{"runbook":"canary-10","params":{"region":"us-east"},"reason":"retry test"}`, "id",
			func(s *state.State) int { return len(s.Drills) }},
		{"/v1/schedules", `{"cron":"0 0 10 * * 2","runbook":"chaos-kong","params":{"region":"us-west"}}`, "id",
			func(s *state.State) int { return len(s.Schedules) }},
	}
	for _, tt := range tests {
		before := tt.count(b.State())
		first := send(http.MethodPost, tt.path, "k-"+tt.path, tt.body)
		if first.Code != http.StatusGatewayTimeout || first.Header().Get("Retry-After") == "" {
			t.Fatalf("%s first attempt: %d %s (Retry-After %q); want 504 with Retry-After", tt.path, first.Code, first.Body, first.Header().Get("Retry-After"))
		}
		var e wire.Error
		if err := json.Unmarshal(first.Body.Bytes(), &e); err != nil || e.Code != wire.CodeOutcomeUnknown {
			t.Fatalf("%s first attempt body %s: code %q, want %q", tt.path, first.Body, e.Code, wire.CodeOutcomeUnknown)
		}
		retry := send(http.MethodPost, tt.path, "k-"+tt.path, tt.body)
		if retry.Code != http.StatusCreated {
			t.Fatalf("%s retry: %d %s; want 201", tt.path, retry.Code, retry.Body)
		}
		var got map[string]any
		if err := json.Unmarshal(retry.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if n := tt.count(b.State()); n != before+1 {
			t.Fatalf("%s: %d records after a retried write, want %d", tt.path, n, before+1)
		}
		id, _ := got[tt.idField].(string)
		again := send(http.MethodPost, tt.path, "k-"+tt.path, tt.body)
		var got2 map[string]any
		_ = json.Unmarshal(again.Body.Bytes(), &got2)
		if again.Code != http.StatusCreated || got2[tt.idField] != id || id == "" {
			t.Fatalf("%s third attempt: %d id %v; want 201 and id %q", tt.path, again.Code, got2[tt.idField], id)
		}
	}
}

// The API scopes a client's key to the actor and the command type: an
// operator's freeze with key deploy-42 does not swallow an admin's
// unfreeze or evacuate with the same key.
func TestIdempotencyKeyScopedToActorAndType(t *testing.T) {
	b := newFSMBackend(t, baseSnapshot(t))
	h := NewHandler(b, Options{})
	send := func(actorName, path, body string) map[string]any {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req = req.WithContext(wire.WithActor(req.Context(), actorName))
		req.Header.Set("Idempotency-Key", "deploy-42")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s %s: %d %s", actorName, path, rec.Code, rec.Body)
		}
		var out map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		return out
	}
	if out := send("alice", "/v1/freeze", `{"reason":"deploy"}`); out["duplicate"] == true {
		t.Fatal("first freeze answered duplicate")
	}
	if out := send("bob", "/v1/unfreeze", `{}`); out["duplicate"] == true || b.State().Frozen {
		t.Fatalf("bob's unfreeze swallowed by alice's key: %v, frozen %v", out, b.State().Frozen)
	}
	if out := send("bob", "/v1/regions/us-west/evacuate", `{"reason":"drain"}`); out["duplicate"] == true {
		t.Fatalf("bob's evacuate swallowed: %v", out)
	}
	if out := send("alice", "/v1/freeze", `{"reason":"deploy"}`); out["duplicate"] != true {
		t.Fatalf("alice's own retry was applied again: %v", out)
	}
}
