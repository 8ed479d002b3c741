package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
)

// maxBody caps request bodies.
const maxBody = 1 << 20

// writeTimeout bounds how long a write waits for Raft.
const writeTimeout = 10 * time.Second

// Timeouts of the admin API's connections (NewHTTPServer). A client gets
// ReadHeaderTimeout to send a request's headers (the first one, or the next
// one on a kept-alive connection after IdleTimeout at most), ReadTimeout
// for the whole request and WriteTimeout from the end of the headers to
// the end of the response: longer than a write's wait for Raft
// (writeTimeout) and its local apply. No endpoint streams (`evac events
// --follow` and the dashboard poll), so every response fits WriteTimeout;
// a streaming handler added later must extend its own write deadline with
// http.ResponseController.SetWriteDeadline before each write.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 60 * time.Second
)

// NewHTTPServer returns the http.Server for the admin API handler h, with
// the timeouts above, logging its errors to errorLog.
func NewHTTPServer(h http.Handler, errorLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		ErrorLog:          errorLog,
	}
}

// Options configure the handler.
type Options struct {
	Logger *zap.Logger
	// Dev, when set, enables the /v1/dev fault-injection endpoints.
	Dev DevHooks
	// Extra lets the caller mount more routes (metrics, UI) on the router.
	Extra func(r *mux.Router)
	// Cluster, when set, serves the /v1/cluster membership endpoints
	// (cluster.go); without it they answer 503.
	Cluster Cluster
}

type server struct {
	b      Backend
	opts   Options
	logger *zap.Logger
}

// NewHandler returns the admin API handler.
func NewHandler(b Backend, opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	s := &server{b: b, opts: opts, logger: opts.Logger}
	notFound := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	notAllowed := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
	})
	r := mux.NewRouter()
	r.NotFoundHandler, r.MethodNotAllowedHandler = notFound, notAllowed
	r.HandleFunc("/healthz", s.healthz).Methods(http.MethodGet)
	r.HandleFunc("/readyz", s.readyz).Methods(http.MethodGet)
	// Routes are registered on the root router with their full path: a
	// gorilla subrouter answers 404 instead of 405 for a wrong method.
	v := prefixed{r: r, prefix: "/v1"}
	v.HandleFunc("/status", s.status).Methods(http.MethodGet)
	v.HandleFunc("/regions", s.regions).Methods(http.MethodGet)
	v.HandleFunc("/regions/{region}", s.region).Methods(http.MethodGet)
	v.HandleFunc("/regions/{region}/evacuate", s.evacuate).Methods(http.MethodPost)
	v.HandleFunc("/regions/{region}/restore", s.restore).Methods(http.MethodPost)
	v.HandleFunc("/services", s.services).Methods(http.MethodGet)
	v.HandleFunc("/members", s.members).Methods(http.MethodGet)
	v.HandleFunc("/config", s.getConfig).Methods(http.MethodGet)
	v.HandleFunc("/config", s.putConfig).Methods(http.MethodPut)
	v.HandleFunc("/freeze", s.freeze(true)).Methods(http.MethodPost)
	v.HandleFunc("/unfreeze", s.freeze(false)).Methods(http.MethodPost)
	v.HandleFunc("/events", s.events).Methods(http.MethodGet)
	v.HandleFunc("/notifications", s.notifications).Methods(http.MethodGet)
	v.HandleFunc("/explain", s.explain).Methods(http.MethodGet)
	s.drillRoutes(v)
	s.agentRoutes(v)
	s.dnssecRoutes(v)  // dnssec.go
	s.clusterRoutes(v) // cluster.go
	if opts.Dev != nil {
		v.HandleFunc("/dev/regions/{region}/{action:fail|heal}", s.devFault).Methods(http.MethodPost)
	}
	if opts.Extra != nil {
		opts.Extra(r)
	}
	return s.recoverer(r)
}

type prefixed struct {
	r      *mux.Router
	prefix string
}

