// Package runbooks is the runbook parser and renderer of commit aa66dac,
// frozen (see package frozenv1): state.Apply uses it only for log entries
// written by that release and earlier. Never edit it; the live parser is
// github.com/evac-sh/evac/runbooks.
package runbooks
