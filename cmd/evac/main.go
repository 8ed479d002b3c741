// Command evac is the one binary of evac: controllers (`evac server`),
// regional agents (`evac agent`), the whole system on loopback (`evac dev`)
// and the operator's CLI.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/internal/buildinfo"
	"github.com/evac-sh/evac/internal/cli"
	"github.com/evac-sh/evac/internal/logging"
)

func main() {
	os.Exit(cli.Execute(newRootCmd()))
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "evac",
		Short: "Regional failover and traffic steering: evacuate a failing region in minutes",
		Long: `evac steers traffic between regions with authoritative DNS whose answers follow
per-region weights, held by Raft-replicated controllers and driven by health
that agents in every region gossip. It evacuates a failing region automatically,
on demand, and in drills.

Try it: evac dev`,
		Version: buildinfo.String(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	cli.AddClientCommands(root)
	addClusterRecover(root) // cluster.go
	root.AddCommand(newServerCmd(), newAgentCmd(), newDevCmd(), newValidateCmd(), newVersionCmd(), newTokenCmd(), newDNSBenchCmd(), newTSIGCmd(), newDNSSECCmd())
	addCompletion(root)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version and build information",
		Example: "  evac version\n  evac version -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := cli.OutputFormat(cmd)
			if err != nil {
				return err
			}
			if out == cli.OutputJSON {
				b, err := json.MarshalIndent(buildinfo.Get(), "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), buildinfo.String())
			return err
		},
	}
}

func usageErr(err error) error { return &cli.UsageError{Err: err} }

func addLogFlags(fl *pflag.FlagSet, level, format *string) {
	fl.StringVar(level, "log-level", "info", "log level: debug, info, warn, error")
	fl.StringVar(format, "log-format", "console", "log format: console or json")
}

func newLogger(_ *cobra.Command, level, format string) (*zap.Logger, error) {
	if level == "" {
		level = "info"
	}
	if format == "" {
		format = "console"
	}
	return logging.New(level, format)
}
