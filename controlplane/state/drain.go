package state

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Drain measurement (docs/drills.md, "Drain measured"): after a drill
// lowers a region's weight, every controller's DNS server watches the
// resolver subnets it had answered with that region within the TTL before
// the change, and whose answer the change moves off it, until each is told
// an answer without the region. Each controller proposes what it measured
// as a DrillDrain command; Apply stores it in the drill record as it is (no
// clock: every time is in the command).

// Limits on what one drill keeps.
const (
	// MaxDrainReports is how many drain reports one drill keeps (one per
	// controller and weight change).
	MaxDrainReports = 256
	// MaxPastTTLSample is how many past-TTL resolvers a report lists; the
	// count covers them all.
	MaxPastTTLSample = 20
)

// EventDrillDrain records a controller's drain report.
const EventDrillDrain = "drill.drain"

// DrainFigures is what one controller's DNS server measured for one change.
// Times are milliseconds after the change's commit time (ChangeAt).
type DrainFigures struct {
	// Population is the number of (resolver subnet, service) pairs answered
	// with the region in the TTL window before the change whose answer the
	// change moves off the region, at most the tracker's cap.
	Population int `json:"population"`
	// Capped is set when more pairs qualified than the tracker keeps per
	// change; the population is then a sample of them.
	Capped bool `json:"capped,omitempty"`
	// Drained is how many of them were told an answer without the region
	// before the measurement closed.
	Drained int `json:"drained"`
	// P50Ms, P90Ms and P99Ms: when 50, 90 and 99% of the population had
	// been drained (nearest rank); null when that share never was.
	P50Ms *int64 `json:"p50_ms"`
	P90Ms *int64 `json:"p90_ms"`
	P99Ms *int64 `json:"p99_ms"`
	// PastTTL counts the pairs not drained by the change's time plus the
	// TTL plus the slack: resolvers that kept asking and were still told
	// the region, or that never asked again (holding the old answer, or
	// gone). Zero when the measurement was cut short (Superseded).
	PastTTL int `json:"past_ttl"`
	// PastTTLResolvers lists up to MaxPastTTLSample of them.
	PastTTLResolvers []LingeringResolver `json:"past_ttl_resolvers,omitempty"`
	// TTLSeconds is the longest TTL of the region's answers: the window
	// before the change and, with SlackMs, the deadline after it.
	TTLSeconds uint32 `json:"ttl_seconds"`
	SlackMs    int64  `json:"slack_ms"`
	// ClosedAt is when the measurement closed: the deadline, or earlier
	// when the region's weight rose again (Superseded).
	ClosedAt   time.Time `json:"closed_at"`
	Superseded bool      `json:"superseded,omitempty"`
	// WindowComplete is false when the DNS server had not been recording
	// for the whole TTL window before the change (it started later), so
	// resolvers that asked before it started are missing.
	WindowComplete bool `json:"window_complete"`
}

// LingeringResolver is a resolver subnet that had not been drained by the
// deadline.
type LingeringResolver struct {
	Subnet  string `json:"subnet"`
	Service string `json:"service"`
	// LastAnswered is the last time it was answered with the region.
	LastAnswered time.Time `json:"last_answered"`
	// AskedAfter counts the answers naming the region it got after the
	// change (0: it did not ask again).
	AskedAfter int `json:"asked_after"`
}

// DrainReport is one controller's drain figures for one weight change of a
// drill.
type DrainReport struct {
	Node string `json:"node"`
	// Step is the index of the drill step that made the change, -1 when
	// the drill's end (abort, pre-emption) did.
	Step   int    `json:"step"`
	Region string `json:"region"`
	From   int    `json:"from"`
	To     int    `json:"to"`
	// ChangeIndex and ChangeAt are the Raft index and the commit time of
	// the command that changed the weight.
	ChangeIndex uint64    `json:"change_index"`
	ChangeAt    time.Time `json:"change_at"`
	DrainFigures
}

// DrillDrain is a controller's drain report for a drill, proposed once the
// measurement has closed.
type DrillDrain struct {
	ID     string      `json:"id"`
	Report DrainReport `json:"report"`
}

