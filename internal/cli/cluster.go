package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/internal/client"
)

// ClusterCmd is `evac cluster`: the Raft membership. The caller may add
// subcommands that need more than the API (cmd/evac adds the offline
// `recover`).
func ClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "List and change the controllers of the Raft cluster",
		Long: `List and change the controllers of the Raft cluster (admin role for changes).

A change that would leave fewer healthy voters than a majority is refused
unless --force; a voter is healthy when it answers a status probe over its
Raft port within 2s and its log trails the most advanced member by at most
1024 entries. Every change is an audit event naming who made it.`,
		Example: `  evac cluster peers
  evac cluster join c4 10.0.0.4:7300 --nonvoter && evac cluster promote c4
  evac cluster remove c3 --reason "decommissioned"`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(clusterPeersCmd(), clusterJoinCmd(), clusterRemoveCmd(), clusterPromoteCmd())
	return cmd
}

func clusterPeersCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "peers",
		Short: "List the Raft members: suffrage, leader, applied index, health",
		Example: `  evac cluster peers
  evac cluster peers -o json | jq '.[] | select(.healthy | not)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := newSession(cmd)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			ps, err := s.Peers(client.CaptureRaw(cmd.Context(), &raw))
			if err != nil {
				return err
			}
			if s.json() {
				return printJSON(cmd.OutOrStdout(), raw, ps)
			}
			return peerTable(cmd.OutOrStdout(), ps)
		},
	}
}

func peerTable(w io.Writer, ps []wire.Peer) error {
	tw := newTable(w)
	row(tw, "ID", "ADDRESS", "ROLE", "LEADER", "APPLIED", "LAG", "HEALTHY", "ERROR")
	for _, p := range ps {
		applied, lag := "-", "-"
		if p.Reachable {
			applied = strconv.FormatUint(p.AppliedIndex, 10)
		}
		if p.Lag != nil {
			lag = strconv.FormatUint(*p.Lag, 10)
		}
		role := p.Role
		if role == "" { // a server from before roles
			role = p.Suffrage
		}
		row(tw, p.ID, p.Address, role, yesNo(p.Leader), applied, lag, yesNo(p.Healthy), dash(p.Error))
	}
	return tw.Flush()
}

// roleLine explains a node's role for `evac status`.
func roleLine(role string) string {
	switch role {
	case "edge":
		return "edge (a non-voting replica: serves DNS and reads from its own state, forwards writes, never votes, runs no leader loops)"
	case "nonvoter":
		return "nonvoter (receives the log, does not count for quorum)"
	case "none":
		return "none (not in the Raft configuration: not yet added, or removed)"
	}
	return role
}

func printMembership(cmd *cobra.Command, s *session, raw json.RawMessage, res wire.MembershipResult, what string) error {
	w := cmd.OutOrStdout()
	if s.json() {
		return printJSON(w, raw, res)
	}
	if !res.Changed {
		what = "nothing to do: " + what + " already"
	}
	if err := writeLine(w, "%s%s\n", what, eventsNote(nonZero(res.Event))); err != nil {
		return err
	}
	if res.AuditError != "" {
		if err := writeLine(cmd.ErrOrStderr(), "warning: the change was made but not recorded in the audit log: %s\n", res.AuditError); err != nil {
			return err
		}
	}
	return peerTable(w, res.Peers)
}

func nonZero(seq uint64) []uint64 {
	if seq == 0 {
		return nil
	}
	return []uint64{seq}
}

func clusterJoinCmd() *cobra.Command {
	var (
		nonvoter, force bool
		reason          string
	)
	cmd := &cobra.Command{
		Use:   "join ID ADDR",
		Short: "Add a controller (by its node id and Raft address) as a voter or a non-voter",
		Long: `Add a controller to the Raft cluster: ID is its --node-id, ADDR its Raft address
(--raft-advertise-addr or --raft-addr). Start it first with an empty data
directory and without --bootstrap (or with --join-cluster, which does this
itself). Joining an id that is already a member with another address moves it
to that address.`,
		Example: `  evac cluster join c4 10.0.0.4:7300
  evac cluster join c4 10.0.0.4:7300 --nonvoter     # catches up without counting for quorum; then: evac cluster promote c4`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(cmd)
			if err != nil {
				return err
			}
			voter := !nonvoter
			var raw json.RawMessage
			res, err := s.Join(client.CaptureRaw(cmd.Context(), &raw), wire.JoinRequest{ID: args[0], Address: args[1],
				Voter: &voter, Force: force, Reason: reason})
			if err != nil {
				return err
			}
			as := "voter"
			if nonvoter {
				as = "non-voter"
			}
			return printMembership(cmd, s, raw, res, fmt.Sprintf("%s at %s is a %s", args[0], args[1], as))
		},
	}
	cmd.Flags().BoolVar(&nonvoter, "nonvoter", false, "join as a non-voter (receives the log, does not count for quorum)")
	cmd.Flags().BoolVar(&force, "force", false, "skip the quorum check")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}

func clusterRemoveCmd() *cobra.Command {
	var (
		force  bool
		reason string
	)
	cmd := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a controller from the Raft cluster",
		Example: `  evac cluster remove c3 --reason "decommissioned"
  evac cluster remove c3 --force     # even if the healthy voters left would not be a majority`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(cmd)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			res, err := s.RemovePeer(client.CaptureRaw(cmd.Context(), &raw), args[0], wire.MembershipRequest{Force: force, Reason: reason})
			if err != nil {
				return err
			}
			return printMembership(cmd, s, raw, res, args[0]+" removed")
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "skip the quorum check")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}

func clusterPromoteCmd() *cobra.Command {
	var (
		force  bool
		reason string
	)
	cmd := &cobra.Command{
		Use:   "promote ID",
		Short: "Make a non-voter a voter",
		Example: `  evac cluster peers            # wait until its APPLIED reaches the leader's
  evac cluster promote c4`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(cmd)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			res, err := s.Promote(client.CaptureRaw(cmd.Context(), &raw), args[0], wire.MembershipRequest{Force: force, Reason: reason})
			if err != nil {
				return err
			}
			return printMembership(cmd, s, raw, res, args[0]+" is a voter")
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "skip the quorum check")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}
