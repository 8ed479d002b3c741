package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/fsm"
	"github.com/evac-sh/evac/controlplane/raftnode"
)

func loopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.9.201:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// oneVoter starts a one-voter Raft node c1 on loopback, waits until it
// leads and has applied what it committed (a loaded machine showed
// applied 0, lag 2 right after the election), and returns it, its
// address, and send: a call to a handler over b as alice-admin.
func oneVoter(t *testing.T, ctx context.Context, b *fsmBackend) (*raftnode.Node, string, func(method, path, body string) (int, string)) {
	t.Helper()
	addr := loopbackAddr(t)
	node, err := raftnode.New(raftnode.Config{NodeID: "c1", DataDir: t.TempDir(), RaftAddr: addr,
		Bootstrap: []raftnode.Peer{{ID: "c1", Addr: addr}}, Timing: raftnode.TimingFast}, fsm.New(zap.NewNop()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Shutdown() })
	if err := node.WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if err := node.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	// Raft records its applied index only after handing a batch to the
	// FSM, so the barrier can return first (a CI run saw applied 2 of 3).
	for st := node.Stats(); st.AppliedIndex < st.CommitIndex; st = node.Stats() {
		select {
		case <-ctx.Done():
			t.Fatalf("applied index %d stays below the commit index %d", st.AppliedIndex, st.CommitIndex)
		case <-time.After(5 * time.Millisecond):
		}
	}
	h := NewHandler(b, Options{Cluster: node})
	return node, addr, func(method, path, body string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req = req.WithContext(wire.WithActor(req.Context(), "alice-admin"))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
}

// The membership endpoints on a real one-voter Raft node: the peers list,
// the quorum rule (a voter that cannot be reached would make 1 healthy of
// 2), joins as a non-voter, an idempotent retry, conflicts, bad input and
// the audit event naming the actor.
func TestClusterEndpoints(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := newFSMBackend(t, nil)
	_, addr, send := oneVoter(t, ctx, b)
	code, body := send(http.MethodGet, "/v1/cluster/peers", "")
	var ps []wire.Peer
	if err := json.Unmarshal([]byte(body), &ps); code != 200 || err != nil || len(ps) != 1 ||
		ps[0] != (wire.Peer{ID: "c1", Address: addr, Suffrage: "voter", Role: wire.RoleVoter, Leader: true, AppliedIndex: ps[0].AppliedIndex,
			Lag: ps[0].Lag, Reachable: true, Healthy: true}) || ps[0].Lag == nil || *ps[0].Lag != 0 {
		t.Fatalf("GET peers = %d %s", code, body)
	}
	// Nothing listens at this address: as a voter it would leave 1
	// healthy of 2.
	ghost := loopbackAddr(t)
	join := fmt.Sprintf(`{"id":"c2","address":%q}`, ghost)
	if code, body := send(http.MethodPost, "/v1/cluster/join", join); code != http.StatusConflict || !strings.Contains(body, wire.CodeBelowQuorum) {
		t.Fatalf("join an unreachable voter = %d %s; want 409 below_quorum", code, body)
	}
	nonvoter := fmt.Sprintf(`{"id":"c2","address":%q,"voter":false,"reason":"catch up first"}`, ghost)
	code, body = send(http.MethodPost, "/v1/cluster/join", nonvoter)
	var res wire.MembershipResult
	if err := json.Unmarshal([]byte(body), &res); code != 200 || err != nil || !res.Changed || res.Event == 0 || len(res.Peers) != 2 {
		t.Fatalf("join as a non-voter = %d %s", code, body)
	}
	ev := b.State().EventsSince(res.Event-1, 1)
	if len(ev) != 1 || ev[0].Kind != EventClusterJoin || ev[0].Actor != "alice-admin" || ev[0].Reason != "catch up first" ||
		!strings.Contains(ev[0].Detail, "c2 at "+ghost+" joined as nonvoter") {
		t.Fatalf("audit event = %+v", ev)
	}
	// A retried join changes nothing.
	if code, body := send(http.MethodPost, "/v1/cluster/join", nonvoter); code != 200 || !strings.Contains(body, `"changed": false`) {
		t.Fatalf("retried join = %d %s", code, body)
	}
	for _, tt := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{http.MethodPost, "/v1/cluster/join", fmt.Sprintf(`{"id":"c3","address":%q}`, ghost), 409, "c2's address"},
		{http.MethodPost, "/v1/cluster/join", fmt.Sprintf(`{"id":"c1","address":%q,"voter":false}`, addr), 409, "remove it"},
		{http.MethodPost, "/v1/cluster/join", `{"id":"bad id","address":"127.0.0.1:1"}`, 400, "id:"},
		{http.MethodPost, "/v1/cluster/join", `{"id":"c3","address":"nope"}`, 400, "address:"},
		{http.MethodPost, "/v1/cluster/join", `{"id":"c3","address":"127.0.0.1:1","extra":1}`, 400, "unknown field"},
		{http.MethodPost, "/v1/cluster/peers/c2/promote", "", 409, wire.CodeBelowQuorum},
		{http.MethodPost, "/v1/cluster/peers/zz/promote", "", 404, "no member"},
		{http.MethodPost, "/v1/cluster/peers/c1/promote", "", 200, `"changed": false`},
		{http.MethodDelete, "/v1/cluster/peers/zz", "", 404, "no member"},
		{http.MethodDelete, "/v1/cluster/peers/c1", "", 409, wire.CodeBelowQuorum},
		{http.MethodDelete, "/v1/cluster/peers/c2?force=maybe", "", 400, "force"},
		{http.MethodDelete, "/v1/cluster/peers/c2?reason=gone", "", 200, `"changed": true`},
	} {
		if code, body := send(tt.method, tt.path, tt.body); code != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("%s %s %s = %d %s; want %d with %q", tt.method, tt.path, tt.body, code, body, tt.code, tt.want)
		}
	}
	if code, body := send(http.MethodGet, "/v1/cluster/peers", ""); code != 200 || strings.Contains(body, `"c2"`) {
		t.Fatalf("peers after removing c2 = %d %s", code, body)
	}
}

