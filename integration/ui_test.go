package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/mux"
	mdns "github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/controlplane/ui"
	"github.com/evac-sh/evac/internal/client"
	"github.com/evac-sh/evac/internal/testutil"
)

// chromiumPath is Debian's chromium (package `chromium`).
const chromiumPath = "/usr/bin/chromium"

// needChromium skips the test when chromium is missing, unless CI is set:
// in CI the browser tests must run.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s not found: install Debian's chromium (apt-get install chromium, or `make deps` as root) to run the dashboard tests; in CI (env CI set) they fail instead", chromiumPath)
		}
		t.Fatalf("%s not found and CI is set: the dashboard tests must run in CI (.ci/run installs chromium)", chromiumPath)
	}
}

// browser is one headless Chromium with one tab, stopped at the test's end.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
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
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first call starts the browser and binds it to this context: no
	// timeout on it; each later step gets its own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return &browser{t: t, ctx: ctx}
}

// do runs steps, failing the test after 45 s.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// waitJS evaluates expr in the page until it is true.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	eventually(b.t, 45*time.Second, what, func() error {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
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

// TestDashboard drives the /ui dashboard of a real `evac dev` in headless
// Chromium: sign in, see the three regions, evacuate one with a reason, and
// see its state change and the audit event appear. It saves a screenshot to
// $EVAC_ARTIFACTS (or the test's temp dir); with EVAC_UPDATE_SCREENSHOT=1 it
// also rewrites docs/ui.png.
func TestDashboard(t *testing.T) {
	needChromium(t)
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

	// A drill that holds no region, so the weights below stay as they are.
	if _, err := cl.PutRunbook(ctxTimeout(5*time.Second), "ui-wait",
		[]byte("name: ui-wait\nsteps:\n  - notify: {message: ui test}\n  - wait: {duration: 10m}\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.StartDrill(ctxTimeout(5*time.Second), wire.DrillRequest{Runbook: "ui-wait", Reason: "ui test"}); err != nil {
		t.Fatal(err)
	}
	chartID, probed := runChartDrill(t, cl, fmt.Sprintf("127.0.0.1:%d", dnsPort))
	// Clients homed equally in the three regions keep asking for api
	// (nearest): the home demand the region cards show.
	askCtx, stopAsking := context.WithCancel(context.Background())
	var asking sync.WaitGroup
	asking.Go(func() { askHomes(askCtx, dnsPort) })
	defer asking.Wait()
	defer stopAsking()

	b := newBrowser(t)
	do, waitJS := b.do, b.waitJS
	browser := b.ctx

	base := "http://" + api
	// evac dev runs without auth: the dashboard opens with no sign-in.
	do("open the dashboard",
		chromedp.Navigate(base+"/ui"),
		chromedp.WaitVisible(chromedp.ID("regions")),
	)
	waitJS("no sign-in and no sign-out under evac dev",
		`document.getElementById('signin').hidden && document.getElementById('signout').hidden`)
	waitJS("three regions shown, all active",
		`(() => { const rs = [...document.querySelectorAll('#regions .region')];
		  return rs.length === 3 && rs.every(r => r.dataset.state === 'active') &&
		    ['us-east','us-west','eu-west'].every(n => rs.some(r => r.dataset.region === n)); })()`)
	waitJS("each region's home share and DNS share shown (a third each, measured)",
		`(() => { const f = (sel) => [...document.querySelectorAll('#regions .region ' + sel)].map(e => parseInt(e.textContent));
		  const home = f('.home-share'), dns = f('.share');
		  return home.length === 3 && dns.length === 3 && home.concat(dns).every(v => v >= 28 && v <= 38); })()`)
	waitJS("members listed", `document.querySelectorAll('#members tbody tr').length >= 9`)
	waitJS("the running drill is listed",
		`!!document.querySelector('#drills tr[data-runbook="ui-wait"][data-status="running"]')`)
	waitJS("the event log shows the config being applied",
		`!!document.querySelector('#events tr[data-kind="`+state.EventConfigApplied+`"]')`)

	// The finished drill's report: a chart of every region's weight and of
	// the share of resolvers drained after its shift.
	do("open the finished drill's report",
		chromedp.Click(chromedp.CSS(`#drills tr[data-drill="`+chartID+`"] button.report`)),
		chromedp.WaitVisible(chromedp.ID("drill-chart")),
	)
	waitJS("the chart has a weight series per region, eu-west's going to 0 and back",
		`(() => { const ps = [...document.querySelectorAll('#drill-chart path[data-series="weight"]')];
		  const eu = ps.find(p => p.dataset.region === 'eu-west');
		  return ps.length === 3 && ['us-east','us-west','eu-west'].every(n => ps.some(p => p.dataset.region === n)) &&
		    !!eu && eu.getAttribute('d').includes('V') && parseInt(eu.dataset.points) >= 3 && eu.dataset.last === '100' &&
		    ps.filter(p => p !== eu).every(p => !p.getAttribute('d').includes('V') && p.dataset.last === '100'); })()`)
	waitJS("the chart has a drained-share series for c1 on eu-west reaching 50 and 90%",
		fmt.Sprintf(`(() => { const g = document.querySelector('#drill-chart g[data-series="drain"][data-region="eu-west"][data-node="c1"]');
		  return !!g && g.dataset.population === '%d' && [...g.querySelectorAll('circle')].map(c => c.dataset.pct).join() .startsWith('50,90') &&
		    !document.querySelector('#drill-chart g[data-series="drain"]:not([data-region="eu-west"])'); })()`, probed))
	waitJS("the report lists the drain figures and the legend names the regions",
		`document.querySelector('#drill-report table.drain tr[data-node="c1"]') !== null &&
		 document.querySelectorAll('#drill-report .legend .item[data-region]').length === 3`)
	chartCtx, cancelChart := context.WithTimeout(browser, 30*time.Second)
	defer cancelChart()
	chartPNG, err := chromedp.Run(chartCtx, chromedp.Screenshot(chromedp.ID("drill-report")))
	if err != nil {
		t.Fatalf("screenshot of the drill report: %v", err)
	}

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
		`parseInt(document.querySelector('.region[data-region="`+target+`"] .share').textContent) < 28`)
	waitJS(target+"'s card shows where its clients went: its clients' next choice, us-east (10.2/16: us-west, then by distance)",
		`(() => { const rows = [...document.querySelectorAll('.region[data-region="`+target+`"] table.spill tr[data-to]')];
		  return rows.length === 1 && rows[0].dataset.to === 'us-east' && rows[0].querySelector('td.num').textContent === '100%'; })()`)

	// The page must agree with the API: the evacuation was really made.
	r, err := cl.Region(ctxTimeout(5*time.Second), target)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != state.PhaseEvacuating && r.State != state.PhaseEvacuated || r.Reason != reason {
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
	// A drill's hold is planned, not an incident: its own badge, its step
	// and the time to the next one. A freeze is a banner with its reason.
	if _, err := cl.PutRunbook(ctxTimeout(5*time.Second), "ui-hold",
		[]byte("name: ui-hold\nsteps:\n  - shift: {region: eu-west, weight: 50}\n  - wait: {duration: 10m}\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.StartDrill(ctxTimeout(5*time.Second), wire.DrillRequest{Runbook: "ui-hold", Reason: "ui test"}); err != nil {
		t.Fatal(err)
	}
	waitJS("eu-west wears the drill badge with its step and next step",
		`(() => { const r = document.querySelector('.region[data-region="eu-west"]');
		  const step = r && r.querySelector('.drill-step');
		  return !!r && r.dataset.drill !== '' && r.querySelector('.badge.drill') !== null &&
		    !!step && step.textContent.includes('step 2/2 wait') && step.textContent.includes('next in'); })()`)
	if _, err := cl.Freeze(ctxTimeout(5*time.Second), "ui test: hands off"); err != nil {
		t.Fatal(err)
	}
	waitJS("the freeze is a banner with its reason",
		`(() => { const b = document.getElementById('frozen-banner');
		  return !b.hidden && b.textContent.startsWith('FROZEN: ui test: hands off') && b.textContent.includes('by '); })()`)
	loudCtx, cancelLoud := context.WithTimeout(browser, 30*time.Second)
	defer cancelLoud()
	loudPNG, err := chromedp.Run(loudCtx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}

	dir := os.Getenv("EVAC_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"ui.png": png, "ui-drill.png": chartPNG, "ui-frozen-drill.png": loudPNG} {
		shot := filepath.Join(dir, name)
		if err := os.WriteFile(shot, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", shot)
		if os.Getenv("EVAC_UPDATE_SCREENSHOT") == "1" {
			if err := os.WriteFile(filepath.Join("..", "docs", name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// askHomes asks each of evac dev's 3 controllers (DNS on dnsPort+i) for
// api, every 10 ms, from ECS subnets homed in turn in us-east (10.1/16),
// us-west (10.2/16) and eu-west (10.3/16), until ctx ends.
func askHomes(ctx context.Context, dnsPort int) {
	c := &mdns.Client{Net: "udp", Timeout: time.Second}
	var conns []*mdns.Conn
	for i := range 3 {
		conn, err := c.Dial(fmt.Sprintf("127.0.0.1:%d", dnsPort+i))
		if err != nil {
			continue
		}
		defer conn.Close()
		conns = append(conns, conn)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, conn := range conns {
			for home := 1; home <= 3; home++ {
				m := new(mdns.Msg)
				m.SetQuestion("api.example.com.", mdns.TypeA)
				o := &mdns.OPT{Hdr: mdns.RR_Header{Name: ".", Rrtype: mdns.TypeOPT}}
				o.SetUDPSize(1232)
				o.Option = []mdns.EDNS0{&mdns.EDNS0_SUBNET{Code: mdns.EDNS0SUBNET, Family: 1, SourceNetmask: 24,
					Address: net.IPv4(10, byte(home), byte(n), 0).To4()}}
				m.Extra = []mdns.RR{o}
				_, _, _ = c.ExchangeWithConn(m, conn) // a lost datagram only lowers the count
			}
		}
	}
}

// runChartDrill runs a drill that shifts eu-west to 0 and back while DNS
// clients in 60 ECS subnets ask controller 1 (dns) for web with a 2 s TTL,
// and waits for its drain reports. It returns the drill's id and how many
// of the subnets were on eu-west (c1's population).
func runChartDrill(t *testing.T, cl *client.Client, dns string) (string, int) {
	t.Helper()
	ci, err := cl.Config(ctxTimeout(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	cfg := *ci.Config
	cfg.Services = slices.Clone(cfg.Services)
	for i := range cfg.Services {
		cfg.Services[i].TTL = 2
	}
	body, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.ApplyConfig(ctxTimeout(5*time.Second), body, "application/json"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.PutRunbook(ctxTimeout(5*time.Second), "ui-chart", []byte(`name: ui-chart
steps:
  - shift: {region: eu-west, weight: 0}
  - wait: {duration: 6s}
  - restore: {region: eu-west, ramp: [100], step_interval: 1s}
`)); err != nil {
		t.Fatal(err)
	}
	subnets := make([]string, 60)
	for i := range subnets {
		subnets[i] = fmt.Sprintf("10.88.%d.0", i)
	}
	ask := func(sub string) string {
		r, err := queryA(dns, "web.example.com.", sub) // web is weighted: the subnets split over the regions
		if err != nil || len(r.Answer) == 0 {
			return ""
		}
		a, _ := r.Answer[0].(*mdns.A)
		if a == nil {
			return ""
		}
		return regionOf(a.A.String())
	}
	var eu []string
	for _, sub := range subnets {
		if ask(sub) == "eu-west" {
			eu = append(eu, sub)
		}
	}
	if len(eu) < 5 {
		t.Fatalf("only %d of %d subnets on eu-west", len(eu), len(subnets))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			for _, sub := range subnets[1:] {
				if sub != eu[0] { // eu[0] stops asking: past the TTL
					ask(sub)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	defer func() { cancel(); <-done }()
	d, err := cl.StartDrill(ctxTimeout(5*time.Second), wire.DrillRequest{Runbook: "ui-chart", Reason: "ui chart"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the chart drill finished with c1's drain report", func() error {
		d, err = cl.Drill(ctxTimeout(5*time.Second), d.ID)
		if err != nil {
			return err
		}
		for _, r := range d.Drain {
			if r.Node == "c1" && d.Status == state.DrillSucceeded {
				return nil
			}
		}
		return fmt.Errorf("drill %s, %d drain reports", d.Status, len(d.Drain))
	})
	for _, r := range d.Drain {
		t.Logf("chart drill %s: %s %s %d->%d: %d resolvers, %d drained, 50/90/99%% %s/%s/%s ms, %d past TTL",
			d.ID, r.Node, r.Region, r.From, r.To, r.Population, r.Drained, msOf(r.P50Ms), msOf(r.P90Ms), msOf(r.P99Ms), r.PastTTL)
	}
	return d.ID, len(eu)
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
		if !testutil.PortsFree(ip, port, 1, udp) {
			return false
		}
	}
	return true
}

// freePortRun finds n consecutive ports on 127.0.0.1 free for TCP (and UDP
// when udp is set): evac dev gives controller i port base+i.
func freePortRun(t *testing.T, n int, udp bool) int {
	t.Helper()
	return testutil.FreePortRun(t, "127.0.0.1", n, udp)
}

// TestDashboardToken checks the dashboard's sign-in against a stand-in admin
// API that enforces Bearer tokens (evac dev runs without auth): a wrong token
// is refused with the server's message, the right one is sent on every call
// and survives a reload, a token the server stops accepting signs the user
// out, and a drills endpoint that answers 200 is listed.
func TestDashboardToken(t *testing.T) {
	needChromium(t)
	const good = "good-token"
	var (
		mu      sync.Mutex
		seen    = map[string]int{} // Authorization header -> requests
		revoked bool
	)
	r := mux.NewRouter()
	ui.Mount(r)
	r.PathPrefix("/v1/").HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		auth := req.Header.Get("Authorization")
		seen[auth]++
		ok := auth == "Bearer "+good && !revoked
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid or missing token","code":"unauthorized"}`)
			return
		}
		switch req.URL.Path {
		case "/v1/status":
			fmt.Fprint(w, `{"node_id":"c1","leader":"c1","is_leader":true,"term":7,"config_version":3,"serial":9}`)
		case "/v1/regions":
			fmt.Fprint(w, `[{"name":"r1","state":"active","weight":100,"health":null,"agents_alive":0,"agents_total":0,"since":"2026-01-01T00:00:00Z"},
			  {"name":"r2","state":"evacuated","weight":0,"health":0.25,"agents_alive":1,"agents_total":2,"since":"2026-01-01T00:00:00Z","reason":"drill"}]`)
		case "/v1/services":
			fmt.Fprint(w, `[{"name":"api","fqdn":"api.example.com.","policy":"failover","ttl":30,"regions":[
			  {"region":"r2","endpoints":["192.0.2.1"],"weight":0,"effective_weight":0,"healthy":false},
			  {"region":"r1","endpoints":["192.0.2.2"],"weight":100,"effective_weight":100,"healthy":true}]}]`)
		case "/v1/members", "/v1/events":
			fmt.Fprint(w, `[]`)
		case "/v1/drills":
			fmt.Fprint(w, `[{"id":"d-1","runbook":"region-loss","state":"running","started":"2026-01-01T00:00:00Z"}]`)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":"no such endpoint","code":"not_found"}`)
		}
	})
	srv := httptest.NewServer(r)
	defer srv.Close()

	b := newBrowser(t)
	b.do("a wrong token",
		chromedp.Navigate(srv.URL+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "wrong"),
		chromedp.Click(chromedp.ID("signin-submit")),
	)
	b.waitJS("the server's refusal is shown and the dashboard stays hidden",
		`document.getElementById('signin-error').textContent === 'token refused: invalid or missing token' &&
		 document.getElementById('dash').hidden && document.getElementById('token').value === ''`)
	b.do("the right token",
		chromedp.SendKeys(chromedp.ID("token"), good),
		chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("regions")),
	)

	b.waitJS("regions and the failover share shown",
		`document.querySelectorAll('#regions .region').length === 2 &&
		 document.querySelector('.region[data-region="r1"] .share').textContent === '100%' &&
		 document.querySelector('.region[data-region="r2"] .share').textContent === '0%'`)
	b.waitJS("a drills endpoint that answers is listed",
		`document.getElementById('drills').textContent.includes('region-loss')`)
	b.waitJS("the token is kept in session storage", `sessionStorage.getItem('evac.token') === '`+good+`'`)
	b.do("reload", chromedp.Navigate(srv.URL+"/ui/"))
	b.waitJS("still signed in after a reload", `!document.getElementById('dash').hidden && document.getElementById('signin').hidden`)

	mu.Lock()
	revoked = true
	mu.Unlock()
	b.waitJS("a revoked token signs the user out",
		`!document.getElementById('signin').hidden && document.getElementById('dash').hidden && sessionStorage.getItem('evac.token') === null &&
		 document.getElementById('signin-error').textContent.startsWith('signed out: the controller refused the token')`)

	mu.Lock()
	defer mu.Unlock()
	for auth, n := range seen {
		// "Bearer " (no token) is the page asking, signed out, whether the
		// controller needs a token at all (evac dev does not): once per load.
		if auth != "Bearer wrong" && auth != "Bearer "+good && !(auth == "Bearer" && n <= 2) {
			t.Errorf("%d API requests with Authorization %q", n, auth)
		}
	}
	if seen["Bearer wrong"] != 1 || seen["Bearer "+good] < 5 {
		t.Errorf("requests by Authorization header: %v", seen)
	}
}
