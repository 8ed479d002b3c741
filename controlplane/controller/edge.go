package controller

import (
	"errors"
	"strings"

	"github.com/evac-sh/evac/controlplane/api/wire"
)

// Edge replicas (Config.Edge, `evac server --edge`).
//
// An edge is a controller cut down to the data plane: a Raft non-voter
// (raftnode.Config.Edge) whose FSM replica feeds the same DNS server, drain
// measurer and read API as a voter's, so it answers every policy, with
// ECS, from its own state and measures drills' drains; writes sent to its
// API are forwarded to the leader like a follower's. What it leaves out:
//
//   - The leader's loops: the steering engine, the drill and schedule
//     engine, block_on evaluation and notifications are not even built, and
//     raftnode hands away a leadership an edge should never hold.
//   - Gossip: an edge does not join the pool, so it probes no agent,
//     relays nothing and takes no part in memberlist's verdicts (an edge
//     in a distant point of presence must not vouch for or condemn a
//     region). Its health figures (GET /v1/regions' health and agents,
//     GET /v1/members) are therefore empty; the replicated verdicts (a
//     service unhealthy in a region, weights, phases) are there as on any
//     controller.
//   - Readiness does not need a leader (Ready).

// errEdgeNoGossip: a gossip operation on an edge.
var errEdgeNoGossip = errors.New("an edge replica does not join gossip")

// role is this node's role for GET /v1/status: edge, voter or nonvoter
// (its suffrage in its latest Raft configuration), or none when it is not
// in it.
func (c *Controller) role() string {
	if c.cfg.Edge {
		return wire.RoleEdge
	}
	switch s := strings.ToLower(c.raft.Suffrage()); s {
	case "":
		return wire.RoleNone
	case "staging":
		return wire.RoleNonvoter
	default:
		return s
	}
}

// IsEdge reports whether this controller runs as an edge replica.
func (c *Controller) IsEdge() bool { return c.cfg.Edge }
