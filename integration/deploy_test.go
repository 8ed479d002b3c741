package integration

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evac-sh/evac/internal/client"
)

// TestDeployExample starts deploy/example for real: 3 controllers with TLS on
// the API and on Raft, tokens, an encrypted gossip pool, 6 agents and 3
// backends, as separate processes; checks the cluster over HTTPS and DNS; kills
// one region's backend and sees the region leave every controller's answers.
func TestDeployExample(t *testing.T) {
	dir, run := deployExample(t, "c1", "us-east-a1")
	if out, err := run(); err != nil {
		t.Fatalf("run.sh: %v\n%s", err, out)
	}

	ca, err := os.ReadFile(filepath.Join(dir, "tls", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	tokens, err := os.ReadFile(filepath.Join(dir, "tokens.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var oncall string
	for _, line := range strings.Split(string(tokens), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "oncall" {
			oncall = f[2]
		}
	}
	var clients []*client.Client
	var dnsAddrs []string
	for i := 1; i <= 3; i++ {
		clients = append(clients, client.New(fmt.Sprintf("https://127.0.19.%d:8443", i), oncall,
			client.WithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}), client.WithTimeout(5*time.Second)))
		dnsAddrs = append(dnsAddrs, fmt.Sprintf("127.0.19.%d:5353", i))
	}
	eventually(t, 90*time.Second, "every controller sees 3 healthy regions with 2 agents", func() error {
		for _, cl := range clients {
			regions, err := cl.Regions(ctxTimeout(5 * time.Second))
			if err != nil {
				return err
			}
			if len(regions) != 3 {
				return fmt.Errorf("%d regions", len(regions))
			}
			for _, r := range regions {
				if r.AgentsAlive != 2 || r.HealthShare() < 1 {
					return fmt.Errorf("%s: %d agents, health %v", r.Name, r.AgentsAlive, r.Health)
				}
			}
		}
		return nil
	})
	// Plain HTTP to a TLS controller, and no token, are both refused.
	if _, err := client.New("http://127.0.19.1:8443", oncall, client.WithTimeout(2*time.Second)).Status(ctxTimeout(3 * time.Second)); err == nil {
		t.Error("plain HTTP accepted by a TLS controller")
	}
	if _, err := client.New("https://127.0.19.1:8443", "", client.WithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})).Status(ctxTimeout(3 * time.Second)); err == nil {
		t.Error("request without a token accepted")
	}

	pid, err := os.ReadFile(filepath.Join(dir, "pids", "backend-us-east.pid"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(pid)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(n, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	took := eventually(t, 60*time.Second, "us-east out of every controller's answers", func() error {
		for _, addr := range dnsAddrs {
			// 20 subnets a poll stay within the controllers' default
			// response-rate limit (100/s to 127.0.0.0/24, where every
			// query of the test comes from).
			for i := 0; i < 20; i++ {
				r, err := queryA(addr, "api.example.com.", fmt.Sprintf("10.0.%d.0", i))
				if err != nil {
					return err
				}
				for _, rr := range r.Answer {
					if strings.Contains(rr.String(), "192.0.2.1") {
						return fmt.Errorf("%s still answers us-east", addr)
					}
				}
			}
		}
		return nil
	})
	t.Logf("FIGURE deploy example: us-east out of every controller's answers %.1fs after its backend was killed (%s)", took.Seconds(), time.Since(killed).Round(time.Second))
}

// deployExample gets deploy/example/run.sh ready to run on a temporary
// directory (its tools installed, the binary under test): it returns the
// directory and a function running the script with arguments. On failure the
// named processes' logs are shown; the example is cleaned up either way.
func deployExample(t *testing.T, logs ...string) (string, func(args ...string) (string, error)) {
	t.Helper()
	for _, tool := range []string{"openssl", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is needed (installed by .ci/run)", tool)
			}
			t.Skipf("skipping: %s is not installed (.ci/run installs it)", tool)
		}
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(filepath.Dir(file)), "deploy", "example", "run.sh")
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		cmd := exec.Command(script, args...)
		cmd.Env = append(os.Environ(), "EVAC_EXAMPLE_DIR="+dir, "EVAC_BIN="+evacBin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range logs {
				dumpTail(t, filepath.Join(dir, "logs", name+".log"), 20)
			}
		}
		if out, err := run("clean"); err != nil {
			t.Logf("run.sh clean: %v\n%s", err, out)
		}
	})
	return dir, run
}
