package wire

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/evac-sh/evac/controlplane/state"
)

// Status is GET /v1/status.
type Status struct {
	NodeID       string `json:"node_id"`
	Leader       string `json:"leader"`
	LeaderAddr   string `json:"leader_addr"`
	IsLeader     bool   `json:"is_leader"`
	Term         uint64 `json:"term"`
	Frozen       bool   `json:"frozen"`
	FrozenReason string `json:"frozen_reason,omitempty"`
	// FrozenBy and FrozenSince say who froze the cluster, and when.
	FrozenBy      string    `json:"frozen_by,omitempty"`
	FrozenSince   time.Time `json:"frozen_since,omitzero"`
	ConfigVersion uint64    `json:"config_version"`
	AppliedIndex  uint64    `json:"applied_index"`
	CommitIndex   uint64    `json:"commit_index"`
	Serial        uint32    `json:"serial"`
	// SOASerial is the SOA serial this controller's DNS serves: Serial,
	// plus a signing-period offset with signed zone transfers
	// (docs/dnssec.md); 0 before it serves a zone.
	SOASerial uint32  `json:"soa_serial"`
	RaftState string  `json:"raft_state"`
	Voters    []Voter `json:"voters"`
	// Warnings name insecure settings in force on this controller.
	Warnings []string `json:"warnings,omitempty"`
	// GeoIP is this controller's GeoIP database, when it has one.
	GeoIP *GeoIPStatus `json:"geoip,omitempty"`
	// Role is this node's part in the cluster: voter, nonvoter, edge (an
	// edge replica: a non-voter for good that serves DNS and reads and
	// runs none of the leader's loops), or none (not in its Raft
	// configuration: not yet added, or removed).
	Role string `json:"role"`
	// DNSSEC is this controller's signing keys and the members', when it
	// has keys or refuses signed answers.
	DNSSEC *DNSSECStatus `json:"dnssec,omitempty"`
}

// DNSSECStatus is how a controller signs (docs/dnssec.md): public key
// metadata only.
type DNSSECStatus struct {
	// Signing: it has keys and they are the leader's.
	Signing bool `json:"signing"`
	// KeyTags are its keys' tags; Keys the same as tag/algorithm/role
	// (csk, ksk, zsk); Fingerprint a hash of the public keys.
	KeyTags     []int    `json:"key_tags"`
	Keys        []string `json:"keys"`
	Fingerprint string   `json:"fingerprint,omitempty"`
	// DS are the DS records (SHA-256) of its KSKs/CSKs for the parent.
	DS []string `json:"ds"`
	// Refusal says why it answers SERVFAIL to queries with DO: its keys
	// differ from the leader's.
	Refusal string `json:"refusal,omitempty"`
	// Members are the Raft members' keys, as their status probes showed
	// them at the last comparison.
	Members []DNSSECMember `json:"members"`
	// KeyStates are the cluster's recorded key states (absent until
	// recorded: every server then signs with every key of its
	// directory), Rollover the rollover in progress.
	KeyStates []DNSSECKeyState `json:"key_states,omitempty"`
	Rollover  *DNSSECRollover  `json:"rollover,omitempty"`
	// Unpublished are this controller's keys the key states do not name:
	// neither published nor used (the next rollover's key, or a stale one).
	Unpublished []string `json:"unpublished,omitempty"`
	// ReloadError says why the last SIGHUP reload of the key directory
	// failed (the keys in force are the last good ones).
	ReloadError string `json:"reload_error,omitempty"`
}

// DNSSECKeyState is a key of the cluster's DNSKEY RRset: id
// (tag/algorithm/flags/hash of the public key), role (csk, ksk, zsk) and
// state (published, active).
type DNSSECKeyState struct {
	ID    string    `json:"id"`
	Tag   int       `json:"tag"`
	Role  string    `json:"role"`
	State string    `json:"state"`
	Since time.Time `json:"since"`
}

// DNSSECRollover is a key rollover in progress.
type DNSSECRollover struct {
	New   string `json:"new"`
	Old   string `json:"old"`
	Phase string `json:"phase"` // published, active
	// Since is when the phase began; NotBefore when the next step is
	// safe; WaitLeft the time left until then ("0s" when it is).
	Since     time.Time `json:"since"`
	NotBefore time.Time `json:"not_before"`
	WaitLeft  string    `json:"wait_left"`
	// Next says what the next step does.
	Next    string    `json:"next"`
	DSTTL   string    `json:"ds_ttl,omitempty"`
	Started time.Time `json:"started"`
	Actor   string    `json:"actor"`
	Reason  string    `json:"reason,omitempty"`
}

