package state

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Conditions under which a scheduled run is skipped.
const (
	SkipAnyUnhealthy = "any_unhealthy" // some service is marked unhealthy somewhere
	SkipFrozen       = "frozen"        // automatic changes are frozen
	SkipDrillRunning = "drill_running" // a drill is running
)

// Outcomes of a scheduled run.
const (
	RunStarted = "started"
	RunSkipped = "skipped"
	RunMissed  = "missed"
)

// maxScheduleRuns is how many runs each schedule remembers.
const maxScheduleRuns = 50

// Schedule is a drill run on a cron schedule by the leader's scheduler.
type Schedule struct {
	ID        string            `json:"id"`
	Cron      string            `json:"cron"`
	TZ        string            `json:"tz,omitempty"`
	Runbook   string            `json:"runbook"`
	Params    map[string]string `json:"params,omitempty"`
	Blackouts []Blackout        `json:"blackouts,omitempty"`
	SkipIf    []string          `json:"skip_if,omitempty"`
	Reason    string            `json:"reason,omitempty"`
	// BlockOn are conditions that skip a due run while they fire.
	BlockOn   []Blocker `json:"block_on,omitempty"`
	Actor     string    `json:"actor"`
	CreatedAt time.Time `json:"created_at"`
	// LastFired is the due time of the last run fired, skipped or missed:
	// the scheduler counts the next due time from it.
	LastFired time.Time `json:"last_fired,omitzero"`
	// Runs are the recent runs, oldest first.
	Runs []ScheduleRun `json:"runs,omitempty"`
}

// Blackout is a daily window, in the schedule's time zone, in which runs are
// skipped. From after To spans midnight. Days, if set, limits it to those
// weekdays (mon..sun) of the window's start.
type Blackout struct {
	From string   `json:"from"`
	To   string   `json:"to"`
	Days []string `json:"days,omitempty"`
}

