package state

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func testAgentKey(t *testing.T) ed25519.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestEnrollAgentNormalize(t *testing.T) {
	key := testAgentKey(t)
	std := base64.StdEncoding.EncodeToString(key)
	tests := []struct {
		name    string
		in      EnrollAgent
		wantErr string
	}{
		{"standard base64", EnrollAgent{Name: "use1-a", Region: "us-east", PublicKey: std}, ""},
		{"url base64 unpadded", EnrollAgent{Name: "use1-a", Region: "us-east", PublicKey: base64.RawURLEncoding.EncodeToString(key)}, ""},
		{"surrounding space", EnrollAgent{Name: "use1-a", Region: " us-east ", PublicKey: " " + std + "\n"}, ""},
		{"no name", EnrollAgent{Region: "us-east", PublicKey: std}, "name: required"},
		{"bad name", EnrollAgent{Name: "a b", Region: "us-east", PublicKey: std}, "name:"},
		{"bad region", EnrollAgent{Name: "a", Region: "US East", PublicKey: std}, "region:"},
		{"not base64", EnrollAgent{Name: "a", Region: "us-east", PublicKey: "!!!"}, "public_key: not base64"},
		{"short key", EnrollAgent{Name: "a", Region: "us-east", PublicKey: base64.StdEncoding.EncodeToString(key[:16])}, "public_key: 16 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.in
			err := e.Normalize()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if e.PublicKey != std || e.Region != "us-east" {
					t.Fatalf("not normalised: %+v", e)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestEnrollAndRevoke(t *testing.T) {
	c := newCluster(t, false)
	k1, k2 := testAgentKey(t), testAgentKey(t)
	res := c.mustApply(CmdEnrollAgent|IgnoreUnknownFlag, EnrollAgent{Name: "use1-a", Region: "us-east",
		PublicKey: base64.RawURLEncoding.EncodeToString(k1), Reason: "new host"})
	rec := c.s.Agents["use1-a"]
	if rec.Region != "us-east" || rec.PublicKey != base64.StdEncoding.EncodeToString(k1) || rec.Actor != "tester" ||
		rec.Fingerprint != AgentKeyFingerprint(k1) || len(res.Events) != 1 {
		t.Fatalf("record %+v, result %+v", rec, res)
	}
	if ev := c.s.Events[len(c.s.Events)-1]; ev.Kind != EventAgentEnrolled || ev.Region != "us-east" || ev.Reason != "new host" ||
		!strings.Contains(ev.Detail, rec.Fingerprint) {
		t.Fatalf("event %+v", ev)
	}
	// Re-enrolling replaces the key (a rotation) and says what it was.
	c.mustApply(CmdEnrollAgent, EnrollAgent{Name: "use1-a", Region: "us-east", PublicKey: base64.StdEncoding.EncodeToString(k2)})
	if got := c.s.Agents["use1-a"].Fingerprint; got != AgentKeyFingerprint(k2) {
		t.Fatalf("key not replaced: %s", got)
	}
	if ev := c.s.Events[len(c.s.Events)-1]; !strings.Contains(ev.Detail, "was region us-east") {
		t.Fatalf("event %+v", ev)
	}
	// Bad input is refused and changes nothing.
	before := c.s.Agents
	for _, body := range []EnrollAgent{{Name: "x", Region: "us-east", PublicKey: "short"}, {Name: "", Region: "us-east"}} {
		if res := c.apply(CmdEnrollAgent, body); res.Code != CodeInvalid {
			t.Fatalf("%+v: %+v", body, res)
		}
	}
	if res := c.apply(CmdRevokeAgent, RevokeAgent{Name: "nope"}); res.Code != CodeNotFound {
		t.Fatalf("revoke unknown: %+v", res)
	}
	if !reflect.DeepEqual(before, c.s.Agents) {
		t.Fatal("refused commands changed the agents")
	}
	prev := c.s
	c.mustApply(CmdRevokeAgent, RevokeAgent{Name: "use1-a", Reason: "host retired"})
	if len(c.s.Agents) != 0 || c.s.Events[len(c.s.Events)-1].Kind != EventAgentRevoked {
		t.Fatalf("agents %+v", c.s.Agents)
	}
	if _, ok := prev.Agents["use1-a"]; !ok {
		t.Fatal("revoke modified the previous state's map")
	}
}

// Apply is deterministic: the same log gives the same agents on every
// replica, and the agents survive a snapshot; a snapshot from before
// enrolment existed restores with none.
func TestAgentsSnapshotAndDeterminism(t *testing.T) {
	k := base64.StdEncoding.EncodeToString(testAgentKey(t))
	run := func() *State {
		c := newCluster(t, true)
		c.mustApply(CmdEnrollAgent, EnrollAgent{Name: "a", Region: "us-east", PublicKey: k})
		c.mustApply(CmdEnrollAgent, EnrollAgent{Name: "b", Region: "eu-west", PublicKey: k})
		c.mustApply(CmdRevokeAgent, RevokeAgent{Name: "a"})
		return c.s
	}
	s1, s2 := run(), run()
	if !reflect.DeepEqual(s1.Agents, s2.Agents) || !reflect.DeepEqual(s1.Events, s2.Events) {
		t.Fatal("replicas differ")
	}
	b, err := json.Marshal(s1)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Agents, s1.Agents) {
		t.Fatalf("agents after a JSON round trip: %+v", back.Agents)
	}
	var old State
	if err := json.Unmarshal([]byte(`{"index":7,"serial":7,"regions":{},"next_seq":3,"request_pos":0}`), &old); err != nil {
		t.Fatal(err)
	}
	if old.Agents != nil || len(old.AgentNames()) != 0 {
		t.Fatalf("old snapshot has agents: %+v", old.Agents)
	}
	next, res := Apply(&old, 8, mustDecode(t, CmdEnrollAgent, EnrollAgent{Name: "a", Region: "us-east", PublicKey: k}))
	if res.Error != "" || len(next.Agents) != 1 {
		t.Fatalf("enrol after restoring an old snapshot: %+v", res)
	}
}

func mustDecode(t *testing.T, ct CommandType, body any) Command {
	t.Helper()
	b, err := Encode(ct, "", "tester", t0, body)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}
