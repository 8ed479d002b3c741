package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/runbooks"
)

// drillRoutes mounts runbooks, drills and schedules.
func (s *server) drillRoutes(v prefixed) {
	v.HandleFunc("/runbooks", s.listRunbooks).Methods(http.MethodGet)
	v.HandleFunc("/runbooks/{name}", s.getRunbook).Methods(http.MethodGet)
	v.HandleFunc("/runbooks/{name}", s.putRunbook).Methods(http.MethodPut)
	v.HandleFunc("/runbooks/{name}", s.deleteRunbook).Methods(http.MethodDelete)
	v.HandleFunc("/drills", s.listDrills).Methods(http.MethodGet)
	v.HandleFunc("/drills", s.startDrill).Methods(http.MethodPost)
	v.HandleFunc("/drills/{id}", s.getDrill).Methods(http.MethodGet)
	v.HandleFunc("/drills/{id}/abort", s.abortDrill).Methods(http.MethodPost)
	v.HandleFunc("/schedules", s.listSchedules).Methods(http.MethodGet)
	v.HandleFunc("/schedules", s.addSchedule).Methods(http.MethodPost)
	v.HandleFunc("/schedules/{id}", s.getSchedule).Methods(http.MethodGet)
	v.HandleFunc("/schedules/{id}", s.removeSchedule).Methods(http.MethodDelete)
}

func runbookOf(rec state.RunbookRecord, full bool) wire.Runbook {
	out := wire.Runbook{Name: rec.Name, Description: rec.Description, Version: rec.Version, Time: rec.Time, Actor: rec.Actor,
		Params: map[string]runbooks.Param{}, Preconditions: []string{}}
	if rb, err := rec.Parse(); err == nil {
		out.Params, out.Steps = rb.Params, len(rb.Steps)
		if rb.Preconditions != nil {
			out.Preconditions = rb.Preconditions
		}
	}
	if full {
		out.Source = rec.Source
		for _, h := range rec.History {
			out.History = append(out.History, wire.RunbookVersion{Version: h.Version, Time: h.Time, Actor: h.Actor})
		}
	}
	return out
}

func (s *server) listRunbooks(w http.ResponseWriter, _ *http.Request) {
	st := s.b.State()
	out := make([]wire.Runbook, 0, len(st.Runbooks))
	for _, n := range st.RunbookNames() {
		out = append(out, runbookOf(st.Runbooks[n], false))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) getRunbook(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	rec, ok := s.b.State().Runbooks[name]
	if !ok {
		writeError(w, http.StatusNotFound, state.CodeNotFound, fmt.Sprintf("no runbook %q", name))
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "yaml") {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write([]byte(rec.Source))
		return
	}
	writeJSON(w, http.StatusOK, runbookOf(rec, true))
}

func (s *server) putRunbook(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	b, err := readBody(w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	if refuseLimit(w, http.StatusRequestEntityTooLarge, state.CheckRunbookSize(b)) ||
		refuseLimit(w, http.StatusConflict, s.b.State().CheckRunbookCount(name)) {
		return
	}
	// Parsed here, once: the command carries the result (Apply never parses).
	cmd, _, err := state.PreparePutRunbook(name+".yaml", b)
	if err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	if cmd.Name != name {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, fmt.Sprintf("the runbook is named %q, not %q", cmd.Name, name))
		return
	}
	res, ok := s.propose(w, r, state.CmdPutRunbook, cmd)
	if !ok {
		return
	}
	rec := s.b.State().Runbooks[name]
	writeJSON(w, http.StatusOK, wire.WriteResult{Index: res.Index, Events: res.Events, Duplicate: res.Duplicate, Version: rec.Version})
}

func (s *server) deleteRunbook(w http.ResponseWriter, r *http.Request) {
	res, ok := s.propose(w, r, state.CmdDeleteRunbook, state.DeleteRunbook{Name: mux.Vars(r)["name"]})
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, wire.WriteResult{Index: res.Index, Events: res.Events, Duplicate: res.Duplicate})
}