// DNSSECRolloverRequest is the body of POST
// /v1/dnssec/rollover/{init|start|next|abort}.
type DNSSECRolloverRequest struct {
	// Key is the new key of a start: its tag, or its id when tags clash.
	Key    string `json:"key,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Force makes a next step before its wait has passed, or with a
	// member unreachable or behind.
	Force bool `json:"force,omitempty"`
	// DSTTL is the TTL of the zone's DS records at the parent, for a
	// rollover of a KSK or CSK (start; default 24h).
	DSTTL string `json:"ds_ttl,omitempty"`
}

// DNSSECRolloverResult is the answer to a rollover step: the write, the
// key states after it, and what the operator must do next.
type DNSSECRolloverResult struct {
	Index     uint64           `json:"index"`
	Events    []uint64         `json:"events,omitempty"`
	Duplicate bool             `json:"duplicate,omitempty"`
	KeyStates []DNSSECKeyState `json:"key_states"`
	Rollover  *DNSSECRollover  `json:"rollover,omitempty"`
	// DS are the DS records of the SEP keys after the step (for the
	// parent zone).
	DS    []string `json:"ds,omitempty"`
	Notes []string `json:"notes,omitempty"`
}

// DNSSECMember is one controller's DNSSEC keys.
type DNSSECMember struct {
	ID          string   `json:"id"`
	Leader      bool     `json:"leader,omitempty"`
	Reachable   bool     `json:"reachable"`
	Keys        []string `json:"keys,omitempty"`
	Fingerprint string   `json:"fingerprint,omitempty"`
	// Lacks are the keys the cluster's key states name that the member's
	// directory does not hold (it refuses answers with DO meanwhile).
	Lacks []string `json:"lacks,omitempty"`
}

// Roles of GET /v1/status and GET /v1/cluster/peers.
const (
	RoleVoter    = "voter"
	RoleNonvoter = "nonvoter"
	RoleEdge     = "edge"
	RoleNone     = "none"
)

// GeoIPStatus is the GeoIP database a controller's nearest answers use.
type GeoIPStatus struct {
	File      string    `json:"file"`
	Type      string    `json:"type"`
	BuildTime time.Time `json:"build_time"`
	LoadedAt  time.Time `json:"loaded_at"`
	Records   int       `json:"records"`
	// ReloadError is the last reload's error when it failed (the database
	// above is still in force); empty after a good load.
	ReloadError   string     `json:"reload_error,omitempty"`
	ReloadErrorAt *time.Time `json:"reload_error_at,omitempty"`
}

// Voter is one voting member of the Raft configuration. It also decodes
// from the bare string ("c0" or "c0=127.0.9.1:7300") and the object with
// name/address keys that earlier releases sent, so a new CLI reads an old
// controller's status during a rolling upgrade.
type Voter struct {
	ID     string `json:"id"`
	Addr   string `json:"addr"`
	Leader bool   `json:"leader,omitempty"`
}

// UnmarshalJSON accepts a string or an object; see Voter.
func (v *Voter) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		id, addr, _ := strings.Cut(s, "=")
		*v = Voter{ID: id, Addr: addr}
		return nil
	}
	var o struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Addr    string `json:"addr"`
		Address string `json:"address"`
		Leader  bool   `json:"leader"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return fmt.Errorf("voter: want a string or an object, got %s", b)
	}
	*v = Voter{ID: o.ID, Addr: o.Addr, Leader: o.Leader}
	if v.ID == "" {
		v.ID = o.Name
	}
	if v.Addr == "" {
		v.Addr = o.Address
	}
	return nil
}

// String renders the voter as "id" or "id=addr".
func (v Voter) String() string {
	if v.Addr == "" {
		return v.ID
	}
	return v.ID + "=" + v.Addr
}

// RegionHealth is one region in a controller's gossip view.
type RegionHealth struct {
	AgentsAlive int
	AgentsTotal int
	// AgentsDead failed (evidence against the region); AgentsLeft left
	// gracefully (no evidence either way).
	AgentsDead int
	AgentsLeft int
	// CapacityReported is the sum of the capacity the region's alive
	// agents report; nil when none reports one.
	CapacityReported *float64
	Services         map[string]ServiceHealth
}

// ServiceHealth is one service in one region.
type ServiceHealth struct {
	Share     float64  `json:"share"`
	Known     bool     `json:"known"`
	Healthy   bool     `json:"healthy"`
	Passing   int      `json:"passing"`
	Reporting int      `json:"reporting"`
	Failing   []string `json:"failing,omitempty"`
	// Stale lists node/check reports too old to count either way.
	Stale []string `json:"stale,omitempty"`
	// WarmingUp lists node/check reports of checks that have not run
	// `rise` times yet: no evidence either way.
	WarmingUp []string `json:"warming_up,omitempty"`
	// Checks breaks the service down by check name.
	Checks map[string]CheckHealth `json:"checks,omitempty"`
}

// CheckHealth is one check of one service in one region: alive agents
// passing it, of those reporting it.
type CheckHealth struct {
	Passing   int `json:"passing"`
	Reporting int `json:"reporting"`
}

