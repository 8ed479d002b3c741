package checks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/evac-sh/evac/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type recorder struct {
	mu      sync.Mutex
	changes []Result
	results int
}

func (r *recorder) onChange(res Result) {
	r.mu.Lock()
	r.changes = append(r.changes, res)
	r.mu.Unlock()
}

func (r *recorder) onResult(Result) {
	r.mu.Lock()
	r.results++
	r.mu.Unlock()
}

func (r *recorder) snapshot() ([]Result, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Result(nil), r.changes...), r.results
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, d, what, cond)
}

func TestRunnerFlipsWithFall(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()

	rec := &recorder{}
	r, err := NewRunner(RunnerConfig{
		Checks: []Check{{Name: "root", Service: "api", Type: TypeHTTP, Target: srv.URL,
			Interval: Duration(150 * time.Millisecond), Timeout: Duration(120 * time.Millisecond), Fall: 3, Rise: 2}},
		OnChange: rec.onChange,
		OnResult: rec.onResult,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	if err := r.Start(context.Background()); err == nil {
		t.Fatal("second Start accepted")
	}

	// Warming up for rise (2) runs, then passing.
	waitFor(t, "first result", 30*time.Second, func() bool { c, _ := rec.snapshot(); return len(c) == 1 })
	if c, _ := rec.snapshot(); c[0].Status != StatusWarmingUp || c[0].Service != "api" || c[0].Check != "root" ||
		!strings.Contains(c[0].Output, "warming up 1/2") {
		t.Fatalf("first change %+v, want warming up", c[0])
	}
	waitFor(t, "passing after warm-up", 30*time.Second, func() bool { c, _ := rec.snapshot(); return len(c) == 2 })
	if c, n := rec.snapshot(); c[1].Status != StatusPassing || n < 2 {
		t.Fatalf("second change %+v after %d runs, want passing after 2", c[1], n)
	}
	_, before := rec.snapshot()
	healthy.Store(false)
	waitFor(t, "failing", 30*time.Second, func() bool { c, _ := rec.snapshot(); return len(c) == 3 })
	changes, after := rec.snapshot()
	if changes[2].Status != StatusFailing {
		t.Fatalf("third change %+v", changes[2])
	}
	if after-before < 3 {
		t.Fatalf("flipped after %d runs, fall is 3", after-before)
	}
	if res := r.Results(); len(res) != 1 || res[0].Status != StatusFailing {
		t.Fatalf("Results() = %+v", res)
	}
	healthy.Store(true)
	waitFor(t, "passing again", 30*time.Second, func() bool { c, _ := rec.snapshot(); return len(c) == 4 })
	r.Stop()
	r.Stop() // idempotent
	_, n := rec.snapshot()
	time.Sleep(100 * time.Millisecond)
	if _, m := rec.snapshot(); m != n {
		t.Fatal("checks ran after Stop")
	}
}

func TestRunnerStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r, err := NewRunner(RunnerConfig{Checks: []Check{{Name: "p", Service: "s", Type: TypeTCP, Target: closedPort(t),
		Interval: Duration(20 * time.Millisecond), Timeout: Duration(10 * time.Millisecond)}}, MaxStagger: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a result", 30*time.Second, func() bool { return len(r.Results()) == 1 })
	cancel()
	r.Stop()
}

func TestNewRunnerRejectsInvalid(t *testing.T) {
	if _, err := NewRunner(RunnerConfig{Checks: []Check{{Name: "x"}}}); err == nil {
		t.Fatal("invalid check accepted")
	}
}
