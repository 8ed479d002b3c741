// Package health turns the gossip view (members and their latest reports)
// into the controllers' per-region, per-service health.
//
// Compute is a pure function of its inputs, clock included, so that the
// rules are tested table-driven and every controller replica derives the
// same answer from the same view:
//
//   - Only members with role agent count.
//   - An alive agent passes a service when every one of its latest reports
//     for that service is passing and, when stale > 0, none is older than
//     stale (an agent that stopped reporting does not vouch for anything).
//   - Share = passing alive agents / alive agents reporting the service in
//     the region. No alive agent reporting: Known is false and Share 0, so
//     the steering loop can tell "no data" from "all failing".
//   - Dead and left agents count in AgentsTotal only.
//
// "Alive" is gossip's Member.Live(): alive or suspect.
package health
