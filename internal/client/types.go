package client

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/evac-sh/evac/controlplane/api"
	"github.com/evac-sh/evac/controlplane/state"
)

// Status is GET /v1/status: this controller's view of the cluster.
type Status struct {
	NodeID        string    `json:"node_id"`
	Leader        string    `json:"leader"`
	LeaderAddr    string    `json:"leader_addr"`
	IsLeader      bool      `json:"is_leader"`
	Term          uint64    `json:"term"`
	Frozen        bool      `json:"frozen"`
	FrozenReason  string    `json:"frozen_reason"`
	FrozenBy      string    `json:"frozen_by,omitempty"`
	FrozenSince   time.Time `json:"frozen_since,omitzero"`
	ConfigVersion uint64    `json:"config_version"`
	AppliedIndex  uint64    `json:"applied_index"`
	CommitIndex   uint64    `json:"commit_index"`
	Serial        uint32    `json:"serial"`
	RaftState     string    `json:"raft_state"`
	Voters        []Voter   `json:"voters"`
	// Warnings name insecure settings in force on the controller.
	Warnings []string `json:"warnings,omitempty"`
	// GeoIP is the controller's GeoIP database, when it has one.
	GeoIP *GeoIPStatus `json:"geoip,omitempty"`
	// DNSSEC is the controller's signing keys, when it has some.
	DNSSEC *DNSSECStatus `json:"dnssec,omitempty"`
}

// DNSSECStatus is a controller's DNSSEC signing (GET /v1/status).
type DNSSECStatus = api.DNSSECStatus

// Voter is one voting member of the Raft configuration. It decodes from a
// bare string ("c0" or "c0=127.0.9.1:7300") as well as from an object
// {"id": ..., "addr"|"address": ...}.
type Voter struct {
	ID   string `json:"id"`
	Addr string `json:"addr,omitempty"`
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
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return fmt.Errorf("voter: want a string or an object, got %s", b)
	}
	*v = Voter{ID: o.ID, Addr: o.Addr}
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

// Region is GET /v1/regions/{r}: a region's steering state and health.
type Region struct {
	Name string `json:"name"`
	// State is active, evacuating, evacuated or restoring.
	State string `json:"state"`
	// Weight is the region's traffic weight, 0..100.
	Weight int `json:"weight"`
	// Health is the worst share of live agents passing a service's checks
	// in this region, 0..1.
	Health      float64   `json:"health"`
	AgentsAlive int       `json:"agents_alive"`
	AgentsTotal int       `json:"agents_total"`
	Since       time.Time `json:"since"`
	Reason      string    `json:"reason"`
	Actor       string    `json:"actor"`
	Automatic   bool      `json:"automatic"`
	// Ramp is the evacuation or restore in progress, or nil.
	Ramp *Ramp `json:"ramp"`
	// Services is the health of each service in this region, by name.
	Services map[string]RegionService `json:"services"`
	// CapacityReported is the capacity the region's live agents report,
	// summed; nil when none reports one.
	CapacityReported *float64 `json:"capacity_reported,omitempty"`
	// Drill is the running drill that holds the region, if any.
	Drill *RegionDrill `json:"drill,omitempty"`
}

// RegionDrill is the API's own type: the running drill holding a region.
type RegionDrill = api.RegionDrill

// Ramp is a stepped weight change in progress: Steps[Next] is due at NextAt.
type Ramp struct {
	Kind   string    `json:"kind"` // "evacuate" | "restore"
	Steps  []int     `json:"steps"`
	Next   int       `json:"next"`
	NextAt time.Time `json:"next_at"`
}

// RegionService is one service's health in one region: the API's own type
// (its agents' share passing, the failing, stale and warming-up checks).
type RegionService = api.ServiceHealth

// CheckHealth is one check of a service in a region: the API's own type.
type CheckHealth = api.CheckHealth

// Service is one entry of GET /v1/services.
type Service struct {
	Name    string          `json:"name"`
	FQDN    string          `json:"fqdn"`
	Policy  string          `json:"policy"`
	TTL     uint32          `json:"ttl"`
	Regions []ServiceRegion `json:"regions"`
}

// ServiceRegion is a service's endpoints and weights in one region.
type ServiceRegion struct {
	Region    string   `json:"region"`
	Endpoints []string `json:"endpoints"`
	// Weight is the region's traffic weight; EffectiveWeight is what DNS
	// uses after health is taken into account.
	Weight          int  `json:"weight"`
	EffectiveWeight int  `json:"effective_weight"`
	Healthy         bool `json:"healthy"`
}

// Member is one entry of GET /v1/members: an agent or controller seen
// through gossip.
type Member struct {
	Name   string `json:"name"`
	Addr   string `json:"addr"`
	Region string `json:"region"`
	Role   string `json:"role"`
	// State is alive, suspect, dead or left.
	State      string    `json:"state"`
	LastChange time.Time `json:"last_change"`
	// LastReportAgeSeconds is how long ago the member's last health report
	// arrived, or -1 if none did.
	LastReportAgeSeconds float64  `json:"last_report_age_seconds"`
	Failing              []string `json:"failing"`
}

// ConfigInfo is GET /v1/config: the steering config and its version.
type ConfigInfo struct {
	Version uint64        `json:"version"`
	Config  *state.Config `json:"config"`
}

// MoveRequest is the body of POST /v1/regions/{r}/evacuate and /restore.
// Zero fields take the steering policy's defaults.
type MoveRequest struct {
	Reason string `json:"reason"`
	// Ramp is the traffic weight steps, e.g. [50, 0] to evacuate.
	Ramp []int `json:"ramp,omitempty"`
	// StepInterval is the wait between steps as a Go duration ("30s").
	StepInterval string `json:"step_interval,omitempty"`
	// Force overrides safety checks (evacuate only), e.g. the last region.
	Force bool `json:"force,omitempty"`
	// DryRun asks what would happen and changes nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// WriteResult is the answer to a write: the Raft index it committed at, the
// audit events it recorded, and whether it was a retry of an applied request.
type WriteResult struct {
	Index     uint64   `json:"index"`
	Events    []uint64 `json:"events"`
	Duplicate bool     `json:"duplicate"`
	// Region is the region after an evacuate or restore.
	Region *Region `json:"region,omitempty"`
	// Version is the config version after PUT /v1/config.
	Version uint64 `json:"version,omitempty"`
	// Unchanged: the config put is the one in force; no new version.
	Unchanged bool `json:"unchanged,omitempty"`
	// DryRun is what a dry run found: whether the change would be
	// accepted and the regions it would leave.
	DryRun *DryRun `json:"dry_run,omitempty"`
}

// DryRun is the outcome of a write with dry_run set; nothing changed.
type DryRun struct {
	Allowed bool     `json:"allowed"`
	Refusal string   `json:"refusal,omitempty"`
	Code    string   `json:"code,omitempty"`
	Regions []Region `json:"regions"`
}
