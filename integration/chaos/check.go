package chaos

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/evac-sh/evac/controlplane/state"
)

// Tunables of the invariants (docs/reliability.md gives their reasons).
const (
	// DNSSettle is (d)'s grace after an acknowledged evacuation.
	DNSSettle = 2 * time.Second
	// StableBefore is how long before the acknowledgement a controller must
	// already have been on the stable majority side for (d) to judge it.
	StableBefore = 10 * time.Second
	// EvidenceWindow is how far before an automatic evacuation (e) looks
	// for a reason in the injected faults.
	EvidenceWindow = 60 * time.Second
	// SilenceLimit is how long a running controller may leave every DNS
	// probe unanswered before (c) (or (h) during a quorum loss) counts it.
	SilenceLimit = 5 * time.Second
	// ConvergeLimit is (f)'s bound after the final heal.
	ConvergeLimit = 10 * time.Second
	// QuorumGrace is how long after a quorum loss starts (h) begins to
	// judge writes (Raft needs a moment to notice).
	QuorumGrace = 2 * time.Second
)

// Invariants, in report order.
var Invariants = []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "linearizable"}

// InvariantTitles are one-line descriptions for the report.
var InvariantTitles = map[string]string{
	"a":            "acknowledged writes in the final state and log, once",
	"b":            "one event log, identical on every controller",
	"c":            "no empty or failed DNS answer; no silent running controller",
	"d":            "acked evacuation + 2 s: out of the stable majority's DNS",
	"e":            "no automatic evacuation of a region seen healthy",
	"f":            "controllers converge within 10 s of the final heal",
	"g":            "no drill step twice",
	"h":            "quorum lost: DNS from last state, writes refused clearly",
	"i":            "paused old leader acknowledges nothing lost",
	"linearizable": "porcupine: steering state linearizable",
}

// Final is what the test observed after healing everything.
type Final struct {
	// Logs are the audit logs of every controller, read after convergence.
	Logs map[string][]state.Event
	// Healed is when the last fault ended and every process ran again;
	// Converged when every controller first showed the same state.
	Healed, Converged time.Time
	// ZeroWeight, per quorum-loss fault (by start time) and surviving
	// controller, lists the regions at weight 0 in its state during the
	// whole loss (read at its start and end).
	ZeroWeight map[time.Time]map[string][]string
	// LinTimeout bounds porcupine.
	LinTimeout time.Duration
}

// Result is the checker's verdict.
type Result struct {
	Violations map[string][]string
	Lin        porcupine.CheckResult
	LinOps     int
	// Checked counts what each invariant examined.
	Checked map[string]int
}

// Failed reports whether any invariant was violated.
func (r *Result) Failed() bool {
	for _, v := range r.Violations {
		if len(v) > 0 {
			return true
		}
	}
	return false
}

type checker struct {
	h   *History
	f   Final
	log []state.Event // the reference log (first controller's)
	res *Result
}

func (c *checker) violate(inv, format string, args ...any) {
	c.res.Violations[inv] = append(c.res.Violations[inv], fmt.Sprintf(format, args...))
}

// Check judges the history.
func Check(h *History, f Final) *Result {
	h.sorted()
	res := &Result{Violations: map[string][]string{}, Checked: map[string]int{}}
	c := &checker{h: h, f: f, res: res}
	if len(h.Topo.Controllers) > 0 {
		c.log = f.Logs[h.Topo.Controllers[0].Name]
	}
	c.checkB()
	c.checkA()
	c.checkC()
	c.checkD()
	c.checkE()
	c.checkF()
	c.checkG()
	c.checkH()
	c.checkI()
	timeout := f.LinTimeout
	if timeout == 0 {
		timeout = time.Minute
	}
	lin, n, why := checkLinearizable(h, c.log, timeout)
	res.Lin, res.LinOps = lin, n
	res.Checked["linearizable"] = n
	if lin == porcupine.Illegal {
		c.violate("linearizable", "the evacuate/restore history is not linearizable:\n%s", why)
	}
	return res
}

// eventsTagged returns the events of kind whose reason is tag.
func eventsTagged(log []state.Event, kind, tag string) []state.Event {
	var out []state.Event
	for _, e := range log {
		if e.Kind == kind && e.Reason == tag {
			out = append(out, e)
		}
	}
	return out
}

