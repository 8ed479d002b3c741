package state

import (
	"strings"
	"testing"
)

const sinksYAML = `notifications:
  - {name: ops, type: webhook, url: "https://hooks.example/evac", secret: s3cret, events: [region.evacuate, region.active]}
  - {name: pager, type: pagerduty, url: "http://127.0.0.1:9/v2/enqueue", routing_key: rk1, regions: [us-east]}
  - {name: chat, type: slack, url: "http://127.0.0.1:9/slack"}
`

func TestSinkValidation(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, field string
	}{
		{"ok", sinksYAML, ""},
		{"no secret", "notifications: [{name: a, type: webhook, url: http://127.0.0.1:1/}]\n", "notifications[0].secret"},
		{"no key", "notifications: [{name: a, type: pagerduty, url: http://127.0.0.1:1/}]\n", "notifications[0].routing_key"},
		{"secret on slack", "notifications: [{name: a, type: slack, url: http://127.0.0.1:1/, secret: x}]\n", "notifications[0].secret"},
		{"bad type", "notifications: [{name: a, type: email, url: http://127.0.0.1:1/}]\n", "notifications[0].type"},
		{"bad url", "notifications: [{name: a, type: slack, url: \"127.0.0.1:1\"}]\n", "notifications[0].url"},
		{"bad kind", "notifications: [{name: a, type: slack, url: http://127.0.0.1:1/, events: [region.evacuated, region.gone]}]\n", "notifications[0].events[1]"},
		{"bad region", "notifications: [{name: a, type: slack, url: http://127.0.0.1:1/, regions: [mars]}]\n", "notifications[0].regions[0]"},
		{"dup", "notifications: [{name: a, type: slack, url: http://127.0.0.1:1/}, {name: a, type: slack, url: http://127.0.0.1:2/}]\n", "notifications[1].name"},
		{"short give-up", "notifications: [{name: a, type: slack, url: http://127.0.0.1:1/, give_up_after: 10s}]\n", "notifications[0].give_up_after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(testConfigYAML + tc.yaml))
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("want valid: %v", err)
			case tc.field != "" && (err == nil || !strings.Contains(err.Error(), tc.field+":")):
				t.Fatalf("want an error on %s, got %v", tc.field, err)
			}
		})
	}
}

func TestSinkFilterAndSecrets(t *testing.T) {
	cfg, err := ParseConfig([]byte(testConfigYAML + sinksYAML))
	if err != nil {
		t.Fatal(err)
	}
	ops, pager, chat := cfg.Sink("ops"), cfg.Sink("pager"), cfg.Sink("chat")
	for _, tc := range []struct {
		s    *Sink
		e    Event
		want bool
	}{
		{ops, Event{Kind: EventEvacuate, Region: "eu-west"}, true},
		{ops, Event{Kind: EventStep, Region: "eu-west"}, false},
		{pager, Event{Kind: EventEvacuate, Region: "us-east"}, true},
		{pager, Event{Kind: EventEvacuate, Region: "eu-west"}, false}, // regions filter
		{pager, Event{Kind: EventFreeze}, true},                       // no region: passes
		{pager, Event{Kind: EventStep, Region: "us-east"}, false},     // pagerduty: incident kinds only
		{chat, Event{Kind: EventDrillNotify}, true},                   // every kind
	} {
		if got := tc.s.Wants(tc.e); got != tc.want {
			t.Errorf("%s wants %+v = %v", tc.s.Name, tc.e, got)
		}
	}

	red := cfg.RedactSecrets()
	if red.Sink("ops").Secret != Redacted || red.Sink("pager").RoutingKey != Redacted || cfg.Sink("ops").Secret != "s3cret" {
		t.Fatalf("redaction: %+v; original %+v", red.Notifications, cfg.Notifications)
	}
	back := *red
	if red.Sink("chat").URL != "http://127.0.0.1:9/***" {
		t.Fatalf("slack URL shown: %s", red.Sink("chat").URL)
	}
	if err := back.KeepSecrets(cfg); err != nil || back.Sink("ops").Secret != "s3cret" || back.Sink("pager").RoutingKey != "rk1" ||
		back.Sink("chat").URL != "http://127.0.0.1:9/slack" {
		t.Fatalf("keep secrets: %v %+v", err, back.Notifications)
	}
	renamed := *red.RedactSecrets()
	renamed.Notifications[0].Name = "ops2"
	if err := renamed.KeepSecrets(cfg); err == nil || !strings.Contains(err.Error(), "notifications[0].secret") {
		t.Fatalf("a redacted secret with nothing to keep: %v", err)
	}
}

func TestNotifyProgress(t *testing.T) {
	c := newCluster(t, false)
	cfg, err := ParseConfig([]byte(testConfigYAML + sinksYAML))
	if err != nil {
		t.Fatal(err)
	}
	c.mustApply(CmdApplyConfig, ApplyConfig{Config: cfg})
	// A new sink starts at the end of the log: the config event is its first.
	start := c.s.Notify["ops"].Cursor
	if start != c.s.NextSeq-2 {
		t.Fatalf("new sink cursor %d, log ends at %d", start, c.s.NextSeq-1)
	}
	c.mustApply(CmdEvacuate, Evacuate{Region: "eu-west", Reason: "test"})
	seq := c.s.NextSeq - 1
	c.mustApply(CmdNotifyProgress, NotifyProgress{Sink: "ops", Seq: seq, Delivered: true})
	if p := c.s.Notify["ops"]; p.Cursor != seq || p.Delivered != 1 || p.LastDeliveredAt != c.now {
		t.Fatalf("after delivery: %+v", p)
	}
	// A new leader's repeat changes nothing.
	before := c.s.Notify["ops"]
	c.mustApply(CmdNotifyProgress, NotifyProgress{Sink: "ops", Seq: seq, Delivered: true})
	if c.s.Notify["ops"] != before {
		t.Fatalf("repeat counted: %+v", c.s.Notify["ops"])
	}
	c.mustApply(CmdNotifyProgress, NotifyProgress{Sink: "chat", Seq: seq, Error: strings.Repeat("x", 2000)})
	if p := c.s.Notify["chat"]; p.Failed != 1 || len(p.LastError) > maxNotifyError+3 {
		t.Fatalf("failure: %+v", p)
	}
	for _, b := range []NotifyProgress{{Sink: "nope", Seq: seq}, {Sink: "ops", Seq: c.s.NextSeq + 5}} {
		if res := c.apply(CmdNotifyProgress, b); res.Error == "" {
			t.Errorf("%+v accepted", b)
		}
	}
	// A config without the sink forgets its progress; adding it back starts anew.
	plain, _ := ParseConfig([]byte(testConfigYAML))
	c.mustApply(CmdApplyConfig, ApplyConfig{Config: plain})
	if len(c.s.Notify) != 0 {
		t.Fatalf("progress kept for dropped sinks: %+v", c.s.Notify)
	}
}
