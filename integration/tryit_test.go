package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/cli"
	"github.com/evac-sh/evac/internal/client"
)

// TestReadmeTryIt walks README.md's "Try it" section as a newcomer would,
// with the real binary: it reads the section's code block, starts `evac
// dev` for `make demo` (on free ports: dig's -p and the CLI's EVAC_ADDR
// follow), runs every command in order, and checks that each does what its
// comment says. The comments are matched against a small vocabulary
// (tryItChecks); a step whose comment the test cannot check fails, so a
// README edit either stays true or teaches the test what it now claims.
func TestReadmeTryIt(t *testing.T) {
	if _, err := exec.LookPath("dig"); err != nil {
		t.Fatal("dig is needed (Debian's bind9-dnsutils): ", err)
	}
	_, file, _, _ := runtime.Caller(0)
	readme, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(file)), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := parseTryIt(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	w := &tryIt{t: t}
	for _, st := range steps {
		t.Logf("README step: %s", st.line)
		if err := w.run(st); err != nil {
			t.Fatalf("README's Try it: `%s`: %v", st.line, err)
		}
	}
	if w.dev == nil {
		t.Fatal("README's Try it never starts evac dev (make demo)")
	}
}

// tryItStep is one command of README's Try it: its words (bin/evac and
// quoting as a shell reads them), and the comment after it.
type tryItStep struct {
	line    string
	args    []string
	comment string
}

// parseTryIt returns the commands of the first indented code block after
// the "## Try it" heading, in order; lines that are only a comment are
// left out.
func parseTryIt(readme string) ([]tryItStep, error) {
	_, rest, ok := strings.Cut(readme, "\n## Try it\n")
	if !ok {
		return nil, errors.New(`README has no "## Try it" section`)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	var steps []tryItStep
	inBlock := false
	for _, l := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(l, "    ") {
			if inBlock && strings.TrimSpace(l) != "" {
				break // the block ended
			}
			continue
		}
		inBlock = true
		cmd, comment := splitComment(strings.TrimSpace(l))
		if cmd == "" {
			continue
		}
		args, err := shellWords(cmd)
		if err != nil {
			return nil, fmt.Errorf("README Try it line %q: %w", l, err)
		}
		steps = append(steps, tryItStep{line: strings.TrimSpace(l), args: args, comment: comment})
	}
	if len(steps) == 0 {
		return nil, errors.New("README's Try it has no commands")
	}
	return steps, nil
}

// splitComment cuts a shell line at its first # outside quotes that
// starts a word.
func splitComment(l string) (cmd, comment string) {
	var quote rune
	for i, r := range l {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == '#' && (i == 0 || l[i-1] == ' ' || l[i-1] == '\t'):
			return strings.TrimSpace(l[:i]), strings.TrimSpace(l[i+1:])
		}
	}
	return strings.TrimSpace(l), ""
}

// shellWords splits a command as a shell would for the simple words,
// double and single quotes README uses.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	var quote rune
	in := false
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case strings.ContainsRune("|&;<>$`\\", r):
			return nil, fmt.Errorf("shell syntax %q the test does not run", r)
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// tryIt is the walk's state: the dev cluster and its ports.
type tryIt struct {
	t                 *testing.T
	dev               *proc
	httpPort, dnsPort int
	// failed is the region `evac dev fail` last failed.
	failed string
}

func (w *tryIt) run(st tryItStep) error {
	switch {
	case len(st.args) == 2 && st.args[0] == "make" && st.args[1] == "demo":
		return w.startDev(st)
	case st.args[0] == "dig":
		return w.dig(st)
	case st.args[0] == "bin/evac" || st.args[0] == "evac":
		if w.dev == nil {
			return errors.New("runs before evac dev was started (make demo)")
		}
		return w.evac(st)
	}
	return fmt.Errorf("the test does not know how to run %q", st.args[0])
}

