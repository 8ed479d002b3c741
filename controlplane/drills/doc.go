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
package drills
