package state

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Notification sink types (steering config `notifications:`).
const (
	SinkWebhook      = "webhook"      // the event as JSON, signed with HMAC-SHA256
	SinkSlack        = "slack"        // a Slack incoming-webhook message
	SinkPagerDuty    = "pagerduty"    // PagerDuty Events API v2: trigger and resolve
	SinkAlertmanager = "alertmanager" // alerts posted to Alertmanager's v2 API
)

// Redacted is what reads of the config show in place of a secret; a config
// put back with it keeps the secret it had (see KeepSecrets).
const Redacted = "***"

// Sink is one notification receiver: where the leader delivers the audit
// events that pass its filters.
type Sink struct {
	Name string `yaml:"name" json:"name"`
	Type string `yaml:"type" json:"type"`
	URL  string `yaml:"url" json:"url"`
	// Secret signs webhook bodies (X-Evac-Signature: sha256=HMAC of the body).
	Secret string `yaml:"secret,omitempty" json:"secret,omitempty"`
	// RoutingKey is the PagerDuty integration key.
	RoutingKey string `yaml:"routing_key,omitempty" json:"routing_key,omitempty"`
	// Events are the event kinds delivered; every kind when empty (for
	// pagerduty and alertmanager: the kinds that open and close incidents).
	Events []string `yaml:"events,omitempty" json:"events,omitempty"`
	// Regions limits delivery to events of these regions (events of no
	// region, such as a freeze, always pass).
	Regions []string `yaml:"regions,omitempty" json:"regions,omitempty"`
	// Timeout bounds one delivery attempt; default 5s.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// GiveUpAfter is how long an event is retried, with backoff, before it
	// is recorded as failed and the next one is taken; default 1h.
	GiveUpAfter Duration `yaml:"give_up_after,omitempty" json:"give_up_after,omitempty"`
}

// Defaults and bounds of a sink.
const (
	DefaultSinkTimeout     = 5 * time.Second
	MaxSinkTimeout         = 60 * time.Second
	DefaultSinkGiveUpAfter = time.Hour
	maxSinks               = 32
)

// IncidentKinds are the event kinds that open and close incidents: what
// pagerduty and alertmanager sinks take by default.
var IncidentKinds = []string{EventEvacuate, EventEvacuated, EventActive, EventFreeze, EventUnfreeze}

// EventKinds lists every audit event kind, for validating sink filters.
var EventKinds = []string{
	EventConfigApplied, EventEvacuate, EventRestore, EventStep, EventWeight, EventEvacuated, EventActive,
	EventHealthLost, EventHealthRegained, EventFreeze, EventUnfreeze, EventNote,
	EventRunbookPut, EventRunbookDeleted, EventDrillStart, EventDrillStepStart, EventDrillStepEnd,
	EventDrillNotify, EventDrillEnd, EventDrillDrain, EventScheduleAdded, EventScheduleRemoved,
	EventScheduleFired, EventScheduleSkipped, EventScheduleMissed,
}

// Wants reports whether the sink takes event e.
func (s *Sink) Wants(e Event) bool {
	if s.incidentsOnly() && !slices.Contains(IncidentKinds, e.Kind) {
		return false
	}
	if len(s.Events) > 0 && !slices.Contains(s.Events, e.Kind) {
		return false
	}
	return len(s.Regions) == 0 || e.Region == "" || slices.Contains(s.Regions, e.Region)
}

// incidentsOnly: pagerduty and alertmanager sinks open and close incidents,
// so they take only the kinds that do (IncidentKinds).
func (s *Sink) incidentsOnly() bool { return s.Type == SinkPagerDuty || s.Type == SinkAlertmanager }

