// FROZEN at commit aa66dac (the last release whose Apply parsed user input).
// This file is used ONLY to apply Raft log entries written by that release
// and earlier, so that they replay to the state that release produced. Never
// edit it: a change here changes the state old logs replay to. Live
// validation is in the package it was copied from.

package runbooks

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// Action is one step with its templates rendered and its fields typed.
type Action struct {
	Kind string `json:"kind"`
	// Line is where the step is in the runbook.
	Line   int    `json:"line"`
	Region string `json:"region,omitempty"`
	// Weight is the shift's target weight.
	Weight   int      `json:"weight"`
	Duration Duration `json:"duration,omitempty"`
	Check    string   `json:"check,omitempty"`
	// AbortOnFail (default true) aborts the drill when the gate fails.
	AbortOnFail  bool     `json:"abort_on_fail,omitempty"`
	Ramp         []int    `json:"ramp,omitempty"`
	StepInterval Duration `json:"step_interval,omitempty"`
	Message      string   `json:"message,omitempty"`
}

// Describe is a one-line summary of the action, e.g. "shift us-east to 0".
func (a Action) Describe() string {
	switch a.Kind {
	case KindShift:
		return fmt.Sprintf("shift %s to %d", a.Region, a.Weight)
	case KindWait:
		return "wait " + a.Duration.String()
	case KindGate:
		s := "gate " + a.Check
		if a.Region != "" {
			s += " " + a.Region
		}
		if !a.AbortOnFail {
			s += " (continue on failure)"
		}
		return s
	case KindRestore:
		s := "restore " + a.Region
		if len(a.Ramp) > 0 {
			s += fmt.Sprintf(" ramp %v", a.Ramp)
		}
		if a.StepInterval > 0 {
			s += " every " + a.StepInterval.String()
		}
		return s
	case KindNotify:
		return "notify: " + a.Message
	}
	return a.Kind
}

// Values resolves the parameter values of a drill: given values, then
// defaults. Unknown and missing required parameters are errors.
func (rb *Runbook) Values(given map[string]string) (map[string]string, error) {
	var problems []string
	vals := map[string]string{}
	for k, v := range given {
		if _, ok := rb.Params[k]; !ok {
			problems = append(problems, fmt.Sprintf("unknown parameter %q (runbook %s takes %s)", k, rb.Name, paramList(rb)))
			continue
		}
		vals[k] = v
	}
	for _, n := range rb.ParamNames() {
		prm := rb.Params[n]
		if _, ok := vals[n]; ok {
			continue
		}
		if prm.Required {
			problems = append(problems, fmt.Sprintf("parameter %q is required", n))
			continue
		}
		vals[n] = prm.Default
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, fmt.Errorf("%w: %s", ErrParams, strings.Join(problems, "; "))
	}
	return vals, nil
}

func paramList(rb *Runbook) string {
	if len(rb.Params) == 0 {
		return "no parameters"
	}
	return strings.Join(rb.ParamNames(), ", ")
}

// Render resolves the parameters and returns the steps as actions. It is
// deterministic: the controllers call it inside Apply.
func (rb *Runbook) Render(given map[string]string) ([]Action, error) {
	vals, err := rb.Values(given)
	if err != nil {
		return nil, err
	}
	if errs := rb.render(vals, false); len(errs) > 0 {
		return nil, Errors(errs)
	}
	out := make([]Action, len(rb.Steps))
	for i, st := range rb.Steps {
		out[i] = rb.action(st, vals)
	}
	return out, nil
}

// render checks every step with vals; offline (parse time, dummy values)
// checks only fields without templates, plus the templates' syntax and
// parameter names.
func (rb *Runbook) render(vals map[string]string, offline bool) []error {
	p := &parser{file: rb.File}
	for _, st := range rb.Steps {
		field := fmt.Sprintf("steps[%d].%s", st.Index, st.Kind)
		for _, name := range sortedFieldNames(st) {
			f := st.Fields[name]
			fn := field + "." + name
			items := []Field{f}
			if f.IsList {
				items = f.List
			}
			for k, item := range items {
				ifn := fn
				if f.IsList {
					ifn = fmt.Sprintf("%s[%d]", fn, k)
				}
				s, templated, err := expand(item.Raw, vals)
				if err != nil {
					p.errf(item.Line, ifn, "%v", err)
					continue
				}
				if offline && templated {
					continue
				}
				if msg := checkValue(st.Kind, name, s, f.IsList, templated); msg != "" {
					p.errf(item.Line, ifn, "%s", msg)
				}
			}
			if !f.IsList && name == "ramp" {
				p.errf(f.Line, fn, "must be a list of weights, e.g. [50, 100]")
			}
			if f.IsList && name != "ramp" {
				p.errf(f.Line, fn, "must be a scalar, not a list")
			}
		}
		if st.Kind == KindGate {
			p.checkGate(st, vals, field, offline)
		}
		if st.Kind == KindRestore {
			p.checkRamp(st, vals, field, offline)
		}
	}
	return p.sorted()
}