func (p prefixed) HandleFunc(path string, f http.HandlerFunc) *mux.Route {
	return p.r.HandleFunc(p.prefix+path, f)
}

// recoverer turns a panic in a handler into a 500, not a dead server.
func (s *server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger.Error("panic in API handler", zap.String("path", r.URL.Path), zap.Any("panic", v), zap.Stack("stack"))
				writeError(w, http.StatusInternalServerError, wire.CodeInternal, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, wire.Error{Error: msg, Code: code})
}

// refuseLimit answers a request over a limit of the state (state.LimitError
// names it) with status, code "limit", and reports whether err was one;
// any other error is left to the caller.
func refuseLimit(w http.ResponseWriter, status int, err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, state.ErrLimit) {
		writeError(w, status, state.CodeLimit, err.Error())
	} else {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
	}
	return true
}

// readBody reads a capped request body.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, fmt.Errorf("request body larger than %d bytes", maxBody)
		}
		return nil, fmt.Errorf("read request body: %w", err)
	}
	return b, nil
}

// decodeStrict decodes a JSON body, rejecting unknown fields and trailing data.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any, allowEmpty bool) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		if allowEmpty {
			return nil
		}
		return errors.New("request body is empty: JSON expected")
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON body: %w", err)
	}
	// dec.More is not enough: it reports no more values before a stray
	// ']' or '}', so `{"reason":"x"}]` would pass.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("invalid JSON body: trailing data after the object")
	}
	return nil
}

// actor names who made a request. Without auth every caller is anonymous.
func actor(r *http.Request) string { return wire.ActorOf(r) }

// propose submits a command and waits for the local replica to apply it.
func (s *server) propose(w http.ResponseWriter, r *http.Request, t state.CommandType, body any) (state.Result, bool) {
	return s.proposeAs(w, r, t, body, "")
}

// proposeAs is propose for one of several commands a request makes: suffix
// tells their request ids apart (a retried request retries each as a no-op).
func (s *server) proposeAs(w http.ResponseWriter, r *http.Request, t state.CommandType, body any, suffix string) (state.Result, bool) {
	id, err := requestID(r, t)
	if err != nil {
		writeError(w, http.StatusBadRequest, state.CodeInvalid, err.Error())
		return state.Result{}, false
	}
	if suffix != "" {
		id += ":" + suffix
	}
	ctx, cancel := context.WithTimeout(r.Context(), writeTimeout)
	defer cancel()
	res, err := s.b.Propose(ctx, t, actor(r), id, body)
	if err != nil {
		s.proposeFailed(w, t, err) // writes.go
		return state.Result{}, false
	}
	// Refused commands are committed too: wait either way, so the client's
	// next read from this controller sees the log at least this far.
	if err := s.b.WaitApplied(ctx, res.Index); err != nil {
		s.logger.Warn("write committed but not yet applied locally", zap.Uint64("index", res.Index), zap.Error(err))
	}
	if res.Error != "" {
		writeError(w, statusForCode(res.Code), res.Code, res.Error)
		return res, false
	}
	return res, true
}

func statusForCode(code string) int {
	switch code {
	case state.CodeInvalid:
		return http.StatusBadRequest
	case state.CodeNotFound:
		return http.StatusNotFound
	case state.CodeConflict, state.CodeRule, state.CodeFrozen, state.CodeNoConfig, state.CodeLimit,
		state.CodeAlreadyFrozen, state.CodeNotFrozen:
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) readyz(w http.ResponseWriter, _ *http.Request) {
	if err := s.b.Ready(); err != nil {
		writeError(w, http.StatusServiceUnavailable, "not_ready", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *server) devFault(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	region := vars["region"]
	var err error
	if vars["action"] == "fail" {
		err = s.opts.Dev.FailRegion(region)
	} else {
		err = s.opts.Dev.HealRegion(region)
	}
	if err != nil {
		writeError(w, http.StatusNotFound, state.CodeNotFound, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"region": region, "backend": vars["action"]})
}
