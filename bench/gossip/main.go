// Command gossip benchmarks evac's health path at scale: N real memberlist
// agents on loopback (one 127.41.R.N address each) over R regions, and 3
// controller-role gossip nodes in a child process that computes the
// leader's health view (controlplane/health.Compute, as a controller does). It
// flips one region's health (all its agents report failing, then passing
// again), measures the time until the leader's view shows the flip (the
// region's share crosses 0.5, the default unhealthy_below), and the
// controller process's CPU share and peak RSS.
//
//	go run ./bench/gossip -n 300 -regions 5
//	go run ./bench/gossip -n 1000 -regions 5 -probe-interval 5s -probe-timeout 3s -agents-heap-mib 12288
//
// 1,000 agents in one process on two cores are starved of CPU: with
// memberlist's LAN probes (1s, ack within 500ms) late acks make them
// suspect each other and the pool never settles, hence the relaxed agent
// probes at that size (docs/benchmarks.md). The health path measured (a
// change sent to the controllers and flooded) does not depend on them.
//
// The controllers run in a child process (this binary with -controllers)
// so that their CPU time and memory are measured apart from the agents':
// CPU from /proc/PID/stat (utime+stime) over the measurement window, peak
// RSS from /proc/PID/status (VmHWM).
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/health"
	"github.com/evac-sh/evac/gossip"
)

