package health

import (
	"testing"
	"time"

	"github.com/evac-sh/evac/gossip"
)

// TestEnrolledOnly: rogue agents (not enrolled, or enrolled elsewhere and
// claiming us-east) change nothing in us-east's verdict once filtered.
func TestEnrolledOnly(t *testing.T) {
	now := time.Now()
	agent := func(name, region string) gossip.Member {
		return gossip.Member{Name: name, Region: region, Role: gossip.RoleAgent, State: gossip.StateAlive}
	}
	rep := func(origin, region, status string) gossip.Report {
		return gossip.Report{Origin: origin, Region: region, Service: "api", Check: "http", Status: status, Time: now, Received: now}
	}
	members := []gossip.Member{
		agent("e1", "us-east"), agent("e2", "us-east"),
		agent("rogue", "us-east"), // not enrolled
		agent("w1", "us-east"),    // enrolled for eu-west, claims us-east
		{Name: "c1", Role: gossip.RoleController, Region: "control", State: gossip.StateAlive},
	}
	reports := []gossip.Report{
		rep("e1", "us-east", gossip.StatusPassing), rep("e2", "us-east", gossip.StatusPassing),
		rep("rogue", "us-east", gossip.StatusFailing), rep("w1", "us-east", gossip.StatusFailing),
	}
	enrolled := map[string]string{"e1": "us-east", "e2": "us-east", "w1": "eu-west"}
	lookup := func(n string) (string, bool) { r, ok := enrolled[n]; return r, ok }

	unfiltered := Compute(members, reports, []string{"us-east"}, []string{"api"}, now, time.Minute)["us-east"]["api"]
	if unfiltered.Share != 0.5 {
		t.Fatalf("test premise: the rogues halve us-east unfiltered, got %+v", unfiltered)
	}
	ms, rs := Enrolled(members, reports, lookup)
	h := Compute(ms, rs, []string{"us-east", "eu-west"}, []string{"api"}, now, time.Minute)
	if got := h["us-east"]["api"]; got.Share != 1 || got.Reporting != 2 || got.AgentsAlive != 2 || got.AgentsTotal != 2 {
		t.Fatalf("us-east filtered: %+v", got)
	}
	if got := h["eu-west"]["api"]; got.Known || got.AgentsTotal != 0 {
		t.Fatalf("eu-west: a member claiming another region counted: %+v", got)
	}
	if len(ms) != 3 || ms[2].Role != gossip.RoleController {
		t.Fatalf("members kept: %+v", ms)
	}
}
