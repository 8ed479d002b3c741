package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

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
		params []string
		reason string
		watch  bool
	)
	cmd := &cobra.Command{
		Use:   "start RUNBOOK [--param NAME=VALUE]...",
		Short: "Start a drill of a stored runbook",
		Example: `  evac drill start chaos-kong --param region=us-east --param hold=5m --reason "game day" --watch
  evac drill start canary-10 --param region=eu-west`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := parseParams(params)
			if err != nil {
				return err
			}
			s, err := newSession(cmd)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			d, err := s.StartDrill(client.CaptureRaw(cmd.Context(), &raw),
				client.DrillRequest{Runbook: args[0], Params: p, Reason: strings.TrimSpace(reason)})
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

func stepKey(d client.Drill) string { return fmt.Sprintf("%s/%d", d.Status, d.Current) }

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
func progressFrame(d client.Drill, now time.Time) string {
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

func weightsLine(d client.Drill) string {
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
		Use:     "list",
		Short:   "List running and recent drills, newest first",
		Example: `  evac drill list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, ds, err := call(cmd, func(s *session, ctx context.Context) ([]client.Drill, error) {
				return s.Drills(ctx)
			})
			if err != nil || s.json() {
				return err
			}
			w := cmd.OutOrStdout()
			now := time.Now()
			tw := newTable(w)
			row(tw, "ID", "RUNBOOK", "STATUS", "STEP", "REGIONS", "STARTED", "REASON")
			for _, d := range ds {
				step := fmt.Sprintf("%d/%d", min(d.Current+1, len(d.Steps)), len(d.Steps))
				reason := d.Reason
				if d.Schedule != "" {
					reason = "schedule " + d.Schedule
				}
				row(tw, d.ID, d.Runbook, d.Status, step, dash(strings.Join(d.Regions, ",")), age(d.StartedAt, now), dash(reason))
			}
			return tw.Flush()
		},
	}
}

func drillShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a drill's report: each step's start, end and outcome, and the weights",
		Long: `Show a drill's timeline. Times are when each step's start and end were committed.
A shift changes the region's weight in the step's start command, so this
controller's DNS answers stopped returning (or returned less of) a shifted region at
that step's start time, and the step ended right after; other controllers apply
the same command within their replication lag, and resolvers may keep cached
answers for up to the TTL. (This does not measure drain from DNS query logs.)`,
		Example: `  evac drill show d-1764072000-a1b2c3
  evac drill show d-1764072000-a1b2c3 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, d, err := call(cmd, func(s *session, ctx context.Context) (client.Drill, error) {
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

func printDrill(w io.Writer, d client.Drill) error {
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
	fmt.Fprintln(w, "a shift's weight change reached this controller's DNS at its step's start time (see --help)")
	return nil
}

func drillAbortCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     "abort ID [--reason TEXT]",
		Short:   "Abort a running drill: its regions go back to their weights from before it",
		Example: `  evac drill abort d-1764072000-a1b2c3 --reason "error rate up in us-west"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, d, err := call(cmd, func(s *session, ctx context.Context) (client.Drill, error) {
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
