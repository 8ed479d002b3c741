package state

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Limits on the replicated state: every controller holds all of it in
// memory and in every snapshot, and a GET returns it whole, so nothing a
// client stores may grow without bound. Sizes and counts are checked at the
// API edge, before a command is proposed (CheckRunbookSize,
// CheckDrillParams, CheckRunbookCount, ...), never in Apply: a rule added
// to Apply would make this release and an older one apply the same log
// differently during a rolling upgrade (TestRollingUpgrade caught it). So
// two concurrent requests may both pass a count check: the bound is exact
// up to that race. A refusal names the limit. Worst case with the defaults: runbooks 64 × 32 KiB × 11 versions
// (22 MiB), drills 110 × 32 params × 1 KiB (3.5 MiB), schedules 64 × 32
// params × 1 KiB (2 MiB).
const (
	// MaxRunbooks is how many runbooks may be stored.
	MaxRunbooks = 64
	// MaxRunbooksLimit bounds policy.max_runbooks.
	MaxRunbooksLimit = 10000
	// MaxRunbookBytes caps a runbook's YAML source.
	MaxRunbookBytes = 32 << 10
	// MaxSchedules is how many schedules may exist.
	MaxSchedules = 64
	// MaxRunningDrills is how many drills may run at once (the finished
	// ones kept are capped by maxFinishedDrills).
	MaxRunningDrills = 10
	// MaxDrillParams is how many params a drill or a schedule may give.
	MaxDrillParams = 32
	// MaxDrillParamKeyBytes and MaxDrillParamBytes cap each param's name
	// and value.
	MaxDrillParamKeyBytes = 64
	MaxDrillParamBytes    = 1024

	// DefaultScheduleMinInterval is the shortest time between two runs of
	// a schedule unless policy.schedule_min_interval says otherwise.
	DefaultScheduleMinInterval = time.Minute
	// MinScheduleMinInterval is the least policy.schedule_min_interval
	// may be set to.
	MinScheduleMinInterval = time.Second

	// DefaultEventsRetained is how many audit events the state keeps
	// unless policy.events_retained says otherwise (MaxEvents).
	DefaultEventsRetained = MaxEvents
	// MinEventsRetained and MaxEventsRetained bound policy.events_retained.
	MinEventsRetained = 1000
	MaxEventsRetained = 1_000_000
)

// CodeLimit refuses a command that would take the state past a count
// limit (HTTP 409).
const CodeLimit = "limit"

// LimitError is a request over a limit, naming it.
type LimitError struct {
	// Limit is the limit's name as documented (e.g. "max_runbooks").
	Limit string
	Msg   string
}

func (e *LimitError) Error() string { return e.Msg }

// ErrLimit is what every *LimitError matches with errors.Is.
var ErrLimit = errors.New("over a limit")

// Is makes errors.Is(err, ErrLimit) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// CheckRunbookSize refuses a runbook source over MaxRunbookBytes.
func CheckRunbookSize(source []byte) error {
	if len(source) > MaxRunbookBytes {
		return &LimitError{Limit: "max_runbook_bytes", Msg: fmt.Sprintf(
			"runbook is %d bytes, over the limit of %d (max_runbook_bytes)", len(source), MaxRunbookBytes)}
	}
	return nil
}

// CheckDrillParams refuses params with too many entries or an entry too
// long, naming the first offending param.
func CheckDrillParams(params map[string]string) error {
	if len(params) > MaxDrillParams {
		return &LimitError{Limit: "max_drill_params", Msg: fmt.Sprintf(
			"params: %d given, over the limit of %d (max_drill_params)", len(params), MaxDrillParams)}
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if len(k) > MaxDrillParamKeyBytes {
			return &LimitError{Limit: "max_drill_param_key_bytes", Msg: fmt.Sprintf(
				"params: a name is %d bytes, over the limit of %d (max_drill_param_key_bytes)", len(k), MaxDrillParamKeyBytes)}
		}
		if v := params[k]; len(v) > MaxDrillParamBytes {
			return &LimitError{Limit: "max_drill_param_bytes", Msg: fmt.Sprintf(
				"params.%s: %d bytes, over the limit of %d (max_drill_param_bytes)", k, len(v), MaxDrillParamBytes)}
		}
	}
	return nil
}

// RunningDrills counts the drills running.
func (s *State) RunningDrills() int {
	n := 0
	for _, d := range s.Drills {
		if d.Running() {
			n++
		}
	}
	return n
}

// CheckRunbookCount refuses storing a new runbook named name when
// MaxRunbooks are stored (a new version of a stored one is always
// accepted).
func (s *State) CheckRunbookCount(name string) error {
	limit := s.MaxRunbooks()
	if _, ok := s.Runbooks[name]; ok || len(s.Runbooks) < limit {
		return nil
	}
	return &LimitError{Limit: "max_runbooks", Msg: fmt.Sprintf(
		"%d runbooks are stored, the limit (policy.max_runbooks): delete one first", limit)}
}

