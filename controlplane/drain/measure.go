package drain

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/dnsserver"
)

// Actor is the audit actor of drain reports.
const Actor = "drain"

// DNS is what the Measurer needs of the DNS server.
type DNS interface {
	UpdateWatching(st *state.State, changes []dnsserver.DrainChange) []*dnsserver.DrainWatch
	CloseDrain(w *dnsserver.DrainWatch, now time.Time, superseded bool) state.DrainFigures
}

// Proposer submits a command through Raft (forwarded to the leader).
type Proposer interface {
	Propose(ctx context.Context, t state.CommandType, actor, id string, body any) (state.Result, error)
}

// maxQueued bounds the reports waiting to be proposed.
const maxQueued = 256

// Measurer turns state updates into DNS updates with drain measurements,
// and closed measurements into DrillDrain proposals. Update and Close are
// called from one goroutine (the controller's state follower); Run, on its
// own, proposes the reports.
type Measurer struct {
	node  string
	dns   DNS
	prop  Proposer
	log   *zap.Logger
	now   func() time.Time
	slack time.Duration

	det   Detector
	open  []measuring
	queue chan state.DrillDrain
}

type measuring struct {
	ch Change
	w  *dnsserver.DrainWatch
}

// NewMeasurer returns a Measurer for node; slack is the DNS server's
// drain slack (0: dnsserver.DefaultDrainSlack).
func NewMeasurer(node string, dns DNS, prop Proposer, log *zap.Logger, slack time.Duration) *Measurer {
	if slack <= 0 {
		slack = dnsserver.DefaultDrainSlack
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Measurer{node: node, dns: dns, prop: prop, log: log, now: time.Now, slack: slack,
		queue: make(chan state.DrillDrain, maxQueued)}
}

// Update installs st in DNS, starts measuring every lowered weight of a
// drill-held region it brings, and closes early (superseded) the
// measurements of a region whose weight rose again.
func (m *Measurer) Update(st *state.State) {
	now := m.now()
	var lowered []Change
	for _, c := range m.det.Next(st) {
		switch {
		case !c.Lowered():
			// The region gets weight back: its measurements stop here,
			// and one of a change st already undoes never starts.
			m.closeWhere(now, true, func(x measuring) bool { return x.ch.Region == c.Region })
			lowered = slices.DeleteFunc(lowered, func(x Change) bool { return x.Region == c.Region })
		case now.Before(c.At.Add(MaxTTL(st.Config) + m.slack)):
			lowered = append(lowered, c)
		}
		// else: a change replayed at start-up, too old to measure
	}
	dc := make([]dnsserver.DrainChange, len(lowered))
	for i, c := range lowered {
		dc[i] = dnsserver.DrainChange{Region: c.Region, At: c.At}
	}
	ws := m.dns.UpdateWatching(st, dc)
	for i, w := range ws {
		m.open = append(m.open, measuring{ch: lowered[i], w: w})
		m.log.Info("measuring drain", zap.String("drill", lowered[i].Drill), zap.Int("step", lowered[i].Step+1),
			zap.String("region", lowered[i].Region), zap.Int("from", lowered[i].From), zap.Int("to", lowered[i].To),
			zap.Time("deadline", w.Deadline()))
	}
}

// Next is when the next open measurement is due to close (zero: none).
func (m *Measurer) Next() time.Time {
	var t time.Time
	for _, x := range m.open {
		if d := x.w.Deadline(); t.IsZero() || d.Before(t) {
			t = d
		}
	}
	return t
}

// CloseDue closes the measurements whose deadline has passed.
func (m *Measurer) CloseDue() {
	now := m.now()
	m.closeWhere(now, false, func(x measuring) bool { return !now.Before(x.w.Deadline()) })
}

// CloseAll closes every open measurement without reporting (shutdown).
func (m *Measurer) CloseAll() {
	for _, x := range m.open {
		m.dns.CloseDrain(x.w, m.now(), true)
	}
	m.open = nil
}

func (m *Measurer) closeWhere(now time.Time, superseded bool, match func(measuring) bool) {
	m.open = slices.DeleteFunc(m.open, func(x measuring) bool {
		if !match(x) {
			return false
		}
		f := m.dns.CloseDrain(x.w, now, superseded)
		if f.ClosedAt.Before(x.ch.At) {
			f.ClosedAt = x.ch.At // this clock behind the leader's that stamped the change
		}
		r := state.DrillDrain{ID: x.ch.Drill, Report: state.DrainReport{
			Node: m.node, Step: x.ch.Step, Region: x.ch.Region, From: x.ch.From, To: x.ch.To,
			ChangeIndex: x.ch.Index, ChangeAt: x.ch.At, DrainFigures: f,
		}}
		select {
		case m.queue <- r:
		default:
			m.log.Warn("drain report dropped: too many waiting to be proposed", zap.String("drill", r.ID))
		}
		return true
	})
}

// Run proposes queued reports until ctx ends, retrying each while no
// leader takes it (the command's id makes a retry a no-op).
func (m *Measurer) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-m.queue:
			m.propose(ctx, r)
		}
	}
}

func (m *Measurer) propose(ctx context.Context, r state.DrillDrain) {
	id := fmt.Sprintf("drain:%s:%s:%d:%s", r.ID, m.node, r.Report.ChangeIndex, r.Report.Region)
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		// Flagged ignorable: a report only adds information, so a controller
		// older than the command skips it during a rolling upgrade.
		res, err := m.prop.Propose(pctx, state.CmdDrillDrain|state.IgnoreUnknownFlag, Actor, id, r)
		cancel()
		switch {
		case err == nil && res.Error != "":
			m.log.Warn("drain report refused", zap.String("drill", r.ID), zap.String("code", res.Code), zap.String("error", res.Error))
			return
		case err == nil:
			m.log.Info("drain report recorded", zap.String("drill", r.ID), zap.Int("step", r.Report.Step+1),
				zap.String("region", r.Report.Region), zap.Int("population", r.Report.Population),
				zap.Int("drained", r.Report.Drained), zap.Int("past-ttl", r.Report.PastTTL))
			return
		case ctx.Err() != nil:
			return
		case attempt == 20:
			m.log.Warn("drain report given up", zap.String("drill", r.ID), zap.Error(err))
			return
		}
		m.log.Debug("drain report not proposed yet", zap.String("drill", r.ID), zap.Int("attempt", attempt), zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
