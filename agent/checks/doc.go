// Package checks defines the health checks an evac agent runs against its
// region's endpoints, and the Runner that executes them.
//
// Kinds: http (status ranges, optional body substring and headers), tcp
// (connect), dns (one question to one server: expected rcode and,
// optionally, an address among the A/AAAA answers; udp or tcp).
//
// Why it is shaped this way:
//
//   - A Check is plain data (YAML/JSON with snake_case keys) so that the agent
//     config, `evac validate` and the controllers can share one definition and
//     one Validate with errors that name the offending field.
//   - The Runner owns one goroutine per check, staggered randomly before the
//     first run so that a fleet of agents restarted together does not probe
//     in lock step. Each probe is bounded by the check's timeout, HTTP probes
//     never reuse connections (a pooled connection would hide a dead
//     listener), and redirects are not followed: the status the endpoint
//     itself returns is what is judged.
//   - Flap damping is a small pure state machine (rise/fall consecutive
//     results) kept apart from the I/O so that it is tested table-driven.
//     A check starts warming up (StatusWarmingUp): it reports a state only
//     after `rise` runs, so an agent started before its endpoints listen,
//     or a fleet restarted at once, reports no verdict from one early probe;
//     the controllers count a warming-up report as no evidence.
//   - Probes can leave from a chosen source address (RunnerConfig.SourceIP):
//     on one machine, regions live on different loopback subnets and fault
//     injection (nftables on lo) matches on source addresses, so a probe must
//     come from its agent's own address to be cut off with its region.
package checks