func main() {
	var (
		n           = flag.Int("n", 100, "agents")
		regions     = flag.Int("regions", 5, "regions")
		repeats     = flag.Int("repeats", 10, "health flips to time (alternately failing and passing)")
		profile     = flag.String("profile", gossip.ProfileLAN, "gossip profile: lan or fast")
		refresh     = flag.Duration("refresh", 10*time.Second, "agents re-publish their report this often (agent refresh_interval)")
		warmup      = flag.Duration("warmup", 30*time.Second, "steady state before measuring: the join's membership gossip has drained")
		joinRate    = flag.Float64("join-rate", 5, "agents started per second: a fleet does not start in one instant, and 1,000 joins at once flood the pool with alive messages")
		cpuProfile  = flag.String("cpuprofile", "", "write the agents' process CPU profile (the whole run) here")
		memProfile  = flag.String("memprofile", "", "write the agents' process heap profile here once the join is over (or has timed out)")
		heapMiB     = flag.Int("agents-heap-mib", 4096, "agents' process only: collect garbage only when its heap reaches this many MiB (GOGC off, a memory limit instead); 0 keeps Go's default. N agents in one process hold N tables of N members (about 4 MiB each at N=1000), so the collector's cost grows with N squared; 12288 is what N=1000 needs on a 2-core host. The controllers' process keeps the default")
		joinTimeout = flag.Duration("join-timeout", 5*time.Minute, "give up when the leader has not seen every agent alive by then")
		probeIvl    = flag.Duration("probe-interval", 0, "agents' memberlist probe interval; 0 keeps the profile's (lan: 1s). N=1000 on 2 cores needs 5s")
		probeTmo    = flag.Duration("probe-timeout", 0, "agents' memberlist probe timeout; 0 keeps the profile's (lan: 500ms). N=1000 on 2 cores needs 3s")
		direct      = flag.Bool("direct", true, "agents also send changes straight to the controllers; false measures the gossip flood alone")
		controllers = flag.Bool("controllers", false, "internal: run the controllers (child process)")
		keyHex      = flag.String("key", "", "internal: gossip key (hex)")
	)
	flag.Parse()
	if *controllers {
		if err := runControllers(*keyHex, *profile); err != nil {
			fmt.Fprintln(os.Stderr, "controllers:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(options{n: *n, regions: *regions, repeats: *repeats, profile: *profile, refresh: *refresh,
		warmup: *warmup, joinRate: *joinRate, direct: *direct, cpuProfile: *cpuProfile, memProfile: *memProfile, probeInterval: *probeIvl, probeTimeout: *probeTmo, joinTimeout: *joinTimeout, heapMiB: *heapMiB}); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// ---- controller process ----

// runControllers starts 3 controller-role nodes on 127.41.0.1-3, prints
// "READY addr,addr,addr", then "ALIVE n" every second and
// "SHARE region share unixnano" whenever the leader's (node 0's) view of a
// region's share changes. The view is recomputed on every gossip
// notification, at most every 20 ms.
func runControllers(keyHex, profile string) error {
	key, err := hex.DecodeString(keyHex)
	if err != nil {
		return err
	}
	var nodes []*gossip.Node
	var addrs []string
	for i := 0; i < 3; i++ {
		cfg := gossip.Config{NodeName: fmt.Sprintf("c%d", i), Region: "control", Role: gossip.RoleController,
			BindAddr: fmt.Sprintf("127.41.0.%d:0", i+1), Key: key, Profile: profile, Seeds: addrs, Logger: zap.NewNop()}
		node, err := gossip.New(cfg)
		if err != nil {
			return err
		}
		defer func() { _ = node.Shutdown() }()
		nodes = append(nodes, node)
		addrs = append(addrs, node.LocalAddr())
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	emit := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(out, format+"\n", args...)
		_ = out.Flush()
		mu.Unlock()
	}
	emit("READY %s", strings.Join(addrs, ","))
	leader := nodes[0]
	updates, cancel := leader.Subscribe()
	defer cancel()
	go func() {
		for range time.Tick(time.Second) {
			alive := 0
			for _, m := range leader.Members() {
				if m.Role == gossip.RoleAgent && m.Live() {
					alive++
				}
			}
			emit("ALIVE %d", alive)
		}
	}()
	last := map[string]float64{}
	for range updates {
		view := health.Compute(leader.Members(), leader.Reports(), nil, []string{"api"}, time.Now(), 60*time.Second)
		now := time.Now().UnixNano()
		for region, svcs := range view {
			h := svcs["api"]
			if !h.Known {
				continue
			}
			if old, ok := last[region]; !ok || old != h.Share {
				last[region] = h.Share
				emit("SHARE %s %.4f %d", region, h.Share, now)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// ---- agents and measurement ----

type shareEvent struct {
	region string
	share  float64
	at     time.Time
}

type options struct {
	n, regions, repeats int
	profile             string
	refresh, warmup     time.Duration
	joinTimeout         time.Duration
	heapMiB             int
	joinRate            float64
	direct              bool
	cpuProfile          string
	memProfile          string
	probeInterval       time.Duration
	probeTimeout        time.Duration
}

func run(o options) error {
	n, regions, repeats, profile, refresh, warmup := o.n, o.regions, o.repeats, o.profile, o.refresh, o.warmup
	if n/regions > 250 {
		return fmt.Errorf("at most 250 agents per region (one 127.41.R.x address each)")
	}
	if o.heapMiB > 0 {
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(int64(o.heapMiB) << 20)
	}
	if o.cpuProfile != "" { // the whole run, join included
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.Command(self, "-controllers", "-key", hex.EncodeToString(key), "-profile", profile)
	child.Stderr = os.Stderr
	// The child writes a line every second: once this process is gone its
	// stdout is a broken pipe and SIGPIPE ends it.
	stdout, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return err
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "READY ") {
		return errors.New("controllers did not start")
	}
	seeds := strings.Split(strings.TrimPrefix(lines.Text(), "READY "), ",")

	var aliveMu sync.Mutex
	alive := 0
	shares := make(chan shareEvent, 4096)
	go func() {
		for lines.Scan() {
			f := strings.Fields(lines.Text())
			switch {
			case len(f) == 2 && f[0] == "ALIVE":
				v, _ := strconv.Atoi(f[1])
				aliveMu.Lock()
				alive = v
				aliveMu.Unlock()
			case len(f) == 4 && f[0] == "SHARE":
				s, _ := strconv.ParseFloat(f[2], 64)
				ns, _ := strconv.ParseInt(f[3], 10, 64)
				shares <- shareEvent{f[1], s, time.Unix(0, ns)}
			}
		}
		close(shares)
	}()

	// Agents: region r on 127.41.(r+1).x, started at joinRate a second,
	// each joining through one peer picked at random among the controllers
	// and the agents started before it, as a fleet brought up over time
	// with a few seeds each would.
	start := time.Now()
	agents := make([]*benchAgent, 0, n)
	pace := time.NewTicker(time.Duration(float64(time.Second) / o.joinRate))
	defer pace.Stop()
	for i := 0; i < n; i++ {
		r := i % regions
		peers := len(seeds) + len(agents)
		pick := mrand.IntN(peers)
		seed := ""
		if pick < len(seeds) {
			seed = seeds[pick]
		} else {
			seed = agents[pick-len(seeds)].node.LocalAddr()
		}
		a, err := startAgent(gossip.Config{NodeName: fmt.Sprintf("a%04d", i), Region: fmt.Sprintf("r%d", r),
			Role: gossip.RoleAgent, BindAddr: fmt.Sprintf("127.41.%d.%d:0", r+1, i/regions+1), Key: key,
			Profile: profile, Seeds: []string{seed}, NoDirect: !o.direct, ProbeInterval: o.probeInterval, ProbeTimeout: o.probeTimeout, Logger: zap.NewNop()})
		if err != nil {
			return err
		}
		defer a.node.Shutdown() //nolint:errcheck
		agents = append(agents, a)
		if time.Since(start) > o.joinTimeout {
			pprof.StopCPUProfile() // now: stopping the agents takes a while
			o.writeHeapProfile()
			return fmt.Errorf("only %d of %d agents started within -join-timeout %s", len(agents), n, o.joinTimeout)
		}
		if len(agents)%200 == 0 {
			aliveMu.Lock()
			seen := alive
			aliveMu.Unlock()
			fmt.Printf("  start: %d agents started in %.0fs, the leader sees %d alive; agents' live heap %.0f MiB\n",
				len(agents), time.Since(start).Seconds(), seen, liveHeapMiB())
		}
		<-pace.C
	}
	stopRefresh := make(chan struct{})
	var wg sync.WaitGroup
	for _, a := range agents {
		wg.Add(1)
		go func(a *benchAgent) { defer wg.Done(); a.refreshLoop(refresh, stopRefresh) }(a)
	}
	defer func() { close(stopRefresh); wg.Wait() }()

	waitAll := func(what string, deadline time.Time) error {
		progress := time.NewTicker(10 * time.Second)
		defer progress.Stop()
		for time.Now().Before(deadline) {
			aliveMu.Lock()
			a := alive
			aliveMu.Unlock()
			if a == n {
				return nil
			}
			select {
			case <-progress.C:
				fmt.Printf("  %s: %.0fs after the first agent started, the leader sees %d of %d agents alive; agents' live heap %.0f MiB\n",
					what, time.Since(start).Seconds(), a, n, liveHeapMiB())
			case <-time.After(200 * time.Millisecond):
			}
		}
		return fmt.Errorf("%s: the leader sees %d of %d agents alive %.0fs after the first agent started", what, alive, n, time.Since(start).Seconds())
	}
	err = waitAll("join", start.Add(o.joinTimeout))
	o.writeHeapProfile()
	if err != nil {
		pprof.StopCPUProfile() // now: stopping the agents takes a while
		return err
	}
	fmt.Printf("n=%d regions=%d profile=%s refresh=%s GOMAXPROCS=%d: all agents alive at the leader %.1fs after the first started\n",
		n, regions, profile, refresh, runtime.GOMAXPROCS(0), time.Since(start).Seconds())
	// Settle: every region's share known and 1.
	current := map[string]float64{}
	settle := time.After(2 * time.Minute)
	for len(current) < regions || !allOne(current) {
		select {
		case e, ok := <-shares:
			if !ok {
				return errors.New("controllers exited")
			}
			current[e.region] = e.share
		case <-settle:
			return fmt.Errorf("shares did not settle at 1: %v", current)
		}
	}

	fmt.Printf("shares settled at 1 in every region %.1fs after start; warming up %s\n", time.Since(start).Seconds(), warmup)
	time.Sleep(warmup)
	for drained := false; !drained; { // share events from the warm-up
		select {
		case <-shares:
		default:
			drained = true
		}
	}
	load0 := loadAvg()
	cpu0, wall0, self0 := procCPU(child.Process.Pid), time.Now(), procCPU(os.Getpid())
	var flips, fulls []time.Duration
	for i := 0; i < repeats; i++ {
		region := fmt.Sprintf("r%d", i%regions)
		fail := (i/regions)%2 == 0 // first round fails each region, the next heals them
		status := gossip.StatusFailing
		if !fail {
			status = gossip.StatusPassing
		}
		t0 := time.Now()
		for _, a := range agents {
			if a.region == region {
				a.set(status)
			}
		}
		var flip, full time.Duration
		timeout := time.After(60 * time.Second)
		for full == 0 {
			select {
			case e, ok := <-shares:
				if !ok {
					return errors.New("controllers exited")
				}
				if e.region != region || e.at.Before(t0) {
					continue
				}
				crossed := (fail && e.share < 0.5) || (!fail && e.share >= 0.5)
				if flip == 0 && crossed {
					flip = e.at.Sub(t0)
				}
				if (fail && e.share == 0) || (!fail && e.share == 1) {
					full = e.at.Sub(t0)
				}
			case <-timeout:
				aliveMu.Lock()
				a := alive
				aliveMu.Unlock()
				return fmt.Errorf("repeat %d: region %s not seen %s within 60s (flip at %s; leader sees %d agents alive)",
					i, region, status, flip, a)
			}
		}
		flips, fulls = append(flips, flip), append(fulls, full)
		fmt.Printf("  flip %2d: %s -> %s: verdict flip %4.0f ms, every agent's report %4.0f ms (controllers: CPU so far %.1f%%, peak RSS %.1f MiB)\n",
			i, region, status, ms(flip), ms(full), 100*(procCPU(child.Process.Pid)-cpu0)/time.Since(wall0).Seconds(),
			float64(procHWM(child.Process.Pid))/1024)
		time.Sleep(2 * time.Second)
	}
	cpu1, wall1, self1 := procCPU(child.Process.Pid), time.Now(), procCPU(os.Getpid())
	hwm := procHWM(child.Process.Pid)
	fmt.Printf("load average (1, 5, 15 min) before the flips: %s; after: %s\n", load0, loadAvg())
	fmt.Printf("RESULT n=%d regions=%d profile=%s direct=%v: verdict flip median %.0f ms p99 %.0f ms; all reports median %.0f ms p99 %.0f ms; "+
		"controller process (3 nodes) CPU %.1f%% of one core, peak RSS %.1f MiB; agents' process CPU %.0f%% of one core, peak RSS %.0f MiB\n",
		n, regions, profile, o.direct, ms(pct(flips, 50)), ms(pct(flips, 99)), ms(pct(fulls, 50)), ms(pct(fulls, 99)),
		100*(cpu1-cpu0)/wall1.Sub(wall0).Seconds(), float64(hwm)/1024, 100*(self1-self0)/wall1.Sub(wall0).Seconds(), float64(procHWM(os.Getpid()))/1024)
	return nil
}

func allOne(m map[string]float64) bool {
	for _, v := range m {
		if v != 1 {
			return false
		}
	}
	return true
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pct is the nearest-rank percentile.
func pct(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, k)]
}

type benchAgent struct {
	node   *gossip.Node
	region string
	mu     sync.Mutex
	status string
}

func startAgent(cfg gossip.Config) (*benchAgent, error) {
	node, err := gossip.New(cfg)
	if err != nil {
		return nil, err
	}
	a := &benchAgent{node: node, region: cfg.Region, status: gossip.StatusPassing}
	a.publish()
	return a, nil
}

func (a *benchAgent) publish() {
	a.mu.Lock()
	st := a.status
	a.mu.Unlock()
	a.node.Publish(gossip.Report{Service: "api", Check: "http", Status: st})
}

func (a *benchAgent) set(status string) {
	a.mu.Lock()
	a.status = status
	a.mu.Unlock()
	a.publish()
}

// refreshLoop re-publishes the current status like an agent's refresh,
// starting at a random phase.
func (a *benchAgent) refreshLoop(every time.Duration, stop <-chan struct{}) {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	phase := time.Duration(int(b[0])<<8|int(b[1])) * every / 65536
	select {
	case <-stop:
		return
	case <-time.After(phase):
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			a.publish()
		}
	}
}

// writeHeapProfile writes the agents' process heap profile to
// -memprofile, if given; a failure is reported, not fatal.
func (o options) writeHeapProfile() {
	if o.memProfile == "" {
		return
	}
	err := func() error {
		f, err := os.Create(o.memProfile)
		if err != nil {
			return err
		}
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			_ = f.Close()
			return err
		}
		return f.Close()
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: heap profile:", err)
	}
}

// liveHeapMiB is this process's heap still reachable at the end of the
// last collection.
func liveHeapMiB() float64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return math.NaN()
	}
	return float64(s[0].Value.Uint64()) / (1 << 20)
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// procCPU is the user+system CPU time of pid in seconds (/proc/PID/stat).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 (state) on
	ut, _ := strconv.ParseFloat(f[11], 64)                   // field 14
	st, _ := strconv.ParseFloat(f[12], 64)                   // field 15
	return (ut + st) / 100                                   // USER_HZ is 100 on Linux
}

// procHWM is the peak RSS of pid in KiB (VmHWM).
func procHWM(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			v, _ := strconv.Atoi(strings.Fields(l)[1])
			return v
		}
	}
	return 0
}
