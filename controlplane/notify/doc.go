// Package notify delivers the audit log to people: webhooks (signed with
// HMAC-SHA256), Slack, PagerDuty (Events API v2) and Alertmanager (v2 API).
//
// The leader delivers; nobody else does. Each sink in the steering config
// has a worker that takes the first event after the sink's replicated
// cursor (state.SinkProgress) that the sink wants, delivers it with retries
// and backoff, and then commits the outcome (state.NotifyProgress) before it
// takes the next. A new leader starts from the committed cursor, so nothing
// is dropped; an event delivered by a leader that died before committing is
// sent again, with the same Idempotency-Key (the event's sequence number),
// for the receiver to drop. Workers never touch the steering path: a slow,
// failing or silent receiver delays only its own sink.
//
// Alertmanager forgets an alert that is not re-sent (resolve_timeout), so
// its worker also re-posts the conditions that hold in the current state
// (regions out of service, a freeze) every refresh interval.
package notify
