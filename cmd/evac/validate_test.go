package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evac-sh/evac/internal/cli"
)

// evac validate reports every problem of a file at once, each as
// FILE:LINE: field: message, with a suggestion for a misspelt key, no Go
// type names, and no usage hint after a data error (exit 1).
func TestValidateReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, body string
		code       int
		want       []string
	}{
		{"steering.yaml", `zone: example.com
tll: 30
nameservers: {ns1: 192.0.2.53}
regions: [{name: us-east}]
services:
  - name: api
    endpoints: {us-east: [192.0.2.11, 300.1.1.1], mars: [192.0.2.1]}
`, 1, []string{
			"steering.yaml:2: tll: unknown field; did you mean ttl?",
			`steering.yaml:7: services[0].endpoints.us-east[1]: "300.1.1.1" is not an IP address`,
			`steering.yaml:7: services[0].endpoints.mars: unknown region "mars"`,
		}},
		{"types.yaml", "zone: example.com\nttl: soon\nregions: [{name: us-east, capacity: [1]}]\npolicy: {detect_after: 30}\n", 1, []string{
			`types.yaml:2: ttl: want a whole number, 0 or more, got "soon"`,
			`types.yaml:3: regions[0].capacity: want a whole number, got a list`,
			`types.yaml:4: policy.detect_after: invalid duration "30"`,
		}},
		{"agent.yaml", "region: us-east\nchecks:\n  - {name: h, service: api, type: http, target: \"http://127.0.0.1/\", intervl: 1s}\n", 1, []string{
			"agent.yaml:3: checks[0].intervl: unknown field; did you mean interval?",
		}},
		{"broken.yaml", "zone: [\n", 1, []string{"broken.yaml:1: YAML syntax:"}},
		{"ok.yaml", "zone: example.com\nnameservers: {ns1: 192.0.2.53}\nregions: [{name: a}]\nservices: [{name: api, endpoints: {a: [192.0.2.1]}}]\n", 0,
			[]string{"valid steering config"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := write(tc.name, tc.body)
			root := newRootCmd()
			var out, errOut bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&errOut)
			root.SetArgs([]string{"validate", path})
			code := cli.ExecuteContext(context.Background(), root)
			all := out.String() + errOut.String()
			if code != tc.code {
				t.Errorf("exit %d, want %d:\n%s", code, tc.code, all)
			}
			for _, w := range tc.want {
				if !strings.Contains(all, filepath.Join(dir, w)) && !strings.Contains(all, w) {
					t.Errorf("missing %q in:\n%s", w, all)
				}
			}
			for _, bad := range []string{"--help", "state.Config", "agent.Config", "uint32", "main."} {
				if strings.Contains(all, bad) {
					t.Errorf("%q in:\n%s", bad, all)
				}
			}
		})
	}
}
