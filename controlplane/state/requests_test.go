package state

import (
	"encoding/json"
	"testing"
)

func TestClientRequestIDScope(t *testing.T) {
	base := ClientRequestID("alice", CmdFreeze, "deploy-42")
	if base != ClientRequestID("alice", CmdFreeze, "deploy-42") {
		t.Fatal("ClientRequestID is not deterministic")
	}
	if base != ClientRequestID("alice", CmdFreeze|IgnoreUnknownFlag, "deploy-42") {
		t.Error("the ignorable flag must not change the scope")
	}
	for _, other := range []string{
		ClientRequestID("bob", CmdFreeze, "deploy-42"),
		ClientRequestID("alice", CmdUnfreeze, "deploy-42"),
		ClientRequestID("alice", CmdFreeze, "deploy-43"),
		ClientRequestID("alic", CmdFreeze, "edeploy-42"),
		ClientRequestID("alice\x00", CmdFreeze, "deploy-42"),
	} {
		if other == base {
			t.Errorf("%q collides with alice's freeze deploy-42", other)
		}
	}
	if len(base) != 35 {
		t.Errorf("id %q: want c2: and 32 hex digits", base)
	}
}

// An operator's freeze with key deploy-42 does not make an admin's
// unfreeze or evacuate with the same key a duplicate; the same actor and
// command type with the key is one.
func TestScopedKeysApply(t *testing.T) {
	type step struct {
		actor string
		t     CommandType
		body  any
		dup   bool
	}
	steps := []step{
		{"alice-operator", CmdFreeze, Freeze{Reason: "deploy"}, false},
		{"bob-admin", CmdUnfreeze, Freeze{}, false},
		{"bob-admin", CmdEvacuate, Evacuate{Region: "us-west", Reason: "drain"}, false},
		{"alice-operator", CmdEvacuate, Evacuate{Region: "us-west", Reason: "drain"}, false},
		{"alice-operator", CmdFreeze, Freeze{Reason: "deploy"}, true},
		{"bob-admin", CmdUnfreeze, Freeze{}, true},
	}
	c := newCluster(t, true)
	for i, st := range steps {
		next, res, err := ApplyNext(c.s, st.t, ClientRequestID(st.actor, st.t, "deploy-42"), st.actor, c.now, st.body)
		if err != nil {
			t.Fatal(err)
		}
		c.s = next
		if res.Duplicate != st.dup {
			t.Fatalf("step %d (%s by %s): duplicate %v, want %v (%+v)", i, st.t, st.actor, res.Duplicate, st.dup, res)
		}
	}
	if c.s.Frozen {
		t.Error("bob's unfreeze was swallowed: still frozen")
	}
	if r := c.region("us-west"); r.Phase == PhaseActive {
		t.Errorf("bob's evacuation was swallowed: us-west %s", r.Phase)
	}
}

// Logs and snapshots written before scoping keep their meaning: a legacy
// "client:KEY" id is global, as it was when committed, also after a
// snapshot round trip.
func TestLegacyRequestIDsStillDedupe(t *testing.T) {
	c := newCluster(t, true)
	next, res, err := ApplyNext(c.s, CmdFreeze, "client:deploy-42", "alice-operator", c.now, Freeze{Reason: "deploy"})
	if err != nil || res.Duplicate || res.Error != "" {
		t.Fatalf("legacy freeze: %+v %v", res, err)
	}
	b, err := json.Marshal(next)
	if err != nil {
		t.Fatal(err)
	}
	var restored State
	if err := json.Unmarshal(b, &restored); err != nil {
		t.Fatal(err)
	}
	_, res, err = ApplyNext(&restored, CmdUnfreeze, "client:deploy-42", "bob-admin", c.now, Freeze{})
	if err != nil || !res.Duplicate {
		t.Fatalf("legacy id after a snapshot round trip: %+v %v; want the duplicate it was when committed", res, err)
	}
	// A scoped key does not collide with the legacy one.
	_, res, _ = ApplyNext(&restored, CmdUnfreeze, ClientRequestID("bob-admin", CmdUnfreeze, "deploy-42"), "bob-admin", c.now, Freeze{})
	if res.Duplicate || res.Error != "" {
		t.Fatalf("scoped unfreeze after a legacy freeze: %+v", res)
	}
}
