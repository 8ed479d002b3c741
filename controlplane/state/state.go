package state

import (
	"time"
)

// Phase is where a region is in its evacuation life cycle.
type Phase string

// Region phases: active -> evacuating -> evacuated -> restoring -> active.
const (
	PhaseActive     Phase = "active"
	PhaseEvacuating Phase = "evacuating"
	PhaseEvacuated  Phase = "evacuated"
	PhaseRestoring  Phase = "restoring"
)

// MaxEvents is how many audit events the state keeps; older ones are dropped
// from memory and snapshots (their sequence numbers are never reused).
const MaxEvents = 50000

// recentRequests is how many request ids are remembered to make retried
// commands no-ops.
const recentRequests = 4096

// State is one immutable version of the replicated steering state. Never
// modify a State that has been published; Apply returns a new one.
type State struct {
	// Index is the Raft index of the last applied command.
	Index uint64 `json:"index"`
	// Serial is the SOA serial: it rises with every change that can alter a
	// DNS answer.
	Serial        uint32                 `json:"serial"`
	Config        *Config                `json:"config,omitempty"`
	ConfigVersion uint64                 `json:"config_version"`
	ConfigHistory []ConfigRecord         `json:"config_history,omitempty"`
	Regions       map[string]RegionState `json:"regions"`
	// Unhealthy marks the services the leader found unhealthy in a region,
	// with the time it did: region -> service -> since.
	Unhealthy map[string]map[string]time.Time `json:"unhealthy,omitempty"`
	Frozen    bool                            `json:"frozen"`
	FrozenBy  string                          `json:"frozen_by,omitempty"`
	// FrozenReason says why automatic changes are stopped.
	FrozenReason string `json:"frozen_reason,omitempty"`
	// AutoEvacuations are the times of recent automatic evacuations (for the
	// budget), oldest first.
	AutoEvacuations []time.Time `json:"auto_evacuations,omitempty"`
	Events          []Event     `json:"events,omitempty"`
	NextSeq         uint64      `json:"next_seq"`
	Requests        []string    `json:"requests,omitempty"`
	RequestPos      int         `json:"request_pos"`

	// Runbooks are the stored drill runbooks by name.
	Runbooks map[string]RunbookRecord `json:"runbooks,omitempty"`
	// Drills are the running and recent drills by id.
	Drills map[string]Drill `json:"drills,omitempty"`
	// Schedules are the scheduled drills by id.
	Schedules map[string]Schedule `json:"schedules,omitempty"`
	// Notify is the delivery progress of each notification sink, by name.
	Notify map[string]SinkProgress `json:"notify,omitempty"`
	// Agents are the enrolled agents by name (agents.go); absent from
	// snapshots older than enrolment.
	Agents map[string]AgentRecord `json:"agents,omitempty"`
	// Demand is each controller's latest home-demand report, by node
	// (demand.go); Spill the capacity plan of each region whose clients
	// are leaving it (spill.go). Both absent from older snapshots.
	Demand map[string]DemandReport `json:"demand,omitempty"`
	Spill  map[string]SpillPlan    `json:"spill,omitempty"`
	// DNSSEC is the cluster's recorded DNSSEC key states (dnssec.go); nil
	// until recorded: every server then signs with its directory's keys.
	DNSSEC *DNSSECState `json:"dnssec,omitempty"`
}

