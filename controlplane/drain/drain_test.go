package drain

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/dnsserver"
)

const steeringYAML = `
zone: example.com
ttl: 5
nameservers: {ns1: 192.0.2.53}
regions: [{name: us-east}, {name: us-west}, {name: eu-west}]
services:
  - name: api
    endpoints: {us-east: [192.0.2.11], us-west: [198.51.100.11], eu-west: [203.0.113.11]}
policy: {ramp: [50, 0], restore_ramp: [50, 100], step_interval: 10s}
`

const kong = `name: kong
params: {region: {required: true}}
steps:
  - shift: {region: "{{ .region }}", weight: 0}
  - wait: {duration: 30s}
  - restore: {region: "{{ .region }}", ramp: [50, 100], step_interval: 5s}
`

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// cluster is a one-node "cluster": Propose applies the command with
// state.Apply at the test's clock, as the FSM would.
type cluster struct {
	t   *testing.T
	mu  sync.Mutex
	st  *state.State
	now time.Time
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{t: t, st: state.Empty(), now: t0}
	cfg, err := state.ParseConfig([]byte(steeringYAML))
	if err != nil {
		t.Fatal(err)
	}
	c.must(state.CmdApplyConfig, state.ApplyConfig{Config: cfg})
	c.must(state.CmdPutRunbook, state.PutRunbook{Source: kong})
	return c
}

func (c *cluster) Propose(_ context.Context, t state.CommandType, actor, id string, body any) (state.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var res state.Result
	var err error
	c.st, res, err = state.ApplyNext(c.st, t, id, actor, c.now, body)
	return res, err
}

func (c *cluster) State() *state.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

func (c *cluster) must(t state.CommandType, body any) {
	c.t.Helper()
	if res, _ := c.Propose(context.Background(), t, "tester", "", body); res.Error != "" {
		c.t.Fatalf("%s: %s", t, res.Error)
	}
}

func (c *cluster) step(id string, i int, phase string) {
	c.t.Helper()
	outcome := ""
	if phase == state.PhaseEnd {
		outcome = state.OutcomeDone
	}
	c.must(state.CmdDrillStep, state.DrillStep{ID: id, Index: i, Phase: phase, Outcome: outcome})
}

func TestDetector(t *testing.T) {
	type want struct {
		step     int
		region   string
		from, to int
	}
	cases := []struct {
		name string
		run  func(c *cluster, next func() []Change) []Change
		want []want
	}{
		{
			name: "a drill's shift, then its restore ramp",
			run: func(c *cluster, next func() []Change) []Change {
				c.must(state.CmdDrillStart, state.DrillStart{ID: "d-1", Runbook: "kong", Params: map[string]string{"region": "eu-west"}})
				c.step("d-1", 0, state.PhaseStart)
				out := next()
				c.step("d-1", 0, state.PhaseEnd)
				c.now = c.now.Add(time.Second)
				c.step("d-1", 1, state.PhaseStart)
				c.now = c.now.Add(30 * time.Second)
				c.step("d-1", 1, state.PhaseEnd)
				c.step("d-1", 2, state.PhaseStart) // restore: first ramp step, 50
				out = append(out, next()...)
				c.now = c.now.Add(5 * time.Second)
				c.must(state.CmdRampStep, state.RampStep{Region: "eu-west", Step: 1})
				return append(out, next()...)
			},
			want: []want{{0, "eu-west", 100, 0}, {2, "eu-west", 0, 50}, {2, "eu-west", 50, 100}},
		},
		{
			name: "an abort puts the weight back: the drill's end made the change",
			run: func(c *cluster, next func() []Change) []Change {
				c.must(state.CmdDrillStart, state.DrillStart{ID: "d-1", Runbook: "kong", Params: map[string]string{"region": "us-west"}})
				c.step("d-1", 0, state.PhaseStart)
				c.step("d-1", 0, state.PhaseEnd)
				c.step("d-1", 1, state.PhaseStart)
				c.now = c.now.Add(time.Second)
				c.must(state.CmdDrillAbort, state.DrillAbort{ID: "d-1", Reason: "enough"})
				return next()
			},
			want: []want{{0, "us-west", 100, 0}, {-1, "us-west", 0, 100}},
		},
		{
			name: "an evacuation outside any drill is not measured",
			run: func(c *cluster, next func() []Change) []Change {
				c.must(state.CmdSetWeight, state.SetWeight{Region: "us-east", Weight: 20, Reason: "by hand"})
				return next()
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			var d Detector
			if got := d.Next(c.State()); got != nil {
				t.Fatalf("first state: %v", got)
			}
			got := tc.run(c, func() []Change { return d.Next(c.State()) })
			var gw []want
			for _, ch := range got {
				gw = append(gw, want{ch.Step, ch.Region, ch.From, ch.To})
				if ch.Drill != "d-1" || ch.Index == 0 || ch.At.IsZero() {
					t.Errorf("change %+v", ch)
				}
			}
			if !reflect.DeepEqual(gw, tc.want) {
				t.Fatalf("changes %v, want %v", gw, tc.want)
			}
		})
	}

	// A state with a history (a restored snapshot) is a starting point only.
	c := newCluster(t)
	c.must(state.CmdDrillStart, state.DrillStart{ID: "d-1", Runbook: "kong", Params: map[string]string{"region": "eu-west"}})
	c.step("d-1", 0, state.PhaseStart)
	var d Detector
	if got := d.Next(c.State()); len(got) != 0 {
		t.Fatalf("a restored state's past changes: %v", got)
	}
}

