package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/client"
	"github.com/evac-sh/evac/internal/duration"
)

// moveFlags are the flags of evacuate and restore.
type moveFlags struct {
	reason, ramp, stepInterval string
	force, dryRun, watch       bool
}

func (m *moveFlags) register(cmd *cobra.Command, rampExample string, force bool) {
	f := cmd.Flags()
	f.StringVar(&m.reason, "reason", "", "why (required; recorded in the audit log)")
	f.StringVar(&m.ramp, "ramp", "", "traffic weight steps, comma-separated, e.g. "+rampExample+" (default: the steering policy's)")
	f.StringVar(&m.stepInterval, "step-interval", "", "wait between ramp steps, e.g. 30s (default: the steering policy's)")
	f.BoolVar(&m.dryRun, "dry-run", false, "show what would happen and change nothing")
	f.BoolVar(&m.watch, "watch", false, "show each ramp step until the region is there (Ctrl-C detaches; the ramp goes on)")
	if force {
		f.BoolVar(&m.force, "force", false, "override safety checks (e.g. evacuating the last serving region)")
	}
}

// request validates the flags locally and builds the request; target is
// the weight the ramp must end on (0 to evacuate, 100 to restore).
func (m *moveFlags) request(target int) (wire.MoveRequest, error) {
	req := wire.MoveRequest{Reason: strings.TrimSpace(m.reason), Force: m.force, DryRun: m.dryRun}
	if req.Reason == "" {
		return req, Usagef("--reason is required: say why (it is recorded in the audit log)")
	}
	if m.ramp != "" {
		r, err := ParseRamp(m.ramp, target)
		if err != nil {
			return req, &UsageError{Err: err}
		}
		req.Ramp = r
	}
	if m.stepInterval != "" {
		d, err := duration.Parse(m.stepInterval)
		if err != nil || d == 0 {
			return req, Usagef("--step-interval: want a positive duration like 30s, got %q", m.stepInterval)
		}
		req.StepInterval = d
	}
	return req, nil
}

// ParseRamp parses a --ramp value such as "50,0" and checks it moves
// monotonically to target (0 to evacuate, 100 to restore) and ends on it.
func ParseRamp(s string, target int) ([]int, error) {
	parts := strings.Split(s, ",")
	ramp := make([]int, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		w, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("--ramp %q: %q is not a whole number (want e.g. 50,%d)", s, p, target)
		}
		ramp = append(ramp, w)
	}
	if err := state.ValidateRamp(ramp, target); err != nil {
		return nil, fmt.Errorf("--ramp %q: %w", s, err)
	}
	return ramp, nil
}

func evacuateCmd() *cobra.Command {
	var m moveFlags
	cmd := &cobra.Command{
		Use:   "evacuate REGION --reason TEXT",
		Short: "Move traffic out of a region, in steps",
		Long: `Start moving REGION's traffic weight down to 0 through the ramp's steps, one
every --step-interval. The controllers refuse to evacuate the last serving region
unless --force is given.`,
		Example: `  evac evacuate us-east --reason "INC-123: elevated 5xx"
  evac evacuate us-east --reason "drill" --ramp 75,25,0 --step-interval 1m
  evac evacuate us-east --reason "check" --dry-run
  evac evacuate us-east --reason "INC-123" --watch`,
		Args: exactRegion,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMove(cmd, m, 0, (*client.Client).Evacuate, "evacuation of "+args[0], args[0])
		},
	}
	m.register(cmd, "50,0", true)
	return cmd
}

func restoreCmd() *cobra.Command {
	var m moveFlags
	cmd := &cobra.Command{
		Use:   "restore REGION --reason TEXT",
		Short: "Bring traffic back to an evacuated region, in steps",
		Example: `  evac restore us-east --reason "INC-123 resolved"
  evac restore us-east --reason "after drill" --ramp 10,50,100 --step-interval 2m --watch`,
		Args: exactRegion,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMove(cmd, m, 100, (*client.Client).Restore, "restore of "+args[0], args[0])
		},
	}
	m.register(cmd, "50,100", false)
	return cmd
}

func exactRegion(_ *cobra.Command, args []string) error {
	switch {
	case len(args) == 0:
		return Usagef("REGION is required")
	case len(args) > 1:
		return Usagef("one REGION only, got %d arguments: %s", len(args), strings.Join(args, " "))
	}
	return nil
}

// runMove sends an evacuate or restore request for region and prints the
// outcome (the server's JSON as sent with -o json).
func runMove(cmd *cobra.Command, m moveFlags, target int,
	send func(*client.Client, context.Context, string, wire.MoveRequest) (wire.WriteResult, error),
	what, region string) error {
	req, err := m.request(target)
	if err != nil {
		return err
	}
	s, wr, err := call(cmd, func(s *session, ctx context.Context) (wire.WriteResult, error) {
		return send(s.Client, ctx, region, req)
	})
	if err != nil || s.json() {
		return err
	}
	w := cmd.OutOrStdout()
	dryRun := req.DryRun
	switch {
	case dryRun && wr.DryRun != nil && !wr.DryRun.Allowed:
		return fmt.Errorf("dry run: %s would be refused: %s (%s); nothing changed", what, wr.DryRun.Refusal, wr.DryRun.Code)
	case dryRun:
		fmt.Fprintf(w, "dry run: %s would be accepted; nothing changed\n", what)
		if wr.DryRun != nil {
			for _, r := range wr.DryRun.Regions {
				fmt.Fprintf(w, "  %-12s %-11s weight %d\n", r.Name, r.State, r.Weight)
			}
			if sp := wr.DryRun.Spill; sp != nil {
				switch {
				case len(sp.Flows) == 0:
					fmt.Fprintf(w, "%s's clients: no home demand measured yet (policy nearest); each goes to its next choice\n", region)
				default:
					fmt.Fprintf(w, "%s's clients (%.1f answers/s) would go to:\n", region, sp.Moving)
					if err := spillTable(w, sp); err != nil {
						return err
					}
				}
			}
		}
	case wr.Duplicate:
		fmt.Fprintf(w, "%s was already requested (duplicate request); nothing new changed\n", what)
	default:
		fmt.Fprintf(w, "%s started (index %d%s)\n", what, wr.Index, eventsNote(wr.Events))
	}
	if wr.Region != nil {
		now := time.Now()
		if err := regionTable(w, now, *wr.Region); err != nil {
			return err
		}
		if l := rampLine(wr.Region.Ramp, now); l != "" {
			fmt.Fprintln(w, l)
		}
	}
	if m.watch && !dryRun {
		return watchMove(cmd.Context(), s, w, region, target, time.Second)
	}
	return nil
}

