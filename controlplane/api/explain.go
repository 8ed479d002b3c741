package api

import (
	"errors"
	"net/http"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/dnsserver"
)

// Explainer is a Backend that can explain its DNS answers (GET
// /v1/explain); the controller is one, through its DNS server, so the
// explanation comes from the code that answers queries.
type Explainer interface {
	Explain(name, client string) (dnsserver.Explanation, error)
}

// explain is GET /v1/explain?name=NAME&client=ADDR|CIDR.
func (s *server) explain(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name, client := q.Get("name"), q.Get("client")
	if name == "" || client == "" {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, "name and client are required (e.g. ?name=api&client=10.3.0.1)")
		return
	}
	ex, ok := s.b.(Explainer)
	if !ok {
		writeError(w, http.StatusNotImplemented, "not_implemented", "this node serves no DNS answers to explain")
		return
	}
	e, err := ex.Explain(name, client)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, e)
	case errors.Is(err, dnsserver.ErrBadClient):
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
	case errors.Is(err, dnsserver.ErrUnknownName):
		writeError(w, http.StatusNotFound, state.CodeNotFound, err.Error())
	case errors.Is(err, dnsserver.ErrNoAnswers):
		writeError(w, http.StatusConflict, state.CodeNoConfig, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, wire.CodeInternal, err.Error())
	}
}
