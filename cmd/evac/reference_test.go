package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/evac-sh/evac/agent"
	"github.com/evac-sh/evac/controlplane/api"
	"github.com/evac-sh/evac/controlplane/api/openapi"
	"github.com/evac-sh/evac/controlplane/auth"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/controlplane/ui"
)

// The reference page and where it is read from.
const referencePath = "../../docs/reference.md"

// controllerDir holds the code that mounts routes beside the API's own.
const controllerDir = "../../controlplane/controller"

// mounted are the packages whose Mount(r) the controller calls; the test
// mounts them itself. A Mount of another package in the controller fails
// TestReferenceRoutes until it is added here.
var mounted = map[string]func(*mux.Router){
	"ui":      ui.Mount,
	"openapi": openapi.Mount,
}

// referenceDoc is docs/reference.md cut into sections by heading.
type referenceDoc struct {
	text     string
	sections map[string]string // heading line (without #s) -> body
}

func readReference(t *testing.T) referenceDoc {
	t.Helper()
	b, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatal(err)
	}
	d := referenceDoc{text: string(b), sections: map[string]string{}}
	var head string
	var body strings.Builder
	flush := func() {
		if head != "" {
			d.sections[head] += body.String()
		}
		body.Reset()
	}
	for _, line := range strings.Split(d.text, "\n") {
		if strings.HasPrefix(line, "## ") || strings.HasPrefix(line, "### ") {
			flush()
			head = strings.TrimSpace(strings.TrimLeft(line, "#"))
			continue
		}
		body.WriteString(line + "\n")
	}
	flush()
	return d
}

// commands returns every command of the CLI tree but the root, hidden ones
// and cobra's help.
func commands(root *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			if s.Hidden || s.Name() == "help" {
				continue
			}
			out = append(out, s)
			walk(s)
		}
	}
	walk(root)
	return out
}

var flagRE = regexp.MustCompile("`(--[a-z0-9-]+)")

// TestReferenceCommands: every command of `evac` has a section in
// docs/reference.md headed by its path in backticks, listing every flag of
// its own; a section names no flag the command lacks.
func TestReferenceCommands(t *testing.T) {
	d := readReference(t)
	root := newRootCmd()
	cmds := commands(root)
	if len(cmds) < 20 {
		t.Fatalf("walked only %d commands", len(cmds))
	}
	for _, c := range cmds {
		head := "`" + c.CommandPath() + "`"
		body, ok := d.sections[head]
		var flags []string
		c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
			if !f.Hidden {
				flags = append(flags, "--"+f.Name)
			}
		})
		if !ok {
			t.Errorf("docs/reference.md has no section \"### %s\" for the command %q (%s); its flags: %v",
				head, c.CommandPath(), c.Short, flags)
			continue
		}
		for _, f := range flags {
			if !strings.Contains(body, "`"+f+"`") {
				t.Errorf("docs/reference.md, section %s: flag `%s` of %q is not listed", head, f, c.CommandPath())
			}
		}
		for _, m := range flagRE.FindAllStringSubmatch(body, -1) {
			if c.Flag(strings.TrimPrefix(m[1], "--")) == nil {
				t.Errorf("docs/reference.md, section %s: names `%s`, which %q does not have", head, m[1], c.CommandPath())
			}
		}
	}
	root.PersistentFlags().VisitAll(func(f *pflag.Flag) {
		if !strings.Contains(d.sections["Flags of every client command"], "`--"+f.Name+"`") {
			t.Errorf("docs/reference.md, section Flags of every client command: global flag `--%s` is not listed", f.Name)
		}
	})
}

var (
	codeSpanRE  = regexp.MustCompile("`([^`\n]+)`")
	codeBlockRE = regexp.MustCompile(`(?m)^    (.*)$`)
	subcmdRE    = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
)