// Validate checks a report on its own.
func (r *DrainReport) Validate() error {
	switch {
	case r.Node == "" || len(r.Node) > 128:
		return fmt.Errorf("node %q must be 1 to 128 characters", r.Node)
	case !ValidName(r.Region):
		return fmt.Errorf("region %q is not valid", r.Region)
	case r.From < 0 || r.From > 100 || r.To < 0 || r.To > 100 || r.To >= r.From:
		return fmt.Errorf("weights %d -> %d: a drain follows a lowered weight within 0..100", r.From, r.To)
	case r.ChangeIndex == 0 || r.ChangeAt.IsZero():
		return fmt.Errorf("change index and time are required")
	case r.Population < 0 || r.Drained < 0 || r.Drained > r.Population:
		return fmt.Errorf("drained %d of population %d", r.Drained, r.Population)
	case r.PastTTL < 0 || r.PastTTL > r.Population-r.Drained:
		return fmt.Errorf("past_ttl %d with %d of %d undrained", r.PastTTL, r.Population-r.Drained, r.Population)
	case len(r.PastTTLResolvers) > MaxPastTTLSample || len(r.PastTTLResolvers) > r.PastTTL:
		return fmt.Errorf("%d past-TTL resolvers listed for %d (at most %d)", len(r.PastTTLResolvers), r.PastTTL, MaxPastTTLSample)
	case r.SlackMs < 0 || r.ClosedAt.Before(r.ChangeAt):
		return fmt.Errorf("measurement closed at %s, before the change at %s", r.ClosedAt, r.ChangeAt)
	}
	var prev int64
	for _, p := range []*int64{r.P50Ms, r.P90Ms, r.P99Ms} {
		if p == nil {
			continue
		}
		if *p < prev {
			return fmt.Errorf("percentiles must be non-negative and rise: %s", r.percentiles())
		}
		prev = *p
	}
	if r.P50Ms == nil && (r.P90Ms != nil || r.P99Ms != nil) || r.P90Ms == nil && r.P99Ms != nil {
		return fmt.Errorf("percentiles %s: a higher one reached before a lower one", r.percentiles())
	}
	for i, lr := range r.PastTTLResolvers {
		if _, err := netip.ParsePrefix(lr.Subnet); err != nil {
			return fmt.Errorf("past_ttl_resolvers[%d].subnet: %w", i, err)
		}
		if lr.AskedAfter < 0 {
			return fmt.Errorf("past_ttl_resolvers[%d].asked_after is negative", i)
		}
	}
	return nil
}

func (r *DrainReport) percentiles() string {
	f := func(p *int64) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprintf("%dms", *p)
	}
	return f(r.P50Ms) + "/" + f(r.P90Ms) + "/" + f(r.P99Ms)
}

// sameChange reports whether two reports are the same controller's on the
// same change (a retried or repeated proposal).
func (r *DrainReport) sameChange(o *DrainReport) bool {
	return r.Node == o.Node && r.ChangeIndex == o.ChangeIndex && r.Region == o.Region
}

func (a *applier) drillDrain(b DrillDrain) *refusal {
	d, ok := a.s.Drills[b.ID]
	if !ok {
		return refuse(CodeNotFound, "no drill %q", b.ID)
	}
	r := b.Report
	if err := r.Validate(); err != nil {
		return refuse(CodeInvalid, "drain report: %v", err)
	}
	if r.Step < -1 || r.Step >= len(d.Steps) {
		return refuse(CodeInvalid, "drain report: step %d is not a step of drill %s (%d steps)", r.Step, d.ID, len(d.Steps))
	}
	if !slices.Contains(d.Regions, r.Region) {
		return refuse(CodeInvalid, "drain report: drill %s does not hold region %s", d.ID, r.Region)
	}
	reports := slices.Clone(d.Drain)
	i := slices.IndexFunc(reports, func(o DrainReport) bool { return o.sameChange(&r) })
	switch {
	case i >= 0:
		reports[i] = r // the controller's newer measurement of the same change
	case len(reports) >= MaxDrainReports:
		return refuse(CodeRule, "drill %s already has %d drain reports", d.ID, MaxDrainReports)
	default:
		reports = append(reports, r)
	}
	d.Drain = reports
	a.putDrill(d)
	a.event(Event{Kind: EventDrillDrain, Region: r.Region, Reason: d.Reason,
		Detail: fmt.Sprintf("drill %s step %d: %s on %s: %d->%d, %d of %d resolvers drained, 50/90/99%% at %s, %d past TTL",
			d.ID, r.Step+1, r.Region, r.Node, r.From, r.To, r.Drained, r.Population, r.percentiles(), r.PastTTL)})
	return nil
}

