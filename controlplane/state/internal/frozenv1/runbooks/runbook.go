// FROZEN at commit aa66dac (the last release whose Apply parsed user input).
// This file is used ONLY to apply Raft log entries written by that release
// and earlier, so that they replay to the state that release produced. Never
// edit it: a change here changes the state old logs replay to. Live
// validation is in the package it was copied from.

package runbooks

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Step kinds.
const (
	KindShift   = "shift"   // set a region's traffic weight
	KindWait    = "wait"    // hold for a duration
	KindGate    = "gate"    // check health; abort the drill when it fails
	KindRestore = "restore" // bring a region back to 100 through a ramp
	KindNotify  = "notify"  // record a message in the audit log
)

// Preconditions a drill checks against the committed state when it starts.
const (
	PreAllRegionsHealthy = "all_regions_healthy" // no service marked unhealthy, every region active
	PreNotFrozen         = "not_frozen"          // automatic changes are not frozen
	PreNoDrillRunning    = "no_drill_running"    // no other drill is running
)

// Gate checks.
const (
	CheckOthersHealthy = "others_healthy" // every region but Region (default: the drill's regions) healthy
	CheckAllHealthy    = "all_healthy"    // every region healthy
	CheckRegionHealthy = "region_healthy" // Region healthy
)

// Limits.
const (
	MaxSteps       = 100
	MaxWait        = 24 * 60 * 60 // seconds
	maxMessage     = 1024
	maxDescription = 4096
)

// Runbook is a parsed, validated runbook. Step fields are still templates;
// Render turns them into Actions for a set of parameter values.
type Runbook struct {
	// File names the source in error messages.
	File          string
	Name          string
	Description   string
	Params        map[string]Param
	Preconditions []string
	Steps         []Step
}

// Param is a declared runbook parameter.
type Param struct {
	Required    bool   `json:"required,omitempty"`
	Default     string `json:"default,omitempty"`
	Description string `json:"description,omitempty"`
}

// Step is one step as written: its kind, line and raw fields.
type Step struct {
	Kind string
	// Index is the step's position in the file's list.
	Index  int
	Line   int
	Fields map[string]Field
}

// Field is a step field as written: a scalar (possibly a template) or, for
// ramp, a list of scalars.
type Field struct {
	Raw  string
	Line int
	List []Field
	// IsList is set for a YAML sequence.
	IsList bool
}

