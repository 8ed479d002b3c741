package yamlcheck

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

type dur time.Duration

func (d *dur) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("invalid duration %q (want e.g. 30s)", n.Value)
	}
	*d = dur(v)
	return nil
}

type inner struct {
	Name string `yaml:"name"`
	TTL  uint32 `yaml:"ttl,omitempty"`
}

type common struct {
	Zone string `yaml:"zone"`
}

type config struct {
	common   `yaml:",inline"`
	Services []inner            `yaml:"services"`
	Every    dur                `yaml:"every"`
	Hosts    map[string]string  `yaml:"hosts"`
	Ratio    float64            `yaml:"ratio"`
	On       *bool              `yaml:"on"`
	Lists    map[string][]inner `yaml:"lists"`
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // each a line of the error, in order
	}{
		{"valid", "zone: a.\nservices: [{name: x, ttl: 3}]\nevery: 2s\nhosts: {a: b}\nratio: 0.5\non: true\n", nil},
		{"all at once", `zone: a.
services:
  - {name: x, tll: 3}
  - name: y
    ttl: many
every: 3
ratio: half
colour: red
`, []string{
			`line 3: services[0].tll: unknown field; did you mean ttl?`,
			`line 5: services[1].ttl: want a whole number, 0 or more, got "many"`,
			`line 6: every: invalid duration "3" (want e.g. 30s)`,
			`line 7: ratio: want a number, got "half"`,
			`line 8: colour: unknown field (want one of every, hosts, lists, on, ratio, services, zone)`,
		}},
		{"shapes", "services: {name: x}\nhosts: [a]\nzone: [1]\nlists: {a: [{nme: 1}]}\n", []string{
			`line 1: services: want a list, got a mapping`,
			`line 2: hosts: want a mapping, got a list`,
			`line 3: zone: want a string, got a list`,
			`line 4: lists.a[0].nme: unknown field; did you mean name?`,
		}},
		{"duplicate", "zone: a\nzone: b\n", []string{`line 2: zone: duplicate key`}},
		{"syntax", "zone: a\n  services: [\n", []string{"line 2: YAML syntax: "}},
		{"empty", "", []string{"line 1: the file is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c config
			_, err := Decode([]byte(tc.yaml), &c)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *Errors
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want *Errors", err)
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems:\n%s\nwant %d", len(got), err, len(tc.want))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("problem %d:\n got %s\nwant %s", i, got[i], tc.want[i])
				}
				if strings.Contains(got[i], "yamlcheck.") || strings.Contains(got[i], "uint32") {
					t.Errorf("a Go type name in %q", got[i])
				}
			}
			if f := InFile("s.yaml", err).Error(); !strings.HasPrefix(f, "s.yaml:") || strings.Contains(f, "line ") && tc.name != "empty" && !strings.Contains(f, "s.yaml:1:") && !strings.Contains(f, "s.yaml:2:") && !strings.Contains(f, "s.yaml:3:") {
				t.Errorf("in a file: %s", f)
			}
		})
	}
}

func TestAnnotate(t *testing.T) {
	var c config
	doc, err := Decode([]byte("zone: a.\nservices:\n  - name: x\n    ttl: 99999\n"), &c)
	if err != nil {
		t.Fatal(err)
	}
	got := doc.Annotate(errors.Join(
		errors.New("services[0].ttl: must be at most 86400"),
		errors.New(`services[0].endpoints.us-east[1]: "x" is not an IP address`), // not in the file: its parent's line
		errors.New("zone: required"),
		errors.New("something without a field"),
	))
	want := "line 0: something without a field"
	_ = want
	lines := strings.Split(InFile("s.yaml", got).Error(), "\n")
	for i, w := range []string{
		"s.yaml: something without a field",
		"s.yaml:1: zone: required",
		"s.yaml:3: services[0].endpoints.us-east[1]: \"x\" is not an IP address",
		"s.yaml:4: services[0].ttl: must be at most 86400",
	} {
		if i >= len(lines) || lines[i] != w {
			t.Errorf("line %d: got %q, want %q", i, lines, w)
		}
	}
}
