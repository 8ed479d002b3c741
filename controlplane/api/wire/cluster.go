package wire

// Peer is an element of GET /v1/cluster/peers.
type Peer struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	// Suffrage is voter or nonvoter (staging is not used).
	Suffrage string `json:"suffrage"`
	// Role is voter, nonvoter or edge: a non-voter that said, when
	// probed, that it runs as an edge replica (an edge that does not
	// answer shows as nonvoter).
	Role   string `json:"role"`
	Leader bool   `json:"leader"`
	// AppliedIndex is the member's own applied index, as it answered the
	// probe; 0 when it did not answer.
	AppliedIndex uint64 `json:"applied_index"`
	// Lag is the replication lag, in log entries: the highest commit
	// index among the members probed (the leader's) less this member's
	// applied index. Absent when it did not answer.
	Lag *uint64 `json:"lag,omitempty"`
	// Reachable: it answered a status probe over its Raft port.
	Reachable bool `json:"reachable"`
	// Healthy: reachable, and its log trails the most advanced member by
	// at most 1024 entries (the quorum rule counts healthy voters).
	Healthy bool   `json:"healthy"`
	Error   string `json:"error,omitempty"`
}

// JoinRequest is the body of POST /v1/cluster/join.
type JoinRequest struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	// Voter: join as a voter (the default) or, false, as a non-voter
	// that receives the log but does not count for quorum.
	Voter  *bool  `json:"voter,omitempty"`
	Force  bool   `json:"force,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// MembershipRequest is the optional body of POST
// /v1/cluster/peers/{id}/promote and DELETE /v1/cluster/peers/{id} (which
// also takes ?force=true&reason=...).
type MembershipRequest struct {
	Force  bool   `json:"force,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// MembershipResult answers a membership change.
type MembershipResult struct {
	// Changed is false when the cluster already was as asked.
	Changed bool `json:"changed"`
	// Event is the audit event's sequence number (0 if not recorded).
	Event uint64 `json:"event,omitempty"`
	// AuditError says why the change's audit event was not recorded.
	AuditError string `json:"audit_error,omitempty"`
	Peers      []Peer `json:"peers"`
}
