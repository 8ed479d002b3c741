package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/evac-sh/evac/controlplane/state"
)

// chromiumPath is Debian's chromium (package `chromium`).
const chromiumPath = "/usr/bin/chromium"

// TestDashboard drives the /ui dashboard of a real `evac dev` in headless
// Chromium: sign in, see the three regions, evacuate one with a reason, and
// see its state change and the audit event appear. It saves a screenshot to
// $EVAC_ARTIFACTS (or the test's temp dir); with EVAC_UPDATE_SCREENSHOT=1 it
// also rewrites docs/ui.png.
func TestDashboard(t *testing.T) {
	if _, err := exec.LookPath(chromiumPath); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s not found: install Debian's chromium (apt-get install chromium, or `make deps` as root) to run the dashboard test; in CI (env CI set) this test fails instead", chromiumPath)
		}
		t.Fatalf("%s not found and CI is set: the dashboard test must run in CI (.ci/run installs chromium)", chromiumPath)
	}
	httpPort := freePortRun(t, 3, false)
	dnsPort := freePortRun(t, 3, true)
	raftPort, gossipPort := devPorts(t)
	startProc(t, "dev", "dev", "--http-port", fmt.Sprint(httpPort), "--dns-port", fmt.Sprint(dnsPort),
		"--raft-port", fmt.Sprint(raftPort), "--gossip-port", fmt.Sprint(gossipPort), "--log-level", "info")
	api := fmt.Sprintf("127.0.0.1:%d", httpPort)
	cl := newClient(api)
	eventually(t, 60*time.Second, "evac dev serves three regions", func() error {
		rs, err := cl.Regions(ctxTimeout(5 * time.Second))
		if err != nil {
			return err
		}
		if len(rs) != 3 {
			return fmt.Errorf("%d regions", len(rs))
		}
		return nil
	})

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 768),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	// The first call starts the browser and binds it to this context: no
	// timeout on it; each later step gets its own.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(browser, 45*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// waitJS evaluates expr in the page until it is true.
	waitJS := func(what, expr string) {
		t.Helper()
		eventually(t, 45*time.Second, what, func() error {
			ctx, cancel := context.WithTimeout(browser, 5*time.Second)
			defer cancel()
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
			if err != nil {
				return err
			}
			if !ok {
				return errors.New("false: " + expr)
			}
			return nil
		})
	}

	base := "http://" + api
	do("open the dashboard and sign in",
		chromedp.Navigate(base+"/ui"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "dev-any-token"),
		chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("regions")),
	)
	waitJS("three regions shown, all active",
		`(() => { const rs = [...document.querySelectorAll('#regions .region')];
		  return rs.length === 3 && rs.every(r => r.dataset.state === 'active') &&
		    ['us-east','us-west','eu-west'].every(n => rs.some(r => r.dataset.region === n)); })()`)
	waitJS("each region's DNS share shown (33% each)",
		`[...document.querySelectorAll('#regions .region .share')].map(e => e.textContent).join() === '33%,33%,33%'`)
	waitJS("members listed", `document.querySelectorAll('#members tbody tr').length >= 9`)
	waitJS("drills section says drills are not available",
		`document.getElementById('drills').textContent === 'drills: not available on this controller'`)
	waitJS("the event log shows the config being applied",
		`!!document.querySelector('#events tr[data-kind="`+state.EventConfigApplied+`"]')`)

	const target, reason = "us-west", "ui test: planned maintenance"
	do("open the evacuate dialog",
		chromedp.Click(chromedp.CSS(`.region[data-region="`+target+`"] button.evacuate`)),
		chromedp.WaitVisible(chromedp.ID("reason")),
	)
	waitJS("confirm is disabled without a reason", `document.getElementById('confirm-ok').disabled`)
	do("type a reason and confirm",
		chromedp.SendKeys(chromedp.ID("reason"), reason),
		chromedp.Click(chromedp.ID("confirm-ok")),
		chromedp.WaitNotVisible(chromedp.ID("confirm")),
	)
	waitJS("the region's state changes",
		`['evacuating','evacuated'].includes(document.querySelector('.region[data-region="`+target+`"]').dataset.state)`)
	waitJS("the evacuation event appears with its reason",
		`[...document.querySelectorAll('#events tr[data-kind="`+state.EventEvacuate+`"][data-region="`+target+`"] .reason')].some(e => e.textContent.includes('`+reason+`'))`)
	waitJS(target+"'s weight bar shrinks with its weight",
		`parseFloat(document.querySelector('.region[data-region="`+target+`"] .bar.weight > span').style.width) < 100`)
	waitJS(target+"'s DNS share drops as its weight ramps down",
		`parseInt(document.querySelector('.region[data-region="`+target+`"] .share').textContent) < 33`)

	// The page must agree with the API: the evacuation was really made.
	r, err := cl.Region(ctxTimeout(5*time.Second), target)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != string(state.PhaseEvacuating) && r.State != string(state.PhaseEvacuated) || r.Reason != reason {
		t.Fatalf("API says %s is %s (reason %q), want evacuating/evacuated with %q", target, r.State, r.Reason, reason)
	}

	// The screenshot shows the evacuation under way.
	shotCtx, cancelShot := context.WithTimeout(browser, 30*time.Second)
	defer cancelShot()
	png, err := chromedp.Run(shotCtx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}

	const restoreReason = "ui test: maintenance over"
	do("restore the region",
		chromedp.Click(chromedp.CSS(`.region[data-region="`+target+`"] button.restore`)),
		chromedp.WaitVisible(chromedp.ID("reason")),
		chromedp.SendKeys(chromedp.ID("reason"), restoreReason),
		chromedp.Click(chromedp.ID("confirm-ok")),
		chromedp.WaitNotVisible(chromedp.ID("confirm")),
	)
	waitJS("the restore event appears with its reason",
		`[...document.querySelectorAll('#events tr[data-kind="`+state.EventRestore+`"][data-region="`+target+`"] .reason')].some(e => e.textContent.includes('`+restoreReason+`'))`)
	waitJS("the region is restoring or active again",
		`['restoring','active'].includes(document.querySelector('.region[data-region="`+target+`"]').dataset.state)`)
	dir := os.Getenv("EVAC_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "ui.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)
	if os.Getenv("EVAC_UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile(filepath.Join("..", "docs", "ui.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// devPorts finds a Raft and a gossip port free on every address evac dev
// binds them on (controllers 127.0.9.1-3, agents 127.0.R.1-2 for its three
// regions), so the test runs beside another evac dev or a test using one.
func devPorts(t *testing.T) (raftPort, gossipPort int) {
	t.Helper()
	ctl := []string{"127.0.9.1", "127.0.9.2", "127.0.9.3"}
	all := append([]string{}, ctl...)
	for r := 1; r <= 3; r++ {
		for k := 1; k <= 2; k++ {
			all = append(all, fmt.Sprintf("127.0.%d.%d", r, k))
		}
	}
	pick := func(ips []string, udp bool, not int) int {
		for try := 0; try < 100; try++ {
			p := freePort(t, ips[0])
			if p != not && portFreeOn(ips, p, udp) {
				return p
			}
		}
		t.Fatalf("no port free on all of %v", ips)
		return 0
	}
	raftPort = pick(ctl, false, 0)
	return raftPort, pick(all, true, raftPort)
}

func portFreeOn(ips []string, port int, udp bool) bool {
	for _, ip := range ips {
		addr := fmt.Sprintf("%s:%d", ip, port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		l.Close()
		if udp {
			u, err := net.ListenPacket("udp", addr)
			if err != nil {
				return false
			}
			u.Close()
		}
	}
	return true
}

// freePortRun finds n consecutive ports on 127.0.0.1 free for TCP (and UDP
// when udp is set): evac dev gives controller i port base+i.
func freePortRun(t *testing.T, n int, udp bool) int {
	t.Helper()
	for try := 0; try < 100; try++ {
		base := freePort(t, "127.0.0.1")
		if base+n > 65535 {
			continue
		}
		ok := true
		for i := 0; i < n && ok; i++ {
			addr := fmt.Sprintf("127.0.0.1:%d", base+i)
			l, err := net.Listen("tcp", addr)
			if err != nil {
				ok = false
				break
			}
			l.Close()
			if udp {
				u, err := net.ListenPacket("udp", addr)
				if err != nil {
					ok = false
					break
				}
				u.Close()
			}
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no run of %d free ports", n)
	return 0
}