// namedCommands returns every command line the page names: code spans and
// indented code lines that start with "evac ".
func namedCommands(text string) []string {
	var out []string
	for _, m := range codeSpanRE.FindAllStringSubmatch(text, -1) {
		if strings.HasPrefix(m[1], "evac ") {
			out = append(out, m[1])
		}
	}
	for _, m := range codeBlockRE.FindAllStringSubmatch(text, -1) {
		if line := strings.TrimSpace(m[1]); strings.HasPrefix(line, "evac ") {
			out = append(out, line)
		}
	}
	return out
}

// resolve walks a command line down the CLI tree and returns the command it
// names, or a description of what does not exist.
func resolve(root *cobra.Command, line string) (*cobra.Command, string) {
	words := strings.Fields(line)[1:]
	c := root
	i := 0
	for ; i < len(words); i++ {
		w := words[i]
		if strings.HasPrefix(w, "-") || !c.HasSubCommands() {
			break
		}
		var next *cobra.Command
		for _, s := range c.Commands() {
			if s.Name() == w || slicesContains(s.Aliases, w) {
				next = s
			}
		}
		if next == nil {
			if subcmdRE.MatchString(w) {
				return nil, "no command \"" + c.CommandPath() + " " + w + "\""
			}
			break
		}
		c = next
	}
	for _, w := range words[i:] {
		w = strings.Trim(w, "[]().,;")
		name, _, _ := strings.Cut(w, "=")
		switch {
		case strings.HasPrefix(name, "--"):
			if c.Flag(strings.TrimPrefix(name, "--")) == nil {
				return nil, "\"" + c.CommandPath() + "\" has no flag " + name
			}
		case len(name) == 2 && name[0] == '-' && name[1] != '-':
			if c.Flags().ShorthandLookup(name[1:]) == nil && c.InheritedFlags().ShorthandLookup(name[1:]) == nil {
				return nil, "\"" + c.CommandPath() + "\" has no flag " + name
			}
		}
	}
	return c, ""
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestReferenceNamesOnlyRealCommands: every `evac ...` the page names is a
// command of the CLI, with flags it has.
func TestReferenceNamesOnlyRealCommands(t *testing.T) {
	d := readReference(t)
	root := newRootCmd()
	lines := namedCommands(d.text)
	if len(lines) < 30 {
		t.Fatalf("found only %d command lines in docs/reference.md", len(lines))
	}
	for _, line := range lines {
		if _, bad := resolve(root, line); bad != "" {
			t.Errorf("docs/reference.md names `%s`: %s", line, bad)
		}
	}
}

func TestResolve(t *testing.T) {
	root := newRootCmd()
	for _, tc := range []struct {
		line string
		want string // command path, or "" when it must not resolve
	}{
		{"evac drill start RUNBOOK --param k=v [--watch]", "evac drill start"},
		{"evac regions us-east", "evac regions"},
		{"evac apply -f steering.yaml", "evac apply"},
		{"evac evacuate us-east --reason x --addr http://127.0.0.1:8081", "evac evacuate"},
		{"evac drill frobnicate ID", ""},
		{"evac nosuch", ""},
		{"evac evacuate us-east --no-such-flag", ""},
		{"evac apply -z FILE", ""},
	} {
		c, bad := resolve(root, tc.line)
		switch {
		case tc.want == "" && bad == "":
			t.Errorf("resolve(%q) = %s, want an error", tc.line, c.CommandPath())
		case tc.want != "" && (bad != "" || c.CommandPath() != tc.want):
			t.Errorf("resolve(%q) = %v %q, want %s", tc.line, c, bad, tc.want)
		}
	}
}

// devHooks only lets the router register the dev routes.
type devHooks struct{}

func (devHooks) FailRegion(string) error { return nil }
func (devHooks) HealRegion(string) error { return nil }

var alternationRE = regexp.MustCompile(`\{(\w+):([\w|]+)\}`)

// expandRoute turns /a/{x:p|q} into /a/p and /a/q, as the page lists them.
func expandRoute(tpl string) []string {
	m := alternationRE.FindStringSubmatchIndex(tpl)
	if m == nil {
		return []string{tpl}
	}
	var out []string
	for _, alt := range strings.Split(tpl[m[4]:m[5]], "|") {
		out = append(out, expandRoute(tpl[:m[0]]+alt+tpl[m[1]:])...)
	}
	return out
}

// registeredRoutes returns "METHOD /path" for every route a controller
// serves: the API router's (dev routes on), the packages the controller
// mounts, and the routes the controller registers itself (found in its
// source).
func registeredRoutes(t *testing.T) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	add := func(method, tpl string) {
		for _, p := range expandRoute(tpl) {
			got[method+" "+p] = true
		}
	}
	_ = api.NewHandler(nil, api.Options{Dev: devHooks{}, Extra: func(r *mux.Router) {
		for _, m := range mounted {
			m(r)
		}
		err := r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
			tpl, err := route.GetPathTemplate()
			if err != nil {
				return err
			}
			methods, err := route.GetMethods()
			if err != nil {
				t.Errorf("route %s has no method matcher", tpl)
				return nil
			}
			for _, m := range methods {
				add(m, tpl)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}})
	for _, r := range controllerRoutes(t) {
		method, path, _ := strings.Cut(r, " ")
		add(method, path)
	}
	return got
}

// controllerRoutes parses the controller package for the function it
// passes as api.Options.Extra, and returns the routes that function
// registers itself: r.Handle("/path", ...).Methods(http.MethodX, ...). Any
// other use of the router there must be a pkg.Mount(r) this test mounts
// too (see mounted); anything else fails, naming the call, so a route
// cannot be added beside the API without this test seeing it.
func controllerRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(controllerDir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", controllerDir, err)
	}
	var out []string
	extras := 0
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			kv, ok := n.(*ast.KeyValueExpr)
			if !ok {
				return true
			}
			if key, ok := kv.Key.(*ast.Ident); !ok || key.Name != "Extra" {
				return true
			}
			fn, ok := kv.Value.(*ast.FuncLit)
			if !ok || len(fn.Type.Params.List) != 1 || len(fn.Type.Params.List[0].Names) != 1 {
				t.Errorf("%s: api.Options.Extra is not a func literal of one named parameter: this test cannot read its routes", fset.Position(kv.Pos()))
				return true
			}
			extras++
			out = append(out, extraRoutes(t, fset, fn.Body, fn.Type.Params.List[0].Names[0].Name)...)
			return false
		})
	}
	if extras == 0 {
		t.Fatalf("found no api.Options{Extra: func(r *mux.Router) {...}} in %s", controllerDir)
	}
	return out
}

