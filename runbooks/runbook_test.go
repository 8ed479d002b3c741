package runbooks

import (
	"errors"
	"strings"
	"testing"
)

func TestShippedRunbooksAreValid(t *testing.T) {
	shipped := Shipped()
	for _, want := range []string{"chaos-kong.yaml", "canary-10.yaml", "restore-region.yaml", "rolling-exercise.yaml"} {
		if _, ok := shipped[want]; !ok {
			t.Errorf("%s is not shipped", want)
		}
	}
	params := map[string]string{"region": "us-east", "region_a": "us-east", "region_b": "us-west", "region_c": "eu-west"}
	for name, src := range shipped {
		rb, err := Parse(name, src)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if rb.Name+".yaml" != name {
			t.Errorf("%s declares name %q", name, rb.Name)
		}
		given := map[string]string{}
		for _, p := range rb.ParamNames() {
			if v, ok := params[p]; ok && rb.Params[p].Required {
				given[p] = v
			}
		}
		acts, err := rb.Render(given)
		if err != nil {
			t.Errorf("%s: render: %v", name, err)
			continue
		}
		if len(acts) != len(rb.Steps) || len(Regions(acts)) == 0 {
			t.Errorf("%s: %d actions, regions %v", name, len(acts), Regions(acts))
		}
	}
}

func TestParseErrorsNameLineAndField(t *testing.T) {
	src := `name: bad
params:
  region: {required: true}
preconditions: [not_frozen, sunny]
steps:
  - shift: {region: us-east, weight: 150}
  - wait: {duration: soon}
  - gate: {check: vibes}
  - restore: {region: "{{ .region }}", ramp: [50, 20]}
  - notify: {}
  - explode: {region: us-east}
  - shift: {region: "{{ .zone }}", weight: 0}
  - shift: {region: us-east, weight: 10, colour: red}
  - gate: {check: region_healthy}
`
	_, err := Parse("runbook.yaml", []byte(src))
	if err == nil {
		t.Fatal("invalid runbook accepted")
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %T is not Errors", err)
	}
	want := []string{
		`runbook.yaml:4: preconditions[1]: unknown precondition "sunny"`,
		`runbook.yaml:6: steps[0].shift.weight: 150 is not within 0..100`,
		`runbook.yaml:7: steps[1].wait.duration: "soon" is not a duration`,
		`runbook.yaml:8: steps[2].gate.check: unknown check "vibes"`,
		`runbook.yaml:9: steps[3].restore.ramp[1]: 20 moves away from 100`,
		`runbook.yaml:9: steps[3].restore.ramp: the last weight must be 100, got 20`,
		`runbook.yaml:10: steps[4].notify.message: required`,
		`runbook.yaml:11: steps[5]: unknown step kind "explode"`,
		`runbook.yaml:12: steps[6].shift.region: template "{{ .zone }}": `,
		`runbook.yaml:13: steps[7].shift.colour: unknown field`,
		`runbook.yaml:14: steps[8].gate.region: required for check region_healthy`,
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing %q in:\n%s", w, msg)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("%d errors, want %d:\n%s", len(errs), len(want), msg)
	}
}

func TestParseStructure(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"", "empty"},
		{"- a\n", "a runbook is a mapping"},
		{"name: x\n", ":1: steps: required"},
		{"steps: [{wait: {duration: 1s}}]\n", ":1: name: required"},
		{"name: Bad_Name\nsteps: [{wait: {duration: 1s}}]\n", ":1: name: \"Bad_Name\" is not a valid name"},
		{"name: x\ncolour: red\nsteps: [{wait: {duration: 1s}}]\n", ":2: colour: unknown key"},
		{"name: x\nsteps: [{wait: {duration: 1s}, shift: {region: a, weight: 1}}]\n", ":2: steps[0]: a step is a mapping with exactly one key"},
		{"name: x\nparams: {region-a: {}}\nsteps: [{wait: {duration: 1s}}]\n", ":2: params.region-a: \"region-a\" is not a valid parameter name"},
		{"name: x\nparams: {r: {required: true, default: a}}\nsteps: [{wait: {duration: 1s}}]\n", ":2: params.r: a required parameter cannot have a default"},
		{"name: x\nsteps: [{restore: {region: a, ramp: 100}}]\n", ":2: steps[0].restore.ramp: must be a list"},
		{"name: x\nsteps: [{restore: {region: a, ramp: [10, 50]}}]\n", ":2: steps[0].restore.ramp: the last weight must be 100, got 50"},
		{"name: x\nsteps: [{gate: {check: all_healthy, region: a}}]\n", ":2: steps[0].gate.region: check all_healthy takes no region"},
		{"name: x\nsteps: [{wait: {duration: \"{{ .hold \"}}]\n", "bad template"},
	} {
		_, err := Parse("f.yaml", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tc.src, err, tc.want)
		}
	}
}

