// Package spill runs capacity-aware spill (docs/steering.md,
// "Capacity-aware spill") around the replicated state:
//
//   - a Reporter on every controller reads its DNS server's home-demand
//     counters (answers of nearest services by the client's first and
//     second choice) and proposes their difference over a sliding window
//     as a demand-report command, like the drill drain reports: the
//     leader needs every controller's figures, and the log carries them;
//   - a Planner on the leader notices each region whose weight changed
//     and proposes its spill plan (state.PlanSpill over the combined
//     demand), which every controller's DNS server then applies through
//     the accept shares of the nearest choice.
//
// The plan is computed before proposing and stored whole, so Apply reads
// no clock and does no arithmetic over measurements that could differ
// between replicas; the DNS answer path only reads the stored shares and
// adds to atomic counters.
package spill
