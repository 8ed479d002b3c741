package integration

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGossipIntruders: agents with a wrong gossip key or none cannot join
// the pool or get a (failing) report in, and junk sent to the gossip ports
// crashes nothing.
func TestGossipIntruders(t *testing.T) {
	tc := startPartitionCluster(t, true, 60)
	east := tc.regions[0]
	// The watch below wants both us-east agents' reports counted: wait out
	// their checks' warm-up (a warming-up report counts neither way).
	eventually(t, 60*time.Second, "us-east api 2 of 2 passing on every controller", func() error {
		for _, c := range tc.controllers {
			r, err := newClient(c.http).Region(ctxT(t, 5*time.Second), east.name)
			if err != nil {
				return err
			}
			if svc := r.Services["api"]; svc.Reporting != 2 || svc.Passing != 2 {
				return fmt.Errorf("%s: %d of %d passing", c.id, svc.Passing, svc.Reporting)
			}
		}
		return nil
	})
	dir := t.TempDir()
	wrongKey := keygen(t, dir)
	closed := fmt.Sprintf("http://127.0.%d.99:%d/", east.subnet, freePort(t, fmt.Sprintf("127.0.%d.99", east.subnet)))
	for i, keyArg := range [][]string{{"--gossip-key-file", wrongKey}, {"--insecure-no-gossip-key"}} {
		ip := fmt.Sprintf("127.0.%d.%d", east.subnet, 50+i)
		name := fmt.Sprintf("intruder-%d", i)
		cfg := fmt.Sprintf(`region: %s
node_name: %s
gossip_addr: %s:%d
join: [%s]
refresh_interval: 1s
checks:
  - {name: http, service: api, type: http, target: "%s", interval: 500ms, timeout: 200ms}
`, east.name, name, ip, freePort(t, ip), strings.Join(tc.seeds, ", "), closed)
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		startProc(t, name, append([]string{"agent", "--config", path, "--fast"}, keyArg...)...)
	}

	// Junk at every controller's gossip port, over UDP and TCP.
	for _, c := range tc.controllers {
		for i := 0; i < 200; i++ {
			junk := make([]byte, 1+rand.IntN(1400))
			for j := range junk {
				junk[j] = byte(rand.IntN(256))
			}
			if i%4 == 0 {
				junk[0] = byte(i % 16) // plausible memberlist message types
			}
			if u, err := net.Dial("udp", c.gossip); err == nil {
				_, _ = u.Write(junk)
				_ = u.Close()
			}
			if i%10 == 0 {
				if s, err := net.DialTimeout("tcp", c.gossip, time.Second); err == nil {
					_ = s.SetDeadline(time.Now().Add(time.Second))
					_, _ = s.Write(junk)
					_ = s.Close()
				}
			}
		}
	}

	// Watch for a while: no intruder member, no failing report in us-east.
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		for _, c := range tc.controllers {
			cl := newClient(c.http)
			ms, err := cl.Members(ctxT(t, 5*time.Second))
			if err != nil {
				t.Fatalf("%s after junk: %v", c.id, err)
			}
			for _, m := range ms {
				if strings.HasPrefix(m.Name, "intruder") {
					t.Fatalf("%s admitted %s (%s)", c.id, m.Name, m.State)
				}
			}
			r, err := cl.Region(ctxT(t, 5*time.Second), east.name)
			if err != nil {
				t.Fatal(err)
			}
			if svc := r.Services["api"]; svc.Reporting != 2 || svc.Passing != 2 {
				t.Fatalf("%s: us-east api %d of %d passing, failing %v", c.id, svc.Passing, svc.Reporting, svc.Failing)
			}
		}
	}
	if err := tc.allAgentsAlive(); err != nil {
		t.Fatal(err)
	}
}

// TestGossipKeyRotation rotates the pool key on running processes in the
// three documented steps (rewrite the key file, SIGHUP every process) and
// checks that no agent drops out and that only the new key admits a
// newcomer at the end.
func TestGossipKeyRotation(t *testing.T) {
	tc := startPartitionCluster(t, false, 70)
	oldKey, err := os.ReadFile(tc.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := os.ReadFile(keygen(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	procs := append([]*proc{}, tc.agents...)
	for _, c := range tc.controllers {
		procs = append(procs, c.proc)
	}
	for _, step := range []struct {
		name string
		file string
	}{
		{"add the new key second", string(oldKey) + string(newKey)},
		{"make the new key primary", string(newKey) + string(oldKey)},
		{"remove the old key", string(newKey)},
	} {
		if err := os.WriteFile(tc.keyFile, []byte(step.file), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, p := range procs {
			p.Signal(syscall.SIGHUP)
			time.Sleep(200 * time.Millisecond) // a rolling reload, nodes disagreeing meanwhile
		}
		for end := time.Now().Add(8 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
			if err := tc.allAgentsAlive(); err != nil {
				t.Fatalf("after %q: %v", step.name, err)
			}
		}
	}
	for _, p := range procs {
		if n := strings.Count(readFile(t, p.logPath), "gossip keys reloaded"); n != 3 {
			t.Fatalf("%s logged %d key reloads, want 3", p.name, n)
		}
	}

	// A newcomer with the old key stays out; one with the new key gets in.
	east := tc.regions[0]
	dir := t.TempDir()
	oldFile := filepath.Join(dir, "old.key")
	if err := os.WriteFile(oldFile, oldKey, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, kf := range []string{oldFile, tc.keyFile} {
		ip := fmt.Sprintf("127.0.%d.%d", east.subnet, 60+i)
		name := fmt.Sprintf("late-%d", i)
		cfg := fmt.Sprintf("region: %s\nnode_name: %s\ngossip_addr: %s:%d\njoin: [%s]\ngossip_key_file: %s\nchecks:\n  - {name: http, service: api, type: http, target: %q, interval: 1s, timeout: 500ms}\n",
			east.name, name, ip, freePort(t, ip), strings.Join(tc.seeds, ", "), kf, tc.backends[east.name].url)
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		startProc(t, name, "agent", "--config", path, "--fast")
	}
	eventually(t, 30*time.Second, "late-1 (new key) joins", func() error {
		ms, err := newClient(tc.controllers[0].http).Members(ctxT(t, 5*time.Second))
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.Name == "late-0" {
				t.Fatalf("an agent with the removed key joined: %+v", m)
			}
			if m.Name == "late-1" && m.State == "alive" {
				return nil
			}
		}
		return errors.New("late-1 not alive yet")
	})
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
