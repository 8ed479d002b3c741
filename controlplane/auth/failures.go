package auth

import (
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/evac-sh/evac/internal/logging"
)

// Reasons a request is refused, the label of evac_auth_failures_total.
const (
	FailMissingToken = "missing_token" // no bearer token
	FailUnknownToken = "unknown_token" // a token the tokens file does not hold
	FailForbidden    = "forbidden"     // a known token whose role is too low
)

// FailureLog counts the requests Middleware refuses, by reason, and logs
// each reason at most once per interval (logging.Limited): anyone who
// reaches the API can send wrong tokens as fast as the network allows, and
// must not be able to flood the log with them.
type FailureLog struct {
	missing, unknown, forbidden *logging.Limited
}

// NewFailureLog returns a failure log writing to log at most one line per
// reason and interval (logging.DefaultInterval if 0).
func NewFailureLog(log *zap.Logger, interval time.Duration) *FailureLog {
	if log == nil {
		log = zap.NewNop()
	}
	return &FailureLog{
		missing:   logging.NewLimited(log, zapcore.InfoLevel, "request without a bearer token refused", interval),
		unknown:   logging.NewLimited(log, zapcore.WarnLevel, "request with an unknown token refused", interval),
		forbidden: logging.NewLimited(log, zapcore.WarnLevel, "request refused: role too low", interval),
	}
}

// Totals returns the refusals counted so far by reason.
func (f *FailureLog) Totals() map[string]uint64 {
	return map[string]uint64{FailMissingToken: f.missing.Total(), FailUnknownToken: f.unknown.Total(),
		FailForbidden: f.forbidden.Total()}
}

// Total returns the refusals counted for one reason.
func (f *FailureLog) Total(reason string) uint64 { return f.Totals()[reason] }

// Close reports what is not yet logged and stops the loggers' timers.
func (f *FailureLog) Close() {
	f.missing.Close()
	f.unknown.Close()
	f.forbidden.Close()
}
