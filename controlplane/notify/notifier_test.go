package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// replica is an in-memory state that commits through state.Apply, as the
// FSM does: the notifier's Source and Proposer.
type replica struct {
	mu   sync.Mutex
	st   *state.State
	subs []chan struct{}
	// failCommits makes Propose fail (a lost leadership) while set.
	failCommits atomic.Bool
}

func (r *replica) State() *state.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

func (r *replica) Subscribe() (<-chan struct{}, func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan struct{}, 1)
	r.subs = append(r.subs, ch)
	return ch, func() {}
}

func (r *replica) Propose(_ context.Context, t state.CommandType, actor, id string, body any) (state.Result, error) {
	if r.failCommits.Load() {
		return state.Result{}, fmt.Errorf("leadership lost")
	}
	r.mu.Lock()
	next, res, err := state.ApplyNext(r.st, t, id, actor, time.Now(), body)
	r.st = next
	subs := r.subs
	r.mu.Unlock()
	for _, ch := range subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return res, err
}

func (r *replica) must(t *testing.T, ct state.CommandType, body any) {
	t.Helper()
	res, err := r.Propose(context.Background(), ct, "alice", "", body)
	if err != nil || res.Error != "" {
		t.Fatalf("%s: %v %s", ct, err, res.Error)
	}
}

const steering = `zone: example.com
nameservers: {ns1: 192.0.2.53}
regions: [{name: us-east}, {name: us-west}]
services: [{name: api, endpoints: {us-east: [192.0.2.1], us-west: [192.0.2.2]}}]
`

// receiver records what a sink's endpoint got; answer decides each reply.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []delivery
	answer func(n int) int // status for the nth request (1-based)
	n      atomic.Int32
}

type delivery struct {
	path string
	hdr  http.Header
	body []byte
}

