package api

import (
	"net/http"

	"github.com/evac-sh/evac/controlplane/notify"
)

func (s *server) notifications(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, notify.Progress(s.b.State(), s.b))
}
