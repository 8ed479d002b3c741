// Package raftnode runs one evac controller's Raft node: hashicorp/raft with
// durable storage, a multiplexed TCP transport, write forwarding to the
// leader and leadership notifications. It knows nothing about evac's state:
// the FSM is passed in.
//
// Why it is shaped this way:
//
//   - Storage is raft-wal (LogStore and StableStore) plus raft's
//     FileSnapshotStore under DataDir/raft, because raft-boltdb does not
//     build with raft v1.8 (see FAULTS.md). raft-wal's Close leaves its
//     bolt meta DB open, so the node owns that DB and closes it; otherwise a
//     restart in the same process (tests, `evac dev`) would block on the
//     file lock. A node bootstraps only when it has no state and is in the
//     bootstrap list, so restarts and late joiners never re-bootstrap.
//
//   - One port per node. streamLayer (stream.go) multiplexes raft RPCs and
//     forward RPCs on RaftAddr by the first byte of each connection, read on
//     a per-connection goroutine under a deadline so idle or garbage
//     connections cannot stall Accept. Outbound connections are bound to
//     RaftAddr's IP so loopback-subnet partitions (nftables on lo) hit this
//     node's traffic. The dial and accept paths each have one wrapper hook
//     (connWrapper) where mutual TLS goes (tls.go); the first byte is read
//     after the handshake, so forward RPCs are covered too.
//
//   - A CA is not an identity. Under mutual TLS a peer must also carry
//     serverAuth and clientAuth and name a member of the latest Raft
//     configuration (server ID or Raft address host), checked at each
//     handshake on both ends (tls.go), so an API client certificate or one
//     issued for another name from the same CA gets nowhere, membership
//     changes admit and revoke peers, and each refused peer is logged
//     once rather than on every retry.
//
//   - Raft's files are private whatever the umask (filemodes.go): the
//     libraries create 0644/0666 files and 0755 directories, so the node
//     narrows them at start, per WAL segment and per snapshot.
//
//   - Followers forward writes (forward.go) instead of telling callers to
//     find the leader: every controller's API can accept writes. The wire
//     format is length-prefixed frames, no codec dependency. Apply,
//     AddVoter and RemoveServer retry transient failures (no leader, leader
//     moved, connection errors, lost leadership) with a short jittered
//     backoff until the caller's context ends. raft.ErrLeadershipLost is
//     ambiguous, the write may have committed, and is retried anyway: evac
//     commands carry ids so a repeat is a no-op. When an operation finally
//     fails, its error says which kind of failure it was: wrapping
//     ErrOutcomeUnknown if any attempt may have reached a leader's log
//     (lost leadership, a wait cut short after the leader took the entry,
//     a forward connection lost after the request was sent), otherwise
//     nothing was committed (e.g. ErrNoLeader). The API answers the two
//     differently (504 outcome_unknown, 503 no_leader).
//
//   - Membership (membership.go): voters and non-voters are added,
//     promoted and removed through the leader like writes. Whether a
//     change is safe needs each member's real state, which the Raft
//     configuration does not hold, so members answer a status probe on
//     the forward RPC (same port, same TLS); CheckQuorum refuses a change
//     after which the healthy voters would not be a majority. Recover
//     (recover.go) is raft's RecoverCluster for a stopped node.
//
//   - FSM responses must be []byte (already encoded by the FSM) or error,
//     so a response crosses the forward RPC unchanged and a follower's
//     caller sees the same bytes as the leader's.
//
//   - Leadership is reported through raft's own LeaderCh, re-published on a
//     channel that keeps only the latest value and is closed by Shutdown.
//     raft never blocks on it (unlike Config.NotifyCh), so a slow steering
//     loop cannot stall consensus.
//
//   - hclog.go adapts raft's hclog to zap with structured fields; raft's
//     routine INFO chatter (pipelines, snapshots, compaction) goes to Debug.
//
//   - No globals: several nodes live in one process (`evac dev`, tests).
//     Every goroutine the package starts is stopped by Shutdown, and every
//     connection is tracked by the stream layer and closed with it.
package raftnode
