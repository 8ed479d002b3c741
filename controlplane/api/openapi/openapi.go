// Package openapi serves the OpenAPI 3 description of the admin API at
// GET /v1/openapi.json. The document is hand-written (openapi.json, embedded
// in the binary); a test walks the API's router and fails when a route is
// registered but not described, or described but not registered, and
// lint_test.go validates it (kin-openapi) and checks evac's own rules:
// every operation has an operationId, the role auth.Required gives it,
// and the 401/403/429 answers that role implies.
//
// The file's `servers` entry is relative ("/"); the handler replaces it
// with the absolute URL of the controller that serves the document, taken
// from the request (its scheme and Host), so "try it" tools and generated
// clients talk to the controller they read the document from.
package openapi

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gorilla/mux"
)

// Path is where the document is served.
const Path = "/v1/openapi.json"

//go:embed openapi.json
var doc []byte

// Document returns the OpenAPI document (JSON) as stored, with a relative
// server URL.
func Document() []byte { return doc }

// split is the document cut around the value of its top-level "servers"
// key, so that serving it replaces that value and keeps the rest, byte for
// byte, in its order.
type split struct{ before, after []byte }

var servers = mustSplit(doc)

func mustSplit(b []byte) split {
	s, err := splitServers(b)
	if err != nil {
		panic(fmt.Sprintf("openapi.json: %v", err))
	}
	return s
}

// splitServers finds the top-level "servers" value in an OpenAPI document.
func splitServers(b []byte) (split, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return split{}, errors.New("not a JSON object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return split{}, err
		}
		start := dec.InputOffset() // just after the key
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return split{}, err
		}
		if t == "servers" {
			return split{before: b[:start], after: b[dec.InputOffset():]}, nil
		}
	}
	return split{}, errors.New(`no top-level "servers" key`)
}

// ServerURL is the absolute URL of the controller that got r: https when
// the request came over TLS, and the Host the client asked for. It is ""
// when the request names no host.
func ServerURL(r *http.Request) string {
	if r.Host == "" {
		return ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// Serve writes the document with its servers set to the controller that
// got r.
func Serve(w io.Writer, r *http.Request) error {
	url := ServerURL(r)
	if url == "" {
		_, err := w.Write(doc)
		return err
	}
	entry, err := json.Marshal([]map[string]string{{"url": url, "description": "the controller that served this document"}})
	if err != nil {
		return fmt.Errorf("encode servers: %w", err)
	}
	var out bytes.Buffer
	out.Grow(len(doc) + len(entry))
	out.Write(servers.before)
	out.WriteString(": ")
	out.Write(entry)
	out.Write(servers.after)
	_, err = w.Write(out.Bytes())
	return err
}

// Mount registers GET /v1/openapi.json on r.
func Mount(r *mux.Router) {
	r.HandleFunc(Path, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		_ = Serve(w, req)
	}).Methods(http.MethodGet, http.MethodHead)
}
