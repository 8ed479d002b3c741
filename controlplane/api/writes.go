package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/raftnode"
	"github.com/evac-sh/evac/controlplane/state"
)

// Retry-After values, in seconds: a new leader is elected in about 2 s.
const (
	retryAfterNoLeader = 2
	retryAfterUnknown  = 1
)

// writeErrorStatus maps a failed proposal to an HTTP status, an error code
// and a Retry-After (0: none).
func writeErrorStatus(err error) (status int, code string, retryAfter int) {
	switch {
	case errors.Is(err, raftnode.ErrOutcomeUnknown):
		return http.StatusGatewayTimeout, wire.CodeOutcomeUnknown, retryAfterUnknown
	case errors.Is(err, raftnode.ErrShutdown):
		return http.StatusServiceUnavailable, wire.CodeShuttingDown, retryAfterNoLeader
	case errors.Is(err, raftnode.ErrNoLeader), errors.Is(err, raftnode.ErrNotLeader):
		return http.StatusServiceUnavailable, wire.CodeNoLeader, retryAfterNoLeader
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, wire.CodeUnavailable, retryAfterNoLeader
	}
	return http.StatusInternalServerError, wire.CodeInternal, 0
}

// proposeFailed answers a proposal that returned an error (not a refusal by
// Apply, which is a Result).
func (s *server) proposeFailed(w http.ResponseWriter, t state.CommandType, err error) {
	status, code, after := writeErrorStatus(err)
	s.logger.Warn("write failed", zap.Stringer("type", t), zap.String("code", code), zap.Error(err))
	var msg string
	switch code {
	case wire.CodeOutcomeUnknown:
		msg = "the write may or may not have been committed: retry with the same Idempotency-Key to learn which (it is applied at most once)"
	case wire.CodeNoLeader:
		msg = "the write was not committed: no Raft leader could take it (an election, or no quorum)"
	case wire.CodeShuttingDown:
		msg = "the write was not committed: this controller is shutting down"
	case wire.CodeUnavailable:
		msg = "the write was not committed: the cluster did not take it in time"
	default:
		msg = "the write failed"
	}
	if after > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(after))
	}
	writeError(w, status, code, fmt.Sprintf("%s: %v", msg, err))
}

// requestID is the command id of r's Idempotency-Key (or X-Request-ID),
// scoped to r's actor and the command type t (state.ClientRequestID), or
// a new random id when r has no key.
func requestID(r *http.Request, t state.CommandType) (string, error) {
	k := r.Header.Get("Idempotency-Key")
	if k == "" {
		k = r.Header.Get("X-Request-ID")
	}
	if k != "" {
		if len(k) > 128 {
			return "", errors.New("Idempotency-Key longer than 128 characters")
		}
		return state.ClientRequestID(actor(r), t, k), nil
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]), nil
}

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
	var req wire.MoveRequest
	if err := decodeStrict(w, r, &req, false); err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	if !validReason(w, req.Reason, true) {
		return
	}
	if req.Force && !wire.MayForce(r.Context()) {
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
	// A restore of a region a running drill holds: the drill gives way
	// first (it ends as aborted, naming the change, and leaves the region
	// to the operator) instead of fighting the restore. An evacuation
	// pre-empts the drill when applied; one of a region the drill has out
	// already is refused like any evacuation of a region that is out (409):
	// `evac drill abort` hands such a region back first.
	var yield *state.DrillYield
	st := s.b.State()
	if d, held := st.DrillHolding(region); held && !evacuate {
		yield = &state.DrillYield{Region: region, Change: "restore", Reason: req.Reason}
		if !req.DryRun && !s.allowedAfter(r, *yield, t, body) {
			// The restore will be refused: the drill goes on (a refused
			// request changes nothing).
			yield = nil
		} else if !req.DryRun {
			s.logger.Info("drill gives way to an operator's restore", zap.String("drill", d.ID), zap.String("region", region))
		}
	}
	if req.DryRun {
		s.dryRun(w, r, t, body, yield)
		return
	}
	if yield != nil {
		if _, ok := s.proposeAs(w, r, state.CmdDrillYield, *yield, "yield"); !ok {
			return
		}
	}
	res, ok := s.propose(w, r, t, body)
	if !ok {
		return
	}
	out := wire.WriteResult{Index: res.Index, Events: res.Events, Duplicate: res.Duplicate}
	st = s.b.State()
	if rs, ok := st.Region(region); ok {
		reg := buildRegions(st, s.b.RegionHealth(), []state.RegionState{rs})[0]
		out.Region = &reg
	}
	writeJSON(w, http.StatusOK, out)
}

