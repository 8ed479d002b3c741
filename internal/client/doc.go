// Package client is a typed Go client of evac's admin API (`/v1`, see
// SPEC.md "Admin API"). The CLI, the integration tests and `evac dev` use it.
//
// Why it is shaped this way:
//   - One method per endpoint, returning the API's own types: the request
//     and response bodies are declared once, in controlplane/api/wire,
//     which the server's handlers use too, so client and server cannot
//     drift apart. wire depends only on controlplane/state and runbooks, not
//     on the handlers, so this package stays cheap to import from tests.
//   - A request that reached the server and failed is an *APIError carrying
//     the HTTP status and the server's code; a request that never got an
//     answer is a *ConnError. Callers (the CLI's exit codes, tests waiting
//     for a server) tell them apart with errors.As.
//   - Deadlines come from the caller's context, plus an optional per-request
//     timeout (WithTimeout). GETs are retried when no response arrived. A
//     write carries a fresh X-Request-ID header (or the one set with
//     WithRequestID) and is retried with the same id only when the server
//     says nothing was committed or the outcome is unknown (wire.CodeNoLeader,
//     CodeUnavailable, CodeShuttingDown, CodeOutcomeUnknown), so the server
//     applies it at most once.
//   - CaptureRaw lets a caller keep the exact bytes the server sent (the
//     CLI's `-o json`) without a second request or a second code path.
package client
