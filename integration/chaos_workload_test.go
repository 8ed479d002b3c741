package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/integration/chaos"
	"github.com/evac-sh/evac/internal/client"
)

// chaosClientTimeout is longer than the API's own 10 s wait for Raft, so a
// running controller always answers before the client gives up.
const chaosClientTimeout = 15 * time.Second

// chaosRunbook is the drill the clients start: a shift to 0, a wait, a
// one-step restore.
const chaosRunbook = `name: chaos-drill
params: {region: {required: true}}
steps:
  - shift: {region: "{{ .region }}", weight: 0}
  - wait: {duration: 3s}
  - restore: {region: "{{ .region }}", ramp: [100], step_interval: 1s}
`

// chaosSteering is the steering config: the fast test policy with
// single-step ramps (an acknowledged evacuation is at weight 0 at once,
// which invariant (d) relies on), and a TXT record naming the apply.
func chaosSteering(regions []regionDef, tag string) string {
	s := "zone: example.com.\nttl: 30\nnameservers: {ns1: 192.0.2.53}\n"
	if tag != "" {
		s += fmt.Sprintf("records:\n  - {name: chaos, type: TXT, value: %q}\n", tag)
	}
	s += "regions:\n"
	for _, r := range regions {
		s += fmt.Sprintf("  - {name: %s, capacity: 100}\n", r.name)
	}
	s += "services:\n  - name: api\n    policy: weighted\n    endpoints:\n"
	for _, r := range regions {
		s += fmt.Sprintf("      %s: [%s]\n", r.name, strings.Join(r.endpoints, ", "))
	}
	return s + `policy:
  unhealthy_below: 0.5
  detect_after: 3s
  ramp: [0]
  step_interval: 1s
  max_evacuated: 1
  hold_down: 1s
  budget: {per_day: 1000, cooldown: 1s}
`
}

// chaosWorkload issues operations and records them in the history.
type chaosWorkload struct {
	tc      *testCluster
	hist    *chaos.History
	regions []regionDef
}

// runClient issues random operations until ctx ends: evacuations and
// restores (single-step ramps), config applies and drills, each to a random
// controller, retried with the same Idempotency-Key while the outcome is
// ambiguous.
func (w *chaosWorkload) runClient(ctx context.Context, id int, rng *rand.Rand) {
	for n := 1; ctx.Err() == nil; n++ {
		region := w.regions[rng.IntN(len(w.regions))].name
		op := &chaos.Op{Tag: fmt.Sprintf("chaos c%d-%d", id, n), Client: id, Region: region}
		switch x := rng.Float64(); {
		// Restores outnumber evacuations so that regions are mostly in
		// and a failing one can be evacuated automatically (never the
		// last serving region).
		case x < 0.3:
			op.Kind = chaos.OpEvacuate
		case x < 0.78:
			op.Kind = chaos.OpRestore
		case x < 0.88:
			op.Kind, op.Region = chaos.OpConfig, ""
		default:
			op.Kind = chaos.OpDrill
		}
		for attempt := 0; attempt < 4; attempt++ {
			c := w.tc.controllers[rng.IntN(len(w.tc.controllers))]
			a := w.attempt(op, c)
			op.Attempts = append(op.Attempts, a)
			if !a.Ambiguous() || ctx.Err() != nil {
				break
			}
			sleepCtx(ctx, 300*time.Millisecond)
		}
		w.hist.AddOp(op)
		sleepCtx(ctx, time.Duration(400+rng.IntN(800))*time.Millisecond)
	}
}

// attempt sends op once to controller c.
func (w *chaosWorkload) attempt(op *chaos.Op, c *controllerProc) chaos.Attempt {
	// One HTTP exchange per recorded attempt: the workload retries itself.
	cl := client.New("http://"+c.http, adminToken, client.WithTimeout(chaosClientTimeout), client.WithWriteAttempts(1))
	ctx := client.WithRequestID(context.Background(), op.Tag)
	a := chaos.Attempt{Controller: c.id, Call: time.Now()}
	var wr wire.WriteResult
	var err error
	switch op.Kind {
	case chaos.OpEvacuate:
		wr, err = cl.Evacuate(ctx, op.Region, wire.MoveRequest{Reason: op.Tag, Ramp: []int{0}})
	case chaos.OpRestore:
		wr, err = cl.Restore(ctx, op.Region, wire.MoveRequest{Reason: op.Tag, Ramp: []int{100}})
	case chaos.OpConfig:
		wr, err = cl.ApplyConfig(ctx, []byte(chaosSteering(w.regions, op.Tag)), "")
	case chaos.OpDrill:
		err = cl.Do(ctx, http.MethodPost, "/v1/drills", map[string]any{
			"runbook": "chaos-drill", "params": map[string]string{"region": op.Region}, "reason": op.Tag}, nil)
	}
	a.Return = time.Now()
	var apiErr *client.APIError
	switch {
	case err == nil:
		a.Status, a.Index, a.Duplicate = http.StatusOK, wr.Index, wr.Duplicate
	case errors.As(err, &apiErr):
		a.Status, a.Code, a.Message = apiErr.Status, apiErr.Code, apiErr.Message
		// A retried drill start whose first attempt was applied is
		// answered 409 naming the duplicate (its drill has the first
		// attempt's id): it was acknowledged.
		if op.Kind == chaos.OpDrill && apiErr.Status == http.StatusConflict && strings.HasPrefix(apiErr.Message, "duplicate request") {
			a.Status, a.Duplicate = http.StatusOK, true
		}
	default:
		a.Err = err.Error()
	}
	return a
}

// probeDNS queries controller c's DNS for the service until ctx ends, from
// a rotating set of client subnets (ECS) so that every region with weight
// shows up.
func (w *chaosWorkload) probeDNS(ctx context.Context, c *controllerProc) {
	for i := 0; ctx.Err() == nil; i++ {
		p := chaos.Probe{Controller: c.id, Time: time.Now(), Rcode: -1}
		m := new(dns.Msg)
		m.SetQuestion("api.example.com.", dns.TypeA)
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24,
			Address: []byte{10, 77, byte(i % 64), 0}})
		dc := &dns.Client{Net: "udp", Timeout: time.Second}
		if r, _, err := dc.Exchange(m, c.dns); err == nil {
			p.Rcode = r.Rcode
			seen := map[string]bool{}
			for _, rr := range r.Answer {
				if a, ok := rr.(*dns.A); ok {
					p.Answers++
					if rg := regionOfIn(w.regions, a.A.String()); !seen[rg] {
						seen[rg] = true
						p.Regions = append(p.Regions, rg)
					}
				}
			}
		}
		w.hist.AddProbe(p)
		sleepCtx(ctx, 150*time.Millisecond)
	}
}

func regionOfIn(regions []regionDef, ip string) string {
	for _, r := range regions {
		for _, e := range r.endpoints {
			if e == ip {
				return r.name
			}
		}
	}
	return "?" + ip
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