func drillReport(st *state.State, d state.Drill) wire.DrillReport {
	rep := wire.DrillReport{Drill: d, Steps: make([]wire.StepReport, len(d.Steps)), Weights: map[string]int{}}
	for i, step := range d.Steps {
		rep.Steps[i] = wire.StepReport{Index: i, Description: step.Describe(), StepRecord: step}
	}
	for _, rn := range d.Regions {
		rep.Weights[rn] = st.Regions[rn].Weight
	}
	rep.DrainSummary = state.SummarizeDrain(d.Drain)
	return rep
}

func (s *server) listDrills(w http.ResponseWriter, _ *http.Request) {
	st := s.b.State()
	out := make([]wire.DrillReport, 0, len(st.Drills))
	for _, id := range st.DrillIDs() {
		out = append(out, drillReport(st, st.Drills[id]))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) getDrill(w http.ResponseWriter, r *http.Request) {
	st := s.b.State()
	id := mux.Vars(r)["id"]
	d, ok := st.Drills[id]
	if !ok {
		writeError(w, http.StatusNotFound, state.CodeNotFound, fmt.Sprintf("no drill %q", id))
		return
	}
	rep := drillReport(st, d)
	rep.Timeline, rep.TimelineComplete = st.DrillTimeline(d)
	writeJSON(w, http.StatusOK, rep)
}

// newDrillID returns "d-<unix seconds>-<6 hex digits>", the digits derived
// from the request's id: a retry of the request (same Idempotency-Key, so
// the same id) finds the drill its first attempt started by them.
func newDrillID(now time.Time, requestID string) string {
	return fmt.Sprintf("d-%d-%s", now.Unix(), idDigits(requestID, 3))
}

// idDigits is 2n hex digits of the SHA-256 of a request id.
func idDigits(requestID string, n int) string {
	sum := sha256.Sum256([]byte(requestID))
	return hex.EncodeToString(sum[:n])
}

// drillOfRequest finds the drill a first attempt of this request started:
// its id ends in the request's digits and it has the same actor and
// runbook.
func drillOfRequest(st *state.State, requestID, actor, runbook string) (state.Drill, bool) {
	suffix := "-" + idDigits(requestID, 3)
	for _, id := range st.DrillIDs() {
		d := st.Drills[id]
		if strings.HasSuffix(id, suffix) && d.Actor == actor && d.Runbook == runbook && d.Schedule == "" {
			return d, true
		}
	}
	return state.Drill{}, false
}

func (s *server) startDrill(w http.ResponseWriter, r *http.Request) {
	var req wire.DrillRequest
	if err := decodeStrict(w, r, &req, false); err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	if !validReason(w, req.Reason, false) {
		return
	}
	if err := state.ValidateBlockers(req.BlockOn); err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	st := s.b.State()
	if refuseLimit(w, http.StatusRequestEntityTooLarge, state.CheckDrillParams(req.Params)) ||
		refuseLimit(w, http.StatusConflict, st.CheckRunningDrills()) {
		return
	}
	reqID, err := requestID(r, state.CmdDrillStart)
	if err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	// Rendered here, once: the command carries the steps (Apply never
	// renders); Apply checks the runbook is still the version rendered.
	// The id ends in the request's digits, so a retry finds its drill.
	id := newDrillID(time.Now(), reqID)
	cmd, err := state.PrepareDrill(st, state.DrillStart{ID: id, Runbook: req.Runbook, Params: req.Params, Reason: req.Reason,
		BlockOn: req.BlockOn})
	if err != nil {
		var re *state.RefusedError
		if errors.As(err, &re) {
			writeError(w, statusForCode(re.Code), re.Code, re.Msg)
		} else {
			writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		}
		return
	}
	res, ok := s.propose(w, r, state.CmdDrillStart, cmd)
	if !ok {
		return
	}
	st = s.b.State()
	d, ok := st.Drills[id]
	if !ok && res.Duplicate {
		// A retried request (same Idempotency-Key) started its drill
		// under the id of the first attempt: answer as the first did.
		d, ok = drillOfRequest(st, reqID, actor(r), req.Runbook)
	}
	if !ok {
		writeError(w, http.StatusConflict, state.CodeConflict, "duplicate request: the drill its first attempt started is no longer kept")
		return
	}
	writeJSON(w, http.StatusCreated, drillReport(st, d))
}

func (s *server) abortDrill(w http.ResponseWriter, r *http.Request) {
	var req wire.AbortRequest
	if err := decodeStrict(w, r, &req, true); err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	if !validReason(w, req.Reason, false) {
		return
	}
	if strings.TrimSpace(req.Reason) == "" {
		req.Reason = "no reason given"
	}
	id := mux.Vars(r)["id"]
	if _, ok := s.propose(w, r, state.CmdDrillAbort, state.DrillAbort{ID: id, Reason: req.Reason}); !ok {
		return
	}
	st := s.b.State()
	writeJSON(w, http.StatusOK, drillReport(st, st.Drills[id]))
}

// scheduleReport adds the next due times (up to 3) to a schedule.
func scheduleReport(sc state.Schedule, now time.Time) wire.ScheduleReport {
	rep := wire.ScheduleReport{Schedule: sc}
	loc := time.UTC
	if sc.TZ != "" {
		l, err := time.LoadLocation(sc.TZ)
		if err != nil {
			return rep
		}
		loc = l
	}
	cs, err := state.ParseCron(sc.Cron)
	if err != nil {
		return rep
	}
	t := now.In(loc)
	for range 3 {
		if t = cs.Next(t); t.IsZero() {
			break
		}
		rep.Next = append(rep.Next, t)
	}
	return rep
}

func (s *server) listSchedules(w http.ResponseWriter, _ *http.Request) {
	st := s.b.State()
	out := make([]wire.ScheduleReport, 0, len(st.Schedules))
	now := time.Now()
	for _, id := range st.ScheduleIDs() {
		out = append(out, scheduleReport(st.Schedules[id], now))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) getSchedule(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	sc, ok := s.b.State().Schedules[id]
	if !ok {
		writeError(w, http.StatusNotFound, state.CodeNotFound, fmt.Sprintf("no schedule %q", id))
		return
	}
	writeJSON(w, http.StatusOK, scheduleReport(sc, time.Now()))
}

func (s *server) addSchedule(w http.ResponseWriter, r *http.Request) {
	var req state.ScheduleAdd
	if err := decodeStrict(w, r, &req, false); err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	if req.ID == "" {
		// Derived from the request's id, so that a retry (same
		// Idempotency-Key) names the schedule its first attempt added.
		reqID, err := requestID(r, state.CmdScheduleAdd)
		if err != nil {
			writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
			return
		}
		req.ID = "sch-" + idDigits(reqID, 4)
	}
	err := req.Validate()
	loc := time.UTC
	if req.TZ != "" {
		l, tzErr := time.LoadLocation(req.TZ)
		if tzErr != nil {
			err = errors.Join(err, fmt.Errorf("tz: %q is not a known time zone", req.TZ))
		} else {
			loc = l
		}
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return
	}
	st := s.b.State()
	if refuseLimit(w, http.StatusRequestEntityTooLarge, state.CheckDrillParams(req.Params)) ||
		refuseLimit(w, http.StatusBadRequest, state.CheckScheduleFrequency(req.Cron, loc, time.Now(), st.ScheduleMinInterval())) ||
		refuseLimit(w, http.StatusConflict, st.CheckScheduleCount()) {
		return
	}
	if rec, ok := st.Runbooks[req.Runbook]; ok {
		if rb, perr := rec.Parse(); perr == nil {
			if _, rerr := rb.Render(req.Params); rerr != nil {
				writeError(w, http.StatusBadRequest, state.CodeInvalid, "params: "+rerr.Error())
				return
			}
		}
	}
	req.Prepared = true
	if _, ok := s.propose(w, r, state.CmdScheduleAdd, req); !ok {
		return
	}
	sc, ok := s.b.State().Schedules[req.ID]
	if !ok {
		writeError(w, http.StatusConflict, state.CodeConflict, "duplicate request: the schedule its first attempt added has since been removed")
		return
	}
	writeJSON(w, http.StatusCreated, scheduleReport(sc, time.Now()))
}

func (s *server) removeSchedule(w http.ResponseWriter, r *http.Request) {
	res, ok := s.propose(w, r, state.CmdScheduleRemove, state.ScheduleRemove{ID: mux.Vars(r)["id"]})
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, wire.WriteResult{Index: res.Index, Events: res.Events, Duplicate: res.Duplicate})
}
