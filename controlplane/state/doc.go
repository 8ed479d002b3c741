// Package state holds evac's replicated steering state and the pure function
// that advances it.
//
// Why it is shaped this way:
//   - A State value is immutable once published. Apply builds a new State from
//     the old one and the command; the FSM swaps a pointer. DNS servers and the
//     API read a *State without locks and always see one consistent version.
//   - Apply is deterministic: time, actor and request id travel inside the
//     Command (stamped by the node that proposed it), never read from the clock.
//     Every replica that applies the same log reaches the same State.
//   - Business rules that must hold at commit time (never evacuate the last
//     serving region, max_evacuated, freeze) are checked inside Apply against
//     the committed state, so two concurrent requests cannot both pass a check
//     that only one of them may pass. A refused command changes nothing but the
//     applied index.
//   - Apply never parses user input: the API and the leader validate,
//     normalise and render before proposing (ParseConfig, PreparePutRunbook,
//     PrepareDrill, ScheduleAdd.Validate), and the command carries the result.
//     A release that changes those rules therefore cannot change what a log
//     replays to. Entries of aa66dac and earlier carried the input; they go
//     through that release's code, frozen in internal/frozenv1 (legacy.go).
//   - Command types are numbered explicitly and only ever appended, and each
//     is registered once in the command table (commands.go), which builds
//     dispatch and names. A type this binary does not know is skipped when
//     its IgnoreUnknown flag is set (the FSM logs and counts it) and
//     otherwise panics the FSM: diverging silently is worse.
package state
