// Package ui serves the operator dashboard at /ui: one page of plain HTML,
// CSS and JavaScript embedded in the binary, with no build step and nothing
// loaded from elsewhere. The page talks only to the admin API of the
// controller that served it, sending the token the operator signed in with
// as `Authorization: Bearer TOKEN` on every call.
package ui

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/gorilla/mux"
)

//go:embed static
var static embed.FS

// Files is the dashboard's file tree (index.html, app.js, style.css).
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// Mount registers GET /ui (a redirect to /ui/) and GET /ui/... on r.
func Mount(r *mux.Router) {
	files := http.StripPrefix("/ui/", http.FileServerFS(Files()))
	r.Handle("/ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently)).Methods(http.MethodGet, http.MethodHead)
	r.PathPrefix("/ui/").Handler(headers(files)).Methods(http.MethodGet, http.MethodHead)
}

// headers sets a strict content security policy: the page loads only its
// own files and talks only to its own origin.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}
