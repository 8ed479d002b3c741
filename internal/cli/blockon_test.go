package cli

import (
	"strings"
	"testing"
)

func TestParseBlockOn(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want string // "" valid; else a substring of the error
		n    int
	}{
		{"none", nil, "", 0},
		{"alert", []string{"{alertmanager: http://127.0.0.1:9093, alert: HighErrorRate}"}, "", 1},
		{"query, JSON", []string{`{"prometheus": "http://127.0.0.1:9090", "query": "sum(rate(errors_total[5m]))", "above": 10}`}, "", 1},
		{"query with commas, quoted", []string{`{prometheus: http://127.0.0.1:9090, query: "sum by (a, b) (up)", below: 1}`}, "", 1},
		{"two", []string{"{alertmanager: http://a:9093, alert: A}", "{alertmanager: http://a:9093, alert: B}"}, "", 2},
		{"unknown field", []string{"{alertmanager: http://a:9093, alertname: A}"}, `field alertname not found`, 0},
		{"not a mapping", []string{"HighErrorRate"}, "--block-on", 0},
		{"empty", []string{""}, "empty", 0},
		{"invalid", []string{"{alertmanager: http://a:9093}"}, "block_on[0].alert: required", 0},
		{"second invalid", []string{"{alertmanager: http://a:9093, alert: A}", "{prometheus: http://p, query: up}"}, "block_on[1]: set exactly one of above and below", 0},
		{"two documents", []string{"{alertmanager: http://a:9093, alert: A}\n---\n{}"}, "one mapping per flag", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bs, err := parseBlockOn(tc.in)
			if tc.want == "" {
				if err != nil || len(bs) != tc.n {
					t.Fatalf("got %+v, %v", bs, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if code := ExitCode(err); code != 2 {
				t.Errorf("exit code %d, want 2 (usage)", code)
			}
		})
	}
}

func TestDescribeBlockOn(t *testing.T) {
	bs, err := parseBlockOn([]string{"{alertmanager: http://a:9093, alert: A}", "{prometheus: http://p:9090, query: sum(up), below: 2}"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := describeBlockOn(bs), "alert A at http://a:9093; query sum(up) < 2 at http://p:9090"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
