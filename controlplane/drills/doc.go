// Package drills runs drills and scheduled drills on the leader.
//
// Why it is shaped this way (the pattern of package steering):
//   - Decide and Schedule are pure functions of the committed state, the
//     controller's health view and the time; the Engine proposes what they
//     return. Every proposal carries an id derived from what it decides
//     ("drill:<id>:<step>:<phase>", "schedule:<id>:<due>"), so a retry after
//     an ambiguous failure is a no-op, and Apply refuses a step phase or a due
//     time that is not the next one, so a new leader never repeats one.
//   - Times come from the committed log: a wait ends at its committed start
//     plus its duration, and a schedule's next due time counts from its
//     committed last fired time. A new leader carries on at the right time.
//   - The engine never applies a step's effect itself: the effect is in
//     Apply, guarded by the step's phase.
//   - The leader renders: a scheduled run's fire carries the drill rendered
//     here (state.PrepareDrill) from the stored runbook, and Apply checks it
//     against the state at commit. Apply never parses a runbook or a cron
//     expression, so a release that changes either cannot change what a
//     log replays to.
//   - A drill never fights an operator. The engine does not look for
//     operators' changes after the fact (a step it proposed in the same
//     instant would still apply): the API makes the drill holding a region
//     give way, in the log, before the operator's restore of it, or instead
//     of an evacuation of a region the drill has already taken out
//     (state.DrillYield); an evacuation of a region still serving
//     pre-empts the drill in Apply. Once ended, the drill gets no more
//     proposals from Decide.
package drills
