// Package client is a typed Go client of evac's admin API (`/v1`, see
// SPEC.md "Admin API"). The CLI, the integration tests and `evac dev` use it.
//
// Why it is shaped this way:
//   - One method per endpoint, returning the JSON shapes as Go structs. The
//     shapes live here, not in controlplane/api, so that this package depends
//     only on controlplane/state (for Config and Event) and stays cheap to
//     import from tests.
//   - A request that reached the server and failed is an *APIError carrying
//     the HTTP status and the server's code; a request that never got an
//     answer is a *ConnError. Callers (the CLI's exit codes, tests waiting
//     for a server) tell them apart with errors.As.
//   - Deadlines come from the caller's context, plus an optional per-request
//     timeout (WithTimeout). Only GETs are retried, and only when no response
//     arrived: a write is never sent twice. Every write carries a fresh
//     X-Request-ID header (or the one set with WithRequestID) so that the
//     server can make a deliberate retry a no-op.
//   - CaptureRaw lets a caller keep the exact bytes the server sent (the
//     CLI's `-o json`) without a second request or a second code path.
package client
