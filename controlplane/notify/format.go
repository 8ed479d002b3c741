package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/evac-sh/evac/controlplane/state"
)

// Headers of a webhook delivery.
const (
	HeaderSignature   = "X-Evac-Signature" // sha256=<hex HMAC-SHA256 of the body with the sink's secret>
	HeaderIdempotency = "Idempotency-Key"  // the event's sequence number
	HeaderEvent       = "X-Evac-Event"     // the event's kind
)

// Sign returns the X-Evac-Signature value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is body's signature under secret, in constant time.
func Verify(secret string, body []byte, sig string) bool {
	return hmac.Equal([]byte(sig), []byte(Sign(secret, body)))
}

// summary is one line for people: what happened, where, by whom, why.
func summary(zone string, e state.Event) string {
	var b strings.Builder
	b.WriteString("evac " + strings.TrimSuffix(zone, "."))
	if e.Region != "" {
		b.WriteString(" " + e.Region)
		if e.Service != "" {
			b.WriteString("/" + e.Service)
		}
	}
	b.WriteString(": " + e.Kind)
	if e.Weight != nil {
		fmt.Fprintf(&b, " (weight %d)", *e.Weight)
	}
	if e.Actor != "" {
		b.WriteString(" by " + e.Actor)
	}
	if e.Reason != "" {
		b.WriteString(": " + e.Reason)
	}
	if e.Detail != "" {
		b.WriteString(" [" + e.Detail + "]")
	}
	return b.String()
}

// slackBody is a Slack incoming-webhook message.
func slackBody(zone string, e state.Event) ([]byte, error) {
	return json.Marshal(map[string]string{"text": summary(zone, e)})
}

// PagerDuty Events API v2 (https://developer.pagerduty.com/api-reference/).
type pdEvent struct {
	RoutingKey  string     `json:"routing_key"`
	EventAction string     `json:"event_action"` // trigger | resolve
	DedupKey    string     `json:"dedup_key"`
	Payload     *pdPayload `json:"payload,omitempty"`
}

type pdPayload struct {
	Summary       string      `json:"summary"`
	Source        string      `json:"source"`
	Severity      string      `json:"severity"`
	Timestamp     string      `json:"timestamp"`
	Component     string      `json:"component,omitempty"`
	Group         string      `json:"group"`
	Class         string      `json:"class"`
	CustomDetails state.Event `json:"custom_details"`
}

// incident says whether event e opens or closes an incident, and which:
// one per region out of service, one for a freeze. ok is false for kinds
// that do neither.
func incident(e state.Event) (key string, open, ok bool) {
	switch e.Kind {
	case state.EventEvacuate, state.EventEvacuated:
		return "region/" + e.Region, true, e.Region != ""
	case state.EventActive:
		return "region/" + e.Region, false, e.Region != ""
	case state.EventFreeze:
		return "freeze", true, true
	case state.EventUnfreeze:
		return "freeze", false, true
	}
	return "", false, false
}

// pagerDutyBody triggers or resolves the incident e belongs to. The dedup
// key is the incident's, so a trigger after a resolve opens a new incident
// in PagerDuty and repeats of one event are one alert.
func pagerDutyBody(zone, routingKey string, e state.Event) ([]byte, bool, error) {
	key, open, ok := incident(e)
	if !ok {
		return nil, false, nil
	}
	ev := pdEvent{RoutingKey: routingKey, EventAction: "resolve", DedupKey: "evac/" + strings.TrimSuffix(zone, ".") + "/" + key}
	if open {
		ev.EventAction = "trigger"
		sev := "warning"
		if e.Kind != state.EventFreeze {
			sev = "critical"
		}
		ev.Payload = &pdPayload{Summary: summary(zone, e), Source: "evac " + strings.TrimSuffix(zone, "."), Severity: sev,
			Timestamp: e.Time.UTC().Format(time.RFC3339), Component: e.Region, Group: "evac", Class: e.Kind, CustomDetails: e}
	}
	b, err := json.Marshal(ev)
	return b, true, err
}

// Alertmanager v2 API alert (POST /api/v2/alerts takes a list of them).
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt,omitzero"`
}

// Alert names evac raises in Alertmanager.
const (
	AlertRegionOut = "EvacRegionOut" // a region is evacuating, evacuated or restoring
	AlertFrozen    = "EvacFrozen"    // automatic steering is frozen
)

func amLabels(zone, name, region string) map[string]string {
	l := map[string]string{"alertname": name, "zone": strings.TrimSuffix(zone, "."), "source": "evac"}
	if region != "" {
		l["region"] = region
	}
	return l
}

// alertFor is the Alertmanager alert event e starts or ends (ok false: e
// does neither). A firing alert ends at until unless re-sent.
func alertFor(zone string, e state.Event, until time.Time) (amAlert, bool) {
	key, open, ok := incident(e)
	if !ok {
		return amAlert{}, false
	}
	name, region := AlertRegionOut, e.Region
	if key == "freeze" {
		name, region = AlertFrozen, ""
	}
	a := amAlert{Labels: amLabels(zone, name, region), StartsAt: e.Time,
		Annotations: map[string]string{"summary": summary(zone, e), "reason": e.Reason, "actor": e.Actor}}
	if open {
		a.EndsAt = until
	} else {
		a.EndsAt = e.Time
	}
	return a, true
}

// conditions are the alerts that hold in st: every region out of service
// and a freeze, each to end at until unless re-sent.
func conditions(st *state.State, until time.Time) []amAlert {
	if st.Config == nil {
		return nil
	}
	zone := st.Config.Zone
	var out []amAlert
	for _, r := range st.Config.Regions {
		rs, ok := st.Regions[r.Name]
		if !ok || rs.Phase == state.PhaseActive {
			continue
		}
		out = append(out, amAlert{Labels: amLabels(zone, AlertRegionOut, r.Name), StartsAt: rs.Since, EndsAt: until,
			Annotations: map[string]string{"summary": fmt.Sprintf("evac %s %s: %s (weight %d)", strings.TrimSuffix(zone, "."), r.Name, rs.Phase, rs.Weight),
				"reason": rs.Reason, "actor": rs.Actor}})
	}
	if st.Frozen {
		out = append(out, amAlert{Labels: amLabels(zone, AlertFrozen, ""), StartsAt: frozenSince(st), EndsAt: until,
			Annotations: map[string]string{"summary": fmt.Sprintf("evac %s: automatic steering frozen", strings.TrimSuffix(zone, ".")),
				"reason": st.FrozenReason, "actor": st.FrozenBy}})
	}
	return out
}

// frozenSince is the time of the freeze in force, from the audit log (the
// zero time when it has rolled off).
func frozenSince(st *state.State) time.Time {
	for i := len(st.Events) - 1; i >= 0; i-- {
		if st.Events[i].Kind == state.EventFreeze {
			return st.Events[i].Time
		}
	}
	return time.Time{}
}

func jsonEvent(e state.Event) ([]byte, error) { return json.Marshal(e) }

func jsonAlerts(a []amAlert) ([]byte, error) { return json.Marshal(a) }
