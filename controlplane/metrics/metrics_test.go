package metrics

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/buildinfo"
)

const steering = `
zone: example.com.
nameservers: {ns1: 192.0.2.53}
regions: [{name: us-east}, {name: us-west}]
services:
  - name: api
    endpoints: {us-east: [192.0.2.11], us-west: [198.51.100.11]}
`

func apply(t *testing.T, st *state.State, typ state.CommandType, body any) *state.State {
	t.Helper()
	n, res, err := state.ApplyNext(st, typ, "", "test", time.Now(), body)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Fatalf("apply %s: %v", typ, err)
	}
	return n
}

type fakeSource struct{ st *state.State }

func (f fakeSource) State() *state.State { return f.st }
func (f fakeSource) Status() wire.Status {
	return wire.Status{IsLeader: true, Term: 7, CommitIndex: 42, AppliedIndex: 41}
}
func (f fakeSource) RegionHealth() map[string]wire.RegionHealth {
	return map[string]wire.RegionHealth{
		"us-east": {AgentsAlive: 2, AgentsTotal: 3, AgentsDead: 1, Services: map[string]wire.ServiceHealth{"api": {Share: 0.5, Known: true}}},
		"us-west": {AgentsTotal: 2, AgentsLeft: 2},
	}
}
func (f fakeSource) Members() []wire.Member {
	return []wire.Member{{State: "alive"}, {State: "alive"}, {State: "dead"}}
}

// scrape fetches /metrics and parses it as the Prometheus text format.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, rec.Body.String())
	}
	return fams
}

// value returns the value of the series of family name with the labels.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no %s", name)
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return 0
}

func TestMetrics(t *testing.T) {
	cfg, err := state.ParseConfig([]byte(steering))
	if err != nil {
		t.Fatal(err)
	}
	st := apply(t, state.Empty(), state.CmdApplyConfig, state.ApplyConfig{Config: cfg})
	st = apply(t, st, state.CmdSetWeight, state.SetWeight{Region: "us-west", Weight: 40, Reason: "test"})
	m := New(fakeSource{st: st})

	obs := m.DNSObserver()
	obs(dns.TypeA, dns.RcodeSuccess, time.Millisecond)
	obs(dns.TypeA, dns.RcodeSuccess, time.Millisecond)
	obs(dns.TypeAAAA, dns.RcodeNameError, time.Millisecond)
	obs(dns.TypeMX, 99, time.Millisecond)
	if n := testing.AllocsPerRun(100, func() { obs(dns.TypeA, dns.RcodeRefused, time.Microsecond) }); n != 0 {
		t.Errorf("DNS observer allocates %v times per reply", n)
	}
	m.ObserveApply(20 * time.Millisecond)

	t0 := time.Now().Add(time.Second)
	old := time.Now().Add(-time.Hour)
	m.ObserveEvents([]state.Event{
		{Seq: 1, Kind: state.EventEvacuate, Region: "eu-west", Time: old}, // history: pairs, not counted
		{Seq: 2, Kind: state.EventEvacuated, Region: "eu-west", Time: old},
		{Seq: 3, Kind: state.EventEvacuate, Region: "us-east", Time: t0},
		{Seq: 4, Kind: state.EventStep, Region: "us-east", Time: t0.Add(30 * time.Second)},
		{Seq: 5, Kind: state.EventEvacuated, Region: "us-east", Time: t0.Add(60 * time.Second)},
		{Seq: 6, Kind: state.EventEvacuate, Region: "us-west", Time: t0},
		{Seq: 7, Kind: state.EventRestore, Region: "us-west", Time: t0.Add(time.Second)},
		{Seq: 8, Kind: state.EventRestore, Region: "us-east", Time: t0.Add(90 * time.Second)}, // after completion: not a revert
	})

	fams := scrape(t, m)
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"evac_region_weight", []string{"region", "us-east"}, 100},
		{"evac_region_weight", []string{"region", "us-west"}, 40},
		{"evac_region_state", []string{"region", "us-east", "state", "active"}, 1},
		{"evac_region_state", []string{"region", "us-east", "state", "evacuated"}, 0},
		{"evac_region_health", []string{"region", "us-east"}, 0.5},
		{"evac_region_service_healthy", []string{"region", "us-west", "service", "api"}, 1},
		{"evac_region_observers", []string{"region", "us-east"}, 2},
		{"evac_region_observers", []string{"region", "us-west"}, 0},
		{"evac_region_agents", []string{"region", "us-east", "state", "dead"}, 1},
		{"evac_region_agents", []string{"region", "us-west", "state", "left"}, 2},
		{"evac_region_agents", []string{"region", "us-west", "state", "alive"}, 0},
		{"evac_dns_queries_total", []string{"qtype", "A", "rcode", "NOERROR"}, 2},
		{"evac_dns_queries_total", []string{"qtype", "AAAA", "rcode", "NXDOMAIN"}, 1},
		{"evac_dns_queries_total", []string{"qtype", "other", "rcode", "other"}, 1},
		{"evac_dns_reply_duration_seconds", nil, 105}, // 4 + AllocsPerRun's 100 runs and its warm-up
		{"evac_raft_leader", nil, 1},
		{"evac_raft_term", nil, 7},
		{"evac_raft_commit_index", nil, 42},
		{"evac_raft_applied_index", nil, 41},
		{"evac_raft_apply_duration_seconds", nil, 1},
		{"evac_gossip_members", []string{"state", "alive"}, 2},
		{"evac_gossip_members", []string{"state", "dead"}, 1},
		{"evac_gossip_members", []string{"state", "left"}, 0},
		{"evac_evacuations_total", []string{"outcome", "started"}, 2},
		{"evac_evacuations_total", []string{"outcome", "completed"}, 1},
		{"evac_evacuations_total", []string{"outcome", "reverted"}, 1},
		{"evac_evacuation_duration_seconds", nil, 1},
		{"evac_build_info", []string{"goversion", runtime.Version(), "revision", buildinfo.Get().Revision, "version", buildinfo.Get().Version}, 1},
	}
	for _, c := range checks {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if _, ok := fams["evac_region_health"]; ok {
		for _, mm := range fams["evac_region_health"].Metric {
			if mm.Label[0].GetValue() == "us-west" {
				t.Error("evac_region_health for us-west, whose health is unknown")
			}
		}
	}
	if h := fams["evac_evacuation_duration_seconds"].Metric[0].Histogram; h.GetSampleSum() != 60 {
		t.Errorf("evacuation duration sum %v, want 60", h.GetSampleSum())
	}
}

