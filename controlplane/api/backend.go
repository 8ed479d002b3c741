package api

import (
	"context"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
)

// Backend is what the API needs from a controller.
type Backend interface {
	// State is the local replica's current state.
	State() *state.State
	// Propose submits a command (forwarded to the leader if need be) and
	// returns its result once committed and applied on the leader.
	Propose(ctx context.Context, t state.CommandType, actor, id string, body any) (state.Result, error)
	// WaitApplied waits until the local replica has applied index.
	WaitApplied(ctx context.Context, index uint64) error
	// Status describes this node and the cluster as it sees them.
	Status() wire.Status
	// RegionHealth is this controller's gossip view: region -> health.
	RegionHealth() map[string]wire.RegionHealth
	// ReportedCapacity is the capacity each region's agents report, summed.
	ReportedCapacity() map[string]int
	// Members lists the gossip pool.
	Members() []wire.Member
	// Ready reports whether the node can serve (a leader is known and the
	// replica has a config).
	Ready() error
}

// DevHooks are the fault-injection hooks of `evac dev`.
type DevHooks interface {
	FailRegion(region string) error
	HealRegion(region string) error
}
