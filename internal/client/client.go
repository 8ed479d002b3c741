package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/evac-sh/evac/controlplane/api/wire"
)

const (
	// DefaultAddr is the admin API of `evac dev`'s first controller.
	DefaultAddr = "http://127.0.0.1:8080"
	// DefaultTimeout bounds each request unless WithTimeout says otherwise.
	DefaultTimeout = 30 * time.Second

	maxBody      = 64 << 20 // a response larger than this is cut and fails to decode
	maxErrorBody = 64 << 10
	getAttempts  = 3 // GETs are retried on connection errors, twice
	getBackoff   = 100 * time.Millisecond
	// Writes are retried, with the same request id, when the server says
	// nothing was committed or the outcome is unknown (see
	// retryableAnswer): at most writeAttempts in all, waiting Retry-After
	// (at most maxRetryAfter) or the backoff.
	writeAttempts = 4
	maxRetryAfter = 5 * time.Second
	// minRetryWindow: a write is retried only if this much of the
	// deadline remains after the wait.
	minRetryWindow = 2 * time.Second
)

// Client talks to one controller's admin API. It is safe for concurrent use.
type Client struct {
	base    string
	token   string
	hc      *http.Client
	timeout time.Duration
	backoff time.Duration
	// writeAttempts bounds the attempts of a write (WithWriteAttempts).
	writeAttempts int
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests through hc (for TLS
// settings, a custom transport, ...). Its Timeout, if any, applies on top of
// WithTimeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithTLSConfig sends requests to https addresses with cfg: its RootCAs
// (nil: the system's) verify the server, its Certificates, if any, are the
// client's certificate.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *Client) {
		if cfg == nil {
			return
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = cfg
		c.hc = &http.Client{Transport: tr}
	}
}

// WithTimeout bounds each request (including the retries of a GET) by d;
// 0 means only the caller's context bounds it. The default is DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) { c.timeout = d }
}

// WithWriteAttempts bounds how many times a write is sent when the server
// answers that it was not committed or that its outcome is unknown (see
// retryableAnswer); 1 turns those retries off. The default is 4.
func WithWriteAttempts(n int) Option {
	return func(c *Client) { c.writeAttempts = max(n, 1) }
}