// allowedAfter reports whether, on the local state, the command would be
// accepted after the drill yields.
func (s *server) allowedAfter(r *http.Request, yield state.DrillYield, t state.CommandType, body any) bool {
	now := time.Now()
	next, _, err := state.ApplyNext(s.b.State(), state.CmdDrillYield, "", actor(r), now, yield)
	if err != nil {
		return false
	}
	_, res, err := state.ApplyNext(next, t, "", actor(r), now, body)
	return err == nil && res.Error == ""
}

// dryRun applies the command to a private copy of the local state with the
// same pure function the FSM uses, and reports the outcome.
func (s *server) dryRun(w http.ResponseWriter, r *http.Request, t state.CommandType, body any, yield *state.DrillYield) {
	st := s.b.State()
	cur := st
	var yieldEvents []uint64
	if yield != nil {
		y, yres, err := state.ApplyNext(cur, state.CmdDrillYield, "", actor(r), time.Now(), *yield)
		if err != nil {
			writeError(w, http.StatusInternalServerError, wire.CodeInternal, err.Error())
			return
		}
		cur, yieldEvents = y, yres.Events
	}
	next, res, err := state.ApplyNext(cur, t, "", actor(r), time.Now(), body)
	if err == nil {
		res.Events = append(yieldEvents, res.Events...)
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, wire.CodeInternal, err.Error())
		return
	}
	dr := &wire.DryRun{Allowed: res.Error == "", Refusal: res.Error, Code: res.Code}
	if next.Config != nil {
		dr.Regions = buildRegions(next, s.b.RegionHealth(), next.RegionList())
	}
	for _, seq := range res.Events {
		dr.Events = append(dr.Events, next.EventsSince(seq-1, 1)...)
	}
	if ev, ok := body.(state.Evacuate); ok && dr.Allowed && next.Config != nil && next.Config.UsesNearest() {
		// Where the region's clients would go once it is out, by the
		// plan the leader would make (controlplane/spill).
		p := state.PlanSpill(next, state.CombineDemand(next), ev.Region, 0, ev.Capacity)
		dr.Spill = &p
	}
	writeJSON(w, http.StatusOK, wire.WriteResult{Index: st.Index, DryRun: dr})
}

func (s *server) putConfig(w http.ResponseWriter, r *http.Request) {
	b, err := readConfigBody(w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	cfg, err := state.ParseConfig(b)
	if err == nil {
		err = cfg.KeepSecrets(s.b.State().Config)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	// The config in force, again: no new version, no SOA serial bump, no
	// audit event (both normalised, so equal configs encode equally).
	if st := s.b.State(); st.Config != nil && sameConfig(st.Config, cfg) {
		writeJSON(w, http.StatusOK, wire.WriteResult{Index: st.Index, Version: st.ConfigVersion, Unchanged: true})
		return
	}
	res, ok := s.propose(w, r, state.CmdApplyConfig, state.NewApplyConfig(cfg))
	if !ok {
		return
	}
	version := s.b.State().ConfigVersion
	writeJSON(w, http.StatusOK, wire.WriteResult{Index: res.Index, Events: res.Events, Duplicate: res.Duplicate, Version: version})
}

func (s *server) freeze(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req wire.FreezeRequest
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
		writeJSON(w, http.StatusOK, wire.WriteResult{Index: res.Index, Events: res.Events, Duplicate: res.Duplicate})
	}
}

// sameConfig reports whether two normalised configs are the same.
func sameConfig(a, b *state.Config) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}
