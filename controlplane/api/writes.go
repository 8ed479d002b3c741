package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/evac-sh/evac/controlplane/state"
)

// maxReason caps free-text reasons in the audit log.
const maxReason = 1024

func validReason(w http.ResponseWriter, reason string, required bool) bool {
	switch {
	case required && strings.TrimSpace(reason) == "":
		writeError(w, http.StatusBadRequest, state.CodeInvalid, "reason is required")
		return false
	case len(reason) > maxReason:
		writeError(w, http.StatusBadRequest, state.CodeInvalid, fmt.Sprintf("reason is longer than %d bytes", maxReason))
		return false
	}
	return true
}

func (s *server) evacuate(w http.ResponseWriter, r *http.Request) {
	s.move(w, r, true)
}

func (s *server) restore(w http.ResponseWriter, r *http.Request) {
	s.move(w, r, false)
}

func (s *server) move(w http.ResponseWriter, r *http.Request, evacuate bool) {
	region := mux.Vars(r)["region"]
	var req MoveRequest
	if err := decodeStrict(w, r, &req, false); err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	if !validReason(w, req.Reason, true) {
		return
	}
	if req.Force && !mayForce(r) {
		writeError(w, http.StatusForbidden, "forbidden", "force overrides safety rules: it needs the admin role")
		return
	}
	if !state.ValidName(region) {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, fmt.Sprintf("%q is not a valid region name", region))
		return
	}
	// Checked again when applied; checking here keeps a typo out of the log.
	if st := s.b.State(); st.Config != nil && !st.Config.HasRegion(region) {
		writeError(w, http.StatusNotFound, state.CodeNotFound, fmt.Sprintf("unknown region %q", region))
		return
	}
	if len(req.Ramp) > 0 {
		target := 100
		if evacuate {
			target = 0
		}
		if err := state.ValidateRamp(req.Ramp, target); err != nil {
			writeError(w, http.StatusBadRequest, state.CodeInvalid, "ramp: "+err.Error())
			return
		}
	}
	if req.StepInterval != 0 && (req.StepInterval.D() < 100*time.Millisecond || req.StepInterval.D() > 24*time.Hour) {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, "step_interval must be between 100ms and 24h")
		return
	}
	var (
		t    state.CommandType
		body any
	)
	if evacuate {
		// The capacity rule uses the agents' reports where they exist.
		t, body = state.CmdEvacuate, state.Evacuate{Region: region, Reason: req.Reason, Ramp: req.Ramp,
			StepInterval: req.StepInterval, Force: req.Force, Capacity: s.b.ReportedCapacity()}
	} else {
		if req.Force {
			writeError(w, http.StatusBadRequest, state.CodeInvalid, "force applies to evacuations only")
			return
		}
		t, body = state.CmdRestore, state.Restore{Region: region, Reason: req.Reason, Ramp: req.Ramp,
			StepInterval: req.StepInterval}
	}
	if req.DryRun {
		s.dryRun(w, r, t, body)
		return
	}
	res, ok := s.propose(w, r, t, body)
	if !ok {
		return
	}
	out := WriteResult{Index: res.Index, Events: res.Events, Duplicate: res.Duplicate}
	st := s.b.State()
	if rs, ok := st.Region(region); ok {
		reg := buildRegions(st, s.b.RegionHealth(), []state.RegionState{rs})[0]
		out.Region = &reg
	}
	writeJSON(w, http.StatusOK, out)
}

// dryRun applies the command to a private copy of the local state with the
// same pure function the FSM uses, and reports the outcome.
func (s *server) dryRun(w http.ResponseWriter, r *http.Request, t state.CommandType, body any) {
	st := s.b.State()
	next, res, err := state.ApplyNext(st, t, "", actor(r), time.Now(), body)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	dr := &DryRun{Allowed: res.Error == "", Refusal: res.Error, Code: res.Code}
	if next.Config != nil {
		dr.Regions = buildRegions(next, s.b.RegionHealth(), next.RegionList())
	}
	for _, seq := range res.Events {
		dr.Events = append(dr.Events, next.EventsSince(seq-1, 1)...)
	}
	writeJSON(w, http.StatusOK, WriteResult{Index: st.Index, DryRun: dr})
}

func (s *server) putConfig(w http.ResponseWriter, r *http.Request) {
	b, err := readConfigBody(w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	cfg, err := state.ParseConfig(b)
	if err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	res, ok := s.propose(w, r, state.CmdApplyConfig, state.ApplyConfig{Config: cfg})
	if !ok {
		return
	}
	version := s.b.State().ConfigVersion
	writeJSON(w, http.StatusOK, WriteResult{Index: res.Index, Events: res.Events, Duplicate: res.Duplicate, Version: version})
}

func (s *server) freeze(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Reason string `json:"reason"`
		}
		if err := decodeStrict(w, r, &req, !on); err != nil {
			writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
			return
		}
		if !validReason(w, req.Reason, on) {
			return
		}
		t := state.CmdUnfreeze
		if on {
			t = state.CmdFreeze
		}
		res, ok := s.propose(w, r, t, state.Freeze{Reason: req.Reason})
		if !ok {
			return
		}
		writeJSON(w, http.StatusOK, WriteResult{Index: res.Index, Events: res.Events, Duplicate: res.Duplicate})
	}
}
