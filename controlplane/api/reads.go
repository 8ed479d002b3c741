package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/runbooks"
)

func (s *server) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.b.Status())
}

func requireConfig(w http.ResponseWriter, st *state.State) bool {
	if st.Config == nil {
		writeError(w, http.StatusConflict, state.CodeNoConfig, "no steering config has been applied (evac apply -f FILE)")
		return false
	}
	return true
}

// buildRegions joins the replicated region state with this controller's
// health view.
func buildRegions(st *state.State, health map[string]wire.RegionHealth, list []state.RegionState) []wire.Region {
	held := heldByDrills(st)
	demand := state.CombineDemand(st)
	out := make([]wire.Region, 0, len(list))
	for _, rs := range list {
		h := health[rs.Name]
		reg := wire.Region{
			Name: rs.Name, State: rs.Phase, Weight: rs.Weight, Since: rs.Since, Reason: rs.Reason,
			Actor: rs.Actor, Automatic: rs.Automatic, Ramp: rs.Ramp,
			AgentsAlive: h.AgentsAlive, AgentsTotal: h.AgentsTotal, Services: map[string]wire.ServiceHealth{},
			CapacityReported: h.CapacityReported, Drill: held[rs.Name], Spill: st.SpillPlanFor(rs.Name),
		}
		if sh, ok := demand.HomeShare(rs.Name); ok {
			reg.HomeShare = &sh
		}
		for _, r := range st.Config.Regions {
			if r.Name == rs.Name {
				reg.Capacity = r.Capacity
			}
		}
		for _, svc := range st.Config.Services {
			if _, ok := svc.Endpoints[rs.Name]; !ok {
				continue
			}
			sh := h.Services[svc.Name]
			sh.Healthy = !st.IsUnhealthy(rs.Name, svc.Name)
			reg.Services[svc.Name] = sh
			if sh.Known && (reg.Health == nil || sh.Share < *reg.Health) {
				v := sh.Share
				reg.Health = &v
			}
		}
		out = append(out, reg)
	}
	return out
}

// heldByDrills maps each region a running drill holds to that drill.
func heldByDrills(st *state.State) map[string]*wire.RegionDrill {
	out := map[string]*wire.RegionDrill{}
	for _, id := range st.DrillIDs() {
		d := st.Drills[id]
		if !d.Running() {
			continue
		}
		rd := &wire.RegionDrill{ID: d.ID, Runbook: d.Runbook, Step: min(d.Current+1, len(d.Steps)), Steps: len(d.Steps)}
		if d.Current < len(d.Steps) {
			step := d.Steps[d.Current]
			rd.StepKind = step.Kind
			if step.Kind == runbooks.KindWait && !step.StartedAt.IsZero() && step.Duration > 0 {
				rd.NextAt = step.StartedAt.Add(step.Duration.D())
			}
		}
		for _, r := range d.Regions {
			if _, taken := out[r]; !taken {
				out[r] = rd
			}
		}
	}
	return out
}

func (s *server) regions(w http.ResponseWriter, _ *http.Request) {
	st := s.b.State()
	if !requireConfig(w, st) {
		return
	}
	writeJSON(w, http.StatusOK, buildRegions(st, s.b.RegionHealth(), st.RegionList()))
}

func (s *server) region(w http.ResponseWriter, r *http.Request) {
	st := s.b.State()
	if !requireConfig(w, st) {
		return
	}
	name := mux.Vars(r)["region"]
	rs, ok := st.Region(name)
	if !ok {
		writeError(w, http.StatusNotFound, state.CodeNotFound, "unknown region "+strconv.Quote(name))
		return
	}
	writeJSON(w, http.StatusOK, buildRegions(st, s.b.RegionHealth(), []state.RegionState{rs})[0])
}

func (s *server) services(w http.ResponseWriter, _ *http.Request) {
	st := s.b.State()
	if !requireConfig(w, st) {
		return
	}
	out := make([]wire.Service, 0, len(st.Config.Services))
	for i := range st.Config.Services {
		svc := &st.Config.Services[i]
		eff := map[string]int{}
		for _, rw := range st.EffectiveWeights(svc) {
			eff[rw.Region] = rw.Weight
		}
		sv := wire.Service{Name: svc.Name, FQDN: svc.Name + "." + st.Config.Zone, Policy: svc.Policy, TTL: svc.TTL}
		for _, r := range st.Config.Regions {
			eps, ok := svc.Endpoints[r.Name]
			if !ok {
				continue
			}
			sv.Regions = append(sv.Regions, wire.ServiceRegion{
				Region: r.Name, Endpoints: eps, Weight: st.Regions[r.Name].Weight,
				EffectiveWeight: eff[r.Name], Healthy: !st.IsUnhealthy(r.Name, svc.Name),
			})
		}
		out = append(out, sv)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) members(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.b.Members())
}

func (s *server) getConfig(w http.ResponseWriter, r *http.Request) {
	st := s.b.State()
	if !requireConfig(w, st) {
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "yaml") {
		b, err := st.Config.RedactSecrets().Marshal()
		if err != nil {
			writeError(w, http.StatusInternalServerError, wire.CodeInternal, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/yaml")
		w.Header().Set("X-Evac-Config-Version", strconv.FormatUint(st.ConfigVersion, 10))
		_, _ = w.Write(b)
		return
	}
	// Sink secrets never leave in a read; a put-back keeps them (KeepSecrets).
	writeJSON(w, http.StatusOK, wire.ConfigInfo{Version: st.ConfigVersion, Config: st.Config.RedactSecrets()})
}

func (s *server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since uint64
	limit := 100
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, state.CodeInvalid, "since must be a non-negative integer")
			return
		}
		since = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, http.StatusBadRequest, state.CodeInvalid, "limit must be an integer from 1 to 10000")
			return
		}
		limit = n
	}
	evs := s.b.State().EventsSince(since, limit)
	if evs == nil {
		evs = []state.Event{}
	}
	writeJSON(w, http.StatusOK, evs)
}
