package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/evac-sh/evac/runbooks"
)

// CommandType identifies a command in the Raft log. Numbers are explicit and
// only ever appended (after Nomad's structs.go): a log written by an older
// binary must decode forever. Each type is registered once in the command
// table (commands.go), which gives its name and handler.
type CommandType uint8

// Command types. Append only; never renumber or reuse a number.
const (
	CmdApplyConfig CommandType = 1
	CmdEvacuate    CommandType = 2
	CmdRestore     CommandType = 3
	CmdRampStep    CommandType = 4
	CmdSetWeight   CommandType = 5
	CmdSetHealth   CommandType = 6
	CmdFreeze      CommandType = 7
	CmdUnfreeze    CommandType = 8
	CmdRecordEvent CommandType = 9

	CmdPutRunbook     CommandType = 10
	CmdDeleteRunbook  CommandType = 11
	CmdDrillStart     CommandType = 12
	CmdDrillStep      CommandType = 13
	CmdDrillAbort     CommandType = 14
	CmdScheduleAdd    CommandType = 15
	CmdScheduleRemove CommandType = 16
	CmdScheduleFire   CommandType = 17
	CmdDrillDrain     CommandType = 18
	CmdDrillYield     CommandType = 19
	CmdNotifyProgress CommandType = 20
	CmdEnrollAgent    CommandType = 21 // agents.go
	CmdRevokeAgent    CommandType = 22
	CmdDemandReport   CommandType = 23 // demand.go
	CmdSetSpill       CommandType = 24 // spill.go
	CmdDNSSECKeys     CommandType = 25 // dnssec.go
	CmdDNSSECRollover CommandType = 26
)

// IgnoreUnknownFlag, set in the type byte, lets an older controller skip a
// command type it does not know instead of stopping (for rolling upgrades of
// commands that only add information). Encode sets it for the types the
// command table registers ignorable.
const IgnoreUnknownFlag CommandType = 0x80

// Command is one entry of the Raft log. Time and Actor are stamped by the
// node that proposed it; ID makes a retried proposal a no-op.
type Command struct {
	Type  CommandType     `json:"-"`
	ID    string          `json:"id,omitempty"`
	Time  time.Time       `json:"time"`
	Actor string          `json:"actor"`
	Body  json.RawMessage `json:"body"`
}

// ApplyConfig replaces the steering config.
type ApplyConfig struct {
	Config *Config `json:"config"`
	// Normalized says Config was normalised before proposing (ParseConfig,
	// NewApplyConfig): Apply takes it as it is. Entries without it were
	// written by aa66dac or earlier, whose Apply normalised the config; they
	// are normalised by that release's frozen code (internal/frozenv1).
	Normalized bool `json:"normalized,omitempty"`
}

// NewApplyConfig is the command that applies c, a config that ParseConfig
// returned (normalised).
func NewApplyConfig(c *Config) ApplyConfig { return ApplyConfig{Config: c, Normalized: true} }

// Evacuate starts moving a region's traffic out through a ramp.
type Evacuate struct {
	Region       string   `json:"region"`
	Reason       string   `json:"reason"`
	Ramp         []int    `json:"ramp,omitempty"`
	StepInterval Duration `json:"step_interval,omitempty"`
	Force        bool     `json:"force,omitempty"`
	Automatic    bool     `json:"automatic,omitempty"`
	// Capacity is the regions' capacity as the proposer saw it (agents'
	// reports); it overrides the steering config's figures where set.
	Capacity map[string]int `json:"capacity,omitempty"`
}

// Restore starts bringing a region's traffic back through a ramp.
type Restore struct {
	Region       string   `json:"region"`
	Reason       string   `json:"reason"`
	Ramp         []int    `json:"ramp,omitempty"`
	StepInterval Duration `json:"step_interval,omitempty"`
	Automatic    bool     `json:"automatic,omitempty"`
}

// RampStep applies step Step of the region's ramp in progress. It is a no-op
// unless that step is the next one: no step is ever applied twice.
type RampStep struct {
	Region string `json:"region"`
	Step   int    `json:"step"`
}

// SetWeight sets a region's traffic weight directly (drills, operators).
type SetWeight struct {
	Region string `json:"region"`
	Weight int    `json:"weight"`
	Reason string `json:"reason"`
	Force  bool   `json:"force,omitempty"`
}

