// Package agent is the evac agent process: it runs its region's health
// checks (package checks) and gossips the results to the controllers
// (package gossip).
//
// Why it is shaped this way:
//
//   - The config is one YAML file, decoded strictly (an unknown key is an
//     error, so a typo never silently disables a check). LoadConfig and
//     ParseConfig only decode and fill defaults; Validate is separate so the
//     command line can override fields first. New validates again.
//   - A report is published on every state change, and otherwise at most
//     once per refresh_interval per check (on the check's own runs), so a
//     controller can tell a silent agent from a healthy one by report age.
//   - Checks leave from the agent's gossip IP when it is a specific address:
//     on one machine each region is a loopback subnet and partitions are
//     injected by source address, so an agent's probes must be cut off with
//     its region.
//   - Run blocks until its context ends, then stops the checks and leaves
//     the gossip pool gracefully, so the controllers show it as left rather
//     than failed.
package agent
