// Package api is the admin HTTP API (/v1, JSON) served by every controller.
//
// Reads are answered from the local replica; writes become Raft commands
// through Backend.Propose, which forwards to the leader when this node is a
// follower, and the handler then waits until the local replica has applied
// the command so that a client reading back from the same controller sees
// its own write. Every write carries a request id (the client's
// Idempotency-Key header when given) so that a retry after an ambiguous
// failure is applied at most once.
//
// The API depends on a small Backend interface, not on the gossip or Raft
// packages. Its request and response bodies, error codes and the request
// context naming the actor are package wire (controlplane/api/wire), which
// the auth middleware, metrics, internal/client and the CLI import too: the
// wire format is defined in one place.
package api