// SetHealth records the leader's verdict on a service in a region.
type SetHealth struct {
	Region  string  `json:"region"`
	Service string  `json:"service"`
	Healthy bool    `json:"healthy"`
	Share   float64 `json:"share"`
	Detail  string  `json:"detail,omitempty"`
}

// Freeze stops automatic changes; Unfreeze resumes them.
type Freeze struct {
	Reason string `json:"reason"`
}

// RecordEvent appends an audit event that changes nothing else.
type RecordEvent struct {
	Kind    string `json:"kind"`
	Region  string `json:"region,omitempty"`
	Service string `json:"service,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// PutRunbook stores a new version of a runbook. PreparePutRunbook parses
// Source before proposing and fills the rest; Apply stores them as they are.
// An entry without Prepared was written by aa66dac or earlier: Apply parses
// its Source with that release's frozen parser.
type PutRunbook struct {
	Source      string `json:"source"`
	Prepared    bool   `json:"prepared,omitempty"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	// Steps is the number of steps (for the audit event).
	Steps int `json:"steps,omitempty"`
}

// DeleteRunbook removes a runbook and its history.
type DeleteRunbook struct {
	Name string `json:"name"`
}

// DrillStart starts a drill of a stored runbook. ID is chosen by the
// proposer (the API: "d-<unix>-<random>") so that Apply stays deterministic.
//
// PrepareDrill renders the runbook before proposing: Params are then the
// resolved values (given and defaults), Steps the rendered steps of runbook
// version RunbookVersion, and Apply checks them against the state at commit
// (the runbook is still that version, the regions exist, the preconditions
// hold, no other drill holds the regions). An entry without Prepared was
// written by aa66dac or earlier: Apply renders the stored runbook with that
// release's frozen renderer.
type DrillStart struct {
	ID             string            `json:"id"`
	Runbook        string            `json:"runbook"`
	Params         map[string]string `json:"params,omitempty"`
	Reason         string            `json:"reason,omitempty"`
	Prepared       bool              `json:"prepared,omitempty"`
	RunbookVersion uint64            `json:"runbook_version,omitempty"`
	Preconditions  []string          `json:"preconditions,omitempty"`
	Steps          []runbooks.Action `json:"steps,omitempty"`
	// BlockOn are conditions that abort the drill while they fire
	// (validated by the proposer with ValidateBlockers).
	BlockOn []Blocker `json:"block_on,omitempty"`
}

