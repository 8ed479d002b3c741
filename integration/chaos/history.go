package chaos

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"
)

// OpKind is what a client asked for.
type OpKind string

// Client operations.
const (
	OpEvacuate OpKind = "evacuate"
	OpRestore  OpKind = "restore"
	OpConfig   OpKind = "config"
	OpDrill    OpKind = "drill"
)

// Attempt is one HTTP request of an operation. An operation is retried with
// the same Idempotency-Key while its outcome is ambiguous.
type Attempt struct {
	Controller string
	Call       time.Time
	Return     time.Time
	// Status is the HTTP status, 0 when no response came (connection
	// refused or reset, timeout).
	Status int
	// Code and Message are the JSON error body of a 4xx or 5xx answer.
	Code    string
	Message string
	// Err is the transport error when Status is 0.
	Err string
	// Index is the Raft index of a 2xx answer; Duplicate marks a 2xx that
	// found the request id already applied.
	Index     uint64
	Duplicate bool
}

// Ambiguous reports whether the attempt may or may not have been applied:
// no response, or a 5xx (the server gave up waiting for Raft; the entry may
// still commit).
func (a Attempt) Ambiguous() bool { return a.Status == 0 || a.Status >= 500 }

// OK reports a 2xx answer.
func (a Attempt) OK() bool { return a.Status >= 200 && a.Status <= 299 }

func (a Attempt) String() string {
	s := fmt.Sprintf("%s [%s .. %s] ", a.Controller, clock(a.Call), clock(a.Return))
	switch {
	case a.Status == 0:
		s += "no answer: " + a.Err
	case a.OK():
		s += fmt.Sprintf("HTTP %d index %d", a.Status, a.Index)
		if a.Duplicate {
			s += " duplicate"
		}
	default:
		s += fmt.Sprintf("HTTP %d %s: %s", a.Status, a.Code, a.Message)
	}
	return s
}

// Op is one client operation: its tag (also its Idempotency-Key and its
// reason text, so the audit log names it) and every attempt.
type Op struct {
	Tag      string
	Client   int
	Kind     OpKind
	Region   string
	Attempts []Attempt
}

// Outcome classifies an operation by its attempts.
type Outcome string

// Outcomes.
const (
	// Acked: some attempt got a 2xx (possibly a duplicate of an earlier
	// ambiguous attempt that was applied).
	Acked Outcome = "acked"
	// Refused: every attempt got a definite 4xx.
	Refused Outcome = "refused"
	// Unknown: no attempt got a 2xx and at least one was ambiguous.
	Unknown Outcome = "unknown"
)

// Outcome is the operation's outcome.
func (o *Op) Outcome() Outcome {
	amb := false
	for _, a := range o.Attempts {
		if a.OK() {
			return Acked
		}
		if a.Ambiguous() {
			amb = true
		}
	}
	if amb || len(o.Attempts) == 0 {
		return Unknown
	}
	return Refused
}

// AckIndex is the index and return time of the first 2xx attempt.
func (o *Op) Ack() (Attempt, bool) {
	for _, a := range o.Attempts {
		if a.OK() {
			return a, true
		}
	}
	return Attempt{}, false
}

func (o *Op) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "op %s %s %s:", o.Tag, o.Kind, o.Region)
	for _, a := range o.Attempts {
		b.WriteString("\n      ")
		b.WriteString(a.String())
	}
	return b.String()
}

// Probe is one DNS query to one controller.
type Probe struct {
	Controller string
	Time       time.Time
	// Rcode is the answer's rcode, -1 when no answer came in time.
	Rcode int
	// Regions are the regions whose endpoints the answer holds.
	Regions []string
	// Answers is the number of A records.
	Answers int
}

// FaultKind names a kind of injected fault.
type FaultKind string

