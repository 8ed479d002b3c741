package checks

import (
	"time"
	"unicode/utf8"
)

// Status is the state of a check.
type Status string

// Check states. A check is warming up until it has run `rise` times (see
// damper): its result is then no evidence either way.
const (
	StatusPassing   Status = "passing"
	StatusFailing   Status = "failing"
	StatusWarmingUp Status = "warming_up"
)

// MaxOutput caps Result.Output in bytes: results travel in gossip packets.
const MaxOutput = 256

// Result is the outcome of one run of a check. Status is the damped state
// (after rise/fall; StatusWarmingUp during the first runs), while Output, Time and Latency describe this run.
type Result struct {
	Check   string        `json:"check"`
	Service string        `json:"service"`
	Status  Status        `json:"status"`
	Output  string        `json:"output"`
	Time    time.Time     `json:"time"`
	Latency time.Duration `json:"latency"`
}

// CapOutput truncates s to at most MaxOutput bytes without splitting a
// UTF-8 sequence.
func CapOutput(s string) string {
	if len(s) <= MaxOutput {
		return s
	}
	const ellipsis = "..."
	cut := MaxOutput - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
