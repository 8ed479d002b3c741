package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
)

// AgentClientCommands returns `enroll` and `revoke`, for the caller to add
// under its `agent` command (which runs an agent; `evac agent keygen` is
// the caller's too: it needs no controller).
func AgentClientCommands() []*cobra.Command {
	return []*cobra.Command{agentEnrollCmd(), agentRevokeCmd()}
}

func agentEnrollCmd() *cobra.Command {
	var region, publicKey, reason string
	cmd := &cobra.Command{
		Use:   "enroll NAME --region R --public-key KEY",
		Short: "Enrol an agent: only reports signed with its key, for its region, count (admin)",
		Long: `Enrols the agent NAME (its node_name) with its region and the public key that
` + "`evac agent keygen`" + ` printed. Once any agent is enrolled (or with the steering
policy require_enrolled_agents: true) the controllers drop every report that
is not signed by an enrolled agent for its enrolled region, and a region's
health counts only its enrolled agents. Enrolling a name again replaces its
region and key (a key rotation).`,
		Example: `  evac agent keygen --out /etc/evac/agent.key      # on the agent's host; prints the public key
  evac agent enroll use1-a --region us-east --public-key 3q2+7w...=`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := state.EnrollAgent{Name: args[0], Region: region, PublicKey: publicKey, Reason: reason}
			if err := req.Normalize(); err != nil {
				return Usagef("%v", err)
			}
			s, wr, err := call(cmd, func(s *session, ctx context.Context) (wire.WriteResult, error) {
				return s.EnrollAgent(ctx, req.Name, wire.EnrollRequest{Region: req.Region, PublicKey: req.PublicKey, Reason: req.Reason})
			})
			if err != nil || s.json() {
				return err
			}
			key, _ := state.ParseAgentKey(req.PublicKey)
			fmt.Fprintf(cmd.OutOrStdout(), "agent %s enrolled for region %s, key %s (index %d)\n", req.Name, req.Region, state.AgentKeyFingerprint(key), wr.Index)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&region, "region", "", "the region the agent reports for (required)")
	fl.StringVar(&publicKey, "public-key", "", "the agent's public key, as `evac agent keygen` printed it (required)")
	fl.StringVar(&reason, "reason", "", "why, for the audit log")
	_ = cmd.MarkFlagRequired("region")
	_ = cmd.MarkFlagRequired("public-key")
	return cmd
}

func agentRevokeCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     "revoke NAME",
		Short:   "Revoke an agent's enrolment: its reports count no more (admin)",
		Example: `  evac agent revoke use1-a --reason "host retired"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, wr, err := call(cmd, func(s *session, ctx context.Context) (wire.WriteResult, error) {
				return s.RevokeAgent(ctx, args[0], reason)
			})
			if err != nil || s.json() {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "agent %s revoked (index %d)\n", args[0], wr.Index)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}

func agentsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "agents",
		Short: "List enrolled agents, and agents seen in gossip that are not enrolled",
		Example: `  evac agents
  evac agents -o json | jq '.agents[] | select(.enrolled | not)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, as, err := call(cmd, func(s *session, ctx context.Context) (wire.Agents, error) {
				return s.Agents(ctx)
			})
			if err != nil || s.json() {
				return err
			}
			w, now := cmd.OutOrStdout(), time.Now()
			switch {
			case as.Enforced:
				fmt.Fprintf(w, "enrolment enforced (policy %s): only enrolled agents' signed reports count\n", as.Policy)
			default:
				fmt.Fprintf(w, "enrolment NOT enforced (policy %s): any holder of the gossip key can report for any region\n", as.Policy)
			}
			tw := newTable(w)
			row(tw, "NAME", "REGION", "ENROLLED", "KEY", "SINCE", "BY", "GOSSIP", "CLAIMS")
			for _, a := range as.Agents {
				enrolled, since := "no", "-"
				if a.Enrolled {
					enrolled, since = "yes", age(a.EnrolledAt, now)
				}
				claims := a.MemberRegion
				if a.Enrolled && claims == a.Region {
					claims = ""
				}
				row(tw, a.Name, a.Region, enrolled, dash(a.Fingerprint), since, dash(a.EnrolledBy), dash(a.MemberState), dash(claims))
			}
			return tw.Flush()
		},
	}
}