// DrainSummary is the worst of a drill's drain reports: each percentile
// the slowest controller's and change's (null when some report never
// reached it), past-TTL resolvers summed. Reports with no population, and
// measurements cut short by a later raise, are left out.
type DrainSummary struct {
	Reports    int    `json:"reports"`
	Population int    `json:"population"`
	P50Ms      *int64 `json:"p50_ms"`
	P90Ms      *int64 `json:"p90_ms"`
	P99Ms      *int64 `json:"p99_ms"`
	PastTTL    int    `json:"past_ttl"`
}

// WeightPoint is a held region's traffic weight from Time on.
type WeightPoint struct {
	Time   time.Time `json:"time"`
	Region string    `json:"region"`
	Weight int       `json:"weight"`
}

// SummarizeDrain returns the worst of a drill's drain reports, nil when
// none has a population.
func SummarizeDrain(reports []DrainReport) *DrainSummary {
	var sum DrainSummary
	worst := func(cur **int64, v *int64, first bool) {
		switch {
		case v == nil:
			*cur = nil
		case first || *cur != nil && *v > **cur:
			x := *v
			*cur = &x
		}
	}
	for _, r := range reports {
		if r.Population == 0 || r.Superseded {
			continue
		}
		first := sum.Reports == 0
		sum.Reports++
		sum.Population = max(sum.Population, r.Population)
		sum.PastTTL += r.PastTTL
		worst(&sum.P50Ms, r.P50Ms, first)
		worst(&sum.P90Ms, r.P90Ms, first)
		worst(&sum.P99Ms, r.P99Ms, first)
	}
	if sum.Reports == 0 {
		return nil
	}
	return &sum
}

// DrillTimeline returns every region's traffic weight over d: its weight
// at d's start (a held region's from d.Before), then each change until d
// ended. It is false when the audit log no longer reaches back to d's
// start, so a region's changes before it are unknown (its current weight
// then stands for its weight at the start when nothing changed it since).
func (s *State) DrillTimeline(d Drill) ([]WeightPoint, bool) {
	complete := len(s.Events) > 0 && (s.Events[0].Seq == 1 || !s.Events[0].Time.After(d.StartedAt))
	var names []string
	if s.Config != nil {
		names = s.Config.RegionNames()
	}
	start := map[string]int{}
	changedSince := map[string]bool{}
	var during []WeightPoint
	for _, e := range s.Events {
		if e.Weight == nil || e.Region == "" {
			continue
		}
		switch {
		case e.Time.Before(d.StartedAt):
			start[e.Region] = *e.Weight
		default:
			changedSince[e.Region] = true
			if d.EndedAt.IsZero() || !e.Time.After(d.EndedAt) {
				during = append(during, WeightPoint{Time: e.Time, Region: e.Region, Weight: *e.Weight})
			}
		}
	}
	var out []WeightPoint
	for _, rn := range names {
		w, ok := start[rn]
		switch {
		case slices.Contains(d.Regions, rn):
			w = d.Before[rn]
		case ok:
		case !changedSince[rn]:
			w = s.Regions[rn].Weight
		default:
			w = 100 // a region enters the config at full weight
		}
		out = append(out, WeightPoint{Time: d.StartedAt, Region: rn, Weight: w})
	}
	return append(out, during...), complete
}
