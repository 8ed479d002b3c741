package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/internal/client"
)

func statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the controller's view of the cluster: leader, term, freeze, config version",
		Example: `  evac status
  evac status --addr http://127.0.0.1:8081 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, st, err := call(cmd, func(s *session, ctx context.Context) (wire.Status, error) {
				return s.Status(ctx)
			})
			if err != nil || s.json() {
				return err
			}
			w := cmd.OutOrStdout()
			leader := dash(st.Leader)
			if st.LeaderAddr != "" {
				leader += " (" + st.LeaderAddr + ")"
			}
			frozen := "no"
			if st.Frozen {
				frozen = "YES: " + frozenLine(st, time.Now())
			}
			voters := make([]string, len(st.Voters))
			for i, v := range st.Voters {
				voters[i] = v.String()
			}
			tw := newTable(w)
			row(tw, "NODE", st.NodeID)
			if st.Role != "" {
				row(tw, "ROLE", roleLine(st.Role))
			}
			row(tw, "RAFT STATE", fmt.Sprintf("%s (term %d)", dash(st.RaftState), st.Term))
			row(tw, "LEADER", leader)
			row(tw, "IS LEADER", yesNo(st.IsLeader))
			row(tw, "FROZEN", frozen)
			row(tw, "CONFIG VERSION", strconv.FormatUint(st.ConfigVersion, 10))
			row(tw, "INDEX", fmt.Sprintf("applied %d, commit %d", st.AppliedIndex, st.CommitIndex))
			row(tw, "SOA SERIAL", strconv.FormatUint(uint64(st.Serial), 10))
			row(tw, "VOTERS", dash(strings.Join(voters, ", ")))
			if g := st.GeoIP; g != nil {
				row(tw, "GEOIP", geoipLine(g))
			}
			if d := st.DNSSEC; d != nil {
				row(tw, "DNSSEC", dnssecLine(d))
			}
			for _, w := range st.Warnings {
				row(tw, "WARNING", w)
			}
			return tw.Flush()
		},
	}
}

// dnssecLine describes a controller's DNSSEC signing for evac status.
func dnssecLine(d *wire.DNSSECStatus) string {
	keys := "no keys"
	if len(d.Keys) > 0 {
		keys = "keys " + strings.Join(d.Keys, " ")
	}
	extra := ""
	if r := d.Rollover; r != nil {
		extra += fmt.Sprintf("; rollover %s -> %s in phase %s (next step safe in %s)", r.Old, r.New, r.Phase, r.WaitLeft)
	}
	if len(d.Unpublished) > 0 {
		extra += "; unpublished (not named by the key states: the next rollover's key?): " + strings.Join(d.Unpublished, " ")
	}
	if d.ReloadError != "" {
		extra += "; last key reload FAILED: " + d.ReloadError
	}
	if d.Signing {
		return "signing, " + keys + extra
	}
	return "NOT SIGNING (" + keys + "): " + d.Refusal + extra
}

// ControllerStatus is GET /v1/status from the controller at --addr (for
// commands outside this package, e.g. evac dnssec ds).
func ControllerStatus(cmd *cobra.Command) (wire.Status, error) {
	s, err := newSession(cmd)
	if err != nil {
		return wire.Status{}, err
	}
	return s.Status(cmd.Context())
}

func regionsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "regions [REGION]",
		Short: "List regions with their state, traffic weight and health, or show one in detail",
		Example: `  evac regions
  evac regions us-east          # one region, with its services' health
  evac regions -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(cmd)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			ctx := client.CaptureRaw(cmd.Context(), &raw)
			w, now := cmd.OutOrStdout(), time.Now()
			if len(args) == 0 {
				rs, err := s.Regions(ctx)
				if err != nil {
					return err
				}
				if s.json() {
					return printJSON(w, raw, rs)
				}
				// A freeze changes what the table means: say so first.
				if st, err := s.Status(cmd.Context()); err == nil && st.Frozen {
					fmt.Fprintf(w, "FROZEN: %s\n  automatic evacuation and restore are off until `evac unfreeze`; regions stay as they are, whatever their health\n\n", frozenLine(st, now))
				}
				if err := regionTable(w, now, rs...); err != nil {
					return err
				}
				drillLines(w, now, rs)
				spillLines(w, rs)
				return nil
			}
			r, err := s.Region(ctx, args[0])
			if err != nil {
				return err
			}
			if s.json() {
				return printJSON(w, raw, r)
			}
			return regionDetail(cmd, r, now)
		},
	}
}