func opEventKind(k OpKind) string {
	switch k {
	case OpEvacuate:
		return state.EventEvacuate
	case OpRestore:
		return state.EventRestore
	case OpDrill:
		return state.EventDrillStart
	}
	return ""
}

// (a) Every write answered 2xx is in the final log: an evacuation, restore
// or drill start exactly once (its reason is its tag), at the index its
// answer gave unless the answer was a duplicate; a config apply as a
// config.applied event at its index. No operation is applied twice, and
// none whose every attempt was refused is applied at all. Config applies
// carry no tag: their count in the log must lie between the acknowledged
// ones and the acknowledged plus the ambiguous ones.
func (c *checker) checkA() {
	byIndex := map[uint64][]state.Event{}
	configEvents := 0
	for _, e := range c.log {
		byIndex[e.Index] = append(byIndex[e.Index], e)
		if e.Kind == state.EventConfigApplied && !e.Time.Before(c.h.Start) {
			configEvents++
		}
	}
	configAcked, configUnknown := 0, 0
	for _, o := range c.h.Ops {
		out := o.Outcome()
		if o.Kind == OpConfig {
			switch out {
			case Acked:
				configAcked++
				c.res.Checked["a"]++
				if a, _ := o.Ack(); !a.Duplicate && !hasKind(byIndex[a.Index], state.EventConfigApplied) {
					c.violate("a", "acknowledged config apply has no config.applied event at index %d:\n    %s", a.Index, o)
				}
			case Unknown:
				configUnknown++
			}
			continue
		}
		evs := eventsTagged(c.log, opEventKind(o.Kind), o.Tag)
		switch out {
		case Acked:
			c.res.Checked["a"]++
			a, _ := o.Ack()
			switch {
			case len(evs) != 1:
				c.violate("a", "acknowledged %s is %d times in the final log, want once:\n    %s", o.Kind, len(evs), o)
			case !a.Duplicate && o.Kind != OpDrill && evs[0].Index != a.Index:
				c.violate("a", "acknowledged %s answered index %d but the log has it at %d:\n    %s", o.Kind, a.Index, evs[0].Index, o)
			}
		case Unknown:
			if len(evs) > 1 {
				c.violate("a", "%s with an unknown outcome applied %d times:\n    %s", o.Kind, len(evs), o)
			}
		case Refused:
			if len(evs) != 0 {
				c.violate("a", "%s refused on every attempt is in the final log (%d times):\n    %s", o.Kind, len(evs), o)
			}
		}
	}
	if configEvents < configAcked || configEvents > configAcked+configUnknown {
		c.violate("a", "%d config.applied events in the final log for %d acknowledged and %d ambiguous applies", configEvents, configAcked, configUnknown)
	}
}

func hasKind(evs []state.Event, kind string) bool {
	for _, e := range evs {
		if e.Kind == kind {
			return true
		}
	}
	return false
}

// (b) After healing, every controller's audit log is the same sequence:
// same length, and event by event the same seq, index, time, kind, region,
// reason and detail; seqs are consecutive and indexes never go back.
func (c *checker) checkB() {
	ref := c.h.Topo.Controllers[0].Name
	for _, n := range c.h.Topo.Controllers {
		log, ok := c.f.Logs[n.Name]
		if !ok {
			c.violate("b", "no final log from %s", n.Name)
			continue
		}
		c.res.Checked["b"]++
		for i := 1; i < len(log); i++ {
			if log[i].Seq != log[i-1].Seq+1 || log[i].Index < log[i-1].Index {
				c.violate("b", "%s: event %d (seq %d index %d) follows seq %d index %d", n.Name, i, log[i].Seq, log[i].Index, log[i-1].Seq, log[i-1].Index)
				break
			}
		}
		if n.Name == ref {
			continue
		}
		other := c.f.Logs[ref]
		if len(log) != len(other) {
			c.violate("b", "%s has %d events, %s has %d", n.Name, len(log), ref, len(other))
		}
		for i := 0; i < min(len(log), len(other)); i++ {
			if !sameEvent(log[i], other[i]) {
				c.violate("b", "%s and %s differ at event %d:\n    %s\n    %s", n.Name, ref, i, describeEvent(log[i]), describeEvent(other[i]))
				break
			}
		}
	}
}