// normalizeSinks validates the notification sinks against the regions.
func (c *Config) normalizeSinks(regions map[string]bool) []error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if len(c.Notifications) > maxSinks {
		fail("notifications", "at most %d sinks, got %d", maxSinks, len(c.Notifications))
	}
	names := map[string]bool{}
	for i := range c.Notifications {
		s := &c.Notifications[i]
		f := fmt.Sprintf("notifications[%d]", i)
		s.Name = strings.TrimSpace(s.Name)
		switch {
		case !ValidName(s.Name):
			fail(f+".name", "%q must be a lower-case DNS label (a-z, 0-9, -)", s.Name)
		case names[s.Name]:
			fail(f+".name", "duplicate sink %q", s.Name)
		}
		names[s.Name] = true
		switch s.Type {
		case SinkWebhook:
			if s.Secret == "" {
				fail(f+".secret", "required for webhook sinks: it signs every body (X-Evac-Signature)")
			}
		case SinkPagerDuty:
			if s.RoutingKey == "" {
				fail(f+".routing_key", "required for pagerduty sinks (the integration key)")
			}
		case SinkSlack, SinkAlertmanager:
		case "":
			fail(f+".type", "required (webhook, slack, pagerduty or alertmanager)")
		default:
			fail(f+".type", "%q must be webhook, slack, pagerduty or alertmanager", s.Type)
		}
		if s.Type != SinkWebhook && s.Secret != "" {
			fail(f+".secret", "only for webhook sinks")
		}
		if s.Type != SinkPagerDuty && s.RoutingKey != "" {
			fail(f+".routing_key", "only for pagerduty sinks")
		}
		if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			fail(f+".url", "%q must be an http or https URL", s.URL)
		}
		for j, k := range s.Events {
			switch {
			case !slices.Contains(EventKinds, k):
				fail(fmt.Sprintf("%s.events[%d]", f, j), "unknown event kind %q", k)
			case s.incidentsOnly() && !slices.Contains(IncidentKinds, k):
				fail(fmt.Sprintf("%s.events[%d]", f, j), "%s sinks take only the kinds that open or close incidents (%s), not %q",
					s.Type, strings.Join(IncidentKinds, ", "), k)
			}
		}
		for j, r := range s.Regions {
			if !regions[r] {
				fail(fmt.Sprintf("%s.regions[%d]", f, j), "unknown region %q (not in regions)", r)
			}
		}
		if s.Timeout == 0 {
			s.Timeout = Duration(DefaultSinkTimeout)
		}
		if s.Timeout < 0 || s.Timeout.D() > MaxSinkTimeout {
			fail(f+".timeout", "must be between 0s and %s, got %s", MaxSinkTimeout, s.Timeout)
		}
		if s.GiveUpAfter == 0 {
			s.GiveUpAfter = Duration(DefaultSinkGiveUpAfter)
		}
		if s.GiveUpAfter.D() < time.Minute {
			fail(f+".give_up_after", "must be at least 1m, got %s", s.GiveUpAfter)
		}
	}
	return errs
}

// RedactSecrets returns a copy of c whose sink secrets read Redacted: what
// reads of the config show.
func (c *Config) RedactSecrets() *Config {
	if c == nil || len(c.Notifications) == 0 {
		return c
	}
	out := *c
	out.Notifications = slices.Clone(c.Notifications)
	for i := range out.Notifications {
		s := &out.Notifications[i]
		if s.Secret != "" {
			s.Secret = Redacted
		}
		if s.RoutingKey != "" {
			s.RoutingKey = Redacted
		}
		if s.Type == SinkSlack {
			s.URL = redactURL(s.URL)
		}
	}
	return &out
}

// redactURL keeps a URL's scheme and host: a Slack incoming-webhook URL's
// path is its secret.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return Redacted
	}
	return u.Scheme + "://" + u.Host + "/" + Redacted
}

