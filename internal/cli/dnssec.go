package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/controlplane/api/wire"
)

// DNSSECRolloverCommand returns `rollover`, for the caller to add under
// its `dnssec` command (whose keygen and ds need no controller).
func DNSSECRolloverCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollover",
		Short: "Roll the zone's DNSSEC keys over, step by step, recorded in Raft and the audit log",
		Long: `A key rollover replaces one active key (a ZSK, a KSK or a CSK) by a new key of
the same flags and algorithm in steps, each a command recorded in Raft and in
the audit log (event dnssec.rollover), and each refused until resolvers can
no longer hold what the previous step changed (docs/dnssec.md, "Rollover"):

  evac dnssec rollover init               # once: record the keys in use
  evac dnssec keygen --dir DIR --role zsk # then copy the new key files into
                                          # every controller's and edge's
                                          # --dnssec-keys directory; SIGHUP
  evac dnssec rollover start --key TAG    # the new key is published
  evac dnssec rollover next               # it signs; the old one stays published
  evac dnssec rollover next               # the old key is removed: done`,
		Example: `  evac dnssec rollover status
  evac dnssec rollover start --key 40123 --reason "quarterly ZSK rollover"`,
	}
	cmd.AddCommand(rolloverInitCmd(), rolloverStartCmd(), rolloverNextCmd(), rolloverAbortCmd(), rolloverStatusCmd())
	return cmd
}

// rolloverStep runs one step and prints its outcome.
func rolloverStep(cmd *cobra.Command, action string, req wire.DNSSECRolloverRequest) error {
	s, res, err := call(cmd, func(s *session, ctx context.Context) (wire.DNSSECRolloverResult, error) {
		return s.DNSSECRolloverStep(ctx, action, req)
	})
	if err != nil || s.json() {
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "dnssec rollover %s: done (index %d)\n", action, res.Index)
	return printRollover(w, res)
}

// printRollover prints the key states, the rollover in progress, the DS
// records and what to do next.
func printRollover(w io.Writer, res wire.DNSSECRolloverResult) error {
	now := time.Now()
	tw := newTable(w)
	row(tw, "KEY", "TAG", "ROLE", "STATE", "SINCE")
	for _, k := range res.KeyStates {
		row(tw, k.ID, fmt.Sprint(k.Tag), k.Role, k.State, age(k.Since, now))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(res.KeyStates) == 0 {
		fmt.Fprintln(w, "no key states recorded: every server signs with every key of its --dnssec-keys directory (evac dnssec rollover init records them)")
	}
	if r := res.Rollover; r != nil {
		fmt.Fprintf(w, "rollover %s -> %s: phase %s since %s (by %s%s)\n", r.Old, r.New, r.Phase, age(r.Since, now), r.Actor, reasonSuffix(r.Reason))
		fmt.Fprintf(w, "%s; safe from %s (%s left)\n", r.Next, r.NotBefore.UTC().Format(time.RFC3339), r.WaitLeft)
	}
	if len(res.DS) > 0 {
		fmt.Fprintln(w, "DS for the parent zone:")
		for _, ds := range res.DS {
			fmt.Fprintln(w, "  "+ds)
		}
	}
	for _, n := range res.Notes {
		fmt.Fprintln(w, "NOTE: "+n)
	}
	return nil
}

func reasonSuffix(r string) string {
	if strings.TrimSpace(r) == "" {
		return ""
	}
	return ": " + r
}

func rolloverInitCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     "init",
		Short:   "Record the keys the cluster signs with (all active), before its first rollover (admin)",
		Example: `  evac dnssec rollover init --reason "before the first ZSK rollover"`,
		Long: `Records in Raft the keys every member's --dnssec-keys directory holds, all
active. From then on a key that the recorded states do not name is ignored
(listed as unpublished), so a rollover's new key can be copied into the
directories without changing any answer. Refused unless every member holds the
same keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return rolloverStep(cmd, "init", wire.DNSSECRolloverRequest{Reason: reason})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}

func rolloverStartCmd() *cobra.Command {
	var key, reason string
	var dsTTL time.Duration
	cmd := &cobra.Command{
		Use:   "start --key TAG",
		Short: "Publish a new key beside the active key of its role (admin)",
		Long: `Publishes the new key TAG (or its id, tag/algorithm/flags/hash) in the DNSKEY
RRset; the active key of the same flags and algorithm keeps signing. The key
must be in every controller's and edge's --dnssec-keys directory (copy its
.key and .private files, then SIGHUP): the request is refused (409) naming
the members that lack it. A KSK or CSK also signs the DNSKEY RRset from now
on (double signature). The next step is safe after the DNSKEY TTL (the zone
TTL) and a margin.`,
		Example: `  evac dnssec rollover start --key 40123 --reason "quarterly ZSK rollover"
  evac dnssec rollover start --key 51234 --ds-ttl 2h   # a KSK; the parent's DS TTL is 2h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := wire.DNSSECRolloverRequest{Key: key, Reason: reason}
			if cmd.Flags().Changed("ds-ttl") {
				req.DSTTL = dsTTL.String()
			}
			return rolloverStep(cmd, "start", req)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&key, "key", "", "the new key: its tag, or its id when tags clash (required)")
	fl.StringVar(&reason, "reason", "", "why, for the audit log")
	fl.DurationVar(&dsTTL, "ds-ttl", 24*time.Hour, "TTL of the zone's DS records at the parent (a KSK or CSK rollover waits for it before removing the old key)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

func rolloverNextCmd() *cobra.Command {
	var reason string
	var force bool
	cmd := &cobra.Command{
		Use:   "next",
		Short: "Take the rollover's next step: the new key signs, then the old key is removed (admin)",
		Example: `  evac dnssec rollover next
  evac dnssec rollover next --force --reason "the old ZSK leaked"`,
		Long: `From published, the new key becomes active (it signs what its role signs) and
the old key stays published (a KSK or CSK keeps signing the DNSKEY RRset): for
a KSK or CSK, replace the DS at the parent now (printed). From active, the old
key is removed from the DNSKEY RRset and the rollover is done. Refused (409,
with the time left) until the wait of the last step has passed (the DNSKEY
TTL after start; the longest TTL of the zone's data, and the DS TTL for a KSK
or CSK, after the first next; each plus a margin), or while a member has not
applied the last step or lacks a key; --force overrides.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return rolloverStep(cmd, "next", wire.DNSSECRolloverRequest{Reason: reason, Force: force})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	cmd.Flags().BoolVar(&force, "force", false, "step before it is safe: validating resolvers may fail (SERVFAIL) until their caches expire")
	return cmd
}

func rolloverAbortCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     "abort",
		Short:   "Abort the rollover while its new key is only published: the key is removed (admin)",
		Example: `  evac dnssec rollover abort --reason "wrong key"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return rolloverStep(cmd, "abort", wire.DNSSECRolloverRequest{Reason: reason})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}

func rolloverStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the cluster's key states, the rollover in progress and when its next step is safe",
		Example: `  evac dnssec rollover status
  evac dnssec rollover status -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, res, err := call(cmd, func(s *session, ctx context.Context) (wire.DNSSECRolloverResult, error) {
				return s.DNSSECRollover(ctx)
			})
			if err != nil || s.json() {
				return err
			}
			return printRollover(cmd.OutOrStdout(), res)
		},
	}
}
