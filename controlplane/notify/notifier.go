package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/buildinfo"
)

// Source is the local replica: its current state, and a signal on change.
type Source interface {
	State() *state.State
	Subscribe() (<-chan struct{}, func())
}

// Proposer commits a command through Raft (the leader's Controller).
type Proposer interface {
	Propose(ctx context.Context, t state.CommandType, actor, id string, body any) (state.Result, error)
}

// Actor is who delivery progress is recorded as.
const Actor = "notifier"

// Config tunes the notifier; zero fields take the defaults.
type Config struct {
	Logger *zap.Logger
	// Transport carries the deliveries (tests point it at loopback); nil is
	// a transport that ignores proxies from the environment.
	Transport http.RoundTripper
	// MinBackoff and MaxBackoff bound the wait between attempts of one
	// event: 1s doubling to 30s by default.
	MinBackoff, MaxBackoff time.Duration
	// AlertRefresh is how often Alertmanager is re-sent the conditions in
	// force (default 1m); a firing alert is sent to end 3 refreshes later.
	AlertRefresh time.Duration
}

// Notifier runs the sinks' workers while this controller leads (Run).
type Notifier struct {
	cfg  Config
	src  Source
	prop Proposer
	http *http.Client

	attempts *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	mu      sync.Mutex
	lastErr map[string]string // sink -> the last attempt's error, while retrying
}

// New returns a notifier reading src and committing progress through p.
func New(cfg Config, src Source, p Proposer) *Notifier {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.AlertRefresh <= 0 {
		cfg.AlertRefresh = time.Minute
	}
	tr := cfg.Transport
	if tr == nil {
		tr = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second}
	}
	return &Notifier{
		cfg: cfg, src: src, prop: p,
		http: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evac_notification_attempts_total",
			Help: "Delivery attempts this controller made as leader, by sink and result (ok, error).",
		}, []string{"sink", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "evac_notification_delivery_seconds",
			Help:    "Time from an event to its delivery, retries included, by sink.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"sink"}),
		lastErr: map[string]string{},
	}
}

// Collectors are the notifier's own series, for the controller's registry.
func (n *Notifier) Collectors() []prometheus.Collector {
	return []prometheus.Collector{n.attempts, n.latency}
}

// RetryingError is the error of a sink's event being retried now, if any
// (for GET /v1/notifications on the leader).
func (n *Notifier) RetryingError(sink string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lastErr[sink]
}