func sameEvent(a, b state.Event) bool {
	wa, wb := -1, -1
	if a.Weight != nil {
		wa = *a.Weight
	}
	if b.Weight != nil {
		wb = *b.Weight
	}
	return a.Seq == b.Seq && a.Index == b.Index && a.Time.Equal(b.Time) && a.Kind == b.Kind && a.Region == b.Region &&
		a.Reason == b.Reason && a.Detail == b.Detail && a.Actor == b.Actor && wa == wb
}

func describeEvent(e state.Event) string {
	w := ""
	if e.Weight != nil {
		w = fmt.Sprintf(" weight %d", *e.Weight)
	}
	return fmt.Sprintf("#%d idx %d %s %s %s%s (%s) %s", e.Seq, e.Index, clock(e.Time), e.Kind, e.Region, w, e.Reason, e.Detail)
}

// quorumLossAt reports whether a quorum-loss fault was in force at t.
func (c *checker) quorumLossAt(t time.Time) bool {
	for _, f := range c.h.Faults {
		if f.Kind == FaultQuorum && f.active(t) {
			return true
		}
	}
	return false
}

// (c) Every DNS answer from every controller holds at least one address
// for the service, with rcode NOERROR: evac never answers empty while a
// region serves (and some always does: the last region is never
// evacuated). A controller running (not killed or paused) that leaves
// every probe unanswered for more than SilenceLimit counts too.
func (c *checker) checkC() {
	last := map[string]time.Time{} // last answer or start of running
	for _, p := range c.h.Probes {
		if p.Rcode >= 0 {
			c.res.Checked["c"]++
			if p.Rcode != 0 || p.Answers == 0 {
				inv := "c"
				if c.quorumLossAt(p.Time) {
					inv = "h"
				}
				c.violate(inv, "%s answered %s with %d addresses at %s", p.Controller, rcodeName(p.Rcode), p.Answers, clock(p.Time))
			}
			last[p.Controller] = p.Time
			continue
		}
		from, ok := last[p.Controller]
		if !ok {
			from = c.h.Start
		}
		if p.Time.Sub(from) > SilenceLimit && c.h.controllerRunning(p.Controller, from, p.Time) {
			inv := "c"
			if c.quorumLossAt(p.Time) {
				inv = "h"
			}
			c.violate(inv, "%s, running, answered no DNS probe from %s to %s", p.Controller, clock(from), clock(p.Time))
			last[p.Controller] = p.Time // one report per silence
		}
	}
}

func rcodeName(rc int) string {
	switch rc {
	case 0:
		return "NOERROR"
	case 2:
		return "SERVFAIL"
	case 3:
		return "NXDOMAIN"
	case 5:
		return "REFUSED"
	}
	return fmt.Sprintf("rcode %d", rc)
}

