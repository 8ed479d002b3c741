package auth

import (
	"net/http"
	pathpkg "path"
	"strings"
)

// Required is the least role a request needs; RoleNone means the endpoint is
// open.
//
//   - open: /healthz, /readyz, and the dashboard's static files under /ui
//     (the page sends the user's token to /v1 itself);
//   - viewer: every other GET or HEAD, /metrics included;
//   - operator: POST evacuate, restore, freeze, unfreeze, and POST /v1/drills
//     and /v1/drills/{id}/abort;
//   - admin: every other write (config, runbooks, schedules, cluster, dev).
//
// Unknown paths follow the same rules, so a new route is never open by
// accident: a new write is admin-only until listed here. The path is
// cleaned first ("/ui/../v1/status" is /v1/status), as the router would.
func Required(method, urlPath string) Role {
	path := pathpkg.Clean("/" + urlPath)
	switch {
	case path == "/healthz" || path == "/readyz":
		return RoleNone
	case path == "/ui" || strings.HasPrefix(path, "/ui/"):
		if method == http.MethodGet || method == http.MethodHead {
			return RoleNone
		}
		return RoleAdmin
	case method == http.MethodGet || method == http.MethodHead:
		return RoleViewer
	case method == http.MethodPost && operatorWrite(path):
		return RoleOperator
	}
	return RoleAdmin
}

// operatorWrite reports whether a POST to path is an operator action.
func operatorWrite(path string) bool {
	p, ok := strings.CutPrefix(path, "/v1/")
	if !ok {
		return false
	}
	seg := strings.Split(strings.TrimSuffix(p, "/"), "/")
	switch {
	case len(seg) == 1:
		return seg[0] == "freeze" || seg[0] == "unfreeze" || seg[0] == "drills"
	case len(seg) == 3 && seg[0] == "regions":
		return seg[2] == "evacuate" || seg[2] == "restore"
	case len(seg) == 3 && seg[0] == "drills":
		return seg[2] == "abort"
	}
	return false
}