// ScheduleRun is one due time of a schedule and what became of it.
type ScheduleRun struct {
	Scheduled time.Time `json:"scheduled"`
	Time      time.Time `json:"time"`
	Outcome   string    `json:"outcome"`
	Drill     string    `json:"drill,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Missed    int       `json:"missed,omitempty"`
}

var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron parses a cron expression: 5 fields, or 6 with seconds first, or
// a descriptor such as @hourly or @every 10m. A time zone prefix is not
// accepted: the schedule's tz says it.
func ParseCron(expr string) (cron.Schedule, error) {
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

// Validate checks a schedule offline, naming each bad field. It does not
// load the time zone (Apply must not read the file system); the API does.
func (b ScheduleAdd) Validate() error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !scheduleIDRE.MatchString(b.ID) {
		fail("id", "%q is not valid (lower-case letters, digits and dashes, up to 63)", b.ID)
	}
	if _, err := ParseCron(b.Cron); err != nil {
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
		if c != SkipAnyUnhealthy && c != SkipFrozen && c != SkipDrillRunning {
			fail(fmt.Sprintf("skip_if[%d]", i), "%q is not one of %s, %s, %s", c, SkipAnyUnhealthy, SkipFrozen, SkipDrillRunning)
		}
	}
	if len(b.Reason) > 1024 {
		fail("reason", "longer than 1024 bytes")
	}
	if err := ValidateBlockers(b.BlockOn); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// InBlackout returns a description of the blackout window t falls in (t
// seen in loc, the schedule's time zone), or "".
func (sc Schedule) InBlackout(t time.Time, loc *time.Location) string {
	lt := t.In(loc)
	mins := lt.Hour()*60 + lt.Minute()
	for _, bo := range sc.Blackouts {
		from, _ := parseHHMM(bo.From)
		to, _ := parseHHMM(bo.To)
		// The day the window started on: today, or yesterday for the part
		// of a midnight-spanning window after midnight.
		day := lt.Weekday()
		in := false
		switch {
		case from <= to:
			in = mins >= from && mins < to
		case mins >= from:
			in = true
		case mins < to:
			in, day = true, (day+6)%7
		}
		if !in {
			continue
		}
		if len(bo.Days) > 0 && !slices.ContainsFunc(bo.Days, func(d string) bool { return weekdays[strings.ToLower(d)] == day }) {
			continue
		}
		s := fmt.Sprintf("blackout %s-%s", bo.From, bo.To)
		if len(bo.Days) > 0 {
			s += " " + strings.Join(bo.Days, ",")
		}
		return s + " " + loc.String()
	}
	return ""
}

// ScheduleIDs returns the schedules' ids, sorted.
func (s *State) ScheduleIDs() []string {
	ids := make([]string, 0, len(s.Schedules))
	for id := range s.Schedules {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (a *applier) putSchedule(sc Schedule) {
	m := maps.Clone(a.s.Schedules)
	if m == nil {
		m = map[string]Schedule{}
	}
	m[sc.ID] = sc
	a.s.Schedules = m
}

func (a *applier) scheduleAdd(b ScheduleAdd) *refusal {
	if !b.Prepared {
		// Written by aa66dac or earlier: validate as that release did.
		if err := legacyValidateSchedule(b); err != nil {
			return refuse(CodeInvalid, "invalid schedule: %v", err)
		}
	} else if b.ID == "" {
		return refuse(CodeInvalid, "schedule id is required")
	}
	if _, ok := a.s.Schedules[b.ID]; ok {
		return refuse(CodeConflict, "schedule %s already exists", b.ID)
	}
	if _, ok := a.s.Runbooks[b.Runbook]; !ok {
		return refuse(CodeNotFound, "no runbook %q", b.Runbook)
	}
	a.putSchedule(Schedule{ID: b.ID, Cron: b.Cron, TZ: b.TZ, Runbook: b.Runbook, Params: b.Params,
		Blackouts: b.Blackouts, SkipIf: b.SkipIf, Reason: b.Reason, BlockOn: b.BlockOn, Actor: a.cmd.Actor, CreatedAt: a.cmd.Time})
	a.event(Event{Kind: EventScheduleAdded, Reason: b.Reason,
		Detail: fmt.Sprintf("schedule %s: %q %s, runbook %s", b.ID, b.Cron, b.TZ, b.Runbook)})
	return nil
}

func (a *applier) scheduleRemove(b ScheduleRemove) *refusal {
	if _, ok := a.s.Schedules[b.ID]; !ok {
		return refuse(CodeNotFound, "no schedule %q", b.ID)
	}
	m := maps.Clone(a.s.Schedules)
	delete(m, b.ID)
	a.s.Schedules = m
	a.event(Event{Kind: EventScheduleRemoved, Detail: "schedule " + b.ID})
	return nil
}

// ScheduledDrillID is the id of the drill a schedule starts for a due time:
// derived from both, so a replayed fire cannot start a second drill.
func ScheduledDrillID(schedule string, due time.Time) string {
	return fmt.Sprintf("s-%s-%d", schedule, due.Unix())
}

func (a *applier) scheduleFire(b ScheduleFire) *refusal {
	sc, ok := a.s.Schedules[b.ID]
	if !ok {
		return refuse(CodeNotFound, "no schedule %q", b.ID)
	}
	if b.ScheduledTime.IsZero() {
		return refuse(CodeInvalid, "scheduled_time is required")
	}
	if !b.ScheduledTime.After(sc.LastFired) {
		return refuse(CodeConflict, "schedule %s already fired for %s (last fired %s)", b.ID,
			b.ScheduledTime.UTC().Format(time.RFC3339), sc.LastFired.UTC().Format(time.RFC3339))
	}
	sc.LastFired = b.ScheduledTime
	run := ScheduleRun{Scheduled: b.ScheduledTime, Time: a.cmd.Time}
	switch {
	case b.Missed > 0:
		run.Outcome, run.Missed = RunMissed, b.Missed
		run.Reason = fmt.Sprintf("%d run(s) due while no leader could fire them, past the grace period", b.Missed)
	case b.Skip != "":
		run.Outcome, run.Reason = RunSkipped, b.Skip
	default:
		run.Outcome, run.Reason = RunSkipped, a.skipReason(sc)
	}
	if run.Outcome == RunSkipped && run.Reason == "" {
		d, err := a.scheduledDrill(sc, b)
		if err != nil {
			run.Reason = "drill refused: " + err.Msg
		} else {
			run.Outcome, run.Drill = RunStarted, d.ID
			a.beginDrill(d)
		}
	}
	sc.Runs = append(slices.Clone(sc.Runs), run)
	if len(sc.Runs) > maxScheduleRuns {
		sc.Runs = sc.Runs[len(sc.Runs)-maxScheduleRuns:]
	}
	a.putSchedule(sc)
	kind := map[string]string{RunStarted: EventScheduleFired, RunSkipped: EventScheduleSkipped, RunMissed: EventScheduleMissed}[run.Outcome]
	detail := fmt.Sprintf("schedule %s due %s", sc.ID, b.ScheduledTime.UTC().Format(time.RFC3339))
	if run.Drill != "" {
		detail += ": drill " + run.Drill
	}
	a.event(Event{Kind: kind, Reason: run.Reason, Detail: detail})
	return nil
}

// ScheduledDrill is the drill a schedule starts for a due time, before
// PrepareDrill renders it.
func ScheduledDrill(sc Schedule, due time.Time) DrillStart {
	return DrillStart{ID: ScheduledDrillID(sc.ID, due), Runbook: sc.Runbook, Params: sc.Params,
		Reason: fmt.Sprintf("schedule %s (%s)", sc.ID, sc.Cron), BlockOn: sc.BlockOn}
}

// scheduledDrill checks and builds the drill a fire starts: the one the
// leader rendered (Prepared), or, for an entry of aa66dac or earlier, the
// one that release's Apply rendered.
func (a *applier) scheduledDrill(sc Schedule, b ScheduleFire) (Drill, *refusal) {
	want := ScheduledDrill(sc, b.ScheduledTime)
	if !b.Prepared {
		return a.newDrill(want, sc.ID)
	}
	if b.DrillError != "" {
		return Drill{}, &refusal{Code: CodeInvalid, Msg: b.DrillError}
	}
	if b.Drill == nil || b.Drill.ID != want.ID || b.Drill.Runbook != want.Runbook || !b.Drill.Prepared {
		return Drill{}, refuse(CodeInvalid, "the fire of schedule %s carries no drill of runbook %s with id %s", sc.ID, sc.Runbook, want.ID)
	}
	d := *b.Drill
	d.Reason, d.BlockOn = want.Reason, want.BlockOn
	return a.newDrill(d, sc.ID)
}

// skipReason returns why a run of sc must be skipped by its skip_if
// conditions, against the committed state, or "".
func (a *applier) skipReason(sc Schedule) string {
	for _, c := range sc.SkipIf {
		switch c {
		case SkipFrozen:
			if a.s.Frozen {
				return "skip_if frozen: " + a.s.FrozenReason
			}
		case SkipDrillRunning:
			if id, ok := a.s.anyDrillRunning(); ok {
				return "skip_if drill_running: drill " + id + " is running"
			}
		case SkipAnyUnhealthy:
			for _, r := range a.s.RegionList() {
				if len(a.s.Unhealthy[r.Name]) > 0 {
					return "skip_if any_unhealthy: " + r.Name + " has an unhealthy service"
				}
			}
		}
	}
	return ""
}