func sortedFieldNames(st Step) []string {
	names := make([]string, 0, len(st.Fields))
	for n := range st.Fields {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// maxRendered caps what one templated field may expand to.
const maxRendered = 4096

// expand renders s as a template over vals when it contains one. Only
// parameter references ({{ .name }}) are allowed: the full template language
// has loops ({{ range 1000000000 }}) and printf widths that would let one
// runbook pin a CPU or exhaust memory inside every controller's Apply.
func expand(s string, vals map[string]string) (string, bool, error) {
	if !strings.Contains(s, "{{") {
		return s, false, nil
	}
	t, err := template.New("field").Option("missingkey=error").Parse(s)
	if err != nil {
		return "", true, fmt.Errorf("bad template %q: %v", s, trimTemplateErr(err))
	}
	if err := onlyParamRefs(t.Root); err != nil {
		return "", true, fmt.Errorf("bad template %q: %v", s, err)
	}
	b := &cappedBuilder{max: maxRendered}
	if err := t.Execute(b, vals); err != nil {
		return "", true, fmt.Errorf("template %q: %v", s, trimTemplateErr(err))
	}
	return b.String(), true, nil
}

// onlyParamRefs accepts text and {{ .name }} actions, nothing else.
func onlyParamRefs(root *parse.ListNode) error {
	for _, n := range root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
		case *parse.ActionNode:
			p := n.Pipe
			if len(p.Decl) == 0 && len(p.Cmds) == 1 && len(p.Cmds[0].Args) == 1 {
				if f, ok := p.Cmds[0].Args[0].(*parse.FieldNode); ok && len(f.Ident) == 1 {
					continue
				}
			}
			return fmt.Errorf("only parameter references like {{ .region }} are allowed, not %s", n)
		default:
			return fmt.Errorf("only parameter references like {{ .region }} are allowed, not %s", n)
		}
	}
	return nil
}

// cappedBuilder is a strings.Builder that refuses to grow past max bytes.
type cappedBuilder struct {
	strings.Builder
	max int
}

func (c *cappedBuilder) Write(p []byte) (int, error) {
	if c.Len()+len(p) > c.max {
		return 0, fmt.Errorf("renders to more than %d bytes", c.max)
	}
	return c.Builder.Write(p)
}

// trimTemplateErr drops text/template's "template: field:1:5: " prefix.
func trimTemplateErr(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ": executing"); i >= 0 {
		msg = msg[i+2:]
	}
	if strings.HasPrefix(msg, "template: field:") {
		if i := strings.Index(msg[len("template: field:"):], " "); i >= 0 {
			msg = msg[len("template: field:")+i+1:]
		}
	}
	msg = strings.Replace(msg, `executing "field" at <`, "at <", 1)
	return msg
}

