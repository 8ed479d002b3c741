// Package yamlcheck decodes a YAML config file strictly and reports every
// problem at once, each with its line and field path, the way evac's
// runbook errors read: "steering.yaml:12: services[0].tll: unknown field;
// did you mean ttl?". Syntax errors, unknown keys (with a suggestion), and
// values of the wrong type are found in one walk over the document; the
// config's own validation, which names fields by path, gets its lines from
// the same walk (Annotate). Messages never name a Go type.
package yamlcheck

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one error in a file: its line (0 when unknown), the field
// path ("" for the document) and what is wrong.
type Problem struct {
	Line int
	Path string
	Msg  string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Errors are the problems of one file, in line order.
type Errors struct {
	// File names the file in messages; "" (an API body) leaves it out.
	File     string
	Problems []Problem
}

// Error renders one problem a line: "FILE:LINE: path: msg", or
// "line LINE: path: msg" without a file.
func (e *Errors) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		switch {
		case e.File != "" && p.Line > 0:
			lines[i] = fmt.Sprintf("%s:%d: %s", e.File, p.Line, Problem{Path: p.Path, Msg: p.Msg})
		case e.File != "":
			lines[i] = e.File + ": " + p.String()
		default:
			lines[i] = p.String()
		}
	}
	return strings.Join(lines, "\n")
}

// unknownKey marks the problems that UnknownKeysOnly looks for.
const unknownKey = "unknown field"

// UnknownKeysOnly reports whether every problem is an unknown key: the
// rest of the document decoded, so validating it finds real problems.
func (e *Errors) UnknownKeysOnly() bool {
	for _, p := range e.Problems {
		if !strings.HasPrefix(p.Msg, unknownKey) {
			return false
		}
	}
	return true
}

// Merge adds the problems of more (an *Errors, e.g. from Annotate) to e's,
// in line order.
func (e *Errors) Merge(more error) *Errors {
	out := &Errors{File: e.File, Problems: append([]Problem(nil), e.Problems...)}
	var m *Errors
	if errors.As(more, &m) {
		out.Problems = append(out.Problems, m.Problems...)
	} else if more != nil {
		out.Problems = append(out.Problems, Problem{Msg: more.Error()})
	}
	sortProblems(out.Problems)
	return out
}

// InFile returns err with file named in its messages when it is *Errors,
// and err prefixed with "file: " otherwise.
func InFile(file string, err error) error {
	if err == nil {
		return nil
	}
	var e *Errors
	if errors.As(err, &e) {
		out := *e
		out.File = file
		return &out
	}
	return fmt.Errorf("%s: %w", file, err)
}

// Doc is a parsed document: where each field path is.
type Doc struct {
	lines map[string]int
}

// Decode parses data and decodes it into v (a pointer to a struct whose
// fields carry yaml tags), strictly. It returns the document's field lines
// and, when anything is wrong, *Errors with every problem found: syntax
// (then nothing else can be checked), unknown keys, wrong types.
func Decode(data []byte, v any) (*Doc, error) {
	doc := &Doc{lines: map[string]int{}}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return doc, &Errors{Problems: []Problem{syntaxProblem(err)}}
	}
	if len(root.Content) == 0 {
		return doc, &Errors{Problems: []Problem{{Line: 1, Msg: "the file is empty"}}}
	}
	w := &walker{doc: doc}
	w.walk(root.Content[0], reflect.TypeOf(v).Elem(), "")
	// Decode even past problems: when they are only unknown keys (which
	// the decoder skips), v is complete, and the caller may validate it to
	// report every problem in one round (Errors.UnknownKeysOnly, Merge).
	if err := root.Content[0].Decode(v); err != nil && len(w.problems) == 0 {
		w.problems = append(w.problems, decodeProblems(err)...)
	}
	if len(w.problems) > 0 {
		sortProblems(w.problems)
		return doc, &Errors{Problems: w.problems}
	}
	return doc, nil
}

// Line is where path is in the document: the line of the longest prefix of
// path that it has (0 when none).
func (d *Doc) Line(path string) int {
	if d == nil {
		return 0
	}
	for p := path; p != ""; p = parent(p) {
		if l, ok := d.lines[p]; ok {
			return l
		}
	}
	return 0
}

