package openapi_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/evac-sh/evac/controlplane/api/openapi"
	"github.com/evac-sh/evac/controlplane/auth"
)

// TestLint is the OpenAPI linter `make test` runs: the document must pass
// kin-openapi's validation of OpenAPI 3 and evac's rules below, with no
// warning. Each finding names the operation and the rule.
func TestLint(t *testing.T) {
	for _, w := range lint(t, openapi.Document()) {
		t.Error(w)
	}
}

// TestLintFindsProblems proves the rules can fail: a document with each
// problem gets the warning that names it.
func TestLintFindsProblems(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"no operationId", `{"get": {"summary": "s", "tags": ["t"], "x-evac-role": "viewer",
			"responses": {"200": {"description": "ok"}, "401": {"$ref": "#/components/responses/E"}}}}`,
			"GET /v1/status: no operationId"},
		{"no 401", `{"get": {"summary": "s", "operationId": "a", "tags": ["t"], "x-evac-role": "viewer",
			"responses": {"200": {"description": "ok"}}}}`,
			"GET /v1/status: needs a token but has no 401 response"},
		{"wrong role", `{"get": {"summary": "s", "operationId": "a", "tags": ["t"], "x-evac-role": "admin",
			"responses": {"200": {"description": "ok"}, "401": {"$ref": "#/components/responses/E"}}}}`,
			`GET /v1/status: x-evac-role is "admin" but auth.Required gives viewer`},
		{"undeclared tag", `{"get": {"summary": "s", "operationId": "a", "tags": ["u"], "x-evac-role": "viewer",
			"responses": {"200": {"description": "ok"}, "401": {"$ref": "#/components/responses/E"}}}}`,
			`GET /v1/status: tag "u" is not declared`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := `{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "servers": [{"url": "/"}],
				"security": [{"bearer": []}], "tags": [{"name": "t", "description": "d"}],
				"paths": {"/v1/status": ` + tc.doc + `},
				"components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
				  "responses": {"E": {"description": "e", "content": {"application/json": {"schema": {"type": "object"}}}}}}}`
			got := lint(t, []byte(doc))
			for _, w := range got {
				if w == tc.want {
					return
				}
			}
			t.Errorf("warnings %q lack %q", got, tc.want)
		})
	}
}

var camel = regexp.MustCompile(`^[a-z][A-Za-z0-9]*$`)

// lint returns every warning about the document, sorted.
func lint(t *testing.T, b []byte) []string {
	t.Helper()
	loader := openapi3.NewLoader()
	d, err := loader.LoadFromData(b)
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	var warns []string
	warn := func(format string, args ...any) { warns = append(warns, fmt.Sprintf(format, args...)) }
	if err := d.Validate(context.Background()); err != nil {
		warn("OpenAPI validation: %v", err)
	}

	for _, s := range d.Servers {
		if strings.Contains(s.URL, "://") {
			warn("servers: %q is absolute; the stored document has a relative URL, replaced when served", s.URL)
		}
	}
	tags := map[string]bool{}
	for _, tag := range d.Tags {
		if tags[tag.Name] {
			warn("tags: %q declared twice", tag.Name)
		}
		tags[tag.Name] = true
		if strings.TrimSpace(tag.Description) == "" {
			warn("tags: %q has no description", tag.Name)
		}
	}
	globalAuth := len(d.Security) > 0

	ids := map[string]string{}
	for _, path := range d.Paths.InMatchingOrder() {
		for method, op := range d.Paths.Value(path).Operations() {
			name := method + " " + path
			if op.OperationID == "" {
				warn("%s: no operationId", name)
			} else {
				if !camel.MatchString(op.OperationID) {
					warn("%s: operationId %q is not lowerCamelCase", name, op.OperationID)
				}
				if other, dup := ids[op.OperationID]; dup {
					warn("%s: operationId %q is also %s's", name, op.OperationID, other)
				}
				ids[op.OperationID] = name
			}
			if strings.TrimSpace(op.Summary) == "" {
				warn("%s: no summary", name)
			}
			if len(op.Tags) == 0 {
				warn("%s: no tag", name)
			}
			for _, tag := range op.Tags {
				if !tags[tag] {
					warn("%s: tag %q is not declared", name, tag)
				}
			}
			lintResponses(name, method, path, op, globalAuth, warn)
		}
	}
	sort.Strings(warns)
	return warns
}

// lintResponses checks an operation's role and the answers it implies.
func lintResponses(name, method, path string, op *openapi3.Operation, globalAuth bool, warn func(string, ...any)) {
	concrete := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "x")
	need := auth.Required(method, concrete)
	if role, _ := op.Extensions["x-evac-role"].(string); role != need.String() {
		warn("%s: x-evac-role is %q but auth.Required gives %s", name, role, need)
	}
	secured := globalAuth
	if op.Security != nil {
		secured = len(*op.Security) > 0
	}
	has := func(code int) bool { return op.Responses.Status(code) != nil }
	switch {
	case need == auth.RoleNone && secured:
		warn("%s: open to all (auth.Required) but the document asks for a token: set security: []", name)
	case need != auth.RoleNone && !secured:
		warn("%s: needs role %s but the document says no token is needed", name, need)
	}
	if need != auth.RoleNone {
		if !has(http.StatusUnauthorized) {
			warn("%s: needs a token but has no 401 response", name)
		}
		// Every token is at least a viewer: only a higher role can be refused.
		if need > auth.RoleViewer && !has(http.StatusForbidden) {
			warn("%s: needs role %s but has no 403 response", name, need)
		}
		if need == auth.RoleViewer && has(http.StatusForbidden) {
			warn("%s: a 403 response, but every token may read", name)
		}
		write := method != http.MethodGet && method != http.MethodHead
		if write && !has(http.StatusTooManyRequests) {
			warn("%s: a write with no 429 response (per-token write rate limit)", name)
		}
	} else if has(http.StatusUnauthorized) || has(http.StatusForbidden) {
		warn("%s: open to all but lists 401/403", name)
	}
	if op.RequestBody != nil && !has(http.StatusBadRequest) {
		warn("%s: takes a body but has no 400 response", name)
	}
	if strings.Contains(path, "{") && method != http.MethodPut && !has(http.StatusNotFound) {
		warn("%s: names a resource in its path but has no 404 response", name)
	}
	ok := false
	for code, r := range op.Responses.Map() {
		if strings.HasPrefix(code, "2") {
			ok = true
		}
		if (strings.HasPrefix(code, "4") || strings.HasPrefix(code, "5")) && (r.Value == nil || r.Value.Content.Get("application/json") == nil) {
			warn("%s: response %s has no application/json error body", name, code)
		}
	}
	if !ok {
		warn("%s: no 2xx response", name)
	}
}
