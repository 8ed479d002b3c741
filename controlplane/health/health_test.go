package health

import (
	"reflect"
	"testing"
	"time"

	"github.com/evac-sh/evac/gossip"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func agent(name, region string, st gossip.MemberState) gossip.Member {
	return gossip.Member{Name: name, Region: region, Role: gossip.RoleAgent, State: st}
}

func rep(origin, service, check, status string, age time.Duration) gossip.Report {
	return gossip.Report{Origin: origin, Service: service, Check: check, Status: status, Seq: 1, Time: now.Add(-age)}
}

const (
	P = gossip.StatusPassing
	F = gossip.StatusFailing
	W = gossip.StatusWarmingUp
)

func TestCompute(t *testing.T) {
	alive, dead, left := gossip.StateAlive, gossip.StateDead, gossip.StateLeft
	tests := []struct {
		name     string
		members  []gossip.Member
		reports  []gossip.Report
		stale    time.Duration
		want     ServiceHealth // for region "east", service "api"
		wantWest *ServiceHealth
	}{
		{
			name:    "all passing",
			members: []gossip.Member{agent("a1", "east", alive), agent("a2", "east", alive)},
			reports: []gossip.Report{rep("a1", "api", "http", P, 0), rep("a2", "api", "http", P, 0)},
			want:    ServiceHealth{Share: 1, Passing: 2, Reporting: 2, AgentsAlive: 2, AgentsTotal: 2, Known: true},
		},
		{
			name:    "one of two failing",
			members: []gossip.Member{agent("a1", "east", alive), agent("a2", "east", alive)},
			reports: []gossip.Report{rep("a1", "api", "http", P, 0), rep("a2", "api", "http", F, 0)},
			want:    ServiceHealth{Share: 0.5, Passing: 1, Reporting: 2, AgentsAlive: 2, AgentsTotal: 2, Known: true, Failing: []string{"a2/http"}},
		},
		{
			name:    "one failing check of several fails the agent",
			members: []gossip.Member{agent("a1", "east", alive)},
			reports: []gossip.Report{rep("a1", "api", "http", P, 0), rep("a1", "api", "tcp", F, 0), rep("a1", "api", "deep", F, 0)},
			want:    ServiceHealth{Share: 0, Passing: 0, Reporting: 1, AgentsAlive: 1, AgentsTotal: 1, Known: true, Failing: []string{"a1/deep", "a1/tcp"}},
		},
		{
			name:    "no reports: unknown",
			members: []gossip.Member{agent("a1", "east", alive)},
			want:    ServiceHealth{AgentsAlive: 1, AgentsTotal: 1},
		},
		{
			name:    "dead and left agents count in total only, their reports ignored",
			members: []gossip.Member{agent("a1", "east", alive), agent("a2", "east", dead), agent("a3", "east", left)},
			reports: []gossip.Report{rep("a1", "api", "http", P, 0), rep("a2", "api", "http", F, 0), rep("a3", "api", "http", F, 0)},
			want:    ServiceHealth{Share: 1, Passing: 1, Reporting: 1, AgentsAlive: 1, AgentsTotal: 3, AgentsDead: 1, AgentsLeft: 1, Known: true},
		},
		{
			name:    "all agents left: unknown, none dead",
			members: []gossip.Member{agent("a1", "east", left), agent("a2", "east", left)},
			reports: []gossip.Report{rep("a1", "api", "http", F, 0)},
			want:    ServiceHealth{AgentsTotal: 2, AgentsLeft: 2},
		},
		{
			name:    "warming-up reports are no evidence either way",
			members: []gossip.Member{agent("a1", "east", alive), agent("a2", "east", alive)},
			reports: []gossip.Report{rep("a1", "api", "http", W, 0), rep("a2", "api", "http", W, 0)},
			want:    ServiceHealth{AgentsAlive: 2, AgentsTotal: 2, WarmingUp: []string{"a1/http", "a2/http"}},
		},
		{
			name:    "one agent warmed up: it alone decides",
			members: []gossip.Member{agent("a1", "east", alive), agent("a2", "east", alive)},
			reports: []gossip.Report{rep("a1", "api", "http", W, 0), rep("a2", "api", "http", F, 0)},
			want: ServiceHealth{Reporting: 1, AgentsAlive: 2, AgentsTotal: 2, Known: true, Failing: []string{"a2/http"},
				WarmingUp: []string{"a1/http"}},
		},
		{
			name:    "only dead agents report: unknown",
			members: []gossip.Member{agent("a2", "east", dead)},
			reports: []gossip.Report{rep("a2", "api", "http", P, 0)},
			want:    ServiceHealth{AgentsTotal: 1, AgentsDead: 1},
		},
		{
			name:    "suspect counts as alive",
			members: []gossip.Member{agent("a1", "east", gossip.StateSuspect)},
			reports: []gossip.Report{rep("a1", "api", "http", P, 0)},
			want:    ServiceHealth{Share: 1, Passing: 1, Reporting: 1, AgentsAlive: 1, AgentsTotal: 1, Known: true},
		},
		{
			name: "controllers and other roles do not count",
			members: []gossip.Member{agent("a1", "east", alive),
				{Name: "c1", Region: "east", Role: gossip.RoleController, State: alive}},
			reports: []gossip.Report{rep("a1", "api", "http", P, 0), rep("c1", "api", "http", F, 0)},
			want:    ServiceHealth{Share: 1, Passing: 1, Reporting: 1, AgentsAlive: 1, AgentsTotal: 1, Known: true},
		},
		{
			name:    "stale report is no evidence: neither passes nor fails",
			members: []gossip.Member{agent("a1", "east", alive), agent("a2", "east", alive)},
			reports: []gossip.Report{rep("a1", "api", "http", P, 10*time.Second), rep("a2", "api", "http", F, 2*time.Minute)},
			stale:   time.Minute,
			want: ServiceHealth{Share: 1, Passing: 1, Reporting: 1, AgentsAlive: 2, AgentsTotal: 2, Known: true,
				Stale: []string{"a2/http"}, Checks: map[string]CheckCount{"http": {1, 1}}},
		},
		{
			name:    "only stale reports: unknown",
			members: []gossip.Member{agent("a1", "east", alive)},
			reports: []gossip.Report{rep("a1", "api", "http", F, 2*time.Minute)},
			stale:   time.Minute,
			want:    ServiceHealth{AgentsAlive: 1, AgentsTotal: 1, Stale: []string{"a1/http"}},
		},
		{
			name:    "staleness is judged by the receive time when known",
			members: []gossip.Member{agent("a1", "east", alive)},
			reports: []gossip.Report{func() gossip.Report {
				r := rep("a1", "api", "http", F, time.Hour) // origin clock an hour behind
				r.Received = now.Add(-time.Second)
				return r
			}()},
			stale: time.Minute,
			want: ServiceHealth{Reporting: 1, AgentsAlive: 1, AgentsTotal: 1, Known: true, Failing: []string{"a1/http"},
				Checks: map[string]CheckCount{"http": {0, 1}}},
		},
		{
			name:    "per-check counts",
			members: []gossip.Member{agent("a1", "east", alive), agent("a2", "east", alive)},
			reports: []gossip.Report{rep("a1", "api", "http", P, 0), rep("a1", "api", "dns", F, 0), rep("a2", "api", "http", P, 0), rep("a2", "api", "dns", P, 0)},
			want: ServiceHealth{Share: 0.5, Passing: 1, Reporting: 2, AgentsAlive: 2, AgentsTotal: 2, Known: true, Failing: []string{"a1/dns"},
				Checks: map[string]CheckCount{"http": {2, 2}, "dns": {1, 2}}},
		},
		{
			name:    "stale 0 disables staleness",
			members: []gossip.Member{agent("a1", "east", alive)},
			reports: []gossip.Report{rep("a1", "api", "http", P, 48*time.Hour)},
			want:    ServiceHealth{Share: 1, Passing: 1, Reporting: 1, AgentsAlive: 1, AgentsTotal: 1, Known: true},
		},
		{
			name:    "an alive agent not reporting the service is not in the denominator",
			members: []gossip.Member{agent("a1", "east", alive), agent("a2", "east", alive)},
			reports: []gossip.Report{rep("a1", "api", "http", F, 0), rep("a2", "web", "http", P, 0)},
			want:    ServiceHealth{Share: 0, Passing: 0, Reporting: 1, AgentsAlive: 2, AgentsTotal: 2, Known: true, Failing: []string{"a1/http"}},
		},
		{
			name:     "regions are separate",
			members:  []gossip.Member{agent("a1", "east", alive), agent("w1", "west", alive), agent("w2", "west", dead)},
			reports:  []gossip.Report{rep("a1", "api", "http", P, 0), rep("w1", "api", "http", F, 0)},
			want:     ServiceHealth{Share: 1, Passing: 1, Reporting: 1, AgentsAlive: 1, AgentsTotal: 1, Known: true},
			wantWest: &ServiceHealth{Region: "west", Service: "api", Reporting: 1, AgentsAlive: 1, AgentsTotal: 2, AgentsDead: 1, Known: true, Failing: []string{"w1/http"}},
		},
		{
			name:    "reports from unknown origins are ignored",
			members: []gossip.Member{agent("a1", "east", alive)},
			reports: []gossip.Report{rep("a1", "api", "http", P, 0), rep("ghost", "api", "http", F, 0)},
			want:    ServiceHealth{Share: 1, Passing: 1, Reporting: 1, AgentsAlive: 1, AgentsTotal: 1, Known: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compute(tt.members, tt.reports, []string{"east", "west"}, []string{"api"}, now, tt.stale)
			want := tt.want
			want.Region, want.Service = "east", "api"
			east := got["east"]["api"]
			if want.Checks == nil {
				east.Checks = nil // per-check counts are checked in the cases that list them
			}
			east.Updated = time.Time{} // TestComputeUpdated
			west := got["west"]["api"]
			west.Checks, west.Updated = nil, time.Time{}
			if !reflect.DeepEqual(east, want) {
				t.Fatalf("east/api\n got %+v\nwant %+v", got["east"]["api"], want)
			}
			if tt.wantWest != nil && !reflect.DeepEqual(west, *tt.wantWest) {
				t.Fatalf("west/api\n got %+v\nwant %+v", got["west"]["api"], *tt.wantWest)
			}
			if _, ok := got["west"]["api"]; !ok {
				t.Fatal("a listed region must always be present")
			}
		})
	}
}

// TestComputeUpdated: Updated is the newest receive time among the reports
// that count, not among stale or warming-up ones.
func TestComputeUpdated(t *testing.T) {
	at := func(r gossip.Report, ago time.Duration) gossip.Report { r.Received = now.Add(-ago); return r }
	members := []gossip.Member{agent("a1", "east", gossip.StateAlive), agent("a2", "east", gossip.StateAlive)}
	tests := []struct {
		name    string
		reports []gossip.Report
		want    time.Time
	}{
		{"newest counted report", []gossip.Report{at(rep("a1", "api", "http", P, 0), 5*time.Second), at(rep("a2", "api", "http", F, 0), 2*time.Second)}, now.Add(-2 * time.Second)},
		{"warming up does not count", []gossip.Report{at(rep("a1", "api", "http", P, 0), 5*time.Second), at(rep("a2", "api", "http", W, 0), time.Second)}, now.Add(-5 * time.Second)},
		{"stale does not count", []gossip.Report{at(rep("a1", "api", "http", P, 0), 2*time.Minute)}, time.Time{}},
		{"no reports", nil, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Compute(members, tt.reports, []string{"east"}, []string{"api"}, now, time.Minute)["east"]["api"].Updated; !got.Equal(tt.want) {
				t.Fatalf("Updated = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestComputeDerivesRegionsAndServices(t *testing.T) {
	members := []gossip.Member{agent("a1", "east", gossip.StateAlive), agent("w1", "west", gossip.StateDead)}
	reports := []gossip.Report{rep("a1", "api", "http", P, 0), rep("a1", "web", "http", P, 0)}
	got := Compute(members, reports, nil, nil, now, 0)
	if len(got) != 2 || len(got["east"]) != 2 || len(got["west"]) != 2 {
		t.Fatalf("got %+v", got)
	}
	if got["west"]["web"].Known || got["west"]["web"].AgentsTotal != 1 {
		t.Fatalf("west/web %+v", got["west"]["web"])
	}
	if empty := Compute(nil, nil, nil, nil, now, 0); len(empty) != 0 {
		t.Fatalf("empty input: %+v", empty)
	}
}

func TestCapacity(t *testing.T) {
	c := func(v float64) *float64 { return &v }
	withCap := func(r gossip.Report, v *float64, received time.Duration) gossip.Report {
		r.Capacity = v
		r.Received = now.Add(-received)
		return r
	}
	members := []gossip.Member{agent("a1", "east", gossip.StateAlive), agent("a2", "east", gossip.StateAlive),
		agent("a3", "east", gossip.StateDead), agent("w1", "west", gossip.StateAlive), agent("w2", "west", gossip.StateAlive)}
	reports := []gossip.Report{
		withCap(rep("a1", "api", "http", P, 0), c(10), 5*time.Second),
		withCap(rep("a1", "api", "dns", P, 0), c(12), time.Second),   // a1's newest figure
		withCap(rep("a2", "api", "http", F, 0), c(30), time.Second),  // failing agents still report capacity
		withCap(rep("a3", "api", "http", P, 0), c(100), time.Second), // dead: ignored
		withCap(rep("w1", "api", "http", P, 0), c(7), 5*time.Minute), // stale: ignored
		withCap(rep("w2", "api", "http", P, 0), nil, time.Second),    // reports none
	}
	got := Capacity(members, reports, now, time.Minute)
	if len(got) != 1 || got["east"] != 42 {
		t.Fatalf("got %v, want east 42 only", got)
	}
}
