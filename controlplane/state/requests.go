package state

import (
	"crypto/sha256"
	"encoding/hex"
)

// Idempotency keys.
//
// Every command may carry an id; Apply remembers the ids of the last
// recentRequests commands it applied (State.Requests, replicated and in
// snapshots) and answers a command whose id is among them as a duplicate,
// changing nothing. Internal proposers (steering, drills, scheduler) derive
// their ids from what they do. A client's key (the API's Idempotency-Key or
// X-Request-ID) becomes the id ClientRequestID returns: scoped to the
// actor and the command type, so an operator's freeze with key "deploy-42"
// never makes an admin's unfreeze, or evacuate, with the same key a
// duplicate.
//
// Why the scope is in the id rather than computed inside Apply: Apply
// compares ids as opaque strings, as every earlier release did, so an old
// and a new controller in one cluster (a rolling upgrade) make the same
// decision for every entry, and a log written before scoping (ids
// "client:KEY", global, as they were committed) replays exactly as it was
// applied. The scope is still a pure function of the command: the actor
// and the type are the command's own, and the API is the only place that
// turns a client's key into an id.

// ClientRequestID is the command id of a client's idempotency key for a
// command of type t by actor: "c2:" and 32 hex digits of the SHA-256 of
// (actor, t without IgnoreUnknownFlag, key), so that every key, however
// long, costs the same in the replicated state.
func ClientRequestID(actor string, t CommandType, key string) string {
	h := sha256.New()
	// Length-prefixed fields: no two (actor, key) pairs encode alike.
	var n [4]byte
	for _, f := range []string{actor, string([]byte{byte(t &^ IgnoreUnknownFlag)}), key} {
		n[0], n[1], n[2], n[3] = byte(len(f)>>24), byte(len(f)>>16), byte(len(f)>>8), byte(len(f))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return "c2:" + hex.EncodeToString(h.Sum(nil)[:16])
}
