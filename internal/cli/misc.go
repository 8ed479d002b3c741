package cli

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/spf13/cobra"
)

// KeySize is the length of a gossip key in bytes (AES-256).
const KeySize = 32

func keygenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "keygen",
		Short: "Print a new gossip encryption key (base64 of 32 random bytes)",
		Example: `  evac keygen > gossip.key && chmod 600 gossip.key
  evac server --gossip-key-file gossip.key ...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key := make([]byte, KeySize)
			if _, err := rand.Read(key); err != nil {
				return fmt.Errorf("reading random bytes: %w", err)
			}
			return writeLine(cmd.OutOrStdout(), "%s\n", base64.StdEncoding.EncodeToString(key))
		},
	}
}

func devFailCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "fail REGION",
		Short: "Make a region's demo backend fail its health check (evac dev only)",
		Example: `  evac dev fail us-east     # then watch: evac regions; evac events --follow
  evac dev fail us-east --addr http://127.0.0.1:8081`,
		Args: exactRegion,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(cmd)
			if err != nil {
				return err
			}
			if err := s.DevFail(cmd.Context(), args[0]); err != nil {
				return err
			}
			return writeLine(cmd.OutOrStdout(), "%s: demo backend now fails its health check\n", args[0])
		},
	}
}

func devHealCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "heal REGION",
		Short:   "Make a region's demo backend pass its health check again (evac dev only)",
		Example: `  evac dev heal us-east     # then, if it was evacuated: evac restore us-east --reason healed`,
		Args:    exactRegion,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(cmd)
			if err != nil {
				return err
			}
			if err := s.DevHeal(cmd.Context(), args[0]); err != nil {
				return err
			}
			return writeLine(cmd.OutOrStdout(), "%s: demo backend now passes its health check\n", args[0])
		},
	}
}

func healthzCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "healthz",
		Short: "Check that a controller is up (/healthz) and ready to serve (/readyz)",
		Example: `  evac healthz
  evac healthz --addr http://127.0.0.1:8081 && echo ready`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := newSession(cmd)
			if err != nil {
				return err
			}
			if err := s.Healthz(cmd.Context()); err != nil {
				return err
			}
			if err := s.Readyz(cmd.Context()); err != nil {
				return err
			}
			if s.json() {
				return printJSON(cmd.OutOrStdout(), nil, map[string]any{"addr": s.Addr(), "up": true, "ready": true})
			}
			return writeLine(cmd.OutOrStdout(), "%s: up and ready\n", s.Addr())
		},
	}
}
