// Package frozenv1 is the input validation and normalisation that state.Apply
// ran inside the state machine up to commit aa66dac, frozen: the steering
// config's Normalize (config.go, records.go, duration.go), a schedule's
// Validate (schedule.go) and, in frozenv1/runbooks, the runbook parser and
// renderer.
//
// Later releases validate and normalise before proposing, and their commands
// carry the result, so a release that changes those rules no longer changes
// what a log replays to. Entries written by aa66dac and earlier carry the
// user's input only; state.Apply hands them to this package, which must
// therefore never change. The libraries it calls (go.yaml.in/yaml/v3,
// robfig/cron/v3, net/netip, text/template) are pinned by go.mod; an
// upgrade of one of them must pass controlplane/fsm's TestGoldenLogReplay.
package frozenv1