// watchMove follows region's ramp every interval, printing a line when its
// state, weight or next step changes, until the ramp is done: weight at
// target and no ramp (exit 0). A ramp that ends elsewhere (cancelled by a
// restore, an evacuation or a drill) exits 1. Ctrl-C detaches; the ramp goes on.
func watchMove(ctx context.Context, s *session, w io.Writer, region string, target int, interval time.Duration) error {
	last, seen, start := "", false, time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r, err := s.Region(ctx, region)
		switch {
		case ctx.Err() != nil:
			fmt.Fprintf(w, "detached; the ramp of %s goes on (evac regions)\n", region)
			return nil
		case err != nil:
			return err
		}
		now := time.Now()
		line := fmt.Sprintf("%s  %s  weight %d  health %.2f", r.Name, r.State, r.Weight, r.HealthShare())
		if l := rampLine(r.Ramp, now); l != "" {
			line += "  " + l
		}
		// The countdown changes every second; print when anything else does.
		key := fmt.Sprintf("%s/%d", r.State, r.Weight)
		if r.Ramp != nil {
			key += "/" + strconv.Itoa(r.Ramp.Next)
		}
		if key != last {
			fmt.Fprintf(w, "%s  %s\n", now.Format("15:04:05"), line)
			last = key
		}
		seen = seen || r.Ramp != nil
		// A follower may not have applied the write yet: before the ramp is
		// seen once, no ramp means "not here yet", for a while.
		notYet := !seen && time.Since(start) < 15*time.Second
		if r.Ramp == nil && r.Weight == target {
			fmt.Fprintf(w, "%s is %s at weight %d\n", r.Name, r.State, r.Weight)
			return nil
		}
		if r.Ramp == nil && !notYet {
			fmt.Fprintf(w, "the ramp of %s ended at weight %d, not %d: %s (by %s)\n", r.Name, r.Weight, target, dash(r.Reason), dash(r.Actor))
			return &ExitError{Code: 1}
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(w, "detached; the ramp of %s goes on (evac regions)\n", region)
			return nil
		case <-t.C:
		}
	}
}

func eventsNote(seqs []uint64) string {
	if len(seqs) == 0 {
		return ""
	}
	return ", events " + joinInts(seqs, ",")
}

func freezeCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "freeze --reason TEXT",
		Short: "Stop all automatic steering changes until unfrozen",
		Long: `Freeze the cluster: the controllers make no automatic evacuation or restore
until ` + "`evac unfreeze`" + `. Operators can still evacuate and restore by hand. The freeze
and its reason show in ` + "`evac status`" + `.`,
		Example: `  evac freeze --reason "INC-456: health signal is bogus, investigating"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(reason) == "" {
				return Usagef("--reason is required: say why (it is recorded in the audit log)")
			}
			return runFreeze(cmd, true, strings.TrimSpace(reason))
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (required; recorded in the audit log)")
	return cmd
}

func unfreezeCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "unfreeze",
		Short: "Resume automatic steering changes",
		Example: `  evac unfreeze
  evac unfreeze --reason "INC-456 resolved"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runFreeze(cmd, false, strings.TrimSpace(reason))
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")
	return cmd
}

func runFreeze(cmd *cobra.Command, freeze bool, reason string) error {
	s, err := newSession(cmd)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	ctx := client.CaptureRaw(cmd.Context(), &raw)
	var wr wire.WriteResult
	what := "frozen"
	if freeze {
		wr, err = s.Freeze(ctx, reason)
	} else {
		wr, err = s.Unfreeze(ctx, reason)
		what = "unfrozen"
	}
	w := s.cmd.OutOrStdout()
	// Already in the asked state: the operator's intent holds, so say so and
	// succeed (a script's `evac freeze` must not fail because someone was quicker).
	var ae *client.APIError
	if errors.As(err, &ae) && (ae.Code == state.CodeAlreadyFrozen || ae.Code == state.CodeNotFrozen) {
		if s.json() {
			return printJSON(w, nil, map[string]any{"changed": false, "frozen": freeze, "message": ae.Message})
		}
		return writeLine(w, "cluster %s; nothing changed\n", ae.Message)
	}
	if err != nil {
		return err
	}
	if s.json() {
		return printJSON(w, raw, wr)
	}
	return writeLine(w, "cluster %s (index %d%s)\n", what, wr.Index, eventsNote(wr.Events))
}

func writeLine(w io.Writer, format string, args ...any) error {
	_, err := fmt.Fprintf(w, format, args...)
	return err
}
