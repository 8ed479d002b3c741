// Command evacuate measures how long evac takes to steer clients away from a
// failed region, end to end: it runs the `evac dev` system in this process
// (3 controllers, 2 agents per region, demo backends), fails one region's
// backend, and measures
//
//   - dns: until no controller's DNS returns the region for any of 100
//     client subnets (the health verdict path: effective weight 0), and
//   - evacuated: until every controller's replica shows the region
//     evacuated at weight 0 (detect_after plus the ramp).
//
// It repeats, rotating the failed region (each is healed and restored before
// its next turn), and prints the median and p99 of both for the chosen
// policy. Agents check every 1 s with fall 2 in both policies; only the
// steering policy differs.
//
//	go run ./bench/evacuate -policy dev -reps 20
//	go run ./bench/evacuate -policy default -reps 20
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/devcluster"
	"github.com/evac-sh/evac/internal/testutil"
)

var regions = []string{"us-east", "us-west", "eu-west"}

// policies are the steering policies compared. Hold-down and budget are
// relaxed in both so that repetitions are not refused; they do not change
// how fast one evacuation goes.
var policies = map[string]string{
	"dev": `  unhealthy_below: 0.5
  detect_after: 5s
  ramp: [50, 0]
  step_interval: 5s
  hold_down: 1s
  budget: {per_day: 1000, cooldown: 1s}
`,
	"default": `  unhealthy_below: 0.5
  detect_after: 30s
  ramp: [50, 0]
  step_interval: 30s
  hold_down: 1s
  budget: {per_day: 1000, cooldown: 1s}
`,
}

func main() {
	policy := flag.String("policy", "dev", "steering policy: dev or default")
	reps := flag.Int("reps", 20, "repetitions")
	httpPort := flag.Int("http-port", 18080, "base admin API port")
	dnsPort := flag.Int("dns-port", 15353, "base DNS port")
	offset := flag.Int("subnet-offset", 20, "loopback subnet offset (keeps clear of a running `evac dev`)")
	flag.Parse()
	pol, ok := policies[*policy]
	if !ok {
		fmt.Fprintln(os.Stderr, "-policy must be dev or default")
		os.Exit(2)
	}
	if err := run(pol, *policy, *reps, *httpPort, *dnsPort, *offset); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(pol, name string, reps, httpPort, dnsPort, offset int) error {
	steering := devcluster.SteeringYAML(regions)
	steering = steering[:strings.LastIndex(steering, "\npolicy:")] + "\npolicy:\n" + pol
	ctx := context.Background()
	c, err := devcluster.Start(ctx, devcluster.Options{Regions: regions, HTTPPort: httpPort, DNSPort: dnsPort,
		Logger: zap.NewNop(), Steering: steering, SubnetOffset: offset})
	if err != nil {
		return err
	}
	defer c.Close()
	dnsAddrs := []string{}
	for i := range c.Controllers {
		dnsAddrs = append(dnsAddrs, fmt.Sprintf("127.0.0.1:%d", dnsPort+i))
	}
	var dnsTimes, evacTimes []time.Duration
	for i := 0; i < reps; i++ {
		region := regions[i%len(regions)]
		if err := waitFor(90*time.Second, func() error { return allHealthy(c) }); err != nil {
			return fmt.Errorf("rep %d: cluster not healthy: %w", i, err)
		}
		start := time.Now()
		_ = c.FailRegion(region)
		if err := waitFor(5*time.Minute, func() error { return absent(dnsAddrs, c.Endpoints[region]) }); err != nil {
			return fmt.Errorf("rep %d: %s never left DNS: %w", i, region, err)
		}
		dnsTimes = append(dnsTimes, time.Since(start))
		if err := waitFor(5*time.Minute, func() error { return evacuated(c, region) }); err != nil {
			return fmt.Errorf("rep %d: %s never evacuated: %w", i, region, err)
		}
		evacTimes = append(evacTimes, time.Since(start))
		fmt.Printf("rep %2d %-8s dns %6.2fs  evacuated %6.2fs\n", i+1, region,
			dnsTimes[i].Seconds(), evacTimes[i].Seconds())
		_ = c.HealRegion(region)
		if err := restore(ctx, c, region, fmt.Sprintf("bench-restore-%s-%d", name, i)); err != nil {
			return fmt.Errorf("rep %d: restore %s: %w", i, region, err)
		}
	}
	fmt.Printf("\npolicy %s, %d reps: dns median %.2fs p99 %.2fs | evacuated median %.2fs p99 %.2fs\n",
		name, reps, pct(dnsTimes, 50).Seconds(), pct(dnsTimes, 99).Seconds(),
		pct(evacTimes, 50).Seconds(), pct(evacTimes, 99).Seconds())
	return nil
}

func allHealthy(c *devcluster.Cluster) error {
	for _, ctl := range c.Controllers {
		st := ctl.State()
		for _, r := range regions {
			rs, _ := st.Region(r)
			if rs.Phase != state.PhaseActive || rs.Weight != 100 || len(st.Unhealthy[r]) > 0 {
				return fmt.Errorf("%s: %+v", r, rs)
			}
		}
		for r, h := range ctl.RegionHealth() {
			if h.Services["api"].Share < 1 {
				return fmt.Errorf("%s health %v", r, h.Services["api"].Share)
			}
		}
	}
	return nil
}

func evacuated(c *devcluster.Cluster, region string) error {
	for _, ctl := range c.Controllers {
		r, _ := ctl.State().Region(region)
		if r.Phase != state.PhaseEvacuated || r.Weight != 0 {
			return fmt.Errorf("%s is %s at %d", region, r.Phase, r.Weight)
		}
	}
	return nil
}

// restore proposes the restore of region under id, so that a retried
// proposal is a no-op.
func restore(ctx context.Context, c *devcluster.Cluster, region, id string) error {
	if err := waitFor(60*time.Second, func() error {
		// The health verdict must be back before the next rep.
		if len(c.Controllers[0].State().Unhealthy[region]) > 0 {
			return errors.New("still unhealthy")
		}
		return nil
	}); err != nil {
		return err
	}
	res, err := c.Controllers[0].Propose(ctx, state.CmdRestore, "bench", id, state.Restore{
		Region: region, Reason: "bench: next rep", Ramp: []int{100}})
	if err != nil {
		return err
	}
	if res.Error != "" {
		return errors.New(res.Error)
	}
	return nil
}

// absent reports nil when no server answers any of endpoints for 100 subnets.
func absent(servers, endpoints []string) error {
	for _, srv := range servers {
		for i := 0; i < 100; i++ {
			m := new(dns.Msg)
			m.SetQuestion("api.example.com.", dns.TypeA)
			o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
			o.Option = []dns.EDNS0{&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24,
				Address: net.IPv4(10, byte(i/250), byte(i%250), 0).To4()}}
			m.Extra = []dns.RR{o}
			r, err := dns.Exchange(m, srv)
			if err != nil {
				return err
			}
			for _, rr := range r.Answer {
				if a, ok := rr.(*dns.A); ok {
					for _, e := range endpoints {
						if a.A.String() == e {
							return fmt.Errorf("%s still answers %s", srv, e)
						}
					}
				}
			}
		}
	}
	return nil
}

// waitFor polls f every 100 ms until it returns nil or d has passed.
func waitFor(d time.Duration, f func() error) error { return testutil.Poll(d, 100*time.Millisecond, f) }

func pct(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return s[i-1]
}