// (d) For an acknowledged evacuation (ramp [0]: weight 0 when applied) of
// region R answered at t, until the log's next change that brings R back
// in (a restore or a weight above 0, proposed at T), no DNS answer in
// [t + DNSSettle, T) from a controller that was on the stable majority side
// throughout [t - StableBefore, answer] names R. The stable majority side
// is the intersection of every majority clique of running, mutually
// uncut controllers.
func (c *checker) checkD() {
	for _, o := range c.h.Ops {
		if o.Kind != OpEvacuate || o.Outcome() != Acked {
			continue
		}
		ack, _ := o.Ack()
		evs := eventsTagged(c.log, state.EventEvacuate, o.Tag)
		if len(evs) != 1 {
			continue // (a) reports it
		}
		until := time.Time{}
		for _, e := range c.log {
			if e.Index <= evs[0].Index || e.Region != o.Region {
				continue
			}
			if e.Kind == state.EventRestore || e.Kind == state.EventWeight && e.Weight != nil && *e.Weight > 0 {
				until = e.Time
				break
			}
		}
		from := ack.Return.Add(DNSSettle)
		c.res.Checked["d"]++
		for _, p := range c.h.Probes {
			if p.Time.Before(from) || !until.IsZero() && !p.Time.Before(until) || p.Rcode != 0 {
				continue
			}
			if !contains(p.Regions, o.Region) {
				continue
			}
			if c.h.stableThroughout(p.Controller, ack.Return.Add(-StableBefore), p.Time) {
				c.violate("d", "%s answered %s at %s, %.1fs after the evacuation was acknowledged:\n    %s",
					p.Controller, o.Region, clock(p.Time), p.Time.Sub(ack.Return).Seconds(), o)
				break
			}
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// (e) An automatic evacuation of R proposed at T needs a reason in the
// ground truth at some instant of [T - EvidenceWindow, T]: R's backend
// failed on purpose, or no running agent of R could reach a running
// controller directly or through a running agent of another region.
func (c *checker) checkE() {
	for _, e := range c.log {
		if e.Kind != state.EventEvacuate || !strings.Contains(e.Detail, "automatic") || e.Time.Before(c.h.Start) {
			continue
		}
		c.res.Checked["e"]++
		justified := false
		for _, t := range c.h.changePoints(e.Time.Add(-EvidenceWindow), e.Time) {
			if !c.h.regionSeenHealthy(e.Region, t) {
				justified = true
				break
			}
		}
		if !justified {
			c.violate("e", "automatic evacuation of %s with no injected reason in the %s before it:\n    %s\n  faults around it:\n%s",
				e.Region, EvidenceWindow, describeEvent(e), c.faultsAround(e.Time.Add(-EvidenceWindow), e.Time))
		}
	}
}

func (c *checker) faultsAround(a, b time.Time) string {
	var sb strings.Builder
	for _, f := range c.h.Faults {
		if f.End.After(a) && f.Start.Before(b) {
			sb.WriteString("    " + f.String() + "\n")
		}
	}
	if sb.Len() == 0 {
		return "    (none)\n"
	}
	return sb.String()
}

// (f) After the final heal every controller shows the same state within
// ConvergeLimit.
func (c *checker) checkF() {
	c.res.Checked["f"]++
	if c.f.Converged.IsZero() {
		c.violate("f", "controllers did not converge after the final heal at %s", clock(c.f.Healed))
		return
	}
	if d := c.f.Converged.Sub(c.f.Healed); d > ConvergeLimit {
		c.violate("f", "controllers converged %.1fs after the final heal (limit %s)", d.Seconds(), ConvergeLimit)
	}
}

var drillStepRE = regexp.MustCompile(`^drill (\S+) step (\d+)/(\d+)`)

// (g) In the final log no drill step starts or ends twice.
func (c *checker) checkG() {
	seen := map[string]int{}
	for _, e := range c.log {
		if e.Kind != state.EventDrillStepStart && e.Kind != state.EventDrillStepEnd {
			continue
		}
		m := drillStepRE.FindStringSubmatch(e.Detail)
		if m == nil {
			continue
		}
		key := e.Kind + " " + m[0]
		seen[key]++
		c.res.Checked["g"]++
		if seen[key] == 2 {
			c.violate("g", "%s twice in the log: %s", key, describeEvent(e))
		}
	}
}

// (h) During a quorum loss (from QuorumGrace after it starts to its end),
// every surviving controller answers writes with a clear refusal (HTTP 503
// or 504 with a write-failure code, see writeFailureCodes, and a message,
// or a 4xx) and never a 2xx, and its
// DNS answers never name a region that was at weight 0 in its state for
// the whole loss. Empty and failed answers and silences count under (c)
// rules, reported as (h).
// writeFailureCodes are the codes of a write the cluster could not commit
// (controlplane/api): not committed (503) or outcome unknown (504).
var writeFailureCodes = map[string]bool{"no_leader": true, "unavailable": true, "shutting_down": true, "outcome_unknown": true}

func (c *checker) checkH() {
	for _, f := range c.h.Faults {
		if f.Kind != FaultQuorum {
			continue
		}
		from, to := f.Start.Add(QuorumGrace), f.End
		for _, o := range c.h.Ops {
			for _, a := range o.Attempts {
				if contains(f.Nodes, a.Controller) || a.Call.Before(from) || a.Return.After(to) {
					continue
				}
				c.res.Checked["h"]++
				switch {
				case a.OK():
					c.violate("h", "%s acknowledged a write with a majority of controllers down (%s):\n    %s", a.Controller, f, o)
				case a.Status == 0:
					c.violate("h", "%s gave no answer to a write during the quorum loss (%s):\n    %s", a.Controller, f, o)
				case a.Status >= 500 && (!writeFailureCodes[a.Code] || a.Message == ""):
					c.violate("h", "%s refused a write without a clear error during the quorum loss:\n    %s", a.Controller, o)
				}
			}
		}
		zero := c.f.ZeroWeight[f.Start]
		for _, p := range c.h.Probes {
			if p.Time.Before(from) || p.Time.After(to) || p.Rcode != 0 {
				continue
			}
			c.res.Checked["h"]++
			for _, r := range p.Regions {
				if contains(zero[p.Controller], r) {
					c.violate("h", "%s answered %s, at weight 0 in its last state, during the quorum loss at %s", p.Controller, r, clock(p.Time))
				}
			}
		}
	}
}

// (i) Writes sent to a paused leader and answered after it resumed: every
// 2xx among them is in the final log (what (a) demands of every write,
// counted here for this scenario), and the history stays linearizable.
func (c *checker) checkI() {
	for _, f := range c.h.Faults {
		if f.Kind != FaultOldLeader {
			continue
		}
		for _, o := range c.h.Ops {
			for _, a := range o.Attempts {
				if !contains(f.Nodes, a.Controller) || a.Call.Before(f.Start) || a.Call.After(f.End) {
					continue
				}
				c.res.Checked["i"]++
				if !a.OK() || o.Kind == OpConfig {
					continue
				}
				if len(eventsTagged(c.log, opEventKind(o.Kind), o.Tag)) != 1 {
					c.violate("i", "the paused old leader %s acknowledged a write that is not in the final log:\n    %s", a.Controller, o)
				}
			}
		}
	}
}

// Summary counts what a run did, for the report.
type Summary struct {
	Faults               map[FaultKind]int
	Ops                  map[OpKind][3]int // acked, refused, unknown
	Probes, ProbesNoAns  int
	AutoEvacuations      int
	Controllers, Regions int
}

// Summarize counts the history.
func Summarize(h *History, log []state.Event) Summary {
	s := Summary{Faults: map[FaultKind]int{}, Ops: map[OpKind][3]int{}, Controllers: len(h.Topo.Controllers), Regions: len(h.Topo.Regions)}
	for _, f := range h.Faults {
		s.Faults[f.Kind]++
	}
	for _, o := range h.Ops {
		n := s.Ops[o.Kind]
		switch o.Outcome() {
		case Acked:
			n[0]++
		case Refused:
			n[1]++
		default:
			n[2]++
		}
		s.Ops[o.Kind] = n
	}
	for _, p := range h.Probes {
		s.Probes++
		if p.Rcode < 0 {
			s.ProbesNoAns++
		}
	}
	for _, e := range log {
		if e.Kind == state.EventEvacuate && strings.Contains(e.Detail, "automatic") && !e.Time.Before(h.Start) {
			s.AutoEvacuations++
		}
	}
	return s
}

// Table renders the run's report as the markdown table docs/reliability.md
// holds.
func Table(h *History, res *Result, sum Summary, extra [][2]string) string {
	var b strings.Builder
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, v) }
	b.WriteString("| | |\n|---|---|\n")
	row("seed", fmt.Sprint(h.Seed))
	row("duration", h.End.Sub(h.Start).Round(time.Second).String())
	row("cluster", fmt.Sprintf("%d controllers, %d regions of %d agents", sum.Controllers, sum.Regions, len(h.Topo.Regions[0].Agents)))
	for _, kv := range extra {
		row(kv[0], kv[1])
	}
	var kinds []string
	total := 0
	for k, n := range sum.Faults {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		total += n
	}
	sort.Strings(kinds)
	row("faults injected", fmt.Sprintf("%d: %s", total, strings.Join(kinds, ", ")))
	issued, acked := 0, 0
	var ops []string
	for _, k := range []OpKind{OpEvacuate, OpRestore, OpConfig, OpDrill} {
		n := sum.Ops[k]
		issued += n[0] + n[1] + n[2]
		acked += n[0]
		ops = append(ops, fmt.Sprintf("%s %d/%d/%d", k, n[0], n[1], n[2]))
	}
	row("operations issued / acknowledged", fmt.Sprintf("%d / %d (acked/refused/unknown: %s)", issued, acked, strings.Join(ops, ", ")))
	row("automatic evacuations", fmt.Sprint(sum.AutoEvacuations))
	row("DNS probes (unanswered)", fmt.Sprintf("%d (%d)", sum.Probes, sum.ProbesNoAns))
	row("porcupine", fmt.Sprintf("%s over %d operations", res.Lin, res.LinOps))
	for _, inv := range Invariants {
		row(fmt.Sprintf("violations (%s) %s", inv, InvariantTitles[inv]), fmt.Sprintf("%d (of %d checked)", len(res.Violations[inv]), res.Checked[inv]))
	}
	return b.String()
}
