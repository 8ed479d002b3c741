package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/api/wire"
)

// postAlert fires (or, with ends in the past, resolves) an alert in a real
// Alertmanager through its v2 API.
func postAlert(am, name string, ends time.Time) error {
	body, _ := json.Marshal([]map[string]any{{
		"labels":   map[string]string{"alertname": name, "service": "checkout"},
		"startsAt": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
		"endsAt":   ends.UTC().Format(time.RFC3339),
	}})
	resp, err := http.Post(am+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /api/v2/alerts: HTTP %d", resp.StatusCode)
	}
	return nil
}

// TestBlockOnAlertSkipsAndAborts: with a real Alertmanager, a firing
// blocking alert skips a due schedule run (recorded with the reason, no
// drill started), and so does a condition that cannot be evaluated; after
// a kill -9 of the leader, the new leader aborts a running drill when its
// alert fires, back to its starting weights with the reason in its report;
// once the alert is resolved the schedule runs again.
func TestBlockOnAlertSkipsAndAborts(t *testing.T) {
	t.Parallel()
	const ip = "127.0.141.200"
	am := startAlertmanager(t, ip, startHook(t, ip).url+"/am")
	tc := startClusterOpts(t, clusterOpts{ctrlSubnet: 141})
	c0 := tc.controllers[0]
	tc.waitLeader(c0)
	tc.applySteering(testSteering() + "  schedule_min_interval: 1s\n") // schedules every 5 s
	tc.putRunbook(c0, `name: it-block
params: {region: {required: true}}
steps:
  - shift: {region: "{{ .region }}", weight: 0}
  - wait: {duration: 5m}
  - restore: {region: "{{ .region }}", ramp: [100], step_interval: 1s}
`)
	cl := newClient(c0.http)

	// A bad condition is refused, naming the field, and adds nothing.
	if out, err := tc.evac(c0, "schedule", "add", "--id", "bad", "--cron", "@every 1h", "--runbook", "it-block",
		"--block-on", "{alertmanager: "+am+"}"); err == nil || !strings.Contains(out, "block_on[0].alert") {
		t.Fatalf("schedule add with no alert name: err %v: %s", err, out)
	}

	// (1) The schedule's alert fires: its due runs are skipped.
	if err := postAlert(am, "HighErrorRate", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if out, err := tc.evac(c0, "schedule", "add", "--id", "guarded", "--cron", "*/5 * * * * *", "--runbook", "it-block",
		"--param", "region=eu-west", "--block-on", fmt.Sprintf("{alertmanager: %s, alert: HighErrorRate}", am)); err != nil {
		t.Fatalf("schedule add: %v: %s", err, out)
	}
	// A condition that cannot be evaluated (nothing listens there) blocks too.
	closed, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	blind := "http://" + closed.Addr().String()
	closed.Close()
	if out, err := tc.evac(c0, "schedule", "add", "--id", "blind", "--cron", "*/5 * * * * *", "--runbook", "it-block",
		"--param", "region=us-west", "--block-on", fmt.Sprintf("{alertmanager: %s, alert: HighErrorRate}", blind)); err != nil {
		t.Fatalf("schedule add: %v: %s", err, out)
	}
	var sc wire.ScheduleReport
	eventually(t, 60*time.Second, "two runs skipped by the alert", func() error {
		var err error
		if sc, err = cl.Schedule(ctxTimeout(5*time.Second), "guarded"); err != nil {
			return err
		}
		n := 0
		for _, r := range sc.Runs {
			if r.Outcome != "skipped" || !strings.HasPrefix(r.Reason, "blocked: alert HighErrorRate firing") {
				return fmt.Errorf("run %s %s: %q", r.Scheduled.Format(time.RFC3339), r.Outcome, r.Reason)
			}
			n++
		}
		if n < 2 {
			return fmt.Errorf("%d runs", n)
		}
		return nil
	})
	if len(sc.BlockOn) != 1 || sc.BlockOn[0].Alert != "HighErrorRate" {
		t.Fatalf("schedule's block_on: %+v", sc.BlockOn)
	}
	eventually(t, 60*time.Second, "a run skipped by the condition that cannot be evaluated", func() error {
		sc, err := cl.Schedule(ctxTimeout(5*time.Second), "blind")
		if err != nil {
			return err
		}
		for _, r := range sc.Runs {
			if r.Outcome != "skipped" || !strings.HasPrefix(r.Reason, "blocked: alert HighErrorRate cannot be evaluated: alertmanager "+blind) {
				return fmt.Errorf("run %s %s: %q", r.Scheduled.Format(time.RFC3339), r.Outcome, r.Reason)
			}
		}
		if len(sc.Runs) == 0 {
			return errors.New("no run yet")
		}
		return nil
	})
	drills, err := cl.Drills(ctxTimeout(5 * time.Second))
	if err != nil || len(drills) != 0 {
		t.Fatalf("drills started while blocked: %v %+v", err, drills)
	}
	for _, id := range []string{"guarded", "blind"} {
		if out, err := tc.evac(c0, "schedule", "rm", id); err != nil {
			t.Fatalf("schedule rm: %v: %s", err, out)
		}
	}

	// (2) A running drill's alert fires after a kill -9 of the leader: the
	// new leader evaluates the condition and aborts the drill, weights back.
	id := tc.startDrill(c0, "it-block", "--param", "region=eu-west",
		"--block-on", fmt.Sprintf("{alertmanager: %s, alert: DrillStopper}", am))
	eventually(t, 30*time.Second, "the drill in its wait, eu-west at 0", func() error {
		d, err := drillOn(c0, id)
		if err != nil {
			return err
		}
		if d.Current != 1 || d.Weights["eu-west"] != 0 {
			return fmt.Errorf("%s at step %d, eu-west %d", d.Status, d.Current, d.Weights["eu-west"])
		}
		return nil
	})
	old, err := tc.leader()
	if err != nil {
		t.Fatal(err)
	}
	old.Kill()
	var live []*controllerProc
	for _, c := range tc.controllers {
		if c != old {
			live = append(live, c)
		}
	}
	c0 = live[0]
	cl = newClient(c0.http)
	tc.waitLeader(c0)
	if err := postAlert(am, "DrillStopper", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	posted := time.Now()
	var d wire.DrillReport
	eventually(t, 60*time.Second, "the drill aborted by the alert", func() error {
		if d, err = drillOn(c0, id); err != nil {
			return err
		}
		if d.Status != "aborted" {
			return fmt.Errorf("%s at step %d", d.Status, d.Current)
		}
		return nil
	})
	t.Logf("drill aborted %s after the alert was posted: %s", time.Since(posted).Round(time.Millisecond), d.Outcome)
	if !strings.Contains(d.Outcome, "blocked: alert DrillStopper firing") {
		t.Errorf("outcome %q does not give the alert", d.Outcome)
	}
	for _, c := range live {
		eventually(t, 30*time.Second, c.id+" has eu-west back at 100", func() error {
			d, err := drillOn(c, id)
			if err != nil {
				return err
			}
			if d.Weights["eu-west"] != 100 || d.After["eu-west"] != 100 || d.Status != "aborted" {
				return fmt.Errorf("%s: eu-west %d (after %d)", d.Status, d.Weights["eu-west"], d.After["eu-west"])
			}
			return nil
		})
	}

	// (3) Resolved, the schedule's alert no longer blocks: a run starts.
	if err := postAlert(am, "HighErrorRate", time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if out, err := tc.evac(c0, "schedule", "add", "--id", "guarded2", "--cron", "*/5 * * * * *", "--runbook", "it-block",
		"--param", "region=us-west", "--block-on", fmt.Sprintf("{alertmanager: %s, alert: HighErrorRate}", am)); err != nil {
		t.Fatalf("schedule add: %v: %s", err, out)
	}
	eventually(t, 60*time.Second, "a run started once the alert is resolved", func() error {
		sc, err := cl.Schedule(ctxTimeout(5*time.Second), "guarded2")
		if err != nil {
			return err
		}
		for _, r := range sc.Runs {
			if r.Outcome == "started" {
				return nil
			}
		}
		return fmt.Errorf("runs %+v", sc.Runs)
	})
	if out, err := tc.evac(c0, "schedule", "rm", "guarded2"); err != nil {
		t.Fatalf("schedule rm: %v: %s", err, out)
	}
}
