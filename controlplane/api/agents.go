package api

import (
	"net/http"
	"sort"
	"time"

	"github.com/gorilla/mux"

	"github.com/evac-sh/evac/controlplane/state"
)

// agentRoutes mounts agent enrolment: GET /v1/agents, PUT and DELETE
// /v1/agents/{name} (admin writes, by the auth policy's default).
func (s *server) agentRoutes(v prefixed) {
	v.HandleFunc("/agents", s.listAgents).Methods(http.MethodGet)
	v.HandleFunc("/agents/{name}", s.enrollAgent).Methods(http.MethodPut)
	v.HandleFunc("/agents/{name}", s.revokeAgent).Methods(http.MethodDelete)
}

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

func (s *server) listAgents(w http.ResponseWriter, _ *http.Request) {
	st := s.b.State()
	seen := map[string]Member{}
	for _, m := range s.b.Members() {
		if m.Role == "agent" {
			seen[m.Name] = m
		}
	}
	out := Agents{Policy: st.AgentPolicy(), Enforced: st.AgentsEnforced(), Agents: []Agent{}}
	for _, name := range st.AgentNames() {
		rec := st.Agents[name]
		a := Agent{Name: name, Region: rec.Region, Enrolled: true, PublicKey: rec.PublicKey, Fingerprint: rec.Fingerprint,
			EnrolledAt: rec.Time, EnrolledBy: rec.Actor}
		if m, ok := seen[name]; ok {
			a.MemberState, a.MemberRegion = m.State, m.Region
			delete(seen, name)
		}
		out.Agents = append(out.Agents, a)
	}
	var rest []Agent
	for _, m := range seen {
		rest = append(rest, Agent{Name: m.Name, Region: m.Region, MemberState: m.State, MemberRegion: m.Region})
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i].Name < rest[j].Name })
	out.Agents = append(out.Agents, rest...)
	writeJSON(w, http.StatusOK, out)
}

func (s *server) enrollAgent(w http.ResponseWriter, r *http.Request) {
	var req EnrollRequest
	if err := decodeStrict(w, r, &req, false); err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	cmd := state.EnrollAgent{Name: mux.Vars(r)["name"], Region: req.Region, PublicKey: req.PublicKey, Reason: req.Reason}
	if err := cmd.Normalize(); err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	// An older controller skips the command rather than stopping.
	res, ok := s.propose(w, r, state.CmdEnrollAgent|state.IgnoreUnknownFlag, cmd)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, WriteResult{Index: res.Index, Events: res.Events, Duplicate: res.Duplicate})
}

func (s *server) revokeAgent(w http.ResponseWriter, r *http.Request) {
	var req RevokeRequest
	if err := decodeStrict(w, r, &req, true); err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	res, ok := s.propose(w, r, state.CmdRevokeAgent|state.IgnoreUnknownFlag, state.RevokeAgent{Name: mux.Vars(r)["name"], Reason: req.Reason})
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, WriteResult{Index: res.Index, Events: res.Events, Duplicate: res.Duplicate})
}
