package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// How a series adds up across controllers. Prometheus scrapes every
// controller, so a panel aggregates one series per controller; what the
// right aggregation is depends on what one controller's series means.
const (
	// own: each controller counts what it did itself (the DNS replies it
	// sent, its own Raft view): sum is the cluster's total.
	own = "own"
	// copy: every controller reports the same thing, from the replicated
	// state or audit log or from gossip that reaches them all: summing
	// multiplies it by the number of controllers. Use max (or min).
	copied = "copy"
)

// seriesKind classifies every series the dashboard may use. A new panel
// over a series not listed here fails TestDashboardAggregation until the
// series is classified.
var seriesKind = map[string]string{
	"evac_region_weight":                 copied,
	"evac_region_state":                  copied,
	"evac_region_health":                 copied, // each controller's gossip view of the same agents
	"evac_region_service_healthy":        copied,
	"evac_frozen":                        copied,
	"evac_config_version":                copied,
	"evac_evacuations_total":             copied, // counted from the audit log by every controller
	"evac_evacuation_duration_seconds":   copied,
	"evac_notifications_delivered_total": copied,
	"evac_notifications_failed_total":    copied,
	"evac_notifications_pending":         copied,
	"evac_agents_enrolled":               copied,
	"evac_agents_enrolment_enforced":     copied,
	"evac_gossip_reports_dropped_total":  copied, // every controller gets, and drops, every report
	"evac_gossip_members":                copied,
	"evac_dns_queries_total":             own,
	"evac_dns_reply_duration_seconds":    own,
	"evac_raft_leader":                   own,
	"evac_raft_term":                     own,
	"evac_raft_commit_index":             own,
	"evac_raft_applied_index":            own,
	"evac_raft_apply_duration_seconds":   own,
	"evac_notification_attempts_total":   own, // the leader's own attempts
	"evac_notification_delivery_seconds": own,
	"evac_fsm_ignored_commands_total":    own,
	"evac_build_info":                    own,
}

var (
	seriesRE = regexp.MustCompile(`\bevac_[a-z_]+`)
	// sumRE finds a sum or count aggregation and its optional grouping,
	// up to the parenthesis that opens its argument.
	sumRE = regexp.MustCompile(`\b(sum|count)\s*(?:(?:by|without)\s*\([^)]*\)\s*)?\(`)
)

// baseName strips a histogram's suffixes.
func baseName(s string) string {
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(s, suf); ok && seriesKind[b] != "" {
			return b
		}
	}
	return s
}

// summedCopies returns the copied series that expr sums or counts across
// controllers without first folding them with max or min.
func summedCopies(expr string) []string {
	var bad []string
	for _, m := range sumRE.FindAllStringIndex(expr, -1) {
		// The argument: from the opening parenthesis to its match.
		depth, end := 0, len(expr)
		for i := m[1] - 1; i < len(expr); i++ {
			switch expr[i] {
			case '(':
				depth++
			case ')':
				depth--
			}
			if depth == 0 {
				end = i
				break
			}
		}
		arg := expr[m[1]:end]
		if strings.Contains(arg, "max by") || strings.Contains(arg, "min by") {
			continue // folded per controller first
		}
		for _, s := range seriesRE.FindAllString(arg, -1) {
			if seriesKind[baseName(s)] == copied {
				bad = append(bad, s)
			}
		}
	}
	return bad
}

func TestSummedCopies(t *testing.T) {
	tests := []struct {
		expr string
		bad  int
	}{
		{`sum by (outcome) (increase(evac_evacuations_total{instance=~"$instance"}[1h]))`, 1},
		{`max by (outcome) (increase(evac_evacuations_total[1h]))`, 0},
		{`sum by (qtype) (rate(evac_dns_queries_total[5m]))`, 0},
		{`count by (region) (evac_region_service_healthy == 0)`, 1},
		{`count by (region) (max by (region, service) (evac_region_service_healthy) == 0)`, 0},
		{`histogram_quantile(0.5, sum by (le) (rate(evac_evacuation_duration_seconds_bucket[6h])))`, 1},
		{`sum(rate(evac_dns_queries_total{rcode="SERVFAIL"}[5m])) / sum(rate(evac_dns_queries_total[5m]))`, 0},
	}
	for _, tc := range tests {
		if got := summedCopies(tc.expr); len(got) != tc.bad {
			t.Errorf("summedCopies(%s) = %v, want %d", tc.expr, got, tc.bad)
		}
	}
}

type panel struct {
	ID      int      `json:"id"`
	Title   string   `json:"title"`
	Panels  []panel  `json:"panels"`
	Targets []target `json:"targets"`
}

type target struct {
	Expr string `json:"expr"`
}

// TestDashboardAggregation checks every panel of docs/grafana-evac.json
// against what one controller's series mean: no series every controller
// reports a copy of is summed or counted across controllers, and every
// series it uses is one this package documents.
func TestDashboardAggregation(t *testing.T) {
	b, err := os.ReadFile("../../docs/grafana-evac.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("docs/grafana-evac.json: %v", err)
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			for _, tg := range p.Targets {
				n++
				for _, s := range seriesRE.FindAllString(tg.Expr, -1) {
					base := baseName(s)
					if seriesKind[base] == "" {
						t.Errorf("panel %d %q: series %s is not classified in seriesKind (own or copy)", p.ID, p.Title, s)
					}
					short := strings.TrimPrefix(base, "evac_")
					if !strings.Contains(string(doc), base) && !strings.Contains(string(readme), "`"+short) {
						t.Errorf("panel %d %q: series %s is documented neither in metrics/doc.go nor in README's Metrics", p.ID, p.Title, s)
					}
				}
				if bad := summedCopies(tg.Expr); len(bad) > 0 {
					t.Errorf("panel %d %q: %s sums %v across controllers, but every controller reports a copy: use max", p.ID, p.Title, tg.Expr, bad)
				}
			}
		}
	}
	walk(d.Panels)
	if n < 20 {
		t.Fatalf("found only %d panel queries", n)
	}
}
