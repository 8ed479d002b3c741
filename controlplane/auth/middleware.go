package auth

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/api/wire"
)

// Default write rate per token.
const (
	DefaultWriteRate  = 10 // tokens per second
	DefaultWriteBurst = 20
)

// Options configure Middleware.
type Options struct {
	Logger *zap.Logger
	// WriteRate and WriteBurst limit each token's writes (anything but
	// GET and HEAD); 0 means the defaults, a negative rate no limit.
	WriteRate  float64
	WriteBurst int
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
	// Failures counts and logs refused requests; nil: a FailureLog on
	// Logger with the default interval.
	Failures *FailureLog
}

// Middleware authenticates every request against the store, checks the role
// its path and method need (Required), limits each token's write rate and
// names the token as the actor of what it changes (api.WithActor).
func Middleware(s *Store, opts Options, next http.Handler) http.Handler {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.WriteRate == 0 {
		opts.WriteRate = DefaultWriteRate
	}
	if opts.WriteBurst <= 0 {
		opts.WriteBurst = DefaultWriteBurst
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	lim := &limiters{rate: opts.WriteRate, burst: float64(opts.WriteBurst), now: opts.Now, m: map[string]*bucket{}}
	fails := opts.Failures
	if fails == nil {
		fails = NewFailureLog(opts.Logger, 0)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		need := Required(r.Method, r.URL.Path)
		if need == RoleNone {
			next.ServeHTTP(w, r)
			return
		}
		token, ok := bearer(r)
		if !ok {
			fails.missing.Log(zap.String("remote-addr", r.RemoteAddr), zap.String("method", r.Method), zap.String("path", r.URL.Path))
			unauthorized(w, "", "missing bearer token: send Authorization: Bearer TOKEN")
			return
		}
		id, ok := s.Authenticate(token)
		if !ok {
			fails.unknown.Log(zap.String("remote-addr", r.RemoteAddr),
				zap.String("method", r.Method), zap.String("path", r.URL.Path))
			unauthorized(w, "invalid_token", "unknown or revoked token")
			return
		}
		if id.Role < need {
			fails.forbidden.Log(zap.String("remote-addr", r.RemoteAddr), zap.String("token", id.Name), zap.Stringer("role", id.Role),
				zap.Stringer("needs", need), zap.String("method", r.Method), zap.String("path", r.URL.Path))
			writeErr(w, http.StatusForbidden, wire.CodeForbidden,
				fmt.Sprintf("token %q has role %s; %s %s needs %s", id.Name, id.Role, r.Method, r.URL.Path, need))
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && opts.WriteRate > 0 {
			if wait := lim.take(id.Name); wait > 0 {
				w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(wait.Seconds()))))
				writeErr(w, http.StatusTooManyRequests, wire.CodeRateLimited,
					fmt.Sprintf("too many writes for token %q; retry in %s", id.Name, wait.Round(time.Millisecond)))
				return
			}
		}
		ctx := wire.WithActor(r.Context(), id.Name)
		next.ServeHTTP(w, r.WithContext(wire.WithAdmin(ctx, id.Role >= RoleAdmin)))
	})
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// unauthorized answers 401 with the RFC 6750 challenge; oauthErr is its
// error attribute, empty when no token was sent.
func unauthorized(w http.ResponseWriter, oauthErr, msg string) {
	challenge := `Bearer realm="evac"`
	if oauthErr != "" {
		challenge += `, error="` + oauthErr + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeErr(w, http.StatusUnauthorized, wire.CodeUnauthorized, msg)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(wire.Error{Error: msg, Code: code})
}

// limiters hold one token bucket per token name.
type limiters struct {
	rate, burst float64
	now         func() time.Time
	mu          sync.Mutex
	m           map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// take spends one write from name's bucket, or returns how long until one
// is available.
func (l *limiters) take(name string) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[name]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.m[name] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(l.burst, b.tokens+el*l.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}