// extraRoutes reads the routes registered on router r in body.
func extraRoutes(t *testing.T, fset *token.FileSet, body *ast.BlockStmt, r string) []string {
	t.Helper()
	var out []string
	covered := map[*ast.CallExpr]bool{} // registrations that have .Methods
	isRouter := func(e ast.Expr) bool { id, ok := e.(*ast.Ident); return ok && id.Name == r }
	ast.Inspect(body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Methods" {
			return true
		}
		inner, ok := sel.X.(*ast.CallExpr)
		if !ok {
			return true
		}
		isel, ok := inner.Fun.(*ast.SelectorExpr)
		if !ok || !isRouter(isel.X) || len(inner.Args) == 0 {
			return true
		}
		covered[inner] = true
		lit, ok := inner.Args[0].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			t.Errorf("%s: a route whose path is not a string literal: this test cannot read it", fset.Position(inner.Pos()))
			return true
		}
		path, _ := strconv.Unquote(lit.Value)
		for _, a := range call.Args {
			m, ok := a.(*ast.SelectorExpr)
			if !ok || !strings.HasPrefix(m.Sel.Name, "Method") {
				t.Errorf("%s: a route method that is not http.MethodX", fset.Position(a.Pos()))
				continue
			}
			out = append(out, strings.ToUpper(strings.TrimPrefix(m.Sel.Name, "Method"))+" "+path)
		}
		return true
	})
	ast.Inspect(body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || covered[call] {
			return true
		}
		if sel, ok := call.Fun.(*ast.SelectorExpr); ok && isRouter(sel.X) {
			t.Errorf("%s: %s.%s(...) without .Methods(...): this test cannot tell which methods the route serves",
				fset.Position(call.Pos()), r, sel.Sel.Name)
			return true
		}
		for _, a := range call.Args {
			if !isRouter(a) {
				continue
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			pkg, pok := ast.Expr(nil), false
			if ok {
				pkg = sel.X
				_, pok = pkg.(*ast.Ident)
			}
			if !ok || !pok || sel.Sel.Name != "Mount" || mounted[pkg.(*ast.Ident).Name] == nil {
				t.Errorf("%s: the controller passes the router to %s, which this test does not mount: add it to `mounted` in cmd/evac/reference_test.go",
					fset.Position(call.Pos()), callName(call.Fun))
			}
		}
		return true
	})
	return out
}