func TestRenderTemplates(t *testing.T) {
	src := `name: t
params:
  region: {required: true}
  weight: {default: "25"}
  hold: {default: 10m}
steps:
  - shift: {region: "{{ .region }}", weight: "{{ .weight }}"}
  - wait: {duration: "{{ .hold }}"}
  - gate: {check: others_healthy, region: "{{ .region }}", abort_on_fail: false}
  - gate: {check: all_healthy}
  - restore: {region: "{{ .region }}", ramp: ["{{ .weight }}", 100], step_interval: 30s}
  - notify: {message: "done with {{ .region }}"}
`
	rb, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	acts, err := rb.Render(map[string]string{"region": "eu-west"})
	if err != nil {
		t.Fatal(err)
	}
	if a := acts[0]; a.Region != "eu-west" || a.Weight != 25 || a.Line != 7 {
		t.Errorf("shift = %+v", a)
	}
	if a := acts[1]; a.Duration.String() != "10m0s" {
		t.Errorf("wait = %+v", a)
	}
	if acts[2].AbortOnFail || !acts[3].AbortOnFail {
		t.Errorf("abort_on_fail: %v %v (default must be true)", acts[2].AbortOnFail, acts[3].AbortOnFail)
	}
	if a := acts[4]; len(a.Ramp) != 2 || a.Ramp[0] != 25 || a.StepInterval.String() != "30s" {
		t.Errorf("restore = %+v", a)
	}
	if acts[5].Message != "done with eu-west" {
		t.Errorf("notify = %+v", acts[5])
	}
	if got := Regions(acts); len(got) != 1 || got[0] != "eu-west" {
		t.Errorf("Regions = %v", got)
	}

	// Typed checks of rendered values carry line and field.
	_, err = rb.Render(map[string]string{"region": "eu-west", "weight": "150"})
	if err == nil || !strings.Contains(err.Error(), "t.yaml:7: steps[0].shift.weight: 150 (from a template) is not within 0..100") {
		t.Errorf("weight 150: %v", err)
	}
	_, err = rb.Render(map[string]string{"region": "EU West"})
	if err == nil || !strings.Contains(err.Error(), `t.yaml:7: steps[0].shift.region: "EU West" (from a template) is not a valid region name`) {
		t.Errorf("bad region: %v", err)
	}
	_, err = rb.Render(map[string]string{})
	if !errors.Is(err, ErrParams) || !strings.Contains(err.Error(), `parameter "region" is required`) {
		t.Errorf("missing region: %v", err)
	}
	_, err = rb.Render(map[string]string{"region": "a", "colour": "red"})
	if !errors.Is(err, ErrParams) || !strings.Contains(err.Error(), `unknown parameter "colour"`) {
		t.Errorf("unknown param: %v", err)
	}
}

// Templates may only reference parameters: the full template language lets
// one runbook loop a billion times or printf a gigabyte inside every
// controller's Apply.
func TestTemplatesOnlyReferenceParams(t *testing.T) {
	for _, tmpl := range []string{
		`{{ range 1000000000 }}{{ end }}`,
		`{{ printf "%0999999999d" 1 }}`,
		`{{ if .region }}x{{ end }}`,
		`{{ $x := .region }}{{ $x }}`,
		`{{ .region | len }}`,
		`{{ . }}`,
		`{{ "us-east" }}`,
		`{{ block "b" . }}{{ end }}`,
		`{{ define "field" }}{{ range 1000000000 }}{{ end }}{{ end }}`,
		`{{ define "x" }}{{ range 1000000000 }}{{ end }}{{ end }}{{ template "x" }}`,
	} {
		src := "name: t\nparams: {region: {default: us-east}}\nsteps:\n  - notify: {message: '" + tmpl + "'}\n"
		_, err := Parse("t.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), "t.yaml:4: steps[0].notify.message: bad template") ||
			!strings.Contains(err.Error(), "only parameter references") {
			t.Errorf("%s: %v", tmpl, err)
		}
	}
	// A parameter value cannot blow a field up either.
	rb, err := Parse("t.yaml", []byte("name: t\nparams: {m: {required: true}}\nsteps:\n  - notify: {message: '{{.m}}{{.m}}{{.m}}'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rb.Render(map[string]string{"m": strings.Repeat("x", 2000)}); err == nil || !strings.Contains(err.Error(), "renders to more than") {
		t.Errorf("6000-byte rendering: %v", err)
	}
}
