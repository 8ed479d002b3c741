// Package gossip carries evac's health reports and membership between
// agents and controllers over hashicorp/memberlist.
//
// Why it is shaped this way (measurements in ../shared/FAULTS.md, beside
// the repository):
//
//   - memberlist does not forward user broadcasts: a message queued on one
//     node reaches only the few peers its retransmit limit allows. So every
//     node re-queues a report on its own broadcast queue the first time it
//     sees it (Serf-style), deduplicated by (origin, service, check) and a
//     per-origin sequence number; an older or equal sequence is dropped and
//     not forwarded. Sequences start at the origin's unix-nanosecond clock so
//     that a restarted node's reports still supersede its old ones.
//   - The whole report table also rides on memberlist's push-pull exchange
//     (LocalState/MergeRemoteState), merged by sequence: a node that joins
//     late, or a partition that heals, converges without waiting for fresh
//     broadcasts.
//   - After a long partition memberlist's halves do not find each other
//     again, so a background loop re-joins the seeds every RejoinInterval,
//     and two random known members that are not alive with probability
//     8 × down/live, at most 1 (Serf's rule scaled: every round in a small
//     pool or after a partition, rare for one false death among 1,000). A
//     member seen coming back from dead or left
//     gets one immediate push-pull from 3 rendezvous-chosen members, so a
//     node restarted without seeds learns the pool at once.
//   - The memberlist transport is this package's own (transport.go):
//     memberlist's NetTransport allocates 64 KiB per packet received, which
//     kept 1,000 agents from running on one host, and dials TCP without a
//     source address, while on one machine the regions live on different
//     loopback addresses and fault injection matches on source address.
//   - Members() keeps dead and left members (for Config.Retention) so the
//     controllers can show them; memberlist itself forgets them. memberlist
//     does not say whether a member left or failed, so a leaving node first
//     broadcasts a leave intent (as Serf does). It exposes no suspicion
//     either: a suspect member shows as alive until declared dead.
//   - A node restarted with fewer checks withdraws its old reports with
//     tombstones, so they neither linger nor come back through push-pull.
//   - Encryption uses memberlist's keyring (AES-GCM, primary key first).
//     SetKeys installs a new ring in place — add, make primary, remove — so
//     a key is rotated without restarting any node (see agent.ReadKeyring
//     for the three steps; `evac server`/`evac agent` reload on SIGHUP).
//   - Reports may carry the origin's capacity; Received is stamped by the
//     receiving node's clock so that staleness never depends on the
//     origin's clock.
//   - Wire messages are one type byte then JSON (protocol 1) or binary
//     (protocols 2 and 3, wire.go). Anything undecodable is logged and dropped:
//     garbage on the gossip port must never panic.
//   - Protocol 2 is what makes 1,000 agents cheap (docs/benchmarks.md): a
//     binary report whose header (origin, service, check, seq) is read in
//     place, so a duplicate costs a map lookup; only changes are flooded,
//     and an agent's changes also go straight to every live controller;
//     unchanged reports are renewed by one small refresh per heartbeat,
//     sent to the controllers directly and through two agents of other
//     regions (refresh.go), not flooded. A controller that a refresh tells
//     of a change it missed pulls it from the origin and two agents of
//     other regions (pull.go) instead of waiting for push-pull, which
//     matters when the flood alone carries changes (a region cut off from
//     the controllers). A node advertises its version in
//     metadata (MetaProto) and speaks protocol 2 only while every live
//     member does, so a fleet upgraded one node at a time keeps working.
//   - Agents have identities (identity.go, protocol 3): each signs the
//     reports and refreshes it originates with its own Ed25519 key, and the
//     controllers check them against the enrolled agents (Config.Enrolment,
//     from the replicated state) however they arrive; relays forward the
//     signed bytes unchanged and check nothing. Every node drops a report
//     whose sequence is more than MaxSeqSkew in its own future, so a forged
//     huge sequence cannot hold an origin's reports off. Refused reports are
//     counted by reason (Node.Dropped), never stored.
//   - memberlist's per-packet LZW compression is off (it was the largest
//     CPU cost at 300 nodes); the retransmit limit is computed for at least
//     100 nodes (12 sends per node, 16 from 1,000).
//
// Concurrency: memberlist calls the event delegate with its node lock held,
// so this package never calls into memberlist while holding its own lock.
package gossip