// Fault kinds.
const (
	FaultKill      FaultKind = "kill"         // kill -9, restarted at End
	FaultPause     FaultKind = "pause"        // SIGSTOP, SIGCONT at End
	FaultCut       FaultKind = "partition"    // nftables drops, healed at End
	FaultLoss      FaultKind = "gossip-loss"  // random UDP loss between nodes
	FaultBackend   FaultKind = "backend-fail" // a region's backend fails its checks
	FaultQuorum    FaultKind = "quorum-loss"  // a majority of controllers killed or paused
	FaultOldLeader FaultKind = "paused-leader-writes"
	FaultDelay     FaultKind = "raft-delay" // Raft traffic through a delaying proxy
)

// restartSettling is how long after its restart a killed process still
// counts as down: it must bind its ports and load its state.
const restartSettling = 3 * time.Second

// Cut is a one-way drop of packets From -> To.
type Cut struct{ From, To netip.Prefix }

// Fault is one injected fault with its interval.
type Fault struct {
	Kind FaultKind
	// Name says which variant (e.g. "leader alone", "region isolated").
	Name string
	// Nodes are the processes killed or paused (controller ids, agent
	// names).
	Nodes []string
	Cuts  []Cut
	// Region is the region whose backend failed.
	Region string
	// Loss is the share of packets dropped, in percent.
	Loss       int
	Start, End time.Time
	Detail     string
}

func (f Fault) String() string {
	s := fmt.Sprintf("[%s .. %s] %s", clock(f.Start), clock(f.End), f.Kind)
	if f.Name != "" {
		s += " (" + f.Name + ")"
	}
	if len(f.Nodes) > 0 {
		s += " " + strings.Join(f.Nodes, ",")
	}
	if f.Region != "" {
		s += " " + f.Region
	}
	if f.Loss > 0 {
		s += fmt.Sprintf(" %d%%", f.Loss)
	}
	for _, c := range f.Cuts {
		s += fmt.Sprintf(" %s->%s", c.From, c.To)
	}
	if f.Detail != "" {
		s += ": " + f.Detail
	}
	return s
}

// Node is one process and its address.
type Node struct {
	Name string
	IP   netip.Addr
}

// RegionTopo is a region: its subnet and agents.
type RegionTopo struct {
	Name   string
	Subnet netip.Prefix
	Agents []Node
}

// Topology is the cluster under test.
type Topology struct {
	Controllers []Node
	Regions     []RegionTopo
}

// History is everything recorded during a run. It is safe for concurrent
// use while recording.
type History struct {
	mu     sync.Mutex
	Start  time.Time
	End    time.Time
	Seed   int64
	Topo   Topology
	Ops    []*Op
	Probes []Probe
	Faults []Fault
}

// AddOp records a finished operation.
func (h *History) AddOp(o *Op) {
	h.mu.Lock()
	h.Ops = append(h.Ops, o)
	h.mu.Unlock()
}

// AddProbe records a DNS probe.
func (h *History) AddProbe(p Probe) {
	h.mu.Lock()
	h.Probes = append(h.Probes, p)
	h.mu.Unlock()
}

// AddFault records a fault once it has ended.
func (h *History) AddFault(f Fault) {
	h.mu.Lock()
	h.Faults = append(h.Faults, f)
	h.mu.Unlock()
}

// sorted orders ops by first call and probes by time (recording order
// depends on when each finished).
func (h *History) sorted() {
	h.mu.Lock()
	defer h.mu.Unlock()
	sort.SliceStable(h.Ops, func(i, j int) bool { return firstCall(h.Ops[i]).Before(firstCall(h.Ops[j])) })
	sort.SliceStable(h.Probes, func(i, j int) bool { return h.Probes[i].Time.Before(h.Probes[j].Time) })
	sort.SliceStable(h.Faults, func(i, j int) bool { return h.Faults[i].Start.Before(h.Faults[j].Start) })
}

func firstCall(o *Op) time.Time {
	if len(o.Attempts) == 0 {
		return time.Time{}
	}
	return o.Attempts[0].Call
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("15:04:05.000")
}