// DrillStep records the start or the end of a drill's step. It is refused
// unless Index is the drill's current step and Phase the next phase, so a
// retried or replayed command never applies a step's effect twice.
type DrillStep struct {
	ID    string `json:"id"`
	Index int    `json:"index"`
	Phase string `json:"phase"` // "start" | "end"
	// Outcome of an end: "pass", "fail" (a gate or restore), or "done".
	Outcome string `json:"outcome,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// DrillAbort stops a running drill and returns its regions' weights to what
// they were before it.
type DrillAbort struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// ScheduleAdd adds a scheduled drill.
type ScheduleAdd struct {
	ID      string            `json:"id"`
	Cron    string            `json:"cron"`
	TZ      string            `json:"tz,omitempty"`
	Runbook string            `json:"runbook"`
	Params  map[string]string `json:"params,omitempty"`
	// Blackouts are daily windows (in TZ) in which a run is skipped.
	Blackouts []Blackout `json:"blackouts,omitempty"`
	// SkipIf lists conditions under which a run is skipped: any_unhealthy,
	// frozen, drill_running.
	SkipIf []string `json:"skip_if,omitempty"`
	Reason string   `json:"reason,omitempty"`
	// BlockOn are conditions that skip a due run while they fire; the
	// drills the schedule starts inherit them.
	BlockOn []Blocker `json:"block_on,omitempty"`
	// Prepared says the proposer validated the schedule (Validate and its
	// time zone). An entry without it was written by aa66dac or earlier and
	// is validated by that release's frozen rules.
	Prepared bool `json:"prepared,omitempty"`
}

// ScheduleRemove removes a schedule.
type ScheduleRemove struct {
	ID string `json:"id"`
}

// ScheduleFire is the leader's scheduler firing a schedule for one due time.
// Apply refuses a ScheduledTime at or before the schedule's last fired time.
type ScheduleFire struct {
	ID            string    `json:"id"`
	ScheduledTime time.Time `json:"scheduled_time"`
	// Missed, when above 0, records that many runs up to ScheduledTime as
	// missed (due while no leader could fire them, past the grace period).
	Missed int `json:"missed,omitempty"`
	// Skip is a reason the leader found to skip the run (a blackout window,
	// evaluated in the schedule's time zone, or a firing blocker).
	Skip string `json:"skip,omitempty"`
	// Prepared says the leader rendered the drill the run starts: Drill
	// (PrepareDrill's result), or DrillError, why it could not. Apply
	// still checks the drill against the state at commit. An entry without
	// it was written by aa66dac or earlier: Apply renders the drill with
	// that release's frozen renderer.
	Prepared   bool        `json:"prepared,omitempty"`
	Drill      *DrillStart `json:"drill,omitempty"`
	DrillError string      `json:"drill_error,omitempty"`
}

// DrillYield ends the running drill that holds Region, if any, because an
// operator is about to change that region (evacuate, restore, set its
// weight): the drill gives way instead of fighting the operator. It ends as
// aborted with a reason naming the operator's change; its other regions go
// back to their weights from before it, Region is left as it is. The API
// proposes it just before the operator's own command.
type DrillYield struct {
	Region string `json:"region"`
	// Change describes the operator's change, e.g. "set weight 50".
	Change string `json:"change"`
	Reason string `json:"reason,omitempty"`
}

// Encode builds the Raft log bytes of a command: one type byte, then JSON.
// The type byte carries IgnoreUnknownFlag when t is registered ignorable.
func Encode(t CommandType, id, actor string, now time.Time, body any) ([]byte, error) {
	if c := lookup(t); c != nil && c.ignorable {
		t |= IgnoreUnknownFlag
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode %s body: %w", t, err)
	}
	env, err := json.Marshal(Command{ID: id, Time: now.UTC(), Actor: actor, Body: b})
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", t, err)
	}
	return append([]byte{byte(t)}, env...), nil
}

// ErrUnknownCommand is returned by Decode for a type this binary does not know.
var ErrUnknownCommand = errors.New("unknown command type")

// Decode parses Raft log bytes into a command.
func Decode(data []byte) (Command, error) {
	if len(data) < 2 {
		return Command{}, errors.New("command too short")
	}
	var c Command
	if err := json.Unmarshal(data[1:], &c); err != nil {
		return Command{}, fmt.Errorf("decode command: %w", err)
	}
	c.Type = CommandType(data[0])
	return c, nil
}

// Result is what applying a command returns to its proposer.
type Result struct {
	Index uint64 `json:"index"`
	// Error and Code are set when the command was refused; the state is then
	// unchanged but for the applied index.
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"`
	// Duplicate is set when the command's ID was applied before.
	Duplicate bool `json:"duplicate,omitempty"`
	// Events are the sequence numbers of the audit events it recorded.
	Events []uint64 `json:"events,omitempty"`
}

// Result codes for refused commands.
const (
	CodeInvalid  = "invalid"   // malformed or invalid request
	CodeNotFound = "not_found" // unknown region or service
	CodeConflict = "conflict"  // the region is not in a state that allows it
	CodeRule     = "rule"      // a safety rule refuses it (use force to override)
	CodeFrozen   = "frozen"    // automatic changes are frozen
	CodeNoConfig = "no_config" // no steering config applied yet

	CodeAlreadyFrozen = "already_frozen" // freeze while frozen: nothing to do
	CodeNotFrozen     = "not_frozen"     // unfreeze while not frozen: nothing to do
)

// RefusedError is a refused command's result as a Go error.
type RefusedError struct{ Code, Msg string }

func (e *RefusedError) Error() string { return e.Msg }

// Err returns the refusal as an error, or nil.
func (r Result) Err() error {
	if r.Error == "" {
		return nil
	}
	return &RefusedError{Code: r.Code, Msg: r.Error}
}

// ApplyNext encodes a command, decodes it back (so the body goes through the
// same wire form the FSM reads from the Raft log) and applies it to s as the
// next log entry. It serves dry runs and anything else that needs Apply's
// verdict without Raft: s itself is never changed.
func ApplyNext(s *State, t CommandType, id, actor string, now time.Time, body any) (*State, Result, error) {
	data, err := Encode(t, id, actor, now, body)
	if err != nil {
		return s, Result{}, err
	}
	cmd, err := Decode(data)
	if err != nil {
		return s, Result{}, err
	}
	next, res := Apply(s, s.Index+1, cmd)
	return next, res, nil
}
