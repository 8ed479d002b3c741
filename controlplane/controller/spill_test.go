package controller

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/api/wire"
)

const nearestYAML = `
zone: example.com.
nameservers: {ns1: 192.0.2.53}
regions: [{name: us-east}, {name: us-west, capacity: 55}, {name: eu-west}]
topology:
  nets:
    10.1.0.0/16: [us-east, us-west, eu-west]
    10.2.0.0/16: [us-west, us-east, eu-west]
  default: [eu-west, us-east, us-west]
services:
  - name: api
    policy: nearest
    endpoints:
      us-east: [192.0.2.11]
      us-west: [198.51.100.11]
      eu-west: [203.0.113.11]
policy:
  detect_after: 1s
  ramp: [0]
  step_interval: 500ms
  demand: 100   # loads in capacity units: 100 is all the measured demand
`

// TestSpillPlannedFromMeasuredDemand: answers every controller gives are
// reported as home demand; after an evacuation the leader plans where the
// region's clients go (us-west, with a small capacity, takes what fits;
// the rest go to eu-west), and the regions read carries the home shares
// and the plan in the client's types.
func TestSpillPlannedFromMeasuredDemand(t *testing.T) {
	c := startCluster(t, 3)
	f := c.follower()
	if code := call(t, f, "PUT", "/v1/config", nearestYAML, nil); code != 200 {
		t.Fatalf("apply: %d", code)
	}
	ask := func(ctl *Controller, sub string) error {
		m := new(dns.Msg)
		m.SetQuestion("api.example.com.", dns.TypeA)
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(1232)
		_, ipn, _ := net.ParseCIDR(sub)
		o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: ipn.IP.To4()})
		m.Extra = append(m.Extra, o)
		_, _, err := new(dns.Client).Exchange(m, ctl.cfg.DNSAddr)
		return err
	}
	// us-east's clients ask 3 times as often as us-west's, on every
	// controller, until every controller's report is in.
	eventually(t, 30*time.Second, func() error {
		for _, ctl := range c.ctls {
			for i := range 30 {
				if err := ask(ctl, fmt.Sprintf("10.1.%d.0/24", i)); err != nil {
					return err
				}
				if i%3 == 0 {
					if err := ask(ctl, fmt.Sprintf("10.2.%d.0/24", i)); err != nil {
						return err
					}
				}
			}
		}
		if n := len(f.State().Demand); n < 3 {
			return fmt.Errorf("%d demand reports", n)
		}
		return nil
	})
	var regions []wire.Region
	strictGet(t, f, "/v1/regions", &regions)
	if regions[0].HomeShare == nil || *regions[0].HomeShare < 0.6 || *regions[0].HomeShare > 0.9 {
		t.Fatalf("us-east home share %v, want about 0.75", regions[0].HomeShare)
	}
	var dry wire.WriteResult
	if code := call(t, f, "POST", "/v1/regions/us-east/evacuate", `{"reason":"spill test","dry_run":true}`, &dry); code != 200 ||
		dry.DryRun == nil || dry.DryRun.Spill == nil || len(dry.DryRun.Spill.Flows) != 2 {
		t.Fatalf("dry run: %d %+v", code, dry.DryRun)
	}
	if code := call(t, f, "POST", "/v1/regions/us-east/evacuate", `{"reason":"spill test"}`, nil); code != 200 {
		t.Fatalf("evacuate: %d", code)
	}
	eventually(t, 30*time.Second, func() error {
		for _, ctl := range c.ctls {
			p := ctl.State().SpillPlanFor("us-east")
			if p == nil || p.Weight != 0 || len(p.Flows) != 2 {
				return fmt.Errorf("%s: plan %+v", ctl.cfg.NodeID, p)
			}
		}
		return nil
	})
	var r wire.Region
	strictGet(t, f, "/v1/regions/us-east", &r)
	west := r.Spill.Flows[0]
	if west.To != "us-west" || west.Accept >= 1 || west.Utilization == nil || *west.Utilization > 1.0001 {
		t.Fatalf("us-west flow %+v: want a partial accept share and utilisation at most 1", west)
	}
	if east := r.Spill.Flows[1]; east.To != "eu-west" || east.Share <= 0 {
		t.Fatalf("eu-west flow %+v", east)
	}
}

// strictGet decodes GET path into into with unknown fields refused.
func strictGet(t *testing.T, ctl *Controller, path string, into any) {
	t.Helper()
	resp, err := http.Get("http://" + ctl.HTTPAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		t.Fatalf("GET %s does not decode into %T: %v\n%s", path, into, err, b)
	}
}
