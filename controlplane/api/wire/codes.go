package wire

// Error codes of writes that could not be committed. Clients retry the
// first three with the same Idempotency-Key (internal/client does).
const (
	// CodeNoLeader (503): no leader is known or none could be reached (an
	// election, or this controller cannot reach a quorum). Nothing was
	// committed.
	CodeNoLeader = "no_leader"
	// CodeUnavailable (503): the cluster could not take the write in time
	// for another transient reason. Nothing was committed.
	CodeUnavailable = "unavailable"
	// CodeOutcomeUnknown (504): a leader appended the write to its log and
	// then lost leadership or ran out of time: it may or may not be
	// committed. Retrying with the same Idempotency-Key applies it at most
	// once and answers with the outcome.
	CodeOutcomeUnknown = "outcome_unknown"
	// CodeShuttingDown (503): this controller is stopping.
	CodeShuttingDown = "shutting_down"
)

// CodeBelowQuorum (409): the membership change would leave the cluster
// below quorum; force overrides.
const CodeBelowQuorum = "below_quorum"

// CodeEdge (409): the membership change would make an edge replica a
// voter; force does not override it.
const CodeEdge = "edge_replica"

// Error codes of requests the auth middleware refuses (controlplane/auth).
const (
	// CodeUnauthorized (401): no bearer token was sent, or it is unknown
	// or revoked (the WWW-Authenticate challenge tells which).
	CodeUnauthorized = "unauthorized"
	// CodeForbidden (403): the token's role may not make this request.
	CodeForbidden = "forbidden"
	// CodeRateLimited (429): the token's write rate limit is exhausted.
	CodeRateLimited = "rate_limited"
)

// CodeInternal (500): the server failed; the message says how.
const CodeInternal = "internal"
