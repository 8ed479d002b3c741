// Package wire is the admin API's contract: the request and response
// bodies of /v1, its error body and codes, and the request context that
// names the actor. The API's handlers (controlplane/api), the auth
// middleware (controlplane/auth), the metrics collector, the typed client
// (internal/client) and the CLI all use these types, so client and server
// cannot drift apart; controlplane/controller's TestClientDecodesEveryRead
// decodes every read the handlers serve into them with unknown fields
// refused. The OpenAPI document (controlplane/api/openapi) describes the
// same bodies.
//
// Refusals of the replicated state machine carry state's codes
// (state.CodeInvalid, state.CodeConflict, ...) in the same error body.
package wire
