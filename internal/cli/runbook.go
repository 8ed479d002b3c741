package cli

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/runbooks"
)

func runbookCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runbook",
		Short: "Store and inspect drill runbooks",
		Long: `A runbook is YAML: name, description, params, preconditions and steps (shift, wait,
gate, restore, notify). Runbooks are replicated and versioned; evac ships
chaos-kong, canary-10, restore-region and rolling-exercise in runbooks/.`,
		Example: `  evac runbook put runbooks/chaos-kong.yaml
  evac runbook list
  evac runbook show chaos-kong`,
	}
	cmd.AddCommand(runbookPutCmd(), runbookListCmd(), runbookShowCmd())
	return cmd
}

func runbookPutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "put FILE",
		Short: "Validate a runbook and store it as its next version",
		Example: `  evac runbook put runbooks/chaos-kong.yaml
  evac validate my-runbook.yaml   # offline check only`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return &UsageError{Err: err}
			}
			rb, err := runbooks.Parse(args[0], b)
			if err != nil {
				return &UsageError{Err: err}
			}
			s, wr, err := call(cmd, func(s *session, ctx context.Context) (wire.WriteResult, error) {
				return s.PutRunbook(ctx, rb.Name, b)
			})
			if err != nil || s.json() {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "runbook %s stored: version %d, %d steps\n", rb.Name, wr.Version, len(rb.Steps))
			return nil
		},
	}
}

func runbookListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List stored runbooks",
		Example: `  evac runbook list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, rbs, err := call(cmd, func(s *session, ctx context.Context) ([]wire.Runbook, error) {
				return s.Runbooks(ctx)
			})
			if err != nil || s.json() {
				return err
			}
			w := cmd.OutOrStdout()
			now := time.Now()
			tw := newTable(w)
			row(tw, "NAME", "VERSION", "STEPS", "PARAMS", "UPDATED", "DESCRIPTION")
			for _, rb := range rbs {
				row(tw, rb.Name, strconv.FormatUint(rb.Version, 10), strconv.Itoa(rb.Steps), dash(paramsSummary(rb)),
					age(rb.Time, now), dash(rb.Description))
			}
			return tw.Flush()
		},
	}
}

// paramsSummary renders params as "region* hold=10m" (* marks required).
func paramsSummary(rb wire.Runbook) string {
	names := make([]string, 0, len(rb.Params))
	for n := range rb.Params {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		p := rb.Params[n]
		switch {
		case p.Required:
			parts[i] = n + "*"
		case p.Default != "":
			parts[i] = n + "=" + p.Default
		default:
			parts[i] = n
		}
	}
	return strings.Join(parts, " ")
}

func runbookShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "show NAME",
		Short:   "Show a stored runbook: its versions and its source",
		Example: `  evac runbook show chaos-kong`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, rb, err := call(cmd, func(s *session, ctx context.Context) (wire.Runbook, error) {
				return s.Runbook(ctx, args[0])
			})
			if err != nil || s.json() {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "runbook %s version %d, stored %s by %s\n", rb.Name, rb.Version,
				rb.Time.Local().Format(time.RFC3339), rb.Actor)
			if len(rb.Params) > 0 {
				fmt.Fprintf(w, "params: %s (* required)\n", paramsSummary(rb))
			}
			if len(rb.Preconditions) > 0 {
				fmt.Fprintf(w, "preconditions: %s\n", strings.Join(rb.Preconditions, ", "))
			}
			for _, h := range rb.History {
				fmt.Fprintf(w, "earlier: version %d, %s by %s\n", h.Version, h.Time.Local().Format(time.RFC3339), h.Actor)
			}
			fmt.Fprintln(w, "---")
			fmt.Fprint(w, rb.Source)
			if !strings.HasSuffix(rb.Source, "\n") {
				fmt.Fprintln(w)
			}
			return nil
		},
	}
}