// New returns a client of the admin API at addr, e.g. http://127.0.0.1:8080
// (a missing scheme means http). A non-empty token is sent as
// "Authorization: Bearer TOKEN".
func New(addr, token string, opts ...Option) *Client {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		addr = DefaultAddr
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	c := &Client{
		base:          strings.TrimRight(addr, "/"),
		token:         token,
		hc:            &http.Client{},
		timeout:       DefaultTimeout,
		backoff:       getBackoff,
		writeAttempts: writeAttempts,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Addr is the base address requests go to, without a trailing slash.
func (c *Client) Addr() string { return c.base }

// APIError is a request the server answered with a 4xx or 5xx status. Code
// and Message come from the JSON error body {"error": "...", "code": "..."}.
type APIError struct {
	Status  int
	Code    string
	Message string
	// RetryAfter is the answer's Retry-After (in seconds), 0 without one.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
	}
	return fmt.Sprintf("%s (%s, HTTP %d)", e.Message, e.Code, e.Status)
}

// ConnError is a request that got no HTTP response: the server is not
// listening, the connection broke, or the context ended first (then
// errors.Is(err, context.DeadlineExceeded) or context.Canceled holds).
type ConnError struct {
	Method string
	URL    string
	Err    error
}

func (e *ConnError) Error() string { return fmt.Sprintf("%s %s: %v", e.Method, e.URL, e.Err) }

// Unwrap returns the transport's error.
func (e *ConnError) Unwrap() error { return e.Err }

type ctxKey int

const (
	rawKey ctxKey = iota
	requestIDKey
)

// CaptureRaw returns a context under which each successful call stores the
// response body, exactly as the server sent it, in *dst.
func CaptureRaw(ctx context.Context, dst *json.RawMessage) context.Context {
	return context.WithValue(ctx, rawKey, dst)
}

// WithRequestID returns a context under which writes carry id in their
// X-Request-ID header instead of a fresh random one: sending the same write
// twice with the same id applies it once (the second answer has
// Duplicate set).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// NewRequestID returns a random request id (32 hex digits).
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// Do sends one request to path (e.g. "/v1/drills") and decodes a 2xx JSON
// answer into out (unless out is nil). in is the request body: nil for none,
// a []byte sent as JSON verbatim, or a value to marshal. It is the escape
// hatch for endpoints this package has no method for.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	switch v := in.(type) {
	case nil:
	case []byte:
		body = v
	case json.RawMessage:
		body = v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("%s %s: encoding request: %w", method, path, err)
		}
		body = b
	}
	ct := ""
	if body != nil {
		ct = "application/json"
	}
	return c.do(ctx, method, path, body, ct, out)
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, contentType string, out any) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	// GETs are retried on connection errors; writes only on the answers
	// retryableAnswer accepts, which say what became of them.
	attempts, connAttempts := c.writeAttempts, 1
	if method == http.MethodGet {
		attempts, connAttempts = getAttempts, getAttempts
	}
	reqID := ""
	if method != http.MethodGet && method != http.MethodHead {
		reqID, _ = ctx.Value(requestIDKey).(string)
		if reqID == "" {
			reqID = NewRequestID()
		}
	}
	target := c.base + path
	var lastAnswer *APIError // the retryable answer a write is being retried after
	for attempt := 1; ; attempt++ {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, target, rd)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, target, err)
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", "evac-client")
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		if reqID != "" {
			req.Header.Set("X-Request-ID", reqID)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			err = unwrapURLError(err)
			if attempt < connAttempts && retryable(ctx, err) {
				if sleep(ctx, c.backoff*time.Duration(attempt)) == nil {
					continue
				}
			}
			return retriedAfter(&ConnError{Method: method, URL: target, Err: err}, lastAnswer)
		}
		err = c.finish(ctx, method, target, resp, out)
		var ae *APIError
		if reqID != "" && attempt < attempts && errors.As(err, &ae) && retryableAnswer(ae) {
			// The same request id: a write that did commit is not
			// applied again, and its answer says so.
			wait := c.backoff * time.Duration(attempt)
			if ae.RetryAfter > 0 {
				wait = min(ae.RetryAfter, maxRetryAfter)
			}
			// Not worth starting an attempt the deadline would cut
			// short: the answer in hand says more than a timeout.
			if d, ok := ctx.Deadline(); !ok || time.Until(d) > wait+minRetryWindow {
				if sleep(ctx, wait) == nil {
					lastAnswer = ae
					continue
				}
			}
		}
		var ce *ConnError
		if errors.As(err, &ce) {
			return retriedAfter(err, lastAnswer)
		}
		return err
	}
}

// retriedAfter adds to err, a retried write's failure to get an answer,
// the answer it was retried after. The retry's own outcome stays unknown
// whatever that answer said.
func retriedAfter(err error, last *APIError) error {
	if last == nil {
		return err
	}
	return fmt.Errorf("%w (retried after: %v)", err, last)
}

// retryableAnswer reports whether a write the server answered with e may
// be sent again with the same request id: it was not committed (no leader,
// unavailable, shutting down: 503) or its outcome is unknown (504).
func retryableAnswer(e *APIError) bool {
	switch e.Code {
	case wire.CodeNoLeader, wire.CodeUnavailable, wire.CodeShuttingDown:
		return e.Status == http.StatusServiceUnavailable
	case wire.CodeOutcomeUnknown:
		return e.Status == http.StatusGatewayTimeout
	}
	return false
}

// finish reads the answer and turns it into out or an error.
func (c *Client) finish(ctx context.Context, method, target string, resp *http.Response, out any) error {
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		e := decodeError(resp.StatusCode, b)
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			e.RetryAfter = time.Duration(secs) * time.Second
		}
		return e
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return &ConnError{Method: method, URL: target, Err: fmt.Errorf("reading response: %w", err)}
	}
	if dst, ok := ctx.Value(rawKey).(*json.RawMessage); ok && dst != nil {
		*dst = append((*dst)[:0], b...)
	}
	if out == nil || len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decoding response: %w", method, target, err)
	}
	return nil
}

func decodeError(status int, b []byte) *APIError {
	e := &APIError{Status: status}
	var body wire.Error
	if json.Unmarshal(b, &body) == nil && body.Error != "" {
		e.Message, e.Code = body.Error, body.Code
		return e
	}
	e.Message = strings.TrimSpace(string(b))
	if len(e.Message) > 200 {
		e.Message = e.Message[:200] + "..."
	}
	if e.Message == "" {
		e.Message = strings.ToLower(http.StatusText(status))
	}
	return e
}

// retryable reports whether a GET that failed with err (no response) may be
// sent again: not when the context ended, nor after a timeout (retrying would
// only multiply the wait).
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return true
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
