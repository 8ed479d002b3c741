// FROZEN at commit aa66dac (the last release whose Apply parsed user input).
// This file is used ONLY to apply Raft log entries written by that release
// and earlier, so that they replay to the state that release produced. Never
// edit it: a change here changes the state old logs replay to. Live
// validation is in the package it was copied from.

package frozenv1

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// ScheduleAdd is the fields of aa66dac's state.ScheduleAdd that Validate reads.
type ScheduleAdd struct {
	ID        string     `json:"id"`
	Cron      string     `json:"cron"`
	Runbook   string     `json:"runbook"`
	Blackouts []Blackout `json:"blackouts,omitempty"`
	SkipIf    []string   `json:"skip_if,omitempty"`
	Reason    string     `json:"reason,omitempty"`
}

// Blackout is aa66dac's state.Blackout.
type Blackout struct {
	From string   `json:"from"`
	To   string   `json:"to"`
	Days []string `json:"days,omitempty"`
}

const (
	skipAnyUnhealthy = "any_unhealthy"
	skipFrozen       = "frozen"
	skipDrillRunning = "drill_running"
)

var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func parseCron(expr string) (cron.Schedule, error) {
	e := strings.TrimSpace(expr)
	if strings.HasPrefix(e, "TZ=") || strings.HasPrefix(e, "CRON_TZ=") {
		return nil, errors.New("set the time zone with tz, not in the expression")
	}
	return cronParser.Parse(e)
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

var scheduleIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func parseHHMM(s string) (int, bool) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, false
	}
	return t.Hour()*60 + t.Minute(), true
}

// Validate is aa66dac's ScheduleAdd.Validate.
func (b ScheduleAdd) Validate() error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !scheduleIDRE.MatchString(b.ID) {
		fail("id", "%q is not valid (lower-case letters, digits and dashes, up to 63)", b.ID)
	}
	if _, err := parseCron(b.Cron); err != nil {
		fail("cron", "%q: %v", b.Cron, err)
	}
	if b.Runbook == "" {
		fail("runbook", "required")
	}
	for i, bo := range b.Blackouts {
		if _, ok := parseHHMM(bo.From); !ok {
			fail(fmt.Sprintf("blackouts[%d].from", i), "%q is not a time like 22:00", bo.From)
		}
		if _, ok := parseHHMM(bo.To); !ok {
			fail(fmt.Sprintf("blackouts[%d].to", i), "%q is not a time like 06:00", bo.To)
		}
		for j, d := range bo.Days {
			if _, ok := weekdays[strings.ToLower(d)]; !ok {
				fail(fmt.Sprintf("blackouts[%d].days[%d]", i, j), "%q is not a weekday (mon..sun)", d)
			}
		}
	}
	for i, c := range b.SkipIf {
		if c != skipAnyUnhealthy && c != skipFrozen && c != skipDrillRunning {
			fail(fmt.Sprintf("skip_if[%d]", i), "%q is not one of %s, %s, %s", c, skipAnyUnhealthy, skipFrozen, skipDrillRunning)
		}
	}
	if len(b.Reason) > 1024 {
		fail("reason", "longer than 1024 bytes")
	}
	return errors.Join(errs...)
}