// ParamNames returns the declared parameters, sorted.
func (rb *Runbook) ParamNames() []string {
	names := make([]string, 0, len(rb.Params))
	for n := range rb.Params {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var (
	nameRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	paramRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
)

// stepFields lists each kind's fields and whether each is required.
var stepFields = map[string]map[string]bool{
	KindShift:   {"region": true, "weight": true},
	KindWait:    {"duration": true},
	KindGate:    {"check": true, "region": false, "abort_on_fail": false},
	KindRestore: {"region": true, "ramp": false, "step_interval": false},
	KindNotify:  {"message": true},
}

var preconditions = []string{PreAllRegionsHealthy, PreNotFrozen, PreNoDrillRunning}

// Errors is every problem found in a runbook, each naming line and field.
type Errors []error

func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, err := range e {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "\n")
}

// Unwrap returns the individual errors.
func (e Errors) Unwrap() []error { return e }

type parser struct {
	file string
	errs Errors
}

// lineError is one problem; Errors sorts them by line.
type lineError struct {
	line int
	msg  string
}

func (e *lineError) Error() string { return e.msg }

func (p *parser) errf(line int, field, format string, args ...any) {
	if !fieldRE.MatchString(field) {
		// A key as written ("a b: c") is quoted so the message still parses
		// as FILE:LINE: FIELD: problem.
		field = strconv.Quote(field)
	}
	p.errs = append(p.errs, &lineError{line, fmt.Sprintf("%s:%d: %s: %s", p.file, line, field, fmt.Sprintf(format, args...))})
}

// fieldRE matches field paths printed as they are, e.g. steps[2].shift.weight.
var fieldRE = regexp.MustCompile(`^[A-Za-z0-9_.\[\]-]+$`)

func (p *parser) sorted() Errors {
	slices.SortStableFunc(p.errs, func(a, b error) int {
		la, lb := 0, 0
		if e, ok := a.(*lineError); ok {
			la = e.line
		}
		if e, ok := b.(*lineError); ok {
			lb = e.line
		}
		return la - lb
	})
	return p.errs
}

// Parse decodes and validates a runbook. file names it in errors (e.g.
// "chaos-kong.yaml"). The error, if any, is an Errors listing every problem.
func Parse(file string, data []byte) (*Runbook, error) {
	p := &parser{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: runbook is empty", file)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: a runbook is a mapping with name, params, preconditions and steps", file, root.Line)
	}
	rb := &Runbook{File: file, Params: map[string]Param{}}
	seen := map[string]bool{}
	var stepsNode *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if seen[k.Value] {
			p.errf(k.Line, k.Value, "duplicate key")
			continue
		}
		seen[k.Value] = true
		switch k.Value {
		case "name":
			rb.Name = p.str(v, "name")
			if rb.Name != "" && !nameRE.MatchString(rb.Name) {
				p.errf(v.Line, "name", "%q is not a valid name (lower-case letters, digits and dashes)", rb.Name)
			}
		case "description":
			rb.Description = p.str(v, "description")
			if len(rb.Description) > maxDescription {
				p.errf(v.Line, "description", "longer than %d bytes", maxDescription)
			}
		case "params":
			p.params(rb, v)
		case "preconditions":
			p.preconditions(rb, v)
		case "steps":
			stepsNode = v
		default:
			p.errf(k.Line, k.Value, "unknown key (want name, description, params, preconditions, steps)")
		}
	}
	if !seen["name"] {
		p.errf(root.Line, "name", "required")
	}
	if stepsNode == nil {
		p.errf(root.Line, "steps", "required: at least one step")
	} else {
		p.steps(rb, stepsNode)
	}
	if len(p.errs) > 0 {
		return nil, p.sorted()
	}
	return rb, nil
}

func (p *parser) str(v *yaml.Node, field string) string {
	if v.Kind != yaml.ScalarNode {
		p.errf(v.Line, field, "must be a string")
		return ""
	}
	return v.Value
}

func (p *parser) params(rb *Runbook, v *yaml.Node) {
	if v.Kind != yaml.MappingNode {
		p.errf(v.Line, "params", "must be a mapping of name to {required, default, description}")
		return
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, pv := v.Content[i], v.Content[i+1]
		field := "params." + k.Value
		if !paramRE.MatchString(k.Value) {
			p.errf(k.Line, field, "%q is not a valid parameter name (lower-case letters, digits, underscores)", k.Value)
			continue
		}
		if _, dup := rb.Params[k.Value]; dup {
			p.errf(k.Line, field, "duplicate parameter")
			continue
		}
		var prm Param
		if pv.Kind == yaml.ScalarNode && pv.Tag == "!!null" {
			rb.Params[k.Value] = prm
			continue
		}
		if pv.Kind != yaml.MappingNode {
			p.errf(pv.Line, field, "must be a mapping {required, default, description}")
			continue
		}
		for j := 0; j+1 < len(pv.Content); j += 2 {
			pk, pvv := pv.Content[j], pv.Content[j+1]
			f := field + "." + pk.Value
			switch pk.Value {
			case "required":
				if pvv.Kind != yaml.ScalarNode || pvv.Tag != "!!bool" {
					p.errf(pvv.Line, f, "must be true or false")
					continue
				}
				prm.Required = pvv.Value == "true"
			case "default":
				prm.Default = p.str(pvv, f)
			case "description":
				prm.Description = p.str(pvv, f)
			default:
				p.errf(pk.Line, f, "unknown key (want required, default, description)")
			}
		}
		if prm.Required && prm.Default != "" {
			p.errf(pv.Line, field, "a required parameter cannot have a default")
		}
		rb.Params[k.Value] = prm
	}
}

