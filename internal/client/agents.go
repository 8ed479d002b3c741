package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Agents is GET /v1/agents: the enrolment policy in force, the enrolled
// agents, then the agents seen in gossip that are not enrolled.
type Agents struct {
	Policy   string  `json:"policy"`
	Enforced bool    `json:"enforced"`
	Agents   []Agent `json:"agents"`
}

// Agent is one agent of GET /v1/agents.
type Agent struct {
	Name         string    `json:"name"`
	Region       string    `json:"region"`
	Enrolled     bool      `json:"enrolled"`
	PublicKey    string    `json:"public_key"`
	Fingerprint  string    `json:"fingerprint"`
	EnrolledAt   time.Time `json:"enrolled_at"`
	EnrolledBy   string    `json:"enrolled_by"`
	MemberState  string    `json:"member_state"`
	MemberRegion string    `json:"member_region"`
}

// EnrollRequest is the body of PUT /v1/agents/{name}.
type EnrollRequest struct {
	Region    string `json:"region"`
	PublicKey string `json:"public_key"`
	Reason    string `json:"reason,omitempty"`
}

// Agents returns GET /v1/agents.
func (c *Client) Agents(ctx context.Context) (Agents, error) {
	var out Agents
	err := c.do(ctx, http.MethodGet, "/v1/agents", nil, "", &out)
	return out, err
}

// EnrollAgent sends PUT /v1/agents/{name}.
func (c *Client) EnrollAgent(ctx context.Context, name string, req EnrollRequest) (WriteResult, error) {
	var wr WriteResult
	err := c.Do(ctx, http.MethodPut, "/v1/agents/"+url.PathEscape(name), req, &wr)
	return wr, err
}

// RevokeAgent sends DELETE /v1/agents/{name}.
func (c *Client) RevokeAgent(ctx context.Context, name, reason string) (WriteResult, error) {
	var wr WriteResult
	var body any
	if reason != "" {
		body = struct {
			Reason string `json:"reason"`
		}{reason}
	}
	err := c.Do(ctx, http.MethodDelete, "/v1/agents/"+url.PathEscape(name), body, &wr)
	return wr, err
}