// KeepSecrets replaces, in c, each secret that reads Redacted with the one
// the sink of the same name and type has in old: a config read, edited and
// put back keeps its secrets. A Redacted secret with nothing to keep is an
// error naming the field.
func (c *Config) KeepSecrets(old *Config) error {
	prev := map[string]Sink{}
	if old != nil {
		for _, s := range old.Notifications {
			prev[s.Name] = s
		}
	}
	for i := range c.Notifications {
		s := &c.Notifications[i]
		p, ok := prev[s.Name]
		ok = ok && p.Type == s.Type
		if s.Secret == Redacted {
			if !ok || p.Secret == "" {
				return fmt.Errorf("notifications[%d].secret: %q stands for the secret in force, but sink %q has none to keep", i, Redacted, s.Name)
			}
			s.Secret = p.Secret
		}
		if s.Type == SinkSlack && strings.HasSuffix(s.URL, "/"+Redacted) {
			if !ok || redactURL(p.URL) != s.URL {
				return fmt.Errorf("notifications[%d].url: %q stands for the URL in force, but sink %q has none on that host to keep", i, s.URL, s.Name)
			}
			s.URL = p.URL
		}
		if s.RoutingKey == Redacted {
			if !ok || p.RoutingKey == "" {
				return fmt.Errorf("notifications[%d].routing_key: %q stands for the key in force, but sink %q has none to keep", i, Redacted, s.Name)
			}
			s.RoutingKey = p.RoutingKey
		}
	}
	return nil
}

// SinkProgress is what the leader has delivered to one sink, replicated so
// that a new leader goes on where the last one stopped.
type SinkProgress struct {
	// Cursor is the sequence number of the last event handled: delivered,
	// given up on, or not wanted. Events after it are pending.
	Cursor          uint64    `json:"cursor"`
	Delivered       uint64    `json:"delivered"`
	Failed          uint64    `json:"failed"`
	LastDeliveredAt time.Time `json:"last_delivered_at,omitzero"`
	LastError       string    `json:"last_error,omitempty"`
	LastErrorAt     time.Time `json:"last_error_at,omitzero"`
}

// NotifyProgress records the outcome of one delivery (CmdNotifyProgress):
// event Seq was delivered to Sink, or given up on with Error.
type NotifyProgress struct {
	Sink      string `json:"sink"`
	Seq       uint64 `json:"seq"`
	Delivered bool   `json:"delivered"`
	Error     string `json:"error,omitempty"`
}

// maxNotifyError bounds a recorded delivery error.
const maxNotifyError = 512

// notifyProgress applies a delivery outcome. A sink the config no longer
// has, or an event at or before the cursor (a new leader's repeat), changes
// nothing.
func (a *applier) notifyProgress(b NotifyProgress) *refusal {
	if a.s.Config == nil || a.s.Config.Sink(b.Sink) == nil {
		return refuse(CodeNotFound, "no notification sink %q", b.Sink)
	}
	p := a.s.Notify[b.Sink]
	if b.Seq <= p.Cursor {
		return nil
	}
	if b.Seq >= a.s.NextSeq {
		return refuse(CodeInvalid, "event %d does not exist yet", b.Seq)
	}
	p.Cursor = b.Seq
	if b.Delivered {
		p.Delivered++
		p.LastDeliveredAt = a.cmd.Time
	} else {
		p.Failed++
		p.LastError = truncate(b.Error, maxNotifyError)
		p.LastErrorAt = a.cmd.Time
	}
	m := maps.Clone(a.s.Notify)
	if m == nil {
		m = map[string]SinkProgress{}
	}
	m[b.Sink] = p
	a.s.Notify = m
	return nil
}

// startSinks gives each sink the config adds a cursor at the current end of
// the audit log: a new sink gets what happens from now on, not the history.
// Progress of sinks the config drops is forgotten.
func (a *applier) startSinks(c *Config) {
	if len(c.Notifications) == 0 && len(a.s.Notify) == 0 {
		return
	}
	m := make(map[string]SinkProgress, len(c.Notifications))
	for _, s := range c.Notifications {
		p, ok := a.s.Notify[s.Name]
		if !ok {
			p = SinkProgress{Cursor: a.s.NextSeq - 1}
		}
		m[s.Name] = p
	}
	a.s.Notify = m
}

// Sink returns the sink named name, or nil.
func (c *Config) Sink(name string) *Sink {
	for i := range c.Notifications {
		if c.Notifications[i].Name == name {
			return &c.Notifications[i]
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
