// Package health turns the gossip view (members and their latest reports)
// into the controllers' per-region, per-service health.
//
// Compute is a pure function of its inputs, clock included, so that the
// rules are tested table-driven and every controller replica derives the
// same answer from the same view:
//
//   - Only members with role agent count. While the controllers enforce
//     agent enrolment, Enrolled is applied first: only enrolled agents,
//     claiming their enrolled region, and their reports for it.
//   - An alive agent passes a service when every one of its fresh reports
//     for that service is passing. A report is stale when this node
//     received it more than `stale` ago (its own clock, so agents' clock
//     skew does not matter; 0 disables staleness). A stale report is not
//     evidence either way: it is listed in Stale and left out of the
//     counts, so an agent whose reports stopped arriving neither vouches
//     for its region nor condemns it.
//   - A warming-up report (a check that has not run `rise` times since its
//     agent started) is no evidence either way: listed in WarmingUp, left
//     out of the counts, like a stale one. An agent started before its
//     endpoints listen, or a fleet restarted at once, condemns nothing.
//   - Share = passing alive agents / alive agents reporting the service in
//     the region. No alive agent reporting: Known is false and Share 0, so
//     the steering loop can tell "no data" from "all failing".
//   - Dead and left agents count in AgentsTotal only, and apart in
//     AgentsDead and AgentsLeft: an agent that left gracefully (a SIGTERM,
//     an upgrade, a maintenance stop) says nothing about its region; only
//     dead ones count against it (rule 2 below).
//   - Checks breaks a service down per check name (passing of reporting).
//   - Capacity sums the capacity that alive agents report, per region.
//
// "Alive" is gossip's Member.Live(): alive or suspect (memberlist v0.7.0
// does not expose suspicion, so suspect members show as alive).
//
// # Vantage points: when is a region down?
//
// A region is judged down on evidence from more than one place, never on
// one controller's view of its own links. The evidence is of two kinds:
//
//  1. The region's own agents, alive, report failing checks (Share below
//     unhealthy_below). That is evidence on its own: the agents are
//     there, and say their endpoints fail.
//  2. No agent of the region is alive and at least one is dead in the
//     gossip pool (AgentsAlive 0, AgentsDead > 0). Agents that left are
//     no evidence: a region whose agents all left is unobserved, which the
//     leader records as an event (region.unobserved) and the metric
//     evac_region_observers shows, but never a verdict. memberlist declares a member dead only after a
//     direct probe AND indirect probes through other members (any region)
//     fail, and after a suspicion period the member itself can refute
//     through any peer. So a controller that merely lost its own link to
//     the region keeps seeing the agents alive, through the other regions.
//
// Reports travel the same way: every node re-broadcasts a report on first
// receipt (and push-pull carries the whole table), so a region's reports
// reach the controllers through the agents of other regions when the
// direct path is cut. Losing the direct path therefore changes nothing
// (tested with nftables in integration/partition_test.go); a region cut
// off from the controllers and from every other region is dead to all and
// evacuated. Staleness never turns into failure, for the same reason: a
// report that stopped arriving is an absence of evidence, and only the
// failure detector's many-vantage verdict (dead) counts as the region being
// gone.
package health
