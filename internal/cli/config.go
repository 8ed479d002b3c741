package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/client"
)

func applyCmd() *cobra.Command {
	var (
		file   string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Set the cluster-wide steering config from a YAML or JSON file",
		Long: `Validate the steering config in FILE ("-" reads standard input) and make it
the cluster's new config version. The file is checked here first, whole: a bad
file prints every error, each naming its field, and exits 2 without contacting
the server.`,
		Example: `  evac apply -f steering.yaml --dry-run     # the diff against the config in force; nothing applied
  evac apply -f steering.yaml
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
			cfg, err := state.ParseConfig(data)
			if err != nil {
				return Usagef("%s: %w", file, err)
			}
			s, err := newSession(cmd)
			if err != nil {
				return err
			}
			if dryRun {
				return previewConfig(cmd, s, file, cfg)
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
			if wr.Unchanged {
				fmt.Fprintf(w, "unchanged: %s is config version %d, in force; nothing applied\n", file, wr.Version)
				return nil
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
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the diff against the config in force and apply nothing")
	return cmd
}

// previewConfig prints the unified diff from the config in force to cfg,
// both normalised (defaults filled) and with secrets redacted, or
// "unchanged"; it applies nothing and exits 0 either way.
func previewConfig(cmd *cobra.Command, s *session, file string, cfg *state.Config) error {
	cur, err := s.Config(cmd.Context())
	var ae *client.APIError
	if err != nil && !(errors.As(err, &ae) && ae.Code == state.CodeNoConfig) {
		return err
	}
	from, fromName := []byte{}, "no config (none applied yet)"
	if cur.Config != nil {
		if from, err = cur.Config.Marshal(); err != nil {
			return err
		}
		fromName = fmt.Sprintf("config version %d (in force)", cur.Version)
	}
	to, err := cfg.RedactSecrets().Marshal()
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if bytes.Equal(from, to) {
		return writeLine(w, "unchanged: %s is %s; nothing would be applied\n", file, fromName)
	}
	diff, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(from)), B: difflib.SplitLines(string(to)),
		FromFile: fromName, ToFile: file + " (normalised)", Context: 3,
	})
	if err != nil {
		return err
	}
	return writeLine(w, "%sdry run: nothing applied (evac apply -f %s to apply)\n", diff, file)
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
			s, ci, err := call(cmd, func(s *session, ctx context.Context) (wire.ConfigInfo, error) {
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
