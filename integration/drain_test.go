package integration

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/api/wire"
)

// drainRegions live on the subnets reserved for the drain tests: regions on
// 127.0.101-103, controllers on 127.0.100.
var drainRegions = []regionDef{
	{"us-east", 101, testRegions[0].endpoints},
	{"us-west", 102, testRegions[1].endpoints},
	{"eu-west", 103, testRegions[2].endpoints},
}

// drainTTL is the api service's TTL in the drain test: the window before a
// change in which a resolver counts as told the region, and (plus the
// slack) how long after it a controller measures.
const drainTTL = 6 * time.Second

// prober asks one controller's DNS for api's A record from many ECS
// subnets, over and over, and remembers the last region each was told.
type prober struct {
	c       *controllerProc
	subnets []string
	mu      sync.Mutex
	last    map[string]string
	skip    map[string]bool // subnets that stopped asking
	rounds  int
	errs    int
	// first is when the controller first answered: its DNS server was
	// recording from then on at the latest.
	first time.Time
}

func (p *prober) run(ctx context.Context) {
	conn, err := net.Dial("udp", p.c.dns)
	if err != nil {
		return
	}
	defer conn.Close()
	dc := &dns.Conn{Conn: conn}
	for ctx.Err() == nil {
		for _, sub := range p.subnets {
			p.mu.Lock()
			skip := p.skip[sub]
			p.mu.Unlock()
			if skip {
				continue
			}
			m := new(dns.Msg)
			m.SetQuestion("api.example.com.", dns.TypeA)
			o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
			o.SetUDPSize(1232)
			o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24,
				Address: net.ParseIP(sub).To4()})
			m.Extra = append(m.Extra, o)
			_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
			if err := dc.WriteMsg(m); err != nil {
				p.fail()
				continue
			}
			r, err := dc.ReadMsg()
			if err != nil || r.Id != m.Id || len(r.Answer) == 0 {
				p.fail()
				continue
			}
			a, ok := r.Answer[0].(*dns.A)
			if !ok {
				p.fail()
				continue
			}
			p.mu.Lock()
			p.last[sub] = regionOf(a.A.String())
			if p.first.IsZero() {
				p.first = time.Now()
			}
			p.mu.Unlock()
		}
		p.mu.Lock()
		p.rounds++
		p.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *prober) fail() {
	p.mu.Lock()
	p.errs++
	p.mu.Unlock()
}

func (p *prober) snapshot() (map[string]string, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]string, len(p.last))
	for k, v := range p.last {
		out[k] = v
	}
	return out, p.rounds
}