func checkValue(kind, name, s string, inList, templated bool) string {
	from := ""
	if templated {
		from = " (from a template)"
	}
	switch name {
	case "region":
		if !nameRE.MatchString(s) {
			return fmt.Sprintf("%q%s is not a valid region name", s, from)
		}
	case "weight":
		w, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Sprintf("%q%s is not a whole number", s, from)
		}
		if w < 0 || w > 100 {
			return fmt.Sprintf("%d%s is not within 0..100", w, from)
		}
	case "ramp":
		if !inList {
			return ""
		}
		w, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Sprintf("%q%s is not a whole number", s, from)
		}
		if w < 0 || w > 100 {
			return fmt.Sprintf("%d%s is not within 0..100", w, from)
		}
	case "duration", "step_interval":
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Sprintf("%q%s is not a duration like 30s or 10m", s, from)
		}
		if d <= 0 && (kind == KindWait || name == "step_interval") {
			return fmt.Sprintf("%s%s must be positive", s, from)
		}
		if d > MaxWait*time.Second {
			return fmt.Sprintf("%s%s is longer than 24h", s, from)
		}
	case "check":
		if s != CheckOthersHealthy && s != CheckAllHealthy && s != CheckRegionHealthy {
			return fmt.Sprintf("unknown check %q%s (want %s, %s or %s)", s, from, CheckOthersHealthy, CheckAllHealthy, CheckRegionHealthy)
		}
	case "abort_on_fail":
		if s != "true" && s != "false" {
			return fmt.Sprintf("%q%s must be true or false", s, from)
		}
	case "message":
		if strings.TrimSpace(s) == "" {
			return "must not be empty" + from
		}
		if len(s) > maxMessage {
			return fmt.Sprintf("longer than %d bytes%s", maxMessage, from)
		}
	}
	return ""
}

func (p *parser) checkGate(st Step, vals map[string]string, field string, offline bool) {
	c, ok := st.Fields["check"]
	if !ok {
		return
	}
	check, templated, err := expand(c.Raw, vals)
	if err != nil || offline && templated {
		return
	}
	if _, hasRegion := st.Fields["region"]; check == CheckRegionHealthy && !hasRegion {
		p.errf(c.Line, field+".region", "required for check %s", CheckRegionHealthy)
	}
	if r, hasRegion := st.Fields["region"]; check == CheckAllHealthy && hasRegion {
		p.errf(r.Line, field+".region", "check %s takes no region", CheckAllHealthy)
	}
}

func (p *parser) checkRamp(st Step, vals map[string]string, field string, offline bool) {
	f, ok := st.Fields["ramp"]
	if !ok || !f.IsList {
		return
	}
	if len(f.List) == 0 || len(f.List) > 20 {
		p.errf(f.Line, field+".ramp", "1 to 20 weights, got %d", len(f.List))
		return
	}
	prev := -1
	for k, item := range f.List {
		s, templated, err := expand(item.Raw, vals)
		if err != nil || offline && templated {
			return
		}
		w, err := strconv.Atoi(s)
		if err != nil {
			return // reported by checkValue
		}
		if w < prev {
			p.errf(item.Line, fmt.Sprintf("%s.ramp[%d]", field, k), "%d moves away from 100 (after %d)", w, prev)
		}
		prev = w
	}
	if prev != 100 && prev >= 0 {
		p.errf(f.Line, field+".ramp", "the last weight must be 100, got %d", prev)
	}
}

// action builds an Action from a step whose fields render cleanly.
func (rb *Runbook) action(st Step, vals map[string]string) Action {
	get := func(name string) string {
		f, ok := st.Fields[name]
		if !ok || f.IsList {
			return ""
		}
		s, _, _ := expand(f.Raw, vals)
		return s
	}
	a := Action{Kind: st.Kind, Line: st.Line, Region: get("region"), Check: get("check"), Message: get("message"),
		AbortOnFail: true}
	if s := get("weight"); s != "" {
		a.Weight, _ = strconv.Atoi(s)
	}
	if s := get("duration"); s != "" {
		d, _ := time.ParseDuration(s)
		a.Duration = Duration(d)
	}
	if s := get("step_interval"); s != "" {
		d, _ := time.ParseDuration(s)
		a.StepInterval = Duration(d)
	}
	if get("abort_on_fail") == "false" {
		a.AbortOnFail = false
	}
	if st.Kind != KindGate {
		a.AbortOnFail = false
	}
	if f, ok := st.Fields["ramp"]; ok {
		for _, item := range f.List {
			s, _, _ := expand(item.Raw, vals)
			w, _ := strconv.Atoi(s)
			a.Ramp = append(a.Ramp, w)
		}
	}
	return a
}

// Regions returns the regions the actions change (shift and restore), in
// order of first appearance: the regions a drill holds.
func Regions(actions []Action) []string {
	var out []string
	for _, a := range actions {
		if (a.Kind == KindShift || a.Kind == KindRestore) && !slices.Contains(out, a.Region) {
			out = append(out, a.Region)
		}
	}
	return out
}
