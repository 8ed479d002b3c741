package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/client"
)

// moveFlags are the flags of evacuate and restore.
type moveFlags struct {
	reason, ramp, stepInterval string
	force, dryRun              bool
}

func (m *moveFlags) register(cmd *cobra.Command, rampExample string, force bool) {
	f := cmd.Flags()
	f.StringVar(&m.reason, "reason", "", "why (required; recorded in the audit log)")
	f.StringVar(&m.ramp, "ramp", "", "traffic weight steps, comma-separated, e.g. "+rampExample+" (default: the steering policy's)")
	f.StringVar(&m.stepInterval, "step-interval", "", "wait between ramp steps, e.g. 30s (default: the steering policy's)")
	f.BoolVar(&m.dryRun, "dry-run", false, "show what would happen and change nothing")
	if force {
		f.BoolVar(&m.force, "force", false, "override safety checks (e.g. evacuating the last serving region)")
	}
}

// request validates the flags locally and builds the request; target is
// the weight the ramp must end on (0 to evacuate, 100 to restore).
func (m *moveFlags) request(target int) (client.MoveRequest, error) {
	req := client.MoveRequest{Reason: strings.TrimSpace(m.reason), Force: m.force, DryRun: m.dryRun}
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
		d, err := state.ParseDuration(m.stepInterval)
		if err != nil || d == 0 {
			return req, Usagef("--step-interval: want a positive duration like 30s, got %q", m.stepInterval)
		}
		req.StepInterval = d.String()
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
  evac evacuate us-east --reason "check" --dry-run`,
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
  evac restore us-east --reason "after drill" --ramp 10,50,100 --step-interval 2m`,
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
	send func(*client.Client, context.Context, string, client.MoveRequest) (client.WriteResult, error),
	what, region string) error {
	req, err := m.request(target)
	if err != nil {
		return err
	}
	s, wr, err := call(cmd, func(s *session, ctx context.Context) (client.WriteResult, error) {
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
		}
	case wr.Duplicate:
		fmt.Fprintf(w, "%s was already requested (duplicate request); nothing new changed\n", what)
	default:
		fmt.Fprintf(w, "%s started (index %d%s)\n", what, wr.Index, eventsNote(wr.Events))
	}
	if wr.Region == nil {
		return nil
	}
	now := time.Now()
	if err := regionTable(w, now, *wr.Region); err != nil {
		return err
	}
	if l := rampLine(wr.Region.Ramp, now); l != "" {
		fmt.Fprintln(w, l)
	}
	return nil
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
	var wr client.WriteResult
	what := "frozen"
	if freeze {
		wr, err = s.Freeze(ctx, reason)
	} else {
		wr, err = s.Unfreeze(ctx, reason)
		what = "unfrozen"
	}
	if err != nil {
		return err
	}
	w := s.cmd.OutOrStdout()
	if s.json() {
		return printJSON(w, raw, wr)
	}
	return writeLine(w, "cluster %s (index %d%s)\n", what, wr.Index, eventsNote(wr.Events))
}

func writeLine(w io.Writer, format string, args ...any) error {
	_, err := fmt.Fprintf(w, format, args...)
	return err
}