// TestRegistriesAreSeparate: two controllers in one process each get
// their own series.
func TestRegistriesAreSeparate(t *testing.T) {
	a, b := New(fakeSource{st: state.Empty()}), New(fakeSource{st: state.Empty()})
	a.DNSObserver()(dns.TypeA, dns.RcodeSuccess, 0)
	if got := value(t, scrape(t, b), "evac_dns_queries_total", "qtype", "A", "rcode", "NOERROR"); got != 0 {
		t.Fatalf("b counts a's query: %v", got)
	}
	if got := value(t, scrape(t, a), "evac_dns_queries_total", "qtype", "A", "rcode", "NOERROR"); got != 1 {
		t.Fatalf("a: %v", got)
	}
}

// TestDashboardSeries: every evac_ series the Grafana dashboard queries is
// one this package exports.
func TestDashboardSeries(t *testing.T) {
	b, err := os.ReadFile("../../docs/grafana-evac.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct{ Panels []json.RawMessage }
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	cfg, err := state.ParseConfig([]byte(steering))
	if err != nil {
		t.Fatal(err)
	}
	m := New(fakeSource{st: apply(t, state.Empty(), state.CmdApplyConfig, state.ApplyConfig{Config: cfg})})
	fams := scrape(t, m)
	names := regexp.MustCompile(`evac_[a-z_]+`).FindAllString(string(b), -1)
	if len(names) < 10 {
		t.Fatalf("only %d series in the dashboard", len(names))
	}
	for _, n := range names {
		base := strings.TrimSuffix(n, "_bucket")
		if _, ok := fams[base]; !ok {
			t.Errorf("dashboard queries %s, which is not exported", n)
		}
	}
}
