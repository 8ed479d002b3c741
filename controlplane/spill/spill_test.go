package spill

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/dnsserver"
	"github.com/evac-sh/evac/internal/testutil"
)

type fakeCounter struct{ c dnsserver.DemandCounts }

func (f *fakeCounter) Demand() dnsserver.DemandCounts { return f.c }

type fakeProposer struct{ got []any }

func (f *fakeProposer) Propose(_ context.Context, _ state.CommandType, _, _ string, body any) (state.Result, error) {
	f.got = append(f.got, body)
	return state.Result{}, nil
}

// counts returns a reading of a 2-region table with us-east>us-west at n.
func counts(table any, n uint64) dnsserver.DemandCounts {
	// per service: home × (next or none) = 2 × 3
	return dnsserver.DemandCounts{Table: table, Services: []string{"api"}, Regions: []string{"us-east", "us-west"},
		Counts: []uint64{0, n, 0, 0, 0, 0}}
}

func TestReporterWindow(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	now := t0
	table, other := new(int), new(int)
	fc := &fakeCounter{c: counts(table, 0)}
	r := NewReporter("c1", fc, &fakeProposer{}, nil, time.Second, 10*time.Second)
	r.now = func() time.Time { return now }
	r.read()
	for _, tc := range []struct {
		name    string
		advance time.Duration
		c       dnsserver.DemandCounts
		ok      bool
		secs    int
		answers uint64
	}{
		{"first second", time.Second, counts(table, 5), true, 1, 5},
		{"within the window", 4 * time.Second, counts(table, 50), true, 5, 50},
		{"past the window: the base moves", 10 * time.Second, counts(table, 150), true, 10, 100},
		{"new table: counts start again", time.Second, counts(other, 7), false, 0, 0},
		{"new table, a second on", time.Second, counts(other, 9), true, 1, 2},
	} {
		now = now.Add(tc.advance)
		fc.c = tc.c
		rep, ok := r.next()
		if ok != tc.ok {
			t.Fatalf("%s: ok %v", tc.name, ok)
		}
		if !ok {
			continue
		}
		if rep.WindowSeconds != tc.secs || len(rep.Flows) != 1 || rep.Flows[0].Answers != tc.answers ||
			rep.Flows[0].Home != "us-east" || rep.Flows[0].Next != "us-west" || !rep.At.Equal(now) {
			t.Fatalf("%s: %+v", tc.name, rep)
		}
		if err := rep.Validate(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
}

func TestDue(t *testing.T) {
	cfg, err := state.ParseConfig([]byte(`
zone: example.com
nameservers: {ns1: 192.0.2.53}
regions: [{name: us-east}, {name: us-west, capacity: 10}]
topology: {default: [us-east, us-west]}
policy: {demand: 20}
services:
  - {name: api, policy: nearest, endpoints: {us-east: [192.0.2.1], us-west: [192.0.2.2]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	st := state.Empty()
	i := uint64(0)
	apply := func(typ state.CommandType, body any) {
		t.Helper()
		i++
		next, res, err := state.ApplyNext(st, typ, "", "t", t0, body)
		if err != nil || res.Error != "" {
			t.Fatalf("%s: %v %s", typ, err, res.Error)
		}
		st = next
	}
	apply(state.CmdApplyConfig, state.NewApplyConfig(cfg))
	if got := Due(st, nil); len(got) != 0 {
		t.Fatalf("all at 100: %+v", got)
	}
	apply(state.CmdSetWeight, state.SetWeight{Region: "us-east", Weight: 0, Reason: "t", Force: true})
	got := Due(st, nil)
	if len(got) != 1 || got[0].Region != "us-east" || len(got[0].Flows) != 0 {
		t.Fatalf("no demand yet: %+v", got)
	}
	apply(state.CmdSetSpill, state.SetSpill{Plan: got[0]})
	if got := Due(st, nil); len(got) != 0 {
		t.Fatalf("nothing measured, plan stored: %+v", got)
	}
	apply(state.CmdDemandReport, state.DemandReport{Node: "c1", At: t0, WindowSeconds: 10,
		Flows: []state.DemandFlow{{Service: "api", Home: "us-east", Next: "us-west", Answers: 200}}})
	got = Due(st, nil)
	if len(got) != 1 || len(got[0].Flows) != 1 || got[0].Flows[0].Accept != 0.5 {
		t.Fatalf("with demand: %+v", got)
	}
	apply(state.CmdSetSpill, state.SetSpill{Plan: got[0]})
	if got := Due(st, nil); len(got) != 0 {
		t.Fatalf("planned: %+v", got)
	}
	apply(state.CmdSetWeight, state.SetWeight{Region: "us-east", Weight: 100, Reason: "t"})
	if got := Due(st, nil); len(got) != 1 || got[0].Weight != 100 {
		t.Fatalf("back at 100: %+v", got)
	}
}

// gatedSource is a Source whose cluster applies set-spill or not.
type gatedSource struct {
	st      *state.State
	applies atomic.Bool
	asked   atomic.Int64
}

func (g *gatedSource) State() *state.State              { return g.st }
func (g *gatedSource) ReportedCapacity() map[string]int { return nil }
func (g *gatedSource) MembersApply(_ context.Context, t state.CommandType) bool {
	g.asked.Add(1)
	return t == state.CmdSetSpill && g.applies.Load()
}

type countingProposer struct{ n atomic.Int64 }

func (c *countingProposer) Propose(context.Context, state.CommandType, string, string, any) (state.Result, error) {
	c.n.Add(1)
	return state.Result{}, nil
}

// TestPlannerWaitsForTheWholeCluster: while a controller would skip
// set-spill (an older release), a due plan is not proposed; once every
// member applies it, it is.
func TestPlannerWaitsForTheWholeCluster(t *testing.T) {
	cfg, err := state.ParseConfig([]byte(`
zone: example.com
nameservers: {ns1: 192.0.2.53}
regions: [{name: us-east}, {name: us-west}]
topology: {default: [us-east, us-west]}
services:
  - {name: api, policy: nearest, endpoints: {us-east: [192.0.2.1], us-west: [192.0.2.2]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	st, _, err := state.ApplyNext(state.Empty(), state.CmdApplyConfig, "", "t", t0, state.NewApplyConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	st, _, err = state.ApplyNext(st, state.CmdSetWeight, "", "t", t0, state.SetWeight{Region: "us-east", Weight: 0, Reason: "t", Force: true})
	if err != nil || len(Due(st, nil)) != 1 {
		t.Fatalf("no plan due: %v", err)
	}
	src, prop := &gatedSource{st: st}, &countingProposer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); NewPlanner(src, prop, nil, 5*time.Millisecond).Run(ctx) }()
	defer func() { cancel(); <-done }()
	testutil.Eventually(t, 30*time.Second, "the planner asks the cluster 3 times", func() error {
		if src.asked.Load() < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if n := prop.n.Load(); n != 0 {
		t.Fatalf("%d plans proposed while a controller would skip them", n)
	}
	src.applies.Store(true)
	testutil.Eventually(t, 30*time.Second, "the plan proposed once the cluster applies it", func() error {
		if prop.n.Load() == 0 {
			return errors.New("not yet")
		}
		return nil
	})
}
