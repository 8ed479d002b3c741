// Package steering is the leader's automatic steering loop.
//
// Decide is a pure function of (replicated state, observed health, time): it
// returns the commands the leader should propose now. Engine runs Decide on a
// ticker while this node leads and proposes its output through Raft. Keeping
// the decision pure makes every rule testable without a cluster, and keeping
// all timing inputs in the replicated state (the time a service was marked
// unhealthy, the time a ramp step is due) lets a new leader carry on exactly
// where the old one stopped: a ramp step is due at the same moment, and a
// detection window is not restarted by a leader change.
//
// Safety rules (last serving region, max_evacuated, freeze, hold-down,
// budget) are enforced again by state.Apply at commit time; Decide only
// avoids proposing what would be refused, and Engine records a refusal of an
// automatic evacuation once per episode so operators can see why the engine
// did not act.
package steering
