package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestRestartedControllerAnswersAlone: a controller restarted while the
// other two stay down (no quorum, no leader) answers DNS from its last
// state from its first answer on. The chaos suite (CHAOS_SEED=2) found a
// restarted controller answering REFUSED, from an empty state, until a
// leader's replication reached it; with the quorum lost it would have for
// good. Found and fixed in controlplane/raftnode/restore.go.
func TestRestartedControllerAnswersAlone(t *testing.T) {
	tc := startCluster(t)
	tc.applySteering(testSteering())
	tc.waitHealthy()
	c1 := tc.controllers[0]
	if out, err := tc.evac(c1, "evacuate", "us-west", "--reason", "restart test", "--ramp", "0"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	eventually(t, 20*time.Second, "us-west out of every controller's answers", func() error {
		for _, c := range tc.controllers {
			counts, err := answerRegions(c, 30)
			if err != nil {
				return err
			}
			if counts["us-west"] != 0 {
				return fmt.Errorf("%s still answers us-west: %v", c.id, counts)
			}
		}
		return nil
	})
	// Every controller stores its applied index every 500 ms.
	time.Sleep(1500 * time.Millisecond)
	for _, c := range tc.controllers {
		c.Kill()
	}
	c1.Restart()
	restarted := time.Now()
	answers := 0
	for time.Since(restarted) < 8*time.Second {
		r, err := queryA(c1.dns, "api.example.com.", fmt.Sprintf("10.9.%d.0", answers%200))
		if err != nil {
			time.Sleep(time.Millisecond) // not listening yet: ask again at once
			continue
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			t.Fatalf("%.1fs after restart, alone: rcode %s with %d answers; want its last state's answer",
				time.Since(restarted).Seconds(), dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok && regionOf(a.A.String()) == "us-west" {
				t.Fatalf("restarted alone, %s answers the evacuated us-west", c1.id)
			}
		}
		answers++
		if time.Since(restarted) > time.Second {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if answers < 10 {
		t.Fatalf("only %d DNS answers in 8 s after the restart", answers)
	}
	st, err := newClient(c1.http).Status(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if st.IsLeader || st.Leader != "" {
		t.Fatalf("alone, %s reports leader %q: the test needs it without a quorum", c1.id, st.Leader)
	}
	t.Logf("restarted alone without a leader: %d answers from its last state in 8 s (applied index %d)", answers, st.AppliedIndex)
}
