package state

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/evac-sh/evac/controlplane/state/internal/frozenv1"
	v1runbooks "github.com/evac-sh/evac/controlplane/state/internal/frozenv1/runbooks"
	"github.com/evac-sh/evac/runbooks"
)

// Legacy entries: commands written by aa66dac and earlier carry the user's
// input (a config as written, a runbook's source, a drill's parameters, a
// cron expression), which that release's Apply validated, normalised and
// rendered. They still replay to the state that release produced: the
// functions below hand them to that release's code, frozen in
// internal/frozenv1, and to nothing else. Commands written since carry the
// result (a Normalized config, a Prepared runbook, drill or schedule) and
// never reach this file. TestGoldenLogReplay (controlplane/fsm) replays a
// log written by aa66dac and requires its exact state.

// legacyConfig normalises an aa66dac apply-config body.
func legacyConfig(body []byte, t CommandType) (*Config, *refusal) {
	out, err := frozenv1.ApplyConfigBody(body)
	switch {
	case errors.Is(err, frozenv1.ErrDecode):
		return nil, refuse(CodeInvalid, "decode %s: %s", t, strings.TrimPrefix(err.Error(), frozenv1.ErrDecode.Error()+": "))
	case errors.Is(err, frozenv1.ErrNoConfig):
		return nil, refuse(CodeInvalid, "config is required")
	case errors.Is(err, frozenv1.ErrInvalid):
		return nil, refuse(CodeInvalid, "invalid steering config: %s", strings.TrimPrefix(err.Error(), frozenv1.ErrInvalid.Error()+": "))
	case err != nil:
		return nil, refuse(CodeInvalid, "decode %s: %v", t, err)
	}
	var c Config
	if err := json.Unmarshal(out, &c); err != nil {
		return nil, refuse(CodeInvalid, "decode %s: %v", t, err)
	}
	return &c, nil
}

// legacyParseRunbook parses a runbook's source with aa66dac's parser.
func legacyParseRunbook(file, source string) (*v1runbooks.Runbook, error) {
	return v1runbooks.Parse(file, []byte(source))
}

// legacyPrepare does what aa66dac's Apply did to start a drill of a stored
// runbook: parse its source, render it with b's parameters; it returns b
// prepared. The refusal messages are that release's.
func legacyPrepare(rec RunbookRecord, b DrillStart) (DrillStart, *refusal) {
	rb, err := legacyParseRunbook(rec.Name+".yaml", rec.Source)
	if err != nil {
		return b, refuse(CodeInvalid, "stored runbook %s does not parse: %v", b.Runbook, err)
	}
	acts, err := rb.Render(b.Params)
	if err != nil {
		return b, refuse(CodeInvalid, "runbook %s: %v", b.Runbook, err)
	}
	steps, err := convertActions(acts)
	if err != nil {
		return b, refuse(CodeInvalid, "runbook %s: %v", b.Runbook, err)
	}
	params, _ := rb.Values(b.Params)
	b.Params = params
	b.RunbookVersion = rec.Version
	b.Preconditions = rb.Preconditions
	b.Steps = steps
	b.Prepared = true
	return b, nil
}

// convertActions turns the frozen renderer's actions into runbooks.Action
// through their JSON, the form a drill record keeps them in.
func convertActions(acts []v1runbooks.Action) ([]runbooks.Action, error) {
	b, err := json.Marshal(acts)
	if err != nil {
		return nil, err
	}
	var out []runbooks.Action
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// legacyValidateSchedule is aa66dac's ScheduleAdd.Validate.
func legacyValidateSchedule(b ScheduleAdd) error {
	v := frozenv1.ScheduleAdd{ID: b.ID, Cron: b.Cron, Runbook: b.Runbook, SkipIf: b.SkipIf, Reason: b.Reason}
	for _, bo := range b.Blackouts {
		v.Blackouts = append(v.Blackouts, frozenv1.Blackout{From: bo.From, To: bo.To, Days: bo.Days})
	}
	return v.Validate()
}