// MaxRunbooks is how many runbooks may be stored: policy.max_runbooks, or
// MaxRunbooks when the config does not say.
func (s *State) MaxRunbooks() int {
	if s.Config != nil && s.Config.Policy.MaxRunbooks > 0 {
		return s.Config.Policy.MaxRunbooks
	}
	return MaxRunbooks
}

// CheckScheduleCount refuses a new schedule when MaxSchedules exist.
func (s *State) CheckScheduleCount() error {
	if len(s.Schedules) < MaxSchedules {
		return nil
	}
	return &LimitError{Limit: "max_schedules", Msg: fmt.Sprintf(
		"%d schedules exist, the limit (max_schedules): remove one first", MaxSchedules)}
}

// CheckRunningDrills refuses a new drill when MaxRunningDrills are running.
func (s *State) CheckRunningDrills() error {
	if s.RunningDrills() < MaxRunningDrills {
		return nil
	}
	return &LimitError{Limit: "max_running_drills", Msg: fmt.Sprintf(
		"%d drills are running, the limit (max_running_drills): wait for one to end or abort one", MaxRunningDrills)}
}

// ScheduleMinInterval is the shortest time allowed between two runs of a
// schedule under the committed config.
func (s *State) ScheduleMinInterval() time.Duration {
	if s.Config != nil && s.Config.Policy.ScheduleMinInterval > 0 {
		return time.Duration(s.Config.Policy.ScheduleMinInterval)
	}
	return DefaultScheduleMinInterval
}

// EventsRetained is how many audit events the state keeps.
func (s *State) EventsRetained() int {
	if s.Config != nil && s.Config.Policy.EventsRetained > 0 {
		return s.Config.Policy.EventsRetained
	}
	return DefaultEventsRetained
}

// cronSamples is how many consecutive runs CronMinInterval compares.
const cronSamples = 1000

// CronMinInterval returns the shortest gap between consecutive runs of a
// cron expression among its next cronSamples runs after from (exact for
// @every and for any gap under a minute: an expression fires twice within
// a minute only when its seconds field has two values, which shows in its
// first minute with runs). 0 means it never runs twice.
func CronMinInterval(expr string, from time.Time) (time.Duration, error) {
	cs, err := ParseCron(expr)
	if err != nil {
		return 0, err
	}
	var least time.Duration
	prev := cs.Next(from)
	for range cronSamples {
		if prev.IsZero() {
			break
		}
		next := cs.Next(prev)
		if next.IsZero() {
			break
		}
		if gap := next.Sub(prev); least == 0 || gap < least {
			least = gap
		}
		prev = next
	}
	return least, nil
}

// CheckScheduleFrequency refuses a cron expression that runs more often
// than min (evaluated in loc from now).
func CheckScheduleFrequency(expr string, loc *time.Location, now time.Time, least time.Duration) error {
	gap, err := CronMinInterval(expr, now.In(loc))
	if err != nil {
		return fmt.Errorf("cron: %q: %w", expr, err)
	}
	if gap > 0 && gap < least {
		return &LimitError{Limit: "policy.schedule_min_interval", Msg: fmt.Sprintf(
			"cron: %q runs every %s, more often than the limit of once every %s (policy.schedule_min_interval)",
			expr, gap, least)}
	}
	return nil
}

// normalizeLimits checks the policy keys of the state's limits. Unset
// keys stay unset (their defaults apply where they are read: State's
// ScheduleMinInterval and EventsRetained), so a config that does not name
// them normalises to what earlier releases proposed.
func (p *Policy) normalizeLimits() []error {
	var errs []error
	if p.ScheduleMinInterval != 0 && time.Duration(p.ScheduleMinInterval) < MinScheduleMinInterval {
		errs = append(errs, fmt.Errorf("policy.schedule_min_interval: must be at least %s, got %s",
			MinScheduleMinInterval, time.Duration(p.ScheduleMinInterval)))
	}
	if p.MaxRunbooks < 0 || p.MaxRunbooks > MaxRunbooksLimit {
		errs = append(errs, fmt.Errorf("policy.max_runbooks: must be from 1 to %d, got %d", MaxRunbooksLimit, p.MaxRunbooks))
	}
	if p.EventsRetained != 0 && (p.EventsRetained < MinEventsRetained || p.EventsRetained > MaxEventsRetained) {
		errs = append(errs, fmt.Errorf("policy.events_retained: must be from %d to %d, got %d",
			MinEventsRetained, MaxEventsRetained, p.EventsRetained))
	}
	return errs
}
