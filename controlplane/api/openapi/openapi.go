// Package openapi serves the OpenAPI 3 description of the admin API at
// GET /v1/openapi.json. The document is hand-written (openapi.json, embedded
// in the binary); a test walks the API's router and fails when a route is
// registered but not described, or described but not registered.
package openapi

import (
	_ "embed"
	"net/http"

	"github.com/gorilla/mux"
)

// Path is where the document is served.
const Path = "/v1/openapi.json"

//go:embed openapi.json
var doc []byte

// Document returns the OpenAPI document (JSON).
func Document() []byte { return doc }

// Mount registers GET /v1/openapi.json on r.
func Mount(r *mux.Router) {
	r.HandleFunc(Path, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(doc)
	}).Methods(http.MethodGet, http.MethodHead)
}