func (p *parser) preconditions(rb *Runbook, v *yaml.Node) {
	if v.Kind != yaml.SequenceNode {
		p.errf(v.Line, "preconditions", "must be a list, e.g. [all_regions_healthy, not_frozen]")
		return
	}
	for i, c := range v.Content {
		field := fmt.Sprintf("preconditions[%d]", i)
		s := p.str(c, field)
		if s == "" {
			continue
		}
		if !slices.Contains(preconditions, s) {
			p.errf(c.Line, field, "unknown precondition %q (want one of %s)", s, strings.Join(preconditions, ", "))
			continue
		}
		if slices.Contains(rb.Preconditions, s) {
			p.errf(c.Line, field, "%q listed twice", s)
			continue
		}
		rb.Preconditions = append(rb.Preconditions, s)
	}
}

func (p *parser) steps(rb *Runbook, v *yaml.Node) {
	if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
		p.errf(v.Line, "steps", "must be a non-empty list")
		return
	}
	if len(v.Content) > MaxSteps {
		p.errf(v.Line, "steps", "at most %d steps, got %d", MaxSteps, len(v.Content))
		return
	}
	for i, sn := range v.Content {
		field := fmt.Sprintf("steps[%d]", i)
		if sn.Kind != yaml.MappingNode || len(sn.Content) != 2 {
			p.errf(sn.Line, field, "a step is a mapping with exactly one key: shift, wait, gate, restore or notify")
			continue
		}
		k, body := sn.Content[0], sn.Content[1]
		allowed, ok := stepFields[k.Value]
		if !ok {
			p.errf(k.Line, field, "unknown step kind %q (want shift, wait, gate, restore or notify)", k.Value)
			continue
		}
		field += "." + k.Value
		st := Step{Kind: k.Value, Index: i, Line: k.Line, Fields: map[string]Field{}}
		if body.Kind != yaml.MappingNode {
			p.errf(body.Line, field, "must be a mapping of its fields")
			continue
		}
		for j := 0; j+1 < len(body.Content); j += 2 {
			fk, fv := body.Content[j], body.Content[j+1]
			f := field + "." + fk.Value
			if _, ok := allowed[fk.Value]; !ok {
				p.errf(fk.Line, f, "unknown field (want %s)", strings.Join(sortedKeys(allowed), ", "))
				continue
			}
			if _, dup := st.Fields[fk.Value]; dup {
				p.errf(fk.Line, f, "duplicate field")
				continue
			}
			switch fv.Kind {
			case yaml.ScalarNode:
				st.Fields[fk.Value] = Field{Raw: fv.Value, Line: fv.Line}
			case yaml.SequenceNode:
				fl := Field{Line: fv.Line, IsList: true}
				for _, item := range fv.Content {
					if item.Kind != yaml.ScalarNode {
						p.errf(item.Line, f, "list items must be scalars")
						continue
					}
					fl.List = append(fl.List, Field{Raw: item.Value, Line: item.Line})
				}
				st.Fields[fk.Value] = fl
			default:
				p.errf(fv.Line, f, "must be a scalar or a list")
			}
		}
		for _, name := range sortedKeys(allowed) {
			if _, ok := st.Fields[name]; allowed[name] && !ok {
				p.errf(body.Line, field+"."+name, "required")
			}
		}
		rb.Steps = append(rb.Steps, st)
	}
	// Type-check what can be checked now: fields without templates, and
	// that every template parses and names only declared parameters.
	dummy := map[string]string{}
	for n := range rb.Params {
		dummy[n] = "x"
	}
	p.errs = append(p.errs, rb.render(dummy, true)...)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ErrParams is wrapped by Render's errors about the parameter values.
var ErrParams = errors.New("bad parameters")