func newReceiver(t *testing.T, answer func(int) int) *receiver {
	rc := &receiver{answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		n := int(rc.n.Add(1))
		code := http.StatusOK
		if rc.answer != nil {
			code = rc.answer(n)
		}
		if code/100 == 2 {
			rc.mu.Lock()
			rc.got = append(rc.got, delivery{r.URL.Path, r.Header.Clone(), b})
			rc.mu.Unlock()
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

func setup(t *testing.T, sinks string) (*replica, func() (stop func())) {
	t.Helper()
	cfg, err := state.ParseConfig([]byte(steering + sinks))
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{st: state.Empty()}
	r.must(t, state.CmdApplyConfig, state.NewApplyConfig(cfg))
	start := func() func() {
		n := New(Config{MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, AlertRefresh: 200 * time.Millisecond}, r, r)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); n.Run(ctx) }()
		return func() { cancel(); <-done; n.http.CloseIdleConnections() }
	}
	return r, start
}

func TestWebhookDelivery(t *testing.T) {
	rc := newReceiver(t, func(n int) int {
		if n <= 3 { // fails three times, then takes it
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	r, start := setup(t, fmt.Sprintf("notifications: [{name: ops, type: webhook, url: %q, secret: s3cret, events: [region.evacuate, freeze]}]\n", rc.URL))
	stop := start()
	defer func() { stop() }()
	r.must(t, state.CmdEvacuate, state.Evacuate{Region: "us-east", Reason: "INC-1"})
	r.must(t, state.CmdFreeze, state.Freeze{Reason: "hands off"})
	testutil.Eventually(t, 20*time.Second, "deliveries", func() error {
		if p := r.State().Notify["ops"]; p.Delivered != 2 {
			return fmt.Errorf("progress %+v", p)
		}
		return nil
	})
	got := rc.deliveries()
	if len(got) != 2 {
		t.Fatalf("%d deliveries, want 2 (the step and config events are filtered out)", len(got))
	}
	for i, kind := range []string{state.EventEvacuate, state.EventFreeze} {
		d := got[i]
		var e state.Event
		if err := json.Unmarshal(d.body, &e); err != nil || e.Kind != kind {
			t.Fatalf("delivery %d: %v %s", i, err, d.body)
		}
		if !Verify("s3cret", d.body, d.hdr.Get(HeaderSignature)) || Verify("other", d.body, d.hdr.Get(HeaderSignature)) {
			t.Errorf("delivery %d: signature %q does not check out", i, d.hdr.Get(HeaderSignature))
		}
		if d.hdr.Get(HeaderIdempotency) != fmt.Sprint(e.Seq) || d.hdr.Get(HeaderEvent) != kind {
			t.Errorf("delivery %d: headers %v", i, d.hdr)
		}
	}
	if p := r.State().Notify["ops"]; p.Failed != 0 || p.Cursor != got1Seq(t, got[1]) {
		t.Errorf("progress %+v", p)
	}

	// A new leader goes on from the committed cursor: nothing is sent twice.
	stop()
	stop = start()
	r.must(t, state.CmdUnfreeze, state.Freeze{})
	r.must(t, state.CmdFreeze, state.Freeze{Reason: "again"})
	testutil.Eventually(t, 20*time.Second, "deliveries", func() error {
		if p := r.State().Notify["ops"]; p.Delivered != 3 {
			return fmt.Errorf("progress %+v", p)
		}
		return nil
	})
	if n := len(rc.deliveries()); n != 3 {
		t.Fatalf("%d deliveries after the restart, want 3", n)
	}
}

func got1Seq(t *testing.T, d delivery) uint64 {
	var e state.Event
	if err := json.Unmarshal(d.body, &e); err != nil {
		t.Fatal(err)
	}
	return e.Seq
}

// A delivery whose outcome could not be committed (the leader lost its
// term) is sent again by the next leader, with the same Idempotency-Key.
func TestRedeliveryKeepsKey(t *testing.T) {
	rc := newReceiver(t, nil)
	r, start := setup(t, fmt.Sprintf("notifications: [{name: ops, type: webhook, url: %q, secret: k, events: [freeze]}]\n", rc.URL))
	r.must(t, state.CmdFreeze, state.Freeze{Reason: "x"})
	r.failCommits.Store(true)
	stop := start()
	testutil.Eventually(t, 20*time.Second, "deliveries", func() error {
		if len(rc.deliveries()) == 0 {
			return fmt.Errorf("not delivered yet")
		}
		return nil
	})
	stop()
	r.failCommits.Store(false)
	stop = start()
	defer stop()
	testutil.Eventually(t, 20*time.Second, "deliveries", func() error {
		if p := r.State().Notify["ops"]; p.Delivered != 1 {
			return fmt.Errorf("progress %+v", p)
		}
		return nil
	})
	got := rc.deliveries()
	if len(got) < 2 || got[0].hdr.Get(HeaderIdempotency) != got[len(got)-1].hdr.Get(HeaderIdempotency) {
		t.Fatalf("deliveries %d, keys %q / %q", len(got), got[0].hdr.Get(HeaderIdempotency), got[len(got)-1].hdr.Get(HeaderIdempotency))
	}
}

// A receiver that refuses for good is recorded as failed and the sink goes
// on; a receiver that never answers delays only its own sink.
func TestFailuresStayInTheirSink(t *testing.T) {
	refuse := newReceiver(t, func(int) int { return http.StatusBadRequest })
	ok := newReceiver(t, nil)
	hole, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	var held []net.Conn
	var heldMu sync.Mutex
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			heldMu.Lock()
			held = append(held, c)
			heldMu.Unlock()
		}
	}()
	defer func() {
		heldMu.Lock()
		defer heldMu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	r, start := setup(t, fmt.Sprintf(`notifications:
  - {name: bad, type: slack, url: %q, events: [freeze]}
  - {name: good, type: slack, url: %q, events: [freeze, unfreeze]}
  - {name: hole, type: slack, url: "http://%s/", events: [freeze], timeout: 1s}
`, refuse.URL, ok.URL, hole.Addr()))
	stop := start()
	defer stop()
	r.must(t, state.CmdFreeze, state.Freeze{Reason: "x"})
	r.must(t, state.CmdUnfreeze, state.Freeze{})
	testutil.Eventually(t, 20*time.Second, "deliveries", func() error {
		st := r.State()
		if st.Notify["good"].Delivered != 2 || st.Notify["bad"].Failed != 1 {
			return fmt.Errorf("progress %+v", st.Notify)
		}
		return nil
	})
	if e := r.State().Notify["bad"].LastError; !strings.Contains(e, "HTTP 400") {
		t.Errorf("bad sink's error %q", e)
	}
	var msg struct{ Text string }
	if err := json.Unmarshal(ok.deliveries()[0].body, &msg); err != nil || !strings.Contains(msg.Text, "example.com: freeze by alice: x") {
		t.Errorf("slack message %s", ok.deliveries()[0].body)
	}
	if p := r.State().Notify["hole"]; p.Delivered+p.Failed != 0 {
		t.Errorf("blackholed sink's progress %+v", p)
	}
}

func TestPagerDutyAndAlertmanager(t *testing.T) {
	pd := newReceiver(t, func(int) int { return http.StatusAccepted })
	am := newReceiver(t, nil)
	r, start := setup(t, fmt.Sprintf(`notifications:
  - {name: pager, type: pagerduty, url: %q, routing_key: rk}
  - {name: am, type: alertmanager, url: %q}
`, pd.URL, am.URL))
	stop := start()
	defer stop()
	r.must(t, state.CmdEvacuate, state.Evacuate{Region: "us-west", Reason: "INC-2"})
	r.must(t, state.CmdRestore, state.Restore{Region: "us-west", Reason: "ok", Ramp: []int{100}})
	testutil.Eventually(t, 20*time.Second, "deliveries", func() error {
		st := r.State()
		if st.Notify["pager"].Delivered < 2 || st.Notify["am"].Delivered < 2 {
			return fmt.Errorf("progress %+v", st.Notify)
		}
		return nil
	})
	var actions []string
	for _, d := range pd.deliveries() {
		var ev pdEvent
		if err := json.Unmarshal(d.body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.RoutingKey != "rk" || ev.DedupKey != "evac/example.com/region/us-west" {
			t.Errorf("pagerduty event %s", d.body)
		}
		actions = append(actions, ev.EventAction)
	}
	if strings.Join(actions, ",") != "trigger,resolve" {
		t.Errorf("pagerduty actions %v, want trigger then resolve", actions)
	}
	// Alertmanager: the firing alert, re-sent by the refresh while it holds,
	// then its end.
	var firing, resolved int
	for _, d := range am.deliveries() {
		if d.path != "/api/v2/alerts" {
			t.Errorf("alertmanager path %s", d.path)
		}
		var alerts []amAlert
		if err := json.Unmarshal(d.body, &alerts); err != nil {
			t.Fatal(err)
		}
		for _, a := range alerts {
			if a.Labels["alertname"] != AlertRegionOut || a.Labels["region"] != "us-west" {
				t.Errorf("alert %+v", a)
			}
			if a.EndsAt.After(time.Now()) {
				firing++
			} else {
				resolved++
			}
		}
	}
	if firing == 0 || resolved == 0 {
		t.Errorf("alertmanager got %d firing and %d resolved alerts", firing, resolved)
	}
}
