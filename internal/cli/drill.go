package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/client"
	"github.com/evac-sh/evac/runbooks"
)

// parseParams turns --param k=v flags into a map.
func parseParams(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, Usagef("--param %q: want NAME=VALUE, e.g. region=us-east", kv)
		}
		if _, dup := out[k]; dup {
			return nil, Usagef("--param %s given twice", k)
		}
		out[k] = v
	}
	return out, nil
}

func drillCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Run, watch and abort drills: runbooks of planned region evacuations",
		Long: `A drill runs a stored runbook (evac runbook put) on the leader, one step after
the other. Each step's start and end are recorded in the Raft log, so a drill goes
on from its current step when the leader changes. Aborting it returns the weights of
the regions it changed to what they were before it.`,
		Example: `  evac drill start chaos-kong --param region=us-east --watch
  evac drill list
  evac drill show d-1764072000-a1b2c3
  evac drill abort d-1764072000-a1b2c3 --reason "enough"`,
	}
	cmd.AddCommand(drillStartCmd(), drillListCmd(), drillShowCmd(), drillAbortCmd())
	return cmd
}

func drillStartCmd() *cobra.Command {
	var (
		params  []string
		reason  string
		watch   bool
		blockOn []string
	)
	cmd := &cobra.Command{
		Use:   "start RUNBOOK [--param NAME=VALUE]...",
		Short: "Start a drill of a stored runbook",
		Example: `  evac drill start chaos-kong --param region=us-east --param hold=5m --reason "game day" --watch
  evac drill start canary-10 --param region=eu-west
  evac drill start chaos-kong --param region=us-east \
      --block-on '{alertmanager: http://127.0.0.1:9093, alert: HighErrorRate}'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := parseParams(params)
			if err != nil {
				return err
			}
			bo, err := parseBlockOn(blockOn)
			if err != nil {
				return err
			}
			s, err := newSession(cmd)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			d, err := s.StartDrill(client.CaptureRaw(cmd.Context(), &raw),
				wire.DrillRequest{Runbook: args[0], Params: p, Reason: strings.TrimSpace(reason), BlockOn: bo})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if s.json() && !watch {
				return printJSON(w, raw, d)
			}
			fmt.Fprintf(w, "drill %s started: runbook %s v%d, %d steps, regions %s\n", d.ID, d.Runbook,
				d.RunbookVersion, len(d.Steps), dash(strings.Join(d.Regions, ",")))
			if !watch {
				fmt.Fprintf(w, "follow it with: evac drill show %s  (or start it with --watch)\n", d.ID)
				return nil
			}
			return watchDrill(cmd.Context(), s, w, d.ID)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&params, "param", nil, "runbook parameter NAME=VALUE (repeatable)")
	f.StringVar(&reason, "reason", "", "why (recorded in the audit log)")
	f.BoolVar(&watch, "watch", false, "show live progress until the drill ends (Ctrl-C detaches; the drill goes on)")
	f.StringArrayVar(&blockOn, "block-on", nil, blockOnHelp)
	return cmd
}

// watchDrill redraws the drill's progress every second until it ends or
// ctx is cancelled (Ctrl-C), which detaches without stopping the drill.
func watchDrill(ctx context.Context, s *session, w io.Writer, id string) error {
	tty := isTerminal(w)
	last := ""
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		d, err := s.Drill(ctx, id)
		switch {
		case ctx.Err() != nil:
			fmt.Fprintf(w, "\ndetached; drill %s goes on (evac drill show %s, evac drill abort %s)\n", id, id, id)
			return nil
		case err != nil:
			return err
		}
		frame := progressFrame(d, time.Now())
		switch {
		case tty:
			fmt.Fprint(w, "\033[H\033[J"+frame)
		case stepKey(d) != last:
			// Not a terminal: print a frame when the step changes.
			fmt.Fprint(w, frame)
		}
		last = stepKey(d)
		if d.Status != state.DrillRunning {
			fmt.Fprintf(w, "drill %s %s: %s\n", d.ID, d.Status, d.Outcome)
			if d.Status != state.DrillSucceeded {
				return &ExitError{Code: 1}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(w, "\ndetached; drill %s goes on (evac drill show %s, evac drill abort %s)\n", id, id, id)
			return nil
		case <-t.C:
		}
	}
}

func stepKey(d wire.DrillReport) string { return fmt.Sprintf("%s/%d", d.Status, d.Current) }

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressFrame renders: step n of m, its kind, time in step, a progress
// bar, and the held regions' weights.
func progressFrame(d wire.DrillReport, now time.Time) string {
	var b strings.Builder
	n := len(d.Steps)
	fmt.Fprintf(&b, "drill %s  runbook %s  %s\n", d.ID, d.Runbook, d.Status)
	done := float64(d.Current)
	if d.Current < n {
		st := d.Steps[d.Current]
		inStep := "not started"
		if !st.StartedAt.IsZero() {
			inStep = shortDuration(now.Sub(st.StartedAt))
			if st.Kind == runbooks.KindWait && st.Duration > 0 {
				frac := float64(now.Sub(st.StartedAt)) / float64(st.Duration.D())
				done += min(max(frac, 0), 1)
				inStep += " of " + st.Duration.String()
			}
		}
		fmt.Fprintf(&b, "step %d of %d: %s  (%s)  time in step %s\n", d.Current+1, n, st.Kind, st.Description, inStep)
	} else {
		fmt.Fprintf(&b, "all %d steps done\n", n)
	}
	const width = 30
	frac := 1.0
	if n > 0 {
		frac = done / float64(n)
	}
	filled := int(frac * width)
	fmt.Fprintf(&b, "[%s%s] %3.0f%%\n", strings.Repeat("#", filled), strings.Repeat("-", width-filled), frac*100)
	fmt.Fprintf(&b, "weights: %s\n", weightsLine(d))
	return b.String()
}

func weightsLine(d wire.DrillReport) string {
	regions := append([]string(nil), d.Regions...)
	sort.Strings(regions)
	parts := make([]string, 0, len(regions))
	for _, r := range regions {
		parts = append(parts, fmt.Sprintf("%s %d (before %d)", r, d.Weights[r], d.Before[r]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func drillListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List running and recent drills, newest first",
		Long: `List running and recent drills, newest first. DRAIN is the slowest controller's
time, after a lowered weight was committed, until 50, 90 and 99% of the resolvers
that had been told the region were told an answer without it ("never": some
controller's resolvers never got there); PAST TTL sums the resolvers not drained by
the TTL plus the slack. Compare them run over run (evac drill show ID for details).`,
		Example: `  evac drill list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, ds, err := call(cmd, func(s *session, ctx context.Context) ([]wire.DrillReport, error) {
				return s.Drills(ctx)
			})
			if err != nil || s.json() {
				return err
			}
			w := cmd.OutOrStdout()
			now := time.Now()
			tw := newTable(w)
			row(tw, "ID", "RUNBOOK", "STATUS", "STEP", "REGIONS", "STARTED", "DRAIN 50/90/99%", "PAST TTL", "REASON")
			for _, d := range ds {
				step := fmt.Sprintf("%d/%d", min(d.Current+1, len(d.Steps)), len(d.Steps))
				reason := d.Reason
				if d.Schedule != "" {
					reason = "schedule " + d.Schedule
				}
				drain, past := "-", "-"
				if s := d.DrainSummary; s != nil {
					drain, past = drainTimes(s.P50Ms, s.P90Ms, s.P99Ms), strconv.Itoa(s.PastTTL)
				}
				row(tw, d.ID, d.Runbook, d.Status, step, dash(strings.Join(d.Regions, ",")), age(d.StartedAt, now),
					drain, past, dash(reason))
			}
			return tw.Flush()
		},
	}
}

func drillShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a drill's report: steps, weights, and how fast resolvers drained on each controller",
		Long: `Show a drill's timeline. Times are when each step's start and end were committed.

Drain: after a step lowers a region's weight, every controller's DNS server
watches the resolver subnets (ECS subnet, else source /24 or /56) it had told the
region within the TTL before the change and that the change moves off it. A
resolver is drained when it is first told an answer without the region; 50/90/99%
are the times after the change's commit by which that share of them was. Those not
drained by the TTL plus a slack are listed as past TTL: ASKED AFTER counts the
answers still naming the region they got after the change (0: it never asked
again, so it may still hold the old answer). Each controller reports once its
measurement closes, TTL plus slack after the change.`,
		Example: `  evac drill show d-1764072000-a1b2c3
  evac drill show d-1764072000-a1b2c3 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, d, err := call(cmd, func(s *session, ctx context.Context) (wire.DrillReport, error) {
				return s.Drill(ctx, args[0])
			})
			if err != nil || s.json() {
				return err
			}
			w := cmd.OutOrStdout()
			return printDrill(w, d)
		},
	}
}

func printDrill(w io.Writer, d wire.DrillReport) error {
	fmt.Fprintf(w, "drill %s: runbook %s v%d, %s", d.ID, d.Runbook, d.RunbookVersion, d.Status)
	if d.Outcome != "" {
		fmt.Fprintf(w, " (%s)", d.Outcome)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "started %s by %s", d.StartedAt.Local().Format(time.RFC3339), d.Actor)
	if !d.EndedAt.IsZero() {
		fmt.Fprintf(w, ", ended %s after %s", d.EndedAt.Local().Format(time.RFC3339), shortDuration(d.EndedAt.Sub(d.StartedAt)))
	}
	fmt.Fprintln(w)
	if d.Reason != "" {
		fmt.Fprintf(w, "reason: %s\n", d.Reason)
	}
	if len(d.Params) > 0 {
		keys := make([]string, 0, len(d.Params))
		for k := range d.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + d.Params[k]
		}
		fmt.Fprintf(w, "params: %s\n", strings.Join(parts, " "))
	}
	if len(d.BlockOn) > 0 {
		fmt.Fprintf(w, "blocked by: %s\n", describeBlockOn(d.BlockOn))
	}
	for _, r := range d.Regions {
		after := "-"
		if v, ok := d.After[r]; ok {
			after = strconv.Itoa(v)
		}
		fmt.Fprintf(w, "region %s: weight before %d, after %s, now %d\n", r, d.Before[r], after, d.Weights[r])
	}
	tw := newTable(w)
	row(tw, "#", "STEP", "STARTED", "ENDED", "TOOK", "OUTCOME", "DETAIL")
	clock := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format("15:04:05.000")
	}
	for _, st := range d.Steps {
		took := "-"
		if !st.StartedAt.IsZero() && !st.EndedAt.IsZero() {
			took = st.EndedAt.Sub(st.StartedAt).Round(time.Millisecond).String()
		}
		outcome := st.Outcome
		if outcome == "" && st.Index == d.Current && d.Status == state.DrillRunning && !st.StartedAt.IsZero() {
			outcome = "in progress"
		}
		row(tw, strconv.Itoa(st.Index+1), st.Description, clock(st.StartedAt), clock(st.EndedAt), took, dash(outcome), dash(st.Detail))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printDrain(w, d)
}

// drainTimes renders 50/90/99% drain times ("86ms", "12.3s"), "never" for
// one not reached.
func drainTimes(ps ...*int64) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		switch {
		case p == nil:
			parts[i] = "never"
		case *p < 1000:
			parts[i] = strconv.FormatInt(*p, 10) + "ms"
		default:
			parts[i] = strconv.FormatFloat(float64(*p)/1000, 'f', 1, 64) + "s"
		}
	}
	return strings.Join(parts, " / ")
}

// printDrain prints the drill's drain reports, per step and controller, and
// the resolvers past the TTL.
func printDrain(w io.Writer, d wire.DrillReport) error {
	if len(d.Drain) == 0 {
		if d.Status == state.DrillRunning {
			fmt.Fprintln(w, "drain: no report yet (each controller reports TTL + slack after a lowered weight)")
		} else {
			fmt.Fprintln(w, "drain: no report (no weight lowered, or no resolver had been told the region)")
		}
		return nil
	}
	reports := slices.Clone(d.Drain)
	sort.SliceStable(reports, func(i, j int) bool {
		a, b := reports[i], reports[j]
		if a.ChangeIndex != b.ChangeIndex {
			return a.ChangeIndex < b.ChangeIndex
		}
		return a.Node < b.Node
	})
	fmt.Fprintln(w, "drain: resolvers told the region before a lowered weight, until told an answer without it")
	tw := newTable(w)
	row(tw, "STEP", "CHANGE", "CONTROLLER", "RESOLVERS", "DRAINED", "50% / 90% / 99%", "PAST TTL", "NOTE")
	for _, r := range reports {
		step := "end"
		if r.Step >= 0 {
			step = strconv.Itoa(r.Step + 1)
		}
		var notes []string
		if r.Capped {
			notes = append(notes, "capped sample")
		}
		if r.Superseded {
			notes = append(notes, "cut short by a raise")
		}
		if !r.WindowComplete {
			notes = append(notes, "recording began inside the window")
		}
		times := drainTimes(r.P50Ms, r.P90Ms, r.P99Ms)
		if r.Population == 0 {
			times = "no resolver asked"
		}
		row(tw, step, fmt.Sprintf("%s %d->%d at %s", r.Region, r.From, r.To, r.ChangeAt.Local().Format("15:04:05.000")),
			r.Node, strconv.Itoa(r.Population), strconv.Itoa(r.Drained), times,
			strconv.Itoa(r.PastTTL), dash(strings.Join(notes, ", ")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var lingering int
	for _, r := range reports {
		lingering += len(r.PastTTLResolvers)
	}
	if lingering == 0 {
		return nil
	}
	fmt.Fprintln(w, "past the TTL (up to 20 per report):")
	tw = newTable(w)
	row(tw, "CONTROLLER", "REGION", "SUBNET", "SERVICE", "LAST TOLD THE REGION", "ASKED AFTER")
	for _, r := range reports {
		for _, lr := range r.PastTTLResolvers {
			row(tw, r.Node, r.Region, lr.Subnet, lr.Service, lr.LastAnswered.Local().Format("15:04:05.000"), strconv.Itoa(lr.AskedAfter))
		}
	}
	return tw.Flush()
}

func drillAbortCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "abort ID [--reason TEXT]",
		Short: "Abort a running drill: its regions go back to their weights from before it",
		Long: `Abort a running drill: its regions go back to their weights from before it.
