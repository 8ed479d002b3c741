package cli

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/controlplane/state"
)

// Dynamic shell completion: the names a command takes come from the
// controller the command would talk to (--addr, --token and the
// environment, as for the command itself), asked with a short deadline so a
// slow or absent controller costs the shell one second, not a hang.

// completion is the names to offer, with a one-line description each.
type completion func(ctx context.Context, s *session) ([]string, error)

func complete(list completion) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		s, err := newSession(cmd)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), time.Second)
		defer cancel()
		names, err := list(ctx, s)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, n := range names {
			if strings.HasPrefix(n, toComplete) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func regionNames(ctx context.Context, s *session) ([]string, error) {
	rs, err := s.Regions(ctx)
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Name+"\t"+string(r.State))
	}
	return out, err
}

func runbookNames(ctx context.Context, s *session) ([]string, error) {
	rbs, err := s.Runbooks(ctx)
	out := make([]string, 0, len(rbs))
	for _, rb := range rbs {
		out = append(out, rb.Name+"\t"+rb.Description)
	}
	return out, err
}

// drillIDs offers the drills, or only the running ones.
func drillIDs(runningOnly bool) completion {
	return func(ctx context.Context, s *session) ([]string, error) {
		ds, err := s.Drills(ctx)
		out := make([]string, 0, len(ds))
		for _, d := range ds {
			if runningOnly && d.Status != state.DrillRunning {
				continue
			}
			out = append(out, d.ID+"\t"+d.Runbook+" "+d.Status)
		}
		return out, err
	}
}

func scheduleIDs(ctx context.Context, s *session) ([]string, error) {
	scs, err := s.Schedules(ctx)
	out := make([]string, 0, len(scs))
	for _, sc := range scs {
		out = append(out, sc.ID+"\t"+sc.Runbook+" "+sc.Cron)
	}
	return out, err
}

// addCompletions wires the dynamic completions into root's client commands
// and the -o values into its persistent flags.
func addCompletions(root *cobra.Command) {
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]cobra.Completion{OutputTable + "\taligned columns", OutputJSON + "\tthe server's JSON"}, cobra.ShellCompDirectiveNoFileComp))
	for path, list := range map[string]completion{
		"evacuate":      regionNames,
		"restore":       regionNames,
		"regions":       regionNames,
		"drill start":   runbookNames,
		"drill show":    drillIDs(false),
		"drill abort":   drillIDs(true),
		"runbook show":  runbookNames,
		"schedule show": scheduleIDs,
		"schedule rm":   scheduleIDs,
	} {
		if c, _, err := root.Find(strings.Fields(path)); err == nil && c != root {
			c.ValidArgsFunction = complete(list)
		}
	}
}