// ConfigRecord is one applied version of the steering config.
type ConfigRecord struct {
	Version uint64    `json:"version"`
	Index   uint64    `json:"index"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Config  *Config   `json:"config"`
}

// maxConfigHistory is how many config versions are kept.
const maxConfigHistory = 20

// RegionState is a region's replicated steering state.
type RegionState struct {
	Name   string    `json:"name"`
	Phase  Phase     `json:"state"`
	Weight int       `json:"weight"`
	Since  time.Time `json:"since"`
	Reason string    `json:"reason,omitempty"`
	Actor  string    `json:"actor,omitempty"`
	// Automatic is set while the region is out because of an automatic
	// evacuation (it counts against max_evacuated).
	Automatic bool `json:"automatic,omitempty"`
	// Ramp is the evacuation or restore in progress, if any.
	Ramp *Ramp `json:"ramp,omitempty"`
	// RestoredAt is when the region last became active after a restore (for
	// the hold-down period).
	RestoredAt time.Time `json:"restored_at,omitempty"`
	// HealthySince is when the last of the region's unhealthy services was
	// found healthy again (zero while any is unhealthy); automatic restore
	// counts from it.
	HealthySince time.Time `json:"healthy_since,omitempty"`
}

// Ramp is a stepped weight change in progress. Steps[Next-1] is the weight
// applied last; Steps[Next] is due at NextAt.
type Ramp struct {
	Kind     string    `json:"kind"` // "evacuate" | "restore"
	Steps    []int     `json:"steps"`
	Next     int       `json:"next"`
	Interval Duration  `json:"interval"`
	NextAt   time.Time `json:"next_at"`
}

// Target is the weight the ramp ends on.
func (r *Ramp) Target() int { return r.Steps[len(r.Steps)-1] }

// Event is one entry of the audit log.
type Event struct {
	Seq     uint64    `json:"seq"`
	Index   uint64    `json:"index"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Kind    string    `json:"kind"`
	Region  string    `json:"region,omitempty"`
	Service string    `json:"service,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Detail  string    `json:"detail,omitempty"`
	// Weight is the region's traffic weight after the event, for events that
	// change it.
	Weight *int `json:"weight,omitempty"`
}

// Event kinds.
const (
	EventConfigApplied  = "config.applied"
	EventEvacuate       = "region.evacuate"
	EventRestore        = "region.restore"
	EventStep           = "region.step"
	EventWeight         = "region.weight"
	EventEvacuated      = "region.evacuated"
	EventActive         = "region.active"
	EventHealthLost     = "health.unhealthy"
	EventHealthRegained = "health.healthy"
	EventFreeze         = "freeze"
	EventUnfreeze       = "unfreeze"
	EventNote           = "note"
)

// Empty returns the state of a cluster that has applied nothing.
func Empty() *State {
	return &State{Regions: map[string]RegionState{}, NextSeq: 1}
}

// Region returns a region's state.
func (s *State) Region(name string) (RegionState, bool) {
	r, ok := s.Regions[name]
	return r, ok
}

// RegionList returns the regions in config order.
func (s *State) RegionList() []RegionState {
	if s.Config == nil {
		return nil
	}
	out := make([]RegionState, 0, len(s.Config.Regions))
	for _, r := range s.Config.Regions {
		if rs, ok := s.Regions[r.Name]; ok {
			out = append(out, rs)
		}
	}
	return out
}

// IsUnhealthy reports whether the leader marked service svc unhealthy in region.
func (s *State) IsUnhealthy(region, svc string) bool {
	_, bad := s.Unhealthy[region][svc]
	return bad
}

// EventsSince returns up to limit events with Seq > since, oldest first.
func (s *State) EventsSince(since uint64, limit int) []Event {
	evs := s.Events
	// Events are ordered by Seq; find the first one past since.
	lo, hi := 0, len(evs)
	for lo < hi {
		m := (lo + hi) / 2
		if evs[m].Seq <= since {
			lo = m + 1
		} else {
			hi = m
		}
	}
	evs = evs[lo:]
	if limit > 0 && len(evs) > limit {
		evs = evs[:limit]
	}
	return evs
}

// FrozenSince is when the freeze in force began, from the audit log: the
// zero time when not frozen, or when that event has rolled off the log.
func (s *State) FrozenSince() time.Time {
	if !s.Frozen {
		return time.Time{}
	}
	for i := len(s.Events) - 1; i >= 0; i-- {
		if s.Events[i].Kind == EventFreeze {
			return s.Events[i].Time
		}
	}
	return time.Time{}
}

// RegionWeight is a region's effective weight for one service.
type RegionWeight struct {
	Region string
	Weight int
}

// EffectiveWeights returns, in config order, the effective weight of each
// region that has endpoints for service svc: the region's traffic weight,
// or 0 where the service is marked unhealthy there while another region with
// weight is healthy. Health counts only in policy mode auto: in shadow and
// off modes the answers follow the traffic weights alone. It never returns all zeros while the service has
// endpoints: when every weighted region is unhealthy health is ignored, and
// when every weight is 0 (only possible by a forced change) every region
// gets weight 1. An empty DNS answer is worse than a degraded one.
func (s *State) EffectiveWeights(svc *Service) []RegionWeight {
	out := make([]RegionWeight, 0, len(svc.Endpoints))
	if s.Config == nil {
		return out
	}
	useHealth := s.Config.Policy.Mode == ModeAuto
	healthyWeighted := false
	for _, r := range s.Config.Regions {
		if _, ok := svc.Endpoints[r.Name]; !ok {
			continue
		}
		w := s.Regions[r.Name].Weight
		if w > 0 && !s.IsUnhealthy(r.Name, svc.Name) {
			healthyWeighted = true
		}
		out = append(out, RegionWeight{Region: r.Name, Weight: w})
	}
	total := 0
	for i := range out {
		if useHealth && healthyWeighted && s.IsUnhealthy(out[i].Region, svc.Name) {
			out[i].Weight = 0
		}
		total += out[i].Weight
	}
	if total == 0 {
		for i := range out {
			out[i].Weight = 1
		}
	}
	return out
}
