package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
)

// DNSSECRoller is a Backend that can roll the zone's DNSSEC keys over
// (docs/dnssec.md, "Rollover"); the controller is one: it checks a step
// against the replicated state and the members' status probes and
// computes the safe waits, and the API proposes the command.
type DNSSECRoller interface {
	// PrepareDNSSECRollover returns the command for action (init, start,
	// next, abort), or a *RequestError saying why not.
	PrepareDNSSECRollover(ctx context.Context, action string, req wire.DNSSECRolloverRequest) (state.CommandType, any, error)
	// DNSSECRolloverResult describes st's key states and what to do next.
	DNSSECRolloverResult(st *state.State) wire.DNSSECRolloverResult
}

// RequestError is a refusal with its HTTP status and error code.
type RequestError struct {
	Status int
	Code   string
	Msg    string
}

func (e *RequestError) Error() string { return e.Msg }

// dnssecRoutes mounts GET /v1/dnssec/rollover and POST
// /v1/dnssec/rollover/{init|start|next|abort} (admin writes).
func (s *server) dnssecRoutes(v prefixed) {
	v.HandleFunc("/dnssec/rollover", s.rolloverStatus).Methods(http.MethodGet)
	v.HandleFunc("/dnssec/rollover/{action:init|start|next|abort}", s.rolloverStep).Methods(http.MethodPost)
}

func (s *server) roller(w http.ResponseWriter) (DNSSECRoller, bool) {
	ro, ok := s.b.(DNSSECRoller)
	if !ok {
		writeError(w, http.StatusNotImplemented, "not_implemented", "this node does not sign DNS answers")
	}
	return ro, ok
}

func (s *server) rolloverStatus(w http.ResponseWriter, _ *http.Request) {
	ro, ok := s.roller(w)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, ro.DNSSECRolloverResult(s.b.State()))
}

func (s *server) rolloverStep(w http.ResponseWriter, r *http.Request) {
	ro, ok := s.roller(w)
	if !ok {
		return
	}
	var req wire.DNSSECRolloverRequest
	if err := decodeStrict(w, r, &req, true); err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	if !validReason(w, req.Reason, false) {
		return
	}
	if req.Force && !wire.MayForce(r.Context()) {
		writeError(w, http.StatusForbidden, wire.CodeForbidden, "force needs the admin role")
		return
	}
	t, body, err := ro.PrepareDNSSECRollover(r.Context(), mux.Vars(r)["action"], req)
	if err != nil {
		var re *RequestError
		if errors.As(err, &re) {
			writeError(w, re.Status, re.Code, re.Msg)
		} else {
			writeError(w, http.StatusInternalServerError, wire.CodeInternal, err.Error())
		}
		return
	}
	res, ok := s.propose(w, r, t, body)
	if !ok {
		return
	}
	out := ro.DNSSECRolloverResult(s.b.State())
	out.Index, out.Events, out.Duplicate = res.Index, res.Events, res.Duplicate
	writeJSON(w, http.StatusOK, out)
}
