package api

import (
	"net/http"
	"sort"

	"github.com/gorilla/mux"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
)

// agentRoutes mounts agent enrolment: GET /v1/agents, PUT and DELETE
// /v1/agents/{name} (admin writes, by the auth policy's default).
func (s *server) agentRoutes(v prefixed) {
	v.HandleFunc("/agents", s.listAgents).Methods(http.MethodGet)
	v.HandleFunc("/agents/{name}", s.enrollAgent).Methods(http.MethodPut)
	v.HandleFunc("/agents/{name}", s.revokeAgent).Methods(http.MethodDelete)
}

func (s *server) listAgents(w http.ResponseWriter, _ *http.Request) {
	st := s.b.State()
	seen := map[string]wire.Member{}
	for _, m := range s.b.Members() {
		if m.Role == "agent" {
			seen[m.Name] = m
		}
	}
	out := wire.Agents{Policy: st.AgentPolicy(), Enforced: st.AgentsEnforced(), Agents: []wire.Agent{}}
	for _, name := range st.AgentNames() {
		rec := st.Agents[name]
		a := wire.Agent{Name: name, Region: rec.Region, Enrolled: true, PublicKey: rec.PublicKey, Fingerprint: rec.Fingerprint,
			EnrolledAt: rec.Time, EnrolledBy: rec.Actor}
		if m, ok := seen[name]; ok {
			a.MemberState, a.MemberRegion = m.State, m.Region
			delete(seen, name)
		}
		out.Agents = append(out.Agents, a)
	}
	var rest []wire.Agent
	for _, m := range seen {
		rest = append(rest, wire.Agent{Name: m.Name, Region: m.Region, MemberState: m.State, MemberRegion: m.Region})
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i].Name < rest[j].Name })
	out.Agents = append(out.Agents, rest...)
	writeJSON(w, http.StatusOK, out)
}

func (s *server) enrollAgent(w http.ResponseWriter, r *http.Request) {
	var req wire.EnrollRequest
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
	writeJSON(w, http.StatusOK, wire.WriteResult{Index: res.Index, Events: res.Events, Duplicate: res.Duplicate})
}

func (s *server) revokeAgent(w http.ResponseWriter, r *http.Request) {
	var req wire.RevokeRequest
	if err := decodeStrict(w, r, &req, true); err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	res, ok := s.propose(w, r, state.CmdRevokeAgent|state.IgnoreUnknownFlag, state.RevokeAgent{Name: mux.Vars(r)["name"], Reason: req.Reason})
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, wire.WriteResult{Index: res.Index, Events: res.Events, Duplicate: res.Duplicate})
}
