package wire

import (
	"time"
)

// Agents is GET /v1/agents.
type Agents struct {
	// Policy is the enrolment policy (policy.require_enrolled_agents):
	// auto, required or optional.
	Policy string `json:"policy"`
	// Enforced is true when only enrolled agents' signed reports count.
	Enforced bool `json:"enforced"`
	// Agents are the enrolled agents, then the agents seen in the gossip
	// pool that are not enrolled, each sorted by name.
	Agents []Agent `json:"agents"`
}

// Agent is one agent of GET /v1/agents.
type Agent struct {
	Name        string    `json:"name"`
	Region      string    `json:"region"`
	Enrolled    bool      `json:"enrolled"`
	PublicKey   string    `json:"public_key,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	EnrolledAt  time.Time `json:"enrolled_at,omitzero"`
	EnrolledBy  string    `json:"enrolled_by,omitempty"`
	// MemberState is the agent's state in this controller's gossip view
	// (alive, dead, left), empty when it has not been seen.
	MemberState string `json:"member_state,omitempty"`
	// MemberRegion is the region the agent claims in the gossip pool; a
	// claim that differs from the enrolled region is not counted.
	MemberRegion string `json:"member_region,omitempty"`
}

// EnrollRequest is the body of PUT /v1/agents/{name}.
type EnrollRequest struct {
	Region    string `json:"region"`
	PublicKey string `json:"public_key"`
	Reason    string `json:"reason,omitempty"`
}

// RevokeRequest is the optional body of DELETE /v1/agents/{name}.
type RevokeRequest struct {
	Reason string `json:"reason,omitempty"`
}