// callName renders a called function's name, e.g. ui.Mount.
func callName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return callName(e.X) + "." + e.Sel.Name
	}
	return "a function"
}

var endpointRE = regexp.MustCompile("`(GET|HEAD|POST|PUT|DELETE|PATCH) (/[^`\\s?]*)")

// TestReferenceRoutes: every route a controller serves is named in
// docs/reference.md as `METHOD /path`, and every endpoint the page names
// is served.
func TestReferenceRoutes(t *testing.T) {
	d := readReference(t)
	registered := registeredRoutes(t)
	if len(registered) < 30 {
		t.Fatalf("walked only %d routes: %v", len(registered), registered)
	}
	named := map[string]bool{}
	for _, m := range endpointRE.FindAllStringSubmatch(d.text, -1) {
		named[m[1]+" "+m[2]] = true
	}
	var missing, stale []string
	for r := range registered {
		if !strings.HasPrefix(r, "HEAD ") && !named[r] {
			missing = append(missing, r)
		}
	}
	for r := range named {
		if !registered[r] {
			stale = append(stale, r)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	for _, r := range missing {
		t.Errorf("route %s is served but not in docs/reference.md (add a row \"| `%s` | role | body -> answer |\" under Admin API)", r, r)
	}
	for _, r := range stale {
		t.Errorf("docs/reference.md names `%s`, which no controller serves", r)
	}
}

// yamlKeys returns every YAML key of a config type, nested ones included.
func yamlKeys(t reflect.Type, into map[string]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("yaml")
		if !ok || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name != "" {
			into[name] = true
		} else if !strings.Contains(opts, "inline") {
			continue
		}
		yamlKeys(f.Type, into)
	}
}

var tableKeyRE = regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|")

// TestReferenceConfigKeys: every key of the steering, agent and server
// config files is named in its section, and every key a section's tables
// list exists.
func TestReferenceConfigKeys(t *testing.T) {
	d := readReference(t)
	for _, tc := range []struct {
		section string
		typ     reflect.Type
	}{
		{"Steering config", reflect.TypeFor[state.Config]()},
		{"Agent config", reflect.TypeFor[agent.Config]()},
		{"Server config", reflect.TypeFor[serverFile]()},
	} {
		keys := map[string]bool{}
		yamlKeys(tc.typ, keys)
		if len(keys) < 10 {
			t.Fatalf("%s: found only %d keys", tc.section, len(keys))
		}
		body, ok := d.sections[tc.section]
		if !ok {
			t.Errorf("docs/reference.md has no section \"## %s\"", tc.section)
			continue
		}
		var missing []string
		for k := range keys {
			if !strings.Contains(body, "`"+k+"`") {
				missing = append(missing, k)
			}
		}
		sort.Strings(missing)
		for _, k := range missing {
			t.Errorf("docs/reference.md, section %s: key `%s` is not listed", tc.section, k)
		}
		for _, m := range tableKeyRE.FindAllStringSubmatch(body, -1) {
			if !keys[m[1]] {
				t.Errorf("docs/reference.md, section %s: lists key `%s`, which the config does not have", tc.section, m[1])
			}
		}
	}
	// The server table's flags are the server command's.
	srv, _, err := newRootCmd().Find([]string{"server"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range flagRE.FindAllStringSubmatch(d.sections["Server config"], -1) {
		if srv.Flag(strings.TrimPrefix(m[1], "--")) == nil {
			t.Errorf("docs/reference.md, section Server config: `%s` is not a flag of evac server", m[1])
		}
	}
}

// TestReadmeLinksReference: README sends readers to this page, not to a
// file outside the repository.
func TestReadmeLinksReference(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "(docs/reference.md)") {
		t.Error("README.md does not link docs/reference.md")
	}
	if strings.Contains(string(b), "steering repository") {
		t.Error("README.md still points at the steering repository's SPEC.md")
	}
}

var endpointRowRE = regexp.MustCompile("(?m)^\\| `(GET|HEAD|POST|PUT|DELETE|PATCH) (/[^`\\s?]*)[^`]*` \\| ([a-z]+) \\|")

// TestReferenceRoles: the role each endpoint row of the Admin API table
// gives is the one controlplane/auth requires.
func TestReferenceRoles(t *testing.T) {
	d := readReference(t)
	rows := endpointRowRE.FindAllStringSubmatch(d.sections["Admin API"], -1)
	if len(rows) < 30 {
		t.Fatalf("found only %d endpoint rows under Admin API", len(rows))
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	for _, m := range rows {
		need := auth.Required(m[1], param.ReplaceAllString(m[2], "x"))
		want := need.String()
		if need == auth.RoleNone {
			want = "open"
		}
		if m[3] != want {
			t.Errorf("docs/reference.md: `%s %s` is listed for role %s, but controlplane/auth requires %s", m[1], m[2], m[3], want)
		}
	}
}

// flagRowRE is a row of a flag table whose second column is the default:
// | `--name` | `default` | meaning |
var flagRowRE = regexp.MustCompile("^\\| `(--[a-z0-9-]+)` \\| (`[^`]*`)? \\|")

// TestReferenceFlagDefaults: in the tables of docs/reference.md that give
// defaults, every flag's default is the one the CLI has (an empty cell: no
// default, or one too long to show).
func TestReferenceFlagDefaults(t *testing.T) {
	d := readReference(t)
	for _, c := range commands(newRootCmd()) {
		body, ok := d.sections["`"+c.CommandPath()+"`"]
		if !ok {
			continue // TestReferenceCommands reports it
		}
		inDefaults := false
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "| flag | default |") {
				inDefaults = true
				continue
			}
			if !strings.HasPrefix(line, "|") {
				inDefaults = false
				continue
			}
			m := flagRowRE.FindStringSubmatch(line)
			if !inDefaults || m == nil || m[2] == "" {
				continue
			}
			f := c.Flag(strings.TrimPrefix(m[1], "--"))
			if f == nil {
				continue // TestReferenceCommands reports it
			}
			doc := strings.Trim(m[2], "`")
			if !sameDefault(doc, f.DefValue) {
				t.Errorf("docs/reference.md, section `%s`: `%s` default `%s`, the CLI's is %q", c.CommandPath(), m[1], doc, f.DefValue)
			}
		}
	}
}

// sameDefault compares a documented default with a flag's DefValue:
// durations by value ("5m" is "5m0s"), lists without their brackets.
func sameDefault(doc, def string) bool {
	if doc == def || "["+doc+"]" == def {
		return true
	}
	a, errA := time.ParseDuration(doc)
	b, errB := time.ParseDuration(def)
	return errA == nil && errB == nil && a == b
}