// TestMeasurer runs a drill's shift through a real DNS server: clients that
// were told the region before ask again after it, one does not; the report
// is proposed with this node's id, the step and the change's time, and
// Apply stores it in the drill.
func TestMeasurer(t *testing.T) {
	c := newCluster(t)
	srv := dnsserver.New(dnsserver.Config{Addr: "127.0.0.1:0", DrainSlack: 500 * time.Millisecond})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Shutdown(context.Background()) }()
	udp, _ := srv.Addr()

	m := NewMeasurer("c1", srv, c, nil, 500*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { m.Run(ctx) })
	defer wg.Wait()
	defer cancel()

	m.Update(c.State())
	ask := func(i int) string {
		t.Helper()
		q := new(dns.Msg)
		q.SetQuestion("api.example.com.", dns.TypeA)
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(1232)
		a := netip.MustParseAddr(fmt.Sprintf("10.9.%d.0", i))
		o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: a.AsSlice()})
		q.Extra = append(q.Extra, o)
		r, err := dns.Exchange(q, udp.String())
		if err != nil || len(r.Answer) != 1 {
			t.Fatalf("query: %v %v", r, err)
		}
		return r.Answer[0].(*dns.A).A.String()
	}
	east := map[int]bool{}
	for i := range 60 {
		if ask(i) == "203.0.113.11" {
			east[i] = true
		}
	}
	if len(east) < 5 {
		t.Fatalf("only %d subnets on eu-west", len(east))
	}
	c.now = time.Now()
	c.must(state.CmdDrillStart, state.DrillStart{ID: "d-1", Runbook: "kong", Params: map[string]string{"region": "eu-west"}})
	c.step("d-1", 0, state.PhaseStart)
	m.Update(c.State())
	if m.Next().IsZero() {
		t.Fatal("no measurement started")
	}
	silent := -1
	for i := range east {
		if silent < 0 {
			silent = i
			continue
		}
		if got := ask(i); got == "203.0.113.11" {
			t.Fatalf("subnet %d still told eu-west", i)
		}
	}
	time.Sleep(time.Until(m.Next()))
	m.CloseDue()
	var r state.DrainReport
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if d := c.State().Drills["d-1"]; len(d.Drain) == 1 {
			r = d.Drain[0]
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r.Node != "c1" || r.Step != 0 || r.Region != "eu-west" || r.From != 100 || r.To != 0 || !r.ChangeAt.Equal(c.now) {
		t.Fatalf("report %+v", r)
	}
	if r.Population != len(east) || r.Drained != len(east)-1 || r.PastTTL != 1 || r.P50Ms == nil || r.P99Ms != nil ||
		r.PastTTLResolvers[0].Subnet != fmt.Sprintf("10.9.%d.0/24", silent) || r.PastTTLResolvers[0].AskedAfter != 0 {
		t.Fatalf("figures %+v", r.DrainFigures)
	}
}

// TestMeasurerSuperseded: a measurement whose region gets weight back
// before its deadline closes at once as superseded, and a lowered weight
// undone within the same update is not measured at all.
func TestMeasurerSuperseded(t *testing.T) {
	c := newCluster(t)
	srv := dnsserver.New(dnsserver.Config{Addr: "127.0.0.1:0"})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Shutdown(context.Background()) }()
	m := NewMeasurer("c1", srv, c, nil, 0)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { m.Run(ctx) })
	defer wg.Wait()
	defer cancel()
	m.Update(c.State())

	c.now = time.Now()
	c.must(state.CmdDrillStart, state.DrillStart{ID: "d-1", Runbook: "kong", Params: map[string]string{"region": "eu-west"}})
	c.step("d-1", 0, state.PhaseStart)
	m.Update(c.State())
	if m.Next().IsZero() {
		t.Fatal("the shift is not measured")
	}
	c.now = c.now.Add(time.Second)
	c.must(state.CmdDrillAbort, state.DrillAbort{ID: "d-1", Reason: "enough"})
	m.Update(c.State())
	if !m.Next().IsZero() {
		t.Fatal("the measurement is still open after the abort put the weight back")
	}
	var r state.DrainReport
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && len(c.State().Drills["d-1"].Drain) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if d := c.State().Drills["d-1"]; len(d.Drain) == 1 {
		r = d.Drain[0]
	}
	if !r.Superseded || r.PastTTL != 0 || r.Step != 0 || r.ClosedAt.Before(r.ChangeAt) {
		t.Fatalf("report %+v", r)
	}

	// Lowered and raised again between two updates: nothing to measure.
	c.must(state.CmdDrillStart, state.DrillStart{ID: "d-2", Runbook: "kong", Params: map[string]string{"region": "us-west"}})
	c.step("d-2", 0, state.PhaseStart)
	c.now = c.now.Add(time.Second)
	c.must(state.CmdDrillAbort, state.DrillAbort{ID: "d-2", Reason: "at once"})
	m.Update(c.State())
	if !m.Next().IsZero() {
		t.Fatal("a change undone in the same update is measured")
	}
}