// parent drops the last element of a path: a.b[2] -> a.b -> a -> "".
func parent(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// fieldErr matches a validation error that starts with a field path.
var fieldErr = regexp.MustCompile(`^([A-Za-z_][\w-]*(?:(?:\.[\w-]+)|(?:\[[^\]]*\]))*): (.*)$`)

// Annotate turns a validation error into *Errors: each of its lines (as
// errors.Join writes them) that starts with a field path gets that field's
// line in the document.
func (d *Doc) Annotate(err error) error {
	if err == nil {
		return nil
	}
	var e *Errors
	if errors.As(err, &e) {
		return err
	}
	var ps []Problem
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		if m := fieldErr.FindStringSubmatch(l); m != nil {
			ps = append(ps, Problem{Line: d.Line(m[1]), Path: m[1], Msg: m[2]})
			continue
		}
		ps = append(ps, Problem{Msg: l})
	}
	sortProblems(ps)
	return &Errors{Problems: ps}
}

func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func syntaxProblem(err error) Problem {
	msg := err.Error()
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return Problem{Line: n, Msg: "YAML syntax: " + m[2]}
	}
	return Problem{Msg: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
}

// decodeProblems turns what the decoder said (after the walk found
// nothing) into problems.
func decodeProblems(err error) []Problem {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return []Problem{{Msg: strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	var ps []Problem
	for _, s := range te.Errors {
		if m := lineRE.FindStringSubmatch(s); m != nil {
			n, _ := strconv.Atoi(m[1])
			ps = append(ps, Problem{Line: n, Msg: m[2]})
			continue
		}
		ps = append(ps, Problem{Msg: s})
	}
	return ps
}

type walker struct {
	doc      *Doc
	problems []Problem
}

func (w *walker) add(n *yaml.Node, path, format string, args ...any) {
	w.problems = append(w.problems, Problem{Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

var (
	unmarshalerType     = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

// walk checks node against type t at path, recording each path's line.
func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if path != "" {
		if _, ok := w.doc.lines[path]; !ok {
			w.doc.lines[path] = n.Line
		}
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // absent: the default
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// A type that decodes itself is judged by decoding this node alone.
	if reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType) {
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			line, msg := cleanMsg(err)
			if line == 0 {
				line = n.Line
			}
			w.problems = append(w.problems, Problem{Line: line, Path: path, Msg: msg})
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.add(n, path, "want a mapping of fields, got %s", describe(n))
			return
		}
		fields := yamlFields(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if seen[k.Value] {
				w.add(k, p, "duplicate key")
				continue
			}
			seen[k.Value] = true
			ft, ok := fields[k.Value]
			if !ok {
				w.doc.lines[p] = k.Line
				w.add(k, p, unknownKey+"%s", suggest(k.Value, fields))
				continue
			}
			w.walk(v, ft, p)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.add(n, path, "want a mapping, got %s", describe(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			w.doc.lines[p] = k.Line
			w.walk(v, t.Elem(), p)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			w.add(n, path, "want a list, got %s", describe(n))
			return
		}
		for i, c := range n.Content {
			w.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Interface:
	default:
		if n.Kind != yaml.ScalarNode {
			w.add(n, path, "want %s, got %s", kindName(t), describe(n))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			w.add(n, path, "want %s, got %q", kindName(t), n.Value)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps a struct's YAML keys to their types, inline fields
// included.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if strings.Contains(opts, "inline") || (f.Anonymous && tag == "") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range yamlFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// suggest is "; did you mean X?" for the known key closest to key, or the
// list of keys when none is close.
func suggest(key string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
		if d := distance(strings.ToLower(key), name); d < bestD || (d == bestD && name < best) {
			best, bestD = name, d
		}
	}
	if best != "" {
		return "; did you mean " + best + "?"
	}
	sort.Strings(names)
	return " (want one of " + strings.Join(names, ", ") + ")"
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return "a value"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

// cleanMsg drops the decoder's "yaml: line N:" prefixes from a custom
// type's error, and returns the line they name (0 when none does).
func cleanMsg(err error) (int, string) {
	s := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		s = te.Errors[0]
	}
	s = strings.TrimPrefix(s, "yaml: ")
	if m := lineRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, m[2]
	}
	return 0, s
}