// Run delivers until ctx is done: one worker per sink, restarted when the
// sink's definition changes and stopped when the config drops it.
func (n *Notifier) Run(ctx context.Context) {
	updates, unsubscribe := n.src.Subscribe()
	defer unsubscribe()
	type worker struct {
		def    state.Sink
		kick   chan struct{}
		cancel context.CancelFunc
		done   chan struct{}
	}
	workers := map[string]*worker{}
	defer func() {
		for _, w := range workers {
			w.cancel()
			<-w.done
		}
	}()
	for {
		st := n.src.State()
		want := map[string]state.Sink{}
		if st.Config != nil {
			for _, s := range st.Config.Notifications {
				want[s.Name] = s
			}
		}
		for name, w := range workers {
			if def, ok := want[name]; !ok || !sameSink(def, w.def) {
				w.cancel()
				<-w.done
				delete(workers, name)
			}
		}
		for name, def := range want {
			w, ok := workers[name]
			if !ok {
				wctx, cancel := context.WithCancel(ctx)
				w = &worker{def: def, kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
				workers[name] = w
				go func() {
					defer close(w.done)
					n.work(wctx, def, w.kick)
				}()
			}
			select {
			case w.kick <- struct{}{}:
			default:
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-updates:
		}
	}
}

func sameSink(a, b state.Sink) bool {
	return a.Type == b.Type && a.URL == b.URL && a.Secret == b.Secret && a.RoutingKey == b.RoutingKey &&
		a.Timeout == b.Timeout && a.GiveUpAfter == b.GiveUpAfter &&
		strings.Join(a.Events, ",") == strings.Join(b.Events, ",") && strings.Join(a.Regions, ",") == strings.Join(b.Regions, ",")
}

// work delivers sink's events in order, one at a time, committing each
// outcome before taking the next.
func (n *Notifier) work(ctx context.Context, sink state.Sink, kick <-chan struct{}) {
	lg := n.cfg.Logger.With(zap.String("sink", sink.Name))
	var refresh <-chan time.Time
	if sink.Type == state.SinkAlertmanager {
		t := time.NewTicker(n.cfg.AlertRefresh)
		defer t.Stop()
		refresh = t.C
		n.refreshAlerts(ctx, sink, lg)
	}
	for ctx.Err() == nil {
		st := n.src.State()
		e, ok := next(st, sink)
		if !ok {
			select {
			case <-ctx.Done():
			case <-kick:
			case <-refresh:
				n.refreshAlerts(ctx, sink, lg)
			}
			continue
		}
		delivered, err := n.deliver(ctx, sink, st.Config.Zone, e, lg)
		if ctx.Err() != nil {
			return // leadership lost: the next leader takes over from the committed cursor
		}
		prog := state.NotifyProgress{Sink: sink.Name, Seq: e.Seq, Delivered: delivered}
		if err != nil {
			prog.Error = err.Error()
			lg.Warn("notification given up", zap.Uint64("seq", e.Seq), zap.String("kind", e.Kind), zap.Error(err))
		}
		n.commit(ctx, prog, lg)
	}
}

// next is the first event after sink's cursor that it wants.
func next(st *state.State, sink state.Sink) (state.Event, bool) {
	for _, e := range st.EventsSince(st.Notify[sink.Name].Cursor, 0) {
		if sink.Wants(e) {
			return e, true
		}
	}
	return state.Event{}, false
}

// commit records a delivery's outcome, retrying while this node leads.
func (n *Notifier) commit(ctx context.Context, prog state.NotifyProgress, lg *zap.Logger) {
	id := fmt.Sprintf("notify/%s/%d", prog.Sink, prog.Seq)
	for wait := n.cfg.MinBackoff; ; wait = min(2*wait, n.cfg.MaxBackoff) {
		res, err := n.prop.Propose(ctx, state.CmdNotifyProgress, Actor, id, prog)
		if err == nil {
			if res.Error != "" && res.Code != state.CodeNotFound { // not found: the config dropped the sink
				lg.Error("delivery progress refused", zap.String("error", res.Error))
			}
			return
		}
		lg.Warn("record delivery progress", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// errPermanent marks a refusal no retry can change (a 4xx but 408/425/429).
var errPermanent = errors.New("refused")

// deliver sends e to sink until it is accepted, refused for good, or
// older than the sink's give_up_after. delivered false with a nil error
// never happens: a false delivered carries why.
func (n *Notifier) deliver(ctx context.Context, sink state.Sink, zone string, e state.Event, lg *zap.Logger) (bool, error) {
	wait := n.cfg.MinBackoff
	for {
		err := n.attempt(ctx, sink, zone, e)
		if err == nil {
			n.attempts.WithLabelValues(sink.Name, "ok").Inc()
			n.latency.WithLabelValues(sink.Name).Observe(max(time.Since(e.Time), 0).Seconds())
			n.setErr(sink.Name, "")
			return true, nil
		}
		n.attempts.WithLabelValues(sink.Name, "error").Inc()
		n.setErr(sink.Name, err.Error())
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if errors.Is(err, errPermanent) {
			return false, err
		}
		if time.Since(e.Time) > sink.GiveUpAfter.D() {
			return false, fmt.Errorf("gave up after %s: %w", sink.GiveUpAfter, err)
		}
		lg.Info("notification failed; will retry", zap.Uint64("seq", e.Seq), zap.Duration("in", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, n.cfg.MaxBackoff)
	}
}

func (n *Notifier) setErr(sink, msg string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if msg == "" {
		delete(n.lastErr, sink)
	} else {
		n.lastErr[sink] = msg
	}
}

// attempt makes one delivery of e to sink.
func (n *Notifier) attempt(ctx context.Context, sink state.Sink, zone string, e state.Event) error {
	var (
		body []byte
		err  error
		url  = sink.URL
		hdr  = http.Header{}
	)
	switch sink.Type {
	case state.SinkWebhook:
		body, err = jsonEvent(e)
		hdr.Set(HeaderSignature, Sign(sink.Secret, body))
		hdr.Set(HeaderIdempotency, strconv.FormatUint(e.Seq, 10))
		hdr.Set(HeaderEvent, e.Kind)
	case state.SinkSlack:
		body, err = slackBody(zone, e)
	case state.SinkPagerDuty:
		var ok bool
		body, ok, err = pagerDutyBody(zone, sink.RoutingKey, e)
		if err == nil && !ok {
			return nil // not an incident's event: nothing to send
		}
	case state.SinkAlertmanager:
		a, ok := alertFor(zone, e, time.Now().Add(3*n.cfg.AlertRefresh))
		if !ok {
			return nil
		}
		body, err = jsonAlerts([]amAlert{a})
		url = alertsURL(sink.URL)
	default:
		return fmt.Errorf("%w: unknown sink type %q", errPermanent, sink.Type)
	}
	if err != nil {
		return fmt.Errorf("%w: encode: %v", errPermanent, err)
	}
	return n.post(ctx, sink, url, hdr, body)
}

// refreshAlerts re-sends Alertmanager the conditions in force, so that a
// long evacuation or freeze does not time out there (best effort: the next
// refresh tries again).
func (n *Notifier) refreshAlerts(ctx context.Context, sink state.Sink, lg *zap.Logger) {
	alerts := conditions(n.src.State(), time.Now().Add(3*n.cfg.AlertRefresh))
	if len(alerts) == 0 {
		return
	}
	body, err := jsonAlerts(alerts)
	if err == nil {
		err = n.post(ctx, sink, alertsURL(sink.URL), http.Header{}, body)
	}
	if err != nil && ctx.Err() == nil {
		lg.Info("alertmanager refresh failed", zap.Error(err))
	}
}

func alertsURL(base string) string { return strings.TrimSuffix(base, "/") + "/api/v2/alerts" }

// post sends body and judges the answer: 2xx is delivered; 408, 425, 429
// and 5xx are worth a retry; any other status is a refusal for good.
func (n *Notifier) post(ctx context.Context, sink state.Sink, url string, hdr http.Header, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, sink.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %v", errPermanent, err)
	}
	req.Header = hdr
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "evac/"+buildinfo.Get().Version)
	resp, err := n.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("no answer within %s", sink.Timeout)
		}
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooEarly || code == http.StatusTooManyRequests || code >= 500:
		return fmt.Errorf("HTTP %d: %s", code, strings.TrimSpace(string(msg)))
	default:
		return fmt.Errorf("%w: HTTP %d: %s", errPermanent, code, strings.TrimSpace(string(msg)))
	}
}
