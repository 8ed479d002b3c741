package state

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
)

// MaxBlockers is how many blocking conditions a schedule or drill may name.
const MaxBlockers = 10

// Blocker is a condition that stops an exercise (a schedule's run or a
// drill) while it fires: an Alertmanager alert, or a Prometheus query
// beyond a threshold. Exactly one kind is set. The leader evaluates it (I/O)
// and proposes the outcome (a skipped run, an aborted drill); Apply never
// evaluates it.
type Blocker struct {
	// Alertmanager is the base URL of an Alertmanager; Alert the alertname
	// that, active and neither silenced nor inhibited, blocks.
	Alertmanager string `json:"alertmanager,omitempty" yaml:"alertmanager,omitempty"`
	Alert        string `json:"alert,omitempty" yaml:"alert,omitempty"`
	// Prometheus is the base URL of a Prometheus-compatible query API;
	// Query a PromQL expression of one value, which blocks when Above or
	// Below its threshold.
	Prometheus string   `json:"prometheus,omitempty" yaml:"prometheus,omitempty"`
	Query      string   `json:"query,omitempty" yaml:"query,omitempty"`
	Above      *float64 `json:"above,omitempty" yaml:"above,omitempty"`
	Below      *float64 `json:"below,omitempty" yaml:"below,omitempty"`
}

// String describes the blocker in a report ("alert HighErrorRate",
// "query sum(rate(errors_total[5m])) > 10").
func (b Blocker) String() string {
	if b.Alertmanager != "" {
		return "alert " + b.Alert
	}
	s := "query " + b.Query
	if b.Above != nil {
		s += fmt.Sprintf(" > %g", *b.Above)
	}
	if b.Below != nil {
		s += fmt.Sprintf(" < %g", *b.Below)
	}
	return s
}

// Key identifies the blocker: two equal conditions share one evaluation.
func (b Blocker) Key() string {
	f := func(p *float64) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprintf("%g", *p)
	}
	return strings.Join([]string{b.Alertmanager, b.Alert, b.Prometheus, b.Query, f(b.Above), f(b.Below)}, "\x00")
}

// ValidateBlockers checks block_on offline, naming each bad field
// (block_on[i].field).
func ValidateBlockers(bs []Blocker) error {
	var errs []error
	fail := func(i int, field, format string, args ...any) {
		name := fmt.Sprintf("block_on[%d]", i)
		if field != "" {
			name += "." + field
		}
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if len(bs) > MaxBlockers {
		errs = append(errs, fmt.Errorf("block_on: %d conditions, at most %d", len(bs), MaxBlockers))
	}
	for i, b := range bs {
		switch {
		case b.Alertmanager != "" && b.Prometheus != "":
			fail(i, "", "set alertmanager or prometheus, not both")
		case b.Alertmanager != "":
			if err := checkBaseURL(b.Alertmanager); err != nil {
				fail(i, "alertmanager", "%v", err)
			}
			switch {
			case strings.TrimSpace(b.Alert) == "":
				fail(i, "alert", "required with alertmanager (the alertname that blocks)")
			case len(b.Alert) > 256 || strings.ContainsAny(b.Alert, "\"\\\n\r"):
				fail(i, "alert", "%q is not a valid alert name (up to 256 bytes, no quotes, backslashes or newlines)", b.Alert)
			}
			if b.Query != "" || b.Above != nil || b.Below != nil {
				fail(i, "", "query, above and below go with prometheus, not alertmanager")
			}
		case b.Prometheus != "":
			if err := checkBaseURL(b.Prometheus); err != nil {
				fail(i, "prometheus", "%v", err)
			}
			switch {
			case strings.TrimSpace(b.Query) == "":
				fail(i, "query", "required with prometheus (a PromQL expression of one value)")
			case len(b.Query) > 4096:
				fail(i, "query", "longer than 4096 bytes")
			}
			if (b.Above == nil) == (b.Below == nil) {
				fail(i, "", "set exactly one of above and below (the threshold past which the query blocks)")
			}
			for _, t := range []struct {
				name string
				v    *float64
			}{{"above", b.Above}, {"below", b.Below}} {
				if t.v != nil && (math.IsNaN(*t.v) || math.IsInf(*t.v, 0)) {
					fail(i, t.name, "must be a finite number")
				}
			}
			if b.Alert != "" {
				fail(i, "alert", "goes with alertmanager, not prometheus")
			}
		default:
			fail(i, "", "set alertmanager (with alert) or prometheus (with query and above or below)")
		}
	}
	return errors.Join(errs...)
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL with a host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q: give the base URL only (no query, fragment or credentials)", s)
	}
	return nil
}
