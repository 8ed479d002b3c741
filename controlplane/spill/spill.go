package spill

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/dnsserver"
)

// Actor is the audit actor of demand reports and spill plans.
const Actor = "spill"

// Proposer submits a command through Raft (forwarded to the leader).
type Proposer interface {
	Propose(ctx context.Context, t state.CommandType, actor, id string, body any) (state.Result, error)
}

// Counter is what the Reporter reads: the DNS server's home demand.
type Counter interface {
	Demand() dnsserver.DemandCounts
}

// reading is one reading of the counters.
type reading struct {
	at time.Time
	c  dnsserver.DemandCounts
}

// Reporter proposes this controller's home demand over the last Window,
// every Interval.
type Reporter struct {
	node     string
	dns      Counter
	prop     Proposer
	log      *zap.Logger
	interval time.Duration
	window   time.Duration
	now      func() time.Time

	readings []reading
	sentAny  bool
}

// NewReporter returns a Reporter for node; interval and window default to
// 10 s and 60 s.
func NewReporter(node string, dns Counter, prop Proposer, log *zap.Logger, interval, window time.Duration) *Reporter {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	if window < interval {
		window = max(6*interval, 60*time.Second)
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Reporter{node: node, dns: dns, prop: prop, log: log, interval: interval, window: window, now: time.Now}
}

// Run reports until ctx ends.
func (r *Reporter) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	r.read()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if rep, ok := r.next(); ok {
				r.propose(ctx, rep)
			}
		}
	}
}

// read takes a reading and drops those no longer needed: the newest
// reading at least a window old stays as the window's base.
func (r *Reporter) read() reading {
	cur := reading{at: r.now(), c: r.dns.Demand()}
	r.readings = append(r.readings, cur)
	cut := 0
	for i, x := range r.readings {
		if cur.at.Sub(x.at) >= r.window {
			cut = i
		}
	}
	r.readings = r.readings[cut:]
	return cur
}

// next takes a reading and returns the report over the window that ends
// with it; false when there is nothing to say (no nearest service, or
// nothing counted now nor in the last report).
func (r *Reporter) next() (state.DemandReport, bool) {
	cur := r.read()
	if cur.c.Table == nil {
		return state.DemandReport{}, false
	}
	// The window's base: the oldest reading of the same counters.
	base := cur
	for _, x := range r.readings {
		if x.c.Table == cur.c.Table {
			base = x
			break
		}
	}
	secs := int(cur.at.Sub(base.at).Round(time.Second) / time.Second)
	if secs <= 0 {
		return state.DemandReport{}, false
	}
	flows := cur.c.Flows(&base.c)
	if len(flows) > state.MaxDemandFlows {
		flows = flows[:state.MaxDemandFlows]
	}
	if len(flows) == 0 && !r.sentAny {
		return state.DemandReport{}, false
	}
	r.sentAny = len(flows) > 0
	return state.DemandReport{Node: r.node, At: cur.at.UTC(), WindowSeconds: secs, Flows: flows}, true
}

func (r *Reporter) propose(ctx context.Context, rep state.DemandReport) {
	pctx, cancel := context.WithTimeout(ctx, r.interval)
	defer cancel()
	// Flagged ignorable: an older controller skips it during an upgrade.
	res, err := r.prop.Propose(pctx, state.CmdDemandReport|state.IgnoreUnknownFlag, Actor, "", rep)
	switch {
	case err != nil:
		// No leader now: the next report carries the window anyway.
		r.log.Debug("demand report not proposed", zap.Error(err))
	case res.Error != "":
		r.log.Warn("demand report refused", zap.String("code", res.Code), zap.String("error", res.Error))
	}
}

// Source is what the Planner reads.
type Source interface {
	State() *state.State
	// ReportedCapacity is the agents' reported capacity per region.
	ReportedCapacity() map[string]int
	// MembersApply reports whether every controller applies command type
	// t. A set-spill that a controller of an older release skips would
	// leave its event log and its answers unlike the others', so plans
	// wait until the whole cluster runs a release that applies them.
	MembersApply(ctx context.Context, t state.CommandType) bool
}

// Planner proposes a spill plan for every region whose weight is below
// 100 and whose plan is missing or was made for another weight, and
// clears the plan of a region back at 100. It runs on the leader.
type Planner struct {
	src  Source
	prop Proposer
	log  *zap.Logger
	tick time.Duration
	// heldBack: plans are due but a controller would skip them (logged
	// once per spell).
	heldBack bool
}

// NewPlanner returns a Planner that looks every tick.
func NewPlanner(src Source, prop Proposer, log *zap.Logger, tick time.Duration) *Planner {
	if log == nil {
		log = zap.NewNop()
	}
	if tick <= 0 {
		tick = time.Second
	}
	return &Planner{src: src, prop: prop, log: log, tick: tick}
}

// Run plans until ctx ends.
func (p *Planner) Run(ctx context.Context) {
	t := time.NewTicker(p.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			due := Due(p.src.State(), p.src.ReportedCapacity())
			if len(due) == 0 {
				continue
			}
			if !p.src.MembersApply(ctx, state.CmdSetSpill) {
				if !p.heldBack {
					p.log.Warn("spill plans held back: a controller does not apply them (an older release, or unreachable)")
				}
				p.heldBack = true
				continue
			}
			p.heldBack = false
			for _, plan := range due {
				p.propose(ctx, plan)
			}
		}
	}
}

// Due returns the plans st lacks: one per region whose weight is below
// 100 with no plan for that weight (or a plan made before any demand was
// measured, now that some is), and a clearing one (weight 100, no flows)
// per region back at 100 that still has one. It is pure.
func Due(st *state.State, capacity map[string]int) []state.SpillPlan {
	if st == nil || st.Config == nil || !st.Config.UsesNearest() {
		return nil
	}
	var d *state.Demand
	var out []state.SpillPlan
	for _, name := range st.Config.RegionNames() {
		r := st.Regions[name]
		cur := st.SpillPlanFor(name)
		switch {
		case r.Weight >= 100 && cur != nil:
			out = append(out, state.SpillPlan{Region: name, Weight: r.Weight})
		case r.Weight >= 100:
		case cur == nil || cur.Weight != r.Weight || len(cur.Flows) == 0:
			if d == nil {
				d = state.CombineDemand(st)
			}
			plan := state.PlanSpill(st, d, name, r.Weight, capacity)
			if cur != nil && cur.Weight == r.Weight && len(plan.Flows) == 0 {
				continue // still nothing measured: nothing new to say
			}
			out = append(out, plan)
		}
	}
	return out
}

func (p *Planner) propose(ctx context.Context, plan state.SpillPlan) {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := p.prop.Propose(pctx, state.CmdSetSpill|state.IgnoreUnknownFlag, Actor, "", state.SetSpill{Plan: plan})
	switch {
	case err != nil:
		p.log.Debug("spill plan not proposed", zap.String("region", plan.Region), zap.Error(err))
	case res.Error != "":
		// A weight that changed meanwhile: the next tick plans again.
		p.log.Debug("spill plan refused", zap.String("region", plan.Region), zap.String("error", res.Error))
	case plan.Weight < 100:
		p.log.Info("spill plan recorded", zap.String("region", plan.Region), zap.Int("weight", plan.Weight),
			zap.String("plan", plan.Summary()))
	}
}
