package runbooks

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// errLineRE is the shape of every validation error: FILE:LINE: FIELD: message.
var errLineRE = regexp.MustCompile(`^fuzz\.yaml:[1-9][0-9]*: ([A-Za-z0-9_.\[\]-]+|"(\\.|[^"\\])*"): `)

// FuzzParseRunbook: Parse of any input either fails with errors that each
// name the file, a line and a field, or gives a runbook that keeps the
// limits it promises and renders, with every parameter given, to one typed
// action per step (or fails naming line and field again). The templates
// cannot loop or allocate without bound (see TestTemplatesOnlyReferenceParams).
func FuzzParseRunbook(f *testing.F) {
	for _, src := range Shipped() {
		f.Add(src, "us-east")
	}
	f.Add([]byte("name: x\nsteps: [{wait: {duration: 1s}}]\n"), "10m")
	f.Add([]byte("name: x\nparams: {w: {default: '50'}}\nsteps:\n  - shift: {region: a, weight: '{{ .w }}'}\n  - restore: {region: a, ramp: ['{{.w}}', 100]}\n"), "100")
	f.Add([]byte("name: x\nsteps:\n  - notify: {message: '{{ range 1000000000 }}{{ end }}'}\n"), "")
	f.Add([]byte("name: x\nsteps:\n  - gate: {check: region_healthy}\n  - gate: {check: all_healthy, region: a}\n"), "a")
	f.Add([]byte("&a [*a]"), "")
	f.Fuzz(func(t *testing.T, data []byte, value string) {
		rb, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml:") {
				t.Fatalf("error does not name the file: %v", err)
			}
			var errs Errors
			if errors.As(err, &errs) {
				if len(errs) == 0 {
					t.Fatal("empty Errors")
				}
				for _, e := range errs {
					if !errLineRE.MatchString(e.Error()) {
						t.Fatalf("error does not name line and field: %q", e)
					}
				}
			}
			return
		}
		if !nameRE.MatchString(rb.Name) || len(rb.Steps) == 0 || len(rb.Steps) > MaxSteps {
			t.Fatalf("accepted name %q with %d steps", rb.Name, len(rb.Steps))
		}
		for n, p := range rb.Params {
			if !paramRE.MatchString(n) || p.Required && p.Default != "" {
				t.Fatalf("accepted parameter %q %+v", n, p)
			}
		}
		given := map[string]string{}
		for _, n := range rb.ParamNames() {
			given[n] = value
		}
		acts, err := rb.Render(given)
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("render error is not Errors: %v", err)
			}
			for _, e := range errs {
				if !errLineRE.MatchString(e.Error()) {
					t.Fatalf("render error does not name line and field: %q", e)
				}
			}
			return
		}
		if len(acts) != len(rb.Steps) {
			t.Fatalf("%d actions for %d steps", len(acts), len(rb.Steps))
		}
		for i, a := range acts {
			if a.Kind != rb.Steps[i].Kind || a.Weight < 0 || a.Weight > 100 || len(a.Message) > maxMessage {
				t.Fatalf("action %d: %+v", i, a)
			}
			if (a.Kind == KindShift || a.Kind == KindRestore) && !nameRE.MatchString(a.Region) {
				t.Fatalf("action %d changes region %q", i, a.Region)
			}
			if a.Kind == KindWait && (a.Duration <= 0 || a.Duration.D() > MaxWait*1e9) {
				t.Fatalf("action %d waits %s", i, a.Duration)
			}
			if a.Kind == KindRestore && len(a.Ramp) > 0 && a.Ramp[len(a.Ramp)-1] != 100 {
				t.Fatalf("action %d: restore ramp %v does not end at 100", i, a.Ramp)
			}
		}
	})
}
