package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/client"
)

func applyCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Set the cluster-wide steering config from a YAML or JSON file",
		Long: `Validate the steering config in FILE ("-" reads standard input) and make it
the cluster's new config version. The file is checked here first, whole: a bad
file prints every error, each naming its field, and exits 2 without contacting
the server.`,
		Example: `  evac apply -f steering.yaml
  evac config -o json | jq '.config' > steering.json && evac apply -f steering.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return Usagef("-f FILE is required")
			}
			data, err := readInput(cmd, file)
			if err != nil {
				return &UsageError{Err: err}
			}
			if _, err := state.ParseConfig(data); err != nil {
				return Usagef("%s: %w", file, err)
			}
			s, err := newSession(cmd)
			if err != nil {
				return err
			}
			ct := "application/yaml"
			if strings.EqualFold(filepath.Ext(file), ".json") {
				ct = "application/json"
			}
			var raw json.RawMessage
			wr, err := s.ApplyConfig(client.CaptureRaw(cmd.Context(), &raw), data, ct)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if s.json() {
				return printJSON(w, raw, wr)
			}
			if wr.Duplicate {
				fmt.Fprintf(w, "config already applied (duplicate request), version %d\n", wr.Version)
				return nil
			}
			fmt.Fprintf(w, "config version %d applied (index %d)\n", wr.Version, wr.Index)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", `steering config file, YAML or JSON ("-" for standard input)`)
	return cmd
}

func readInput(cmd *cobra.Command, file string) ([]byte, error) {
	if file == "-" {
		return io.ReadAll(cmd.InOrStdin())
	}
	return os.ReadFile(file)
}

func configCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Print the current steering config as YAML, with its version",
		Example: `  evac config
  evac config > steering.yaml     # edit, then: evac apply -f steering.yaml
  evac config -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, ci, err := call(cmd, func(s *session, ctx context.Context) (client.ConfigInfo, error) {
				return s.Config(ctx)
			})
			if err != nil || s.json() {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "# evac steering config, version %d\n", ci.Version)
			if ci.Config == nil {
				fmt.Fprintln(w, "# no config applied yet")
				return nil
			}
			b, err := ci.Config.Marshal()
			if err != nil {
				return fmt.Errorf("rendering config: %w", err)
			}
			_, err = w.Write(b)
			return err
		},
	}
}