// TestDrillDrainMeasured: while a prober asks every controller's DNS from
// 400 ECS subnets, a drill shifts us-east to 0. Each controller reports
// into the drill record the resolvers it had told us-east in the TTL
// before the shift, when 50/90/99% of them were told another region, and
// the subnet that stopped asking at the shift as past the TTL; the CLI and
// the drill history show them.
func TestDrillDrainMeasured(t *testing.T) {
	t.Parallel() // mostly waiting; its own subnets (127.0.100-103)
	tc := startClusterOpts(t, clusterOpts{regions: drainRegions, ctrlSubnet: 100})
	tc.applySteering(strings.Replace(testSteering(), "    policy: weighted\n",
		fmt.Sprintf("    policy: weighted\n    ttl: %d\n", int(drainTTL/time.Second)), 1))
	tc.waitHealthy()
	c0 := tc.controllers[0]
	tc.putRunbook(c0, `name: it-drain
params: {region: {required: true}}
steps:
  - shift: {region: "{{ .region }}", weight: 0}
  - wait: {duration: 10s}
  - restore: {region: "{{ .region }}", ramp: [100], step_interval: 1s}
`)

	subnets := make([]string, 400)
	for i := range subnets {
		subnets[i] = fmt.Sprintf("10.%d.%d.0", 77+i/256, i%256)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var probers []*prober
	for _, c := range tc.controllers {
		p := &prober{c: c, subnets: subnets, last: map[string]string{}, skip: map[string]bool{}}
		probers = append(probers, p)
		wg.Go(func() { p.run(ctx) })
	}
	// Every prober has asked every subnet at least twice, with the weights
	// settled: us-east's subnets are the population to drain.
	var east []string
	eventually(t, 30*time.Second, "every controller answered all 400 subnets twice", func() error {
		east = nil
		for i, p := range probers {
			last, rounds := p.snapshot()
			if rounds < 2 || len(last) != len(subnets) {
				return fmt.Errorf("%s: %d rounds, %d subnets", p.c.id, rounds, len(last))
			}
			var e []string
			for _, sub := range subnets {
				if last[sub] == "us-east" {
					e = append(e, sub)
				}
			}
			if i > 0 && !slices.Equal(e, east) {
				return fmt.Errorf("%s sends %d subnets to us-east, %s %d", p.c.id, len(e), probers[0].c.id, len(east))
			}
			east = e
		}
		return nil
	})
	if len(east) < 100 {
		t.Fatalf("only %d of 400 subnets on us-east: 99%% needs a population of 100 or more to leave one out", len(east))
	}
	// The DNS servers have recorded for a whole TTL before the change:
	// counted from each one's first answer (a loaded machine may start a
	// controller's DNS seconds after the test began).
	var recording time.Time
	for _, p := range probers {
		p.mu.Lock()
		if p.first.After(recording) {
			recording = p.first
		}
		p.mu.Unlock()
	}
	time.Sleep(time.Until(recording.Add(drainTTL + time.Second)))
	// One of us-east's subnets stops asking from the drill on: it was told
	// us-east within the TTL before the shift and never asks again.
	silent := east[:1]
	for _, p := range probers {
		p.mu.Lock()
		for _, sub := range silent {
			p.skip[sub] = true
		}
		p.mu.Unlock()
	}
	id := tc.startDrill(c0, "it-drain", "--param", "region=us-east", "--reason", "drain measured")

	// Every controller's report arrives TTL + slack after the shift.
	var d wire.DrillReport
	eventually(t, 45*time.Second, "a drain report from every controller", func() error {
		var err error
		if d, err = drillOn(c0, id); err != nil {
			return err
		}
		if len(d.Drain) < len(tc.controllers) {
			return fmt.Errorf("%d reports (drill %s at step %d)", len(d.Drain), d.Status, d.Current+1)
		}
		return nil
	})
	cancel()
	wantSilent := slices.Clone(silent)
	for i := range wantSilent {
		wantSilent[i] += "/24"
	}
	sort.Strings(wantSilent)
	nodes := map[string]bool{}
	for _, r := range d.Drain {
		nodes[r.Node] = true
		t.Logf("%s: step %d %s %d->%d: %d resolvers, %d drained, 50/90/99%% at %s/%s/%s ms, %d past TTL %v",
			r.Node, r.Step+1, r.Region, r.From, r.To, r.Population, r.Drained, msOf(r.P50Ms), msOf(r.P90Ms), msOf(r.P99Ms),
			r.PastTTL, r.PastTTLResolvers)
		if r.Step != 0 || r.Region != "us-east" || r.From != 100 || r.To != 0 || r.Superseded || !r.WindowComplete ||
			r.TTLSeconds != uint32(drainTTL/time.Second) {
			t.Errorf("%s: report %+v", r.Node, r)
		}
		if r.Population != len(east) || r.Drained != len(east)-len(silent) || r.PastTTL != len(silent) {
			t.Errorf("%s: population %d, drained %d, past TTL %d; want %d, %d, %d", r.Node, r.Population, r.Drained,
				r.PastTTL, len(east), len(east)-len(silent), len(silent))
		}
		// The subnets still asking drain at their next question, well
		// within the TTL; with one silent in 100 or more, 99% is reached.
		if r.P50Ms == nil || r.P90Ms == nil || r.P99Ms == nil || *r.P99Ms > drainTTL.Milliseconds() {
			t.Errorf("%s: 50/90/99%% at %s/%s/%s ms, want all within the TTL", r.Node, msOf(r.P50Ms), msOf(r.P90Ms), msOf(r.P99Ms))
		}
		var got []string
		for _, lr := range r.PastTTLResolvers {
			got = append(got, lr.Subnet)
			if lr.AskedAfter != 0 || lr.Service != "api" {
				t.Errorf("%s: past-TTL resolver %+v, want one that never asked again", r.Node, lr)
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, wantSilent) {
			t.Errorf("%s: past-TTL resolvers %v, want %v", r.Node, got, wantSilent)
		}
	}
	for _, c := range tc.controllers {
		if !nodes[c.id] {
			t.Errorf("no report from %s", c.id)
		}
	}

	// The history (GET /v1/drills) carries the times, and the CLI shows them.
	ds, err := newClient(c0.http).Drills(ctxTimeout(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].DrainSummary == nil || ds[0].DrainSummary.Reports != 3 || ds[0].DrainSummary.P50Ms == nil ||
		ds[0].DrainSummary.PastTTL != 3*len(silent) {
		t.Fatalf("history: %+v", ds)
	}
	out, err := tc.evac(tc.controllers[2], "drill", "show", id)
	if err != nil {
		t.Fatalf("drill show: %v: %s", err, out)
	}
	for _, want := range append([]string{"us-east 100->0", "c1", "c2", "c3", "past the TTL"}, silent[0]+"/24") {
		if !strings.Contains(out, want) {
			t.Errorf("drill show lacks %q:\n%s", want, out)
		}
	}
	t.Logf("evac drill show %s:\n%s", id, out)
	out, err = tc.evac(c0, "drill", "list")
	// Drain times: "114ms / ..." or, on a loaded machine, "2.8s / ...".
	if err != nil || !strings.Contains(out, id) || !drainTimesRE.MatchString(out) {
		t.Errorf("drill list: %v:\n%s", err, out)
	}
	for _, p := range probers {
		_, rounds := p.snapshot()
		t.Logf("prober of %s: %d rounds of %d subnets, %d errors", p.c.id, rounds, len(subnets), p.errs)
	}
}

var drainTimesRE = regexp.MustCompile(`[0-9.]+m?s / [0-9.]+m?s / [0-9.]+m?s`)

func msOf(p *int64) string {
	if p == nil {
		return "never"
	}
	return fmt.Sprint(*p)
}