Without an ID, lists the running drills to choose from and aborts nothing.`,
		Example: `  evac drill abort                     # which drills are running?
  evac drill abort d-1764072000-a1b2c3 --reason "error rate up in us-west"`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return namesOfRunning(cmd)
			}
			s, d, err := call(cmd, func(s *session, ctx context.Context) (wire.DrillReport, error) {
				return s.AbortDrill(ctx, args[0], reason)
			})
			if err != nil || s.json() {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "drill %s %s; weights: %s\n", d.ID, d.Status, weightsLine(d))
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")
	return cmd
}

// namesOfRunning answers `evac drill abort` without an ID: it names the
// running drills (a usage error, exit 2, so a script that forgot the ID
// aborts nothing), or says none runs.
func namesOfRunning(cmd *cobra.Command) error {
	s, err := newSession(cmd)
	if err != nil {
		return err
	}
	ds, err := s.Drills(cmd.Context())
	if err != nil {
		return err
	}
	var running []string
	for _, d := range ds {
		if d.Status == state.DrillRunning {
			running = append(running, fmt.Sprintf("  %s  (runbook %s, step %d/%d)", d.ID, d.Runbook, min(d.Current+1, len(d.Steps)), len(d.Steps)))
		}
	}
	if len(running) == 0 {
		return Usagef("no drill is running; nothing to abort")
	}
	return Usagef("name the drill to abort: evac drill abort ID --reason TEXT; running:\n%s", strings.Join(running, "\n"))
}
