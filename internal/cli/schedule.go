package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
)

func scheduleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Run drills on a cron schedule",
		Long: `The leader fires each schedule at its due times (cron with an optional seconds
field, in the schedule's time zone). Each due time fires once, across leader
changes; one missed during a leader change by up to a minute still runs, older ones
are recorded as missed. A run is skipped, with its reason recorded, inside a
blackout window, when a --skip-if condition holds, or while a --block-on
condition fires (an Alertmanager alert, a Prometheus query past a threshold); the
drills a schedule starts are aborted when one fires.`,
		Example: `  evac schedule add --cron "0 10 * * tue" --tz Europe/Paris --runbook chaos-kong --param region=eu-west
  evac schedule list
  evac schedule rm sch-1a2b3c4d`,
	}
	cmd.AddCommand(scheduleAddCmd(), scheduleListCmd(), scheduleShowCmd(), scheduleRmCmd())
	return cmd
}

// parseBlackout parses "22:00-06:00" or "22:00-06:00@sat,sun".
func parseBlackout(s string) (state.Blackout, error) {
	window, days, _ := strings.Cut(s, "@")
	from, to, ok := strings.Cut(window, "-")
	if !ok {
		return state.Blackout{}, Usagef("--blackout %q: want FROM-TO[@DAYS], e.g. 22:00-06:00@sat,sun", s)
	}
	b := state.Blackout{From: strings.TrimSpace(from), To: strings.TrimSpace(to)}
	if days != "" {
		b.Days = strings.Split(days, ",")
	}
	return b, nil
}

func scheduleAddCmd() *cobra.Command {
	var (
		req       state.ScheduleAdd
		params    []string
		blackouts []string
		blockOn   []string
	)
	cmd := &cobra.Command{
		Use:   "add --cron EXPR --runbook NAME [--param NAME=VALUE]...",
		Short: "Add a scheduled drill",
		Example: `  evac schedule add --cron "0 10 * * tue" --tz Europe/Paris --runbook chaos-kong --param region=eu-west \
      --blackout 00:00-08:00@sat,sun --skip-if any_unhealthy,frozen,drill_running
  evac schedule add --id hourly --cron "@hourly" --runbook canary-10 --param region=us-east
  evac schedule add --cron "0 10 * * tue" --runbook chaos-kong --param region=eu-west \
      --block-on '{alertmanager: http://127.0.0.1:9093, alert: HighErrorRate}' \
      --block-on '{prometheus: http://127.0.0.1:9090, query: "sum(rate(errors_total[5m]))", above: 10}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.Cron == "" || req.Runbook == "" {
				return Usagef("--cron and --runbook are required")
			}
			if _, err := state.ParseCron(req.Cron); err != nil {
				return Usagef("--cron %q: %v", req.Cron, err)
			}
			if req.TZ != "" {
				if _, err := time.LoadLocation(req.TZ); err != nil {
					return Usagef("--tz %q is not a known time zone", req.TZ)
				}
			}
			p, err := parseParams(params)
			if err != nil {
				return err
			}
			req.Params = p
			for _, b := range blackouts {
				bo, err := parseBlackout(b)
				if err != nil {
					return err
				}
				req.Blackouts = append(req.Blackouts, bo)
			}
			if req.BlockOn, err = parseBlockOn(blockOn); err != nil {
				return err
			}
			s, sc, err := call(cmd, func(s *session, ctx context.Context) (wire.ScheduleReport, error) {
				return s.AddSchedule(ctx, req)
			})
			if err != nil || s.json() {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "schedule %s added: %q %s runbook %s; next %s\n", sc.ID, sc.Cron, tzName(sc.TZ), sc.Runbook, nextLine(sc))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.ID, "id", "", "schedule id (default: chosen by the server)")
	f.StringVar(&req.Cron, "cron", "", `cron expression: 5 fields, or 6 with seconds first ("0 */10 * * * *"), or @hourly, @every 1h; at most one run a minute unless the steering config's policy.schedule_min_interval allows more`)
	f.StringVar(&req.TZ, "tz", "", "time zone of the expression and blackouts, e.g. Europe/Paris (default UTC)")
	f.StringVar(&req.Runbook, "runbook", "", "runbook to run")
	f.StringArrayVar(&params, "param", nil, "runbook parameter NAME=VALUE (repeatable)")
	f.StringArrayVar(&blackouts, "blackout", nil, "skip runs due in FROM-TO[@DAYS], e.g. 22:00-06:00@fri,sat (repeatable)")
	f.StringSliceVar(&req.SkipIf, "skip-if", nil, "skip a run when: any_unhealthy, frozen, drill_running (comma-separated)")
	f.StringVar(&req.Reason, "reason", "", "why (recorded in the audit log)")
	f.StringArrayVar(&blockOn, "block-on", nil, blockOnHelp)
	return cmd
}

func tzName(tz string) string {
	if tz == "" {
		return "UTC"
	}
	return tz
}

func nextLine(sc wire.ScheduleReport) string {
	if len(sc.Next) == 0 {
		return "-"
	}
	return sc.Next[0].Format("2006-01-02 15:04:05 MST")
}

func lastRun(sc wire.ScheduleReport) string {
	if len(sc.Runs) == 0 {
		return "-"
	}
	r := sc.Runs[len(sc.Runs)-1]
	s := r.Scheduled.Local().Format("15:04:05") + " " + r.Outcome
	if r.Drill != "" {
		s += " " + r.Drill
	}
	if r.Reason != "" {
		s += ": " + r.Reason
	}
	return s
}

func scheduleListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List schedules with their next due time and last run",
		Example: `  evac schedule list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, scs, err := call(cmd, func(s *session, ctx context.Context) ([]wire.ScheduleReport, error) {
				return s.Schedules(ctx)
			})
			if err != nil || s.json() {
				return err
			}
			w := cmd.OutOrStdout()
			tw := newTable(w)
			row(tw, "ID", "CRON", "TZ", "RUNBOOK", "NEXT", "LAST RUN")
			for _, sc := range scs {
				row(tw, sc.ID, sc.Cron, tzName(sc.TZ), sc.Runbook, nextLine(sc), lastRun(sc))
			}
			return tw.Flush()
		},
	}
}

func scheduleShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "show ID",
		Short:   "Show a schedule and its recent runs",
		Example: `  evac schedule show tick`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, sc, err := call(cmd, func(s *session, ctx context.Context) (wire.ScheduleReport, error) {
				return s.Schedule(ctx, args[0])
			})
			if err != nil || s.json() {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "schedule %s: %q %s, runbook %s; next %s\n", sc.ID, sc.Cron, tzName(sc.TZ), sc.Runbook, nextLine(sc))
			if len(sc.BlockOn) > 0 {
				fmt.Fprintf(w, "blocked by: %s\n", describeBlockOn(sc.BlockOn))
			}
			tw := newTable(w)
			row(tw, "DUE", "FIRED", "OUTCOME", "DRILL", "REASON")
			for _, r := range sc.Runs {
				row(tw, r.Scheduled.Local().Format(time.RFC3339), r.Time.Local().Format("15:04:05.000"), r.Outcome,
					dash(r.Drill), dash(r.Reason))
			}
			return tw.Flush()
		},
	}
}

func scheduleRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rm ID",
		Short:   "Remove a schedule",
		Example: `  evac schedule rm tick`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(cmd)
			if err != nil {
				return err
			}
			if err := s.RemoveSchedule(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "schedule %s removed\n", args[0])
			return nil
		},
	}
}