// startDev is `make demo`: it builds bin/evac and runs `bin/evac dev`. The
// test's binary is built from this tree already; the ports are free ones.
func (w *tryIt) startDev(st tryItStep) error {
	if !strings.Contains(st.comment, "evac dev") {
		return fmt.Errorf("comment %q: the test expects make demo to run evac dev", st.comment)
	}
	w.httpPort = freePortRun(w.t, 3, false)
	w.dnsPort = freePortRun(w.t, 3, true)
	raftPort, gossipPort := devPorts(w.t)
	w.dev = startProc(w.t, "dev", "dev", "--http-port", fmt.Sprint(w.httpPort), "--dns-port", fmt.Sprint(w.dnsPort),
		"--raft-port", fmt.Sprint(raftPort), "--gossip-port", fmt.Sprint(gossipPort), "--log-level", "info")
	// The newcomer waits for the banner ("evac dev is running"), then for
	// nothing else: the next steps run at once.
	deadline := time.Now().Add(90 * time.Second)
	for {
		b, _ := os.ReadFile(w.dev.logPath)
		if bytes.Contains(b, []byte("evac dev is running")) {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("no banner from evac dev within 90s")
		}
		select {
		case <-w.dev.done:
			return errors.New("evac dev exited")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// api is a client of the dev cluster's first controller.
func (w *tryIt) api() *client.Client { return newClient(fmt.Sprintf("127.0.0.1:%d", w.httpPort)) }

// endpoints maps each address of service svc to its region.
func (w *tryIt) endpoints(svc string) (map[string]string, []string, error) {
	ss, err := w.api().Services(ctxT(w.t, 10*time.Second))
	if err != nil {
		return nil, nil, err
	}
	for _, s := range ss {
		if s.Name != svc {
			continue
		}
		out := map[string]string{}
		var regions []string
		for _, r := range s.Regions {
			regions = append(regions, r.Region)
			for _, e := range r.Endpoints {
				out[e] = r.Region
			}
		}
		return out, regions, nil
	}
	return nil, nil, fmt.Errorf("no service %q in GET /v1/services", svc)
}

var digAnswerA = regexp.MustCompile(`(?m)^\S+\s+\d+\s+IN\s+A\s+(\S+)$`)

// runDig runs dig with README's arguments, its -p rewritten to the dev
// cluster's DNS port, and returns the A answers.
func (w *tryIt) runDig(args []string) ([]string, string, error) {
	args = append([]string(nil), args...)
	for i := range args {
		if args[i] == "-p" && i+1 < len(args) {
			args[i+1] = fmt.Sprint(w.dnsPort)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "dig", args[1:]...).CombinedOutput()
	if err != nil {
		return nil, string(out), fmt.Errorf("dig: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "status: NOERROR") {
		return nil, string(out), fmt.Errorf("dig: not NOERROR:\n%s", out)
	}
	var as []string
	for _, m := range digAnswerA.FindAllStringSubmatch(string(out), -1) {
		as = append(as, m[1])
	}
	if len(as) == 0 {
		return nil, string(out), fmt.Errorf("dig: no A answer:\n%s", out)
	}
	sort.Strings(as)
	return as, string(out), nil
}

var (
	// "nearest: eu-west's endpoints", "now us-east: 10.3's next choice"
	digRegionRE = regexp.MustCompile(`(?:^|\s)([a-z]+-[a-z]+)(?:'s endpoints|:)`)
	digNowRE    = regexp.MustCompile(`^now\s`)
)

// dig checks a dig step: NOERROR with A answers, and what the comment
// says: a region named ("eu-west's endpoints", "now us-east:"): every
// answer is one of that region's endpoints ("now": once the steps before
// have taken effect, within 90 s); "one region's endpoints": all from one
// region; "stable per client subnet": the same answer when asked again.
func (w *tryIt) dig(st tryItStep) error {
	name := ""
	for _, a := range st.args[1:] {
		if !strings.HasPrefix(a, "@") && !strings.HasPrefix(a, "+") && !strings.HasPrefix(a, "-") && strings.Contains(a, ".") {
			name = a
			break
		}
	}
	if name == "" {
		return errors.New("no query name")
	}
	svc, _, _ := strings.Cut(name, ".")
	eps, regions, err := w.endpoints(svc)
	if err != nil {
		return err
	}
	checked := false
	if m := digRegionRE.FindStringSubmatch(st.comment); m != nil {
		want := m[1]
		if !contains(regions, want) {
			return fmt.Errorf("comment names region %q, which %s does not have (%v)", want, svc, regions)
		}
		checked = true
		check := func() error {
			as, _, err := w.runDig(st.args)
			if err != nil {
				return err
			}
			for _, a := range as {
				if eps[a] != want {
					return fmt.Errorf("answer %v: %s is %q's, README says %s's endpoints", as, a, eps[a], want)
				}
			}
			return nil
		}
		if digNowRE.MatchString(st.comment) {
			eventually(w.t, 90*time.Second, st.line, check)
		} else if err := check(); err != nil {
			return err
		}
	}
	if strings.Contains(st.comment, "one region's endpoints") {
		checked = true
		as, _, err := w.runDig(st.args)
		if err != nil {
			return err
		}
		if r := regionsOf(as, eps); len(r) != 1 {
			return fmt.Errorf("answer %v spans regions %v, README says one region's", as, r)
		}
	}
	if strings.Contains(st.comment, "stable per client subnet") {
		checked = true
		first, _, err := w.runDig(st.args)
		if err != nil {
			return err
		}
		for i := 0; i < 5; i++ {
			again, _, err := w.runDig(st.args)
			if err != nil {
				return err
			}
			if strings.Join(again, ",") != strings.Join(first, ",") {
				return fmt.Errorf("answers %v then %v: README says stable", first, again)
			}
		}
	}
	if !checked {
		return fmt.Errorf("the test cannot check comment %q: teach tryit_test.go what it claims", st.comment)
	}
	return nil
}

func regionsOf(as []string, eps map[string]string) []string {
	set := map[string]bool{}
	for _, a := range as {
		set[eps[a]] = true
	}
	var out []string
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// evac runs a CLI step against the dev cluster and checks its comment.
func (w *tryIt) evac(st tryItStep) error {
	args := st.args[1:]
	if contains(args, "--follow") || contains(args, "-f") {
		return w.follow(st)
	}
	out, err := w.runEvac(2*time.Minute, args...)
	if err != nil {
		return err
	}
	switch {
	case len(args) >= 1 && args[0] == "explain":
		return checkExplain(st.comment, out)
	case len(args) == 1 && args[0] == "regions":
		return w.checkRegions(st.comment, out)
	case len(args) >= 3 && args[0] == "dev" && args[1] == "fail":
		return w.checkFail(st.comment, args[2])
	case len(args) >= 3 && args[0] == "dev" && args[1] == "heal":
		if st.comment != "" {
			return fmt.Errorf("the test cannot check comment %q", st.comment)
		}
		return nil
	case len(args) >= 2 && args[0] == "restore" && contains(args, "--watch"):
		return w.checkRestoreWatch(st.comment, args[1], out)
	}
	return fmt.Errorf("the test cannot check `evac %s` (comment %q): teach tryit_test.go", strings.Join(args, " "), st.comment)
}

// runEvac runs the binary under test with the dev cluster's address.
func (w *tryIt) runEvac(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, evacBin, args...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=http://127.0.0.1:%d", cli.EnvAddr, w.httpPort))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	w.t.Logf("evac %s:\n%s", strings.Join(args, " "), out.String())
	if err != nil {
		return out.String(), fmt.Errorf("exit: %v\n%s", err, out.String())
	}
	return out.String(), nil
}

var (
	explainRuleRE = regexp.MustCompile(`rule (\S+?),?(?:\s|$)`)
	explainPrefRE = regexp.MustCompile(`preference ((?:[a-z]+-[a-z]+)(?: > [a-z]+-[a-z]+)*)`)
)

// checkExplain: "rule R" is the RULE row's first word; "preference A > B"
// is the PREFERENCE row.
func checkExplain(comment, out string) error {
	rows := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 {
			rows[f[0]] = strings.Join(f[1:], " ")
		}
	}
	checked := false
	if m := explainRuleRE.FindStringSubmatch(comment); m != nil {
		checked = true
		if f := strings.Fields(rows["RULE"]); len(f) == 0 || f[0] != m[1] {
			return fmt.Errorf("RULE %q, README says rule %s", rows["RULE"], m[1])
		}
	}
	if m := explainPrefRE.FindStringSubmatch(comment); m != nil {
		checked = true
		if rows["PREFERENCE"] != m[1] {
			return fmt.Errorf("PREFERENCE %q, README says %s", rows["PREFERENCE"], m[1])
		}
	}
	if !checked {
		return fmt.Errorf("the test cannot check comment %q", comment)
	}
	return nil
}

// checkRegions: "state, weight and health of each region": a row per
// region with its state and weight as the API has them, under a header
// naming STATE, WEIGHT and HEALTH.
func (w *tryIt) checkRegions(comment, out string) error {
	if comment != "state, weight and health of each region" {
		return fmt.Errorf("the test cannot check comment %q", comment)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if h := strings.Fields(lines[0]); !contains(h, "STATE") || !contains(h, "WEIGHT") || !contains(h, "HEALTH") {
		return fmt.Errorf("header %q lacks STATE, WEIGHT or HEALTH", lines[0])
	}
	rs, err := w.api().Regions(ctxT(w.t, 10*time.Second))
	if err != nil {
		return err
	}
	for _, r := range rs {
		found := false
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) >= 4 && f[0] == r.Name && f[1] == string(r.State) && contains(f[2:], fmt.Sprint(r.Weight)) {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("no row for region %s (%s, weight %d)", r.Name, r.State, r.Weight)
		}
	}
	return nil
}

// checkFail: "R's demo backend starts failing": R's health drops below 1.
func (w *tryIt) checkFail(comment, region string) error {
	if comment != region+"'s demo backend starts failing" {
		return fmt.Errorf("the test cannot check comment %q", comment)
	}
	w.failed = region
	eventually(w.t, 60*time.Second, region+"'s health drops", func() error {
		r, err := w.api().Region(ctxT(w.t, 10*time.Second), region)
		if err != nil {
			return err
		}
		if r.Health == nil || *r.Health >= 1 {
			return fmt.Errorf("health %v", r.Health)
		}
		return nil
	})
	return nil
}

// followPhrases are what an events --follow comment may promise, each the
// event kinds that show it for the failed region (all of them must appear).
var followPhrases = map[string][]string{
	"health verdict": {state.EventHealthLost},
	"evacuation":     {state.EventEvacuate},
	"ramp steps":     {state.EventStep, state.EventEvacuated},
}

// follow runs `evac events --follow` as a user does: it prints until
// interrupted. It checks that the events the comment names show up, for
// the region failed before, then interrupts it (Ctrl-C) and wants a clean
// exit.
func (w *tryIt) follow(st tryItStep) error {
	if w.failed == "" {
		return errors.New("the test checks events --follow after a dev fail step")
	}
	var want []string
	for _, p := range strings.Split(st.comment, ",") {
		kinds, ok := followPhrases[strings.TrimSpace(p)]
		if !ok {
			return fmt.Errorf("the test cannot check %q of comment %q", strings.TrimSpace(p), st.comment)
		}
		want = append(want, kinds...)
	}
	cmd := exec.Command(evacBin, st.args[1:]...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=http://127.0.0.1:%d", cli.EnvAddr, w.httpPort))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	seen := map[string]bool{}
	var mu sync.Mutex
	var all strings.Builder
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			l := sc.Text()
			mu.Lock()
			all.WriteString(l + "\n")
			// SEQ TIME ACTOR KIND REGION[/SERVICE] WEIGHT REASON: the
			// actor or reason may hold spaces, so look for the kind and
			// the region among the words.
			kind, region := "", false
			for _, f := range strings.Fields(l) {
				if contains(want, f) && kind == "" {
					kind = f
				}
				if f == w.failed || strings.HasPrefix(f, w.failed+"/") {
					region = true
				}
			}
			if kind != "" && region {
				seen[kind] = true
			}
			mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	missing := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var m []string
		for _, k := range want {
			if !seen[k] {
				m = append(m, k)
			}
		}
		return m
	}
	deadline := time.Now().Add(120 * time.Second)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		select {
		case <-scanned:
			deadline = time.Now()
		case <-time.After(200 * time.Millisecond):
		}
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	waitErr := make(chan error, 1)
	go func() { <-scanned; waitErr <- cmd.Wait() }()
	var exitErr error
	select {
	case exitErr = <-waitErr:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		exitErr = errors.New("did not stop within 20s of Ctrl-C")
		<-waitErr
	}
	mu.Lock()
	out := all.String()
	mu.Unlock()
	w.t.Logf("evac %s:\n%s%s", strings.Join(st.args[1:], " "), out, stderr.String())
	if m := missing(); len(m) > 0 {
		return fmt.Errorf("no %v event for %s within 120s", m, w.failed)
	}
	if exitErr != nil {
		return fmt.Errorf("after Ctrl-C: %v (%s)", exitErr, stderr.String())
	}
	return nil
}

// checkRestoreWatch: "each ramp step until R is back": exit 0 once R is
// active at weight 100, having printed a line per ramp step.
func (w *tryIt) checkRestoreWatch(comment, region, out string) error {
	if comment != "each ramp step until "+region+" is back" {
		return fmt.Errorf("the test cannot check comment %q", comment)
	}
	r, err := w.api().Region(ctxT(w.t, 10*time.Second), region)
	if err != nil {
		return err
	}
	if r.State != state.PhaseActive || r.Weight != 100 {
		return fmt.Errorf("restore --watch returned with %s %s at weight %d", region, r.State, r.Weight)
	}
	evs, err := w.api().Events(ctxT(w.t, 10*time.Second), 0, 0)
	if err != nil {
		return err
	}
	// The restore's steps: every region.step of region after its last
	// region.restore; each must show in the output as its weight.
	var steps []int
	for _, e := range evs {
		if e.Region != region {
			continue
		}
		switch e.Kind {
		case state.EventRestore:
			steps = steps[:0]
			if e.Weight != nil {
				steps = append(steps, *e.Weight)
			}
		case state.EventStep, state.EventActive:
			if e.Weight != nil {
				steps = append(steps, *e.Weight)
			}
		}
	}
	if len(steps) == 0 {
		return fmt.Errorf("no ramp step of %s's restore in the audit log", region)
	}
	for _, s := range steps {
		if !regexp.MustCompile(`(?i)weight\s+` + fmt.Sprint(s) + `\b`).MatchString(out) {
			return fmt.Errorf("ramp step to weight %d not shown:\n%s", s, out)
		}
	}
	return nil
}

// TestParseTryIt: the README reader splits commands, quotes and comments
// as a shell would, and refuses shell syntax it would not run.
func TestParseTryIt(t *testing.T) {
	for _, tc := range []struct {
		line, comment string
		args          []string
		wantErr       bool
	}{
		{line: `dig @127.0.0.1 -p 5353 api.example.com +subnet=10.3.0.0/24   # nearest: eu-west's endpoints`,
			args: []string{"dig", "@127.0.0.1", "-p", "5353", "api.example.com", "+subnet=10.3.0.0/24"}, comment: "nearest: eu-west's endpoints"},
		{line: `bin/evac restore eu-west --reason "recovered # not a comment" --watch   # each step`,
			args: []string{"bin/evac", "restore", "eu-west", "--reason", "recovered # not a comment", "--watch"}, comment: "each step"},
		{line: `bin/evac dev heal eu-west`, args: []string{"bin/evac", "dev", "heal", "eu-west"}},
		{line: `bin/evac regions | head`, wantErr: true},
	} {
		cmd, comment := splitComment(tc.line)
		args, err := shellWords(cmd)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err %v", tc.line, err)
			continue
		}
		if tc.wantErr {
			continue
		}
		if strings.Join(args, "|") != strings.Join(tc.args, "|") || comment != tc.comment {
			t.Errorf("%s: %q # %q, want %q # %q", tc.line, args, comment, tc.args, tc.comment)
		}
	}
	steps, err := parseTryIt("# x\n\n## Try it\n\n    make demo   # runs evac dev\n    # in another terminal:\n    dig x.example.com\n\n(prose)\n\n    later block\n## Next\n")
	if err != nil || len(steps) != 2 || steps[0].args[0] != "make" || steps[1].args[0] != "dig" {
		t.Errorf("parseTryIt = %+v, %v", steps, err)
	}
}
