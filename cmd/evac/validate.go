package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/evac-sh/evac/agent"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/yamlcheck"
	"github.com/evac-sh/evac/runbooks"
)

// fileKind guesses what a YAML file is from its top-level keys.
func fileKind(b []byte) string {
	var top map[string]any
	if err := yaml.Unmarshal(b, &top); err != nil {
		return ""
	}
	switch {
	case top["steps"] != nil:
		return "runbook"
	case top["zone"] != nil || top["services"] != nil:
		return "steering"
	case top["checks"] != nil || top["region"] != nil:
		return "agent"
	case top["node_id"] != nil || top["raft_addr"] != nil:
		return "server"
	}
	return ""
}

func newValidateCmd() *cobra.Command {
	var kind string
	cmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a steering config, agent config, server config or runbook offline",
		Example: `  evac validate steering.yaml
  evac validate --kind agent agent.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return usageErr(err)
			}
			if kind == "" {
				kind = fileKind(b)
			}
			switch kind {
			case "steering":
				_, err = state.ParseConfig(b)
				err = yamlcheck.InFile(args[0], err)
			case "runbook":
				// Its errors start with FILE:LINE already.
				_, err = runbooks.Parse(args[0], b)
			case "agent":
				_, err = agent.CheckFile(args[0], b)
			case "server":
				var f serverFile
				err = loadYAMLStrict(args[0], &f)
				if err == nil {
					_, err = f.controllerConfig()
					err = errors.Join(err, f.securityFlags.check())
					if err != nil {
						err = fmt.Errorf("%s: %w", args[0], err)
					}
				}
			case "":
				// Say what is wrong with a file that does not parse, whatever it is.
				var top map[string]any
				if _, perr := yamlcheck.Decode(b, &top); perr != nil {
					return yamlcheck.InFile(args[0], perr)
				}
				return usageErr(fmt.Errorf("%s: cannot tell what kind of file this is: use --kind steering|agent|server|runbook", args[0]))
			default:
				return usageErr(fmt.Errorf("--kind %q must be steering, agent, server or runbook", kind))
			}
			// A data error is not a usage error: no usage hint after it.
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid %s config\n", args[0], kind)
			return nil
		},
	}
	cmd.Flags().StringVar(&kind, "kind", "", "steering, agent, server or runbook (guessed from the keys when empty)")
	return cmd
}

// loadYAMLStrict decodes a YAML file, rejecting unknown keys; its errors
// name the file and each problem's line and field, all at once.
func loadYAMLStrict(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	_, err = yamlcheck.Decode(b, v)
	return yamlcheck.InFile(path, err)
}