// An edge replica joins as a non-voter and shows as an edge with its lag;
// joining it as a voter or promoting it is refused, force or not.
func TestClusterEdgeNeverVoter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node, _, send := oneVoter(t, ctx, newFSMBackend(t, nil))
	eaddr := loopbackAddr(t)
	edge, err := raftnode.New(raftnode.Config{NodeID: "e1", DataDir: t.TempDir(), RaftAddr: eaddr, Timing: raftnode.TimingFast, Edge: true},
		fsm.New(zap.NewNop()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = edge.Shutdown() })
	for _, body := range []string{
		fmt.Sprintf(`{"id":"e1","address":%q}`, eaddr),
		fmt.Sprintf(`{"id":"e1","address":%q,"force":true}`, eaddr),
	} {
		if code, out := send(http.MethodPost, "/v1/cluster/join", body); code != http.StatusConflict || !strings.Contains(out, wire.CodeEdge) {
			t.Fatalf("join an edge as a voter (%s) = %d %s; want 409 %s", body, code, out, wire.CodeEdge)
		}
	}
	if code, out := send(http.MethodPost, "/v1/cluster/join", fmt.Sprintf(`{"id":"e1","address":%q,"voter":false}`, eaddr)); code != 200 {
		t.Fatalf("join an edge as a non-voter = %d %s", code, out)
	}
	var ps []wire.Peer
	for {
		code, out := send(http.MethodGet, "/v1/cluster/peers", "")
		ps = nil
		if err := json.Unmarshal([]byte(out), &ps); code != 200 || err != nil {
			t.Fatalf("GET peers = %d %s", code, out)
		}
		if len(ps) == 2 && ps[1].Reachable && ps[1].Lag != nil && *ps[1].Lag == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the edge never caught up: %s", out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if e := ps[1]; e.ID != "e1" || e.Role != wire.RoleEdge || e.Suffrage != "nonvoter" || e.Leader {
		t.Fatalf("edge in peers = %+v; want role edge, suffrage nonvoter", e)
	}
	for _, body := range []string{"", `{"force":true}`} {
		if code, out := send(http.MethodPost, "/v1/cluster/peers/e1/promote", body); code != http.StatusConflict || !strings.Contains(out, wire.CodeEdge) {
			t.Fatalf("promote an edge (%s) = %d %s; want 409 %s", body, code, out, wire.CodeEdge)
		}
	}
	if s, _ := node.HasMember("e1"); s != "Nonvoter" {
		t.Fatalf("edge is a %s after the refusals", s)
	}
}
