package state

import (
	"encoding/json"
	"fmt"
)

// The command table (after Consul's commands_ce.go): every command type is
// registered here, once, with its name, whether an older release may skip
// it, and its handler. Dispatch (Apply), names (CommandType.String), the
// ignorable bit Encode sets, and the list of known types (Known,
// KnownCommandTypes) are all built from it.
//
// To add a command:
//  1. append a constant to the numbered block in command.go, with the next
//     free number (never renumber, never reuse a number, even of a removed
//     command: old logs hold it);
//  2. define its body type (JSON) and a handler on *applier that takes it,
//     `func (a *applier) doThing(b DoThing) *refusal`;
//  3. add a line below: register(CmdDoThing, "do-thing", mustApply, (*applier).doThing).
//
// Mark a command ignorable only if an older release that skips it keeps a
// state that does not disagree with this one on anything it can read: its
// entry is then refused nowhere and applied nowhere on the old release (the
// old release logs and counts it, evac_fsm_ignored_commands_total). Every
// other command is mustApply: an older release that meets it stops (Apply
// panics) instead of diverging, and must be upgraded to go on. So a new
// mustApply command must not be proposed while a controller of an older
// release is a voter (see docs/operations.md, "Upgrades").
//
// A handler applies only commit-time rules: checks of the command against
// the current state. Input is validated, normalised and rendered before
// proposing, and the command carries the result; a handler must never parse
// user input, read a clock, draw a random number or do I/O. The few shape
// checks handlers still make on a command's own fields (a weight within
// 0..100, checkRamp, a drill id's pattern, a step's phase and outcome) are
// part of what a log replays to, like the safety rules: a release that must
// change one adds a command type (or a field that old entries lack) instead.
func init() {
	registerRaw(CmdApplyConfig, "apply-config", mustApply, (*applier).applyConfigCmd)
	register(CmdEvacuate, "evacuate", mustApply, (*applier).evacuate)
	register(CmdRestore, "restore", mustApply, (*applier).restore)
	register(CmdRampStep, "ramp-step", mustApply, (*applier).rampStep)
	register(CmdSetWeight, "set-weight", mustApply, (*applier).setWeight)
	register(CmdSetHealth, "set-health", mustApply, (*applier).setHealth)
	register(CmdFreeze, "freeze", mustApply, (*applier).freezeCmd)
	register(CmdUnfreeze, "unfreeze", mustApply, (*applier).unfreezeCmd)
	register(CmdRecordEvent, "record-event", mustApply, (*applier).recordEvent)
	register(CmdPutRunbook, "put-runbook", mustApply, (*applier).putRunbook)
	register(CmdDeleteRunbook, "delete-runbook", mustApply, (*applier).deleteRunbook)
	register(CmdDrillStart, "drill-start", mustApply, (*applier).drillStart)
	register(CmdDrillStep, "drill-step", mustApply, (*applier).drillStep)
	register(CmdDrillAbort, "drill-abort", mustApply, (*applier).drillAbort)
	register(CmdScheduleAdd, "schedule-add", mustApply, (*applier).scheduleAdd)
	register(CmdScheduleRemove, "schedule-remove", mustApply, (*applier).scheduleRemove)
	register(CmdScheduleFire, "schedule-fire", mustApply, (*applier).scheduleFire)
	register(CmdDrillDrain, "drill-drain", ignorable, (*applier).drillDrain)
	register(CmdDrillYield, "drill-yield", mustApply, (*applier).drillYield)
	// Ignorable: an older release has no notifier, and nothing it reads
	// depends on delivery progress.
	register(CmdNotifyProgress, "notify-progress", ignorable, (*applier).notifyProgress)
	// Ignorable: an older release, which has no enrolments, keeps counting
	// every agent until it is upgraded (as it did before).
	register(CmdEnrollAgent, "enroll-agent", ignorable, (*applier).enrollAgent)
	register(CmdRevokeAgent, "revoke-agent", ignorable, (*applier).revokeAgent)
	// Ignorable: a report only adds information; an older release has no
	// spill planning and reads no demand.
	register(CmdDemandReport, "demand-report", ignorable, (*applier).demandReport)
	// Ignorable: an older release, which has no capacity-aware spill, keeps
	// answering as before (every client leaving a region to its next
	// choice); nothing it reads depends on the plan.
	register(CmdSetSpill, "set-spill", ignorable, (*applier).setSpill)
	// Must apply: a release that skipped them would publish and sign with
	// other keys than the rest of the cluster. The proposer holds them
	// back while a member does not apply them (MembersApply).
	register(CmdDNSSECKeys, "dnssec-keys", mustApply, (*applier).recordDNSSECKeys)
	register(CmdDNSSECRollover, "dnssec-rollover", mustApply, (*applier).dnssecRollover)
}

// Whether an older release may skip a command type it does not know.
const (
	mustApply = false
	ignorable = true
)

// command is one row of the command table.
type command struct {
	name      string
	ignorable bool
	apply     func(*applier) *refusal
}

// commands is the command table, by type (without IgnoreUnknownFlag).
var commands [IgnoreUnknownFlag]*command

// register adds a command type to the table; its handler decodes the body
// into a T. It panics on a number out of range or registered twice.
func register[T any](t CommandType, name string, skip bool, h func(*applier, T) *refusal) {
	if t == 0 || t >= IgnoreUnknownFlag {
		panic(fmt.Sprintf("state: command type %d out of range 1..%d", t, IgnoreUnknownFlag-1))
	}
	if c := commands[t]; c != nil {
		panic(fmt.Sprintf("state: command type %d registered twice (%s, %s)", t, c.name, name))
	}
	commands[t] = &command{name: name, ignorable: skip, apply: func(a *applier) *refusal {
		var b T
		if err := a.decode(&b); err != nil {
			return err
		}
		return h(a, b)
	}}
}

// registerRaw adds a command type whose handler decodes the body itself
// (a.cmd.Body), e.g. to tell an older release's form from the current one.
func registerRaw(t CommandType, name string, skip bool, h func(*applier) *refusal) {
	register(t, name, skip, func(a *applier, _ json.RawMessage) *refusal { return h(a) })
}

func lookup(t CommandType) *command { return commands[t&^IgnoreUnknownFlag] }

// Known reports whether this binary knows command type t.
func Known(t CommandType) bool { return lookup(t) != nil }

// Ignorable reports whether an older release may skip t: the flag in the
// type byte, which Encode sets for the types registered ignorable.
func (t CommandType) Ignorable() bool { return t&IgnoreUnknownFlag != 0 }

// HighestCommandType is the highest command type this binary applies.
func HighestCommandType() CommandType {
	known := KnownCommandTypes()
	return known[len(known)-1]
}

// KnownCommandTypes lists the registered command types in number order.
func KnownCommandTypes() []CommandType {
	var out []CommandType
	for t, c := range commands {
		if c != nil {
			out = append(out, CommandType(t))
		}
	}
	return out
}

func (t CommandType) String() string {
	if c := lookup(t); c != nil {
		return c.name
	}
	return fmt.Sprintf("unknown(%d)", uint8(t))
}