// Region is one element of GET /v1/regions.
type Region struct {
	Name        string      `json:"name"`
	State       state.Phase `json:"state"`
	Weight      int         `json:"weight"`
	Health      *float64    `json:"health"`
	AgentsAlive int         `json:"agents_alive"`
	AgentsTotal int         `json:"agents_total"`
	Capacity    int         `json:"capacity,omitempty"`
	// CapacityReported is the capacity the region's agents report, summed.
	CapacityReported *float64                 `json:"capacity_reported,omitempty"`
	Since            time.Time                `json:"since"`
	Reason           string                   `json:"reason,omitempty"`
	Actor            string                   `json:"actor,omitempty"`
	Automatic        bool                     `json:"automatic,omitempty"`
	Ramp             *state.Ramp              `json:"ramp"`
	Services         map[string]ServiceHealth `json:"services"`
	// Drill is the running drill that holds this region, if any: a drill's
	// evacuation is planned, not an incident, and shows as such.
	Drill *RegionDrill `json:"drill,omitempty"`
	// HomeShare is the region's share of the nearest services' answers
	// by the clients' first choice, as the controllers measured it
	// (absent when nothing was measured).
	HomeShare *float64 `json:"home_share,omitempty"`
	// Spill is where the region's clients go while its weight is lowered
	// (an evacuation or a drill): the leader's capacity plan.
	Spill *state.SpillPlan `json:"spill,omitempty"`
}

// HealthShare is Health, or 0 while no agent reports on the region.
func (r Region) HealthShare() float64 {
	if r.Health == nil {
		return 0
	}
	return *r.Health
}

// RegionDrill is the running drill that holds a region, and where it is.
type RegionDrill struct {
	ID      string `json:"id"`
	Runbook string `json:"runbook"`
	// Step is the step in progress, 1-based, of Steps.
	Step     int    `json:"step"`
	Steps    int    `json:"steps"`
	StepKind string `json:"step_kind,omitempty"`
	// NextAt is when the wait in progress ends (zero for other steps).
	NextAt time.Time `json:"next_at,omitzero"`
}

// Service is one element of GET /v1/services.
type Service struct {
	Name    string          `json:"name"`
	FQDN    string          `json:"fqdn"`
	Policy  string          `json:"policy"`
	TTL     uint32          `json:"ttl"`
	Regions []ServiceRegion `json:"regions"`
}

// ServiceRegion is a service's view of one region.
type ServiceRegion struct {
	Region          string   `json:"region"`
	Endpoints       []string `json:"endpoints"`
	Weight          int      `json:"weight"`
	EffectiveWeight int      `json:"effective_weight"`
	Healthy         bool     `json:"healthy"`
}

// Member is one element of GET /v1/members.
type Member struct {
	Name                 string    `json:"name"`
	Addr                 string    `json:"addr"`
	Region               string    `json:"region"`
	Role                 string    `json:"role"`
	State                string    `json:"state"`
	LastChange           time.Time `json:"last_change"`
	LastReportAgeSeconds float64   `json:"last_report_age_seconds"`
	Failing              []string  `json:"failing,omitempty"`
}

// MoveRequest is the body of evacuate and restore.
type MoveRequest struct {
	Reason       string         `json:"reason"`
	Ramp         []int          `json:"ramp,omitempty"`
	StepInterval state.Duration `json:"step_interval,omitempty"`
	Force        bool           `json:"force,omitempty"`
	DryRun       bool           `json:"dry_run,omitempty"`
}

// WriteResult is the answer to a write.
type WriteResult struct {
	Index     uint64   `json:"index"`
	Events    []uint64 `json:"events,omitempty"`
	Duplicate bool     `json:"duplicate,omitempty"`
	Region    *Region  `json:"region,omitempty"`
	Version   uint64   `json:"version,omitempty"`
	// Unchanged: PUT /v1/config of the config in force; nothing was
	// proposed, and Version is the version in force.
	Unchanged bool `json:"unchanged,omitempty"`
	// DryRun holds what the change would do, for dry runs.
	DryRun *DryRun `json:"dry_run,omitempty"`
}

// DryRun shows the outcome of a change without making it.
type DryRun struct {
	Allowed bool          `json:"allowed"`
	Refusal string        `json:"refusal,omitempty"`
	Code    string        `json:"code,omitempty"`
	Regions []Region      `json:"regions"`
	Events  []state.Event `json:"events,omitempty"`
	// Spill, for an evacuation, is where the region's clients would go:
	// per receiving region the share it would take and its predicted
	// utilisation, from the measured home demand.
	Spill *state.SpillPlan `json:"spill,omitempty"`
}

// ConfigInfo is GET /v1/config (JSON): the steering config in force,
// secrets redacted, and its version.
type ConfigInfo struct {
	Version uint64        `json:"version"`
	Config  *state.Config `json:"config"`
}

// FreezeRequest is the body of POST /v1/freeze and (optional) /v1/unfreeze.
type FreezeRequest struct {
	Reason string `json:"reason"`
}

// Error is the JSON body of every error.
type Error struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}