// frozenLine is "reason (since 12m ago, by alice)".
func frozenLine(st wire.Status, now time.Time) string {
	var who []string
	if !st.FrozenSince.IsZero() {
		who = append(who, "since "+age(st.FrozenSince, now))
	}
	if st.FrozenBy != "" {
		who = append(who, "by "+st.FrozenBy)
	}
	s := dash(st.FrozenReason)
	if len(who) > 0 {
		s += " (" + strings.Join(who, ", ") + ")"
	}
	return s
}

// drillLines says, under the regions table, which regions a drill holds:
// a planned evacuation, not an incident.
func drillLines(w io.Writer, now time.Time, rs []wire.Region) {
	first := true
	for _, r := range rs {
		d := r.Drill
		if d == nil {
			continue
		}
		if first {
			fmt.Fprintln(w)
			first = false
		}
		line := fmt.Sprintf("%s: held by drill %s (runbook %s), step %d/%d", r.Name, d.ID, d.Runbook, d.Step, d.Steps)
		if d.StepKind != "" {
			line += " " + d.StepKind
		}
		if !d.NextAt.IsZero() {
			line += ", next " + age(d.NextAt, now)
		}
		fmt.Fprintln(w, line)
	}
}

func regionDetail(cmd *cobra.Command, r wire.Region, now time.Time) error {
	w := cmd.OutOrStdout()
	if err := regionTable(w, now, r); err != nil {
		return err
	}
	drillLines(w, now, []wire.Region{r})
	spillLines(w, []wire.Region{r})
	if r.Actor != "" {
		fmt.Fprintf(w, "\nlast change by %s\n", r.Actor)
	}
	if l := rampLine(r.Ramp, now); l != "" {
		fmt.Fprintln(w, l)
	}
	if len(r.Services) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	names := make([]string, 0, len(r.Services))
	for n := range r.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := newTable(w)
	row(tw, "SERVICE", "HEALTHY", "SHARE", "PASSING", "FAILING")
	for _, n := range names {
		sv := r.Services[n]
		row(tw, n, yesNo(sv.Healthy), percent(sv.Share),
			fmt.Sprintf("%d/%d", sv.Passing, sv.Reporting), dash(strings.Join(sv.Failing, ", ")))
	}
	return tw.Flush()
}

func servicesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "services",
		Short: "List steered services with each region's endpoints and weights",
		Example: `  evac services
  evac services -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, ss, err := call(cmd, func(s *session, ctx context.Context) ([]wire.Service, error) {
				return s.Services(ctx)
			})
			if err != nil || s.json() {
				return err
			}
			w := cmd.OutOrStdout()
			tw := newTable(w)
			row(tw, "SERVICE", "FQDN", "POLICY", "TTL", "REGION", "WEIGHT", "EFFECTIVE", "HEALTHY", "ENDPOINTS")
			for _, sv := range ss {
				head := []string{sv.Name, sv.FQDN, sv.Policy, strconv.FormatUint(uint64(sv.TTL), 10)}
				if len(sv.Regions) == 0 {
					row(tw, append(head, "-", "-", "-", "-", "-")...)
				}
				for i, r := range sv.Regions {
					if i > 0 {
						head = []string{"", "", "", ""}
					}
					row(tw, append(head, r.Region, strconv.Itoa(r.Weight), strconv.Itoa(r.EffectiveWeight),
						yesNo(r.Healthy), dash(strings.Join(r.Endpoints, ",")))...)
				}
			}
			return tw.Flush()
		},
	}
}

func membersCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "members",
		Short: "List agents and controllers seen through gossip, with their last health report",
		Example: `  evac members
  evac members -o json | jq '.[] | select(.state != "alive")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := newSession(cmd)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			ms, err := s.Members(client.CaptureRaw(cmd.Context(), &raw))
			if err != nil {
				return err
			}
			w, now := cmd.OutOrStdout(), time.Now()
			if s.json() {
				return printJSON(w, raw, ms)
			}
			tw := newTable(w)
			row(tw, "NAME", "REGION", "ROLE", "STATE", "ADDR", "CHANGED", "LAST REPORT", "FAILING")
			for _, m := range ms {
				report := "never"
				if m.LastReportAgeSeconds >= 0 {
					report = shortDuration(time.Duration(m.LastReportAgeSeconds*float64(time.Second))) + " ago"
				}
				row(tw, m.Name, dash(m.Region), dash(m.Role), m.State, dash(m.Addr),
					age(m.LastChange, now), report, dash(strings.Join(m.Failing, ", ")))
			}
			return tw.Flush()
		},
	}
}
