package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/internal/client"
)

func explainCmd() *cobra.Command {
	var clientAddr string
	cmd := &cobra.Command{
		Use:   "explain NAME --client ADDR",
		Short: "Explain the DNS answer a client gets for a service, and why",
		Long: `Explain shows, for one client, the topology rule that matched (net, country,
continent, distance or default), its preference list of regions, each region's
weight, health and effective weight, whether the client is in its home region's
kept share, and the answer. The controller computes it with the code that
answers DNS queries. ADDR is an address (taken as a query's source address) or
a CIDR (taken as an EDNS Client Subnet, as dig +subnet sends).`,
		Example: `  evac explain api --client 10.3.0.1
  evac explain api --client 10.3.0.0/24 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if clientAddr == "" {
				return &UsageError{Err: fmt.Errorf("--client is required")}
			}
			s, e, err := call(cmd, func(s *session, ctx context.Context) (client.Explanation, error) {
				return s.Explain(ctx, args[0], clientAddr)
			})
			if err != nil || s.json() {
				return err
			}
			w := cmd.OutOrStdout()
			tw := newTable(w)
			row(tw, "NAME", e.Name)
			row(tw, "POLICY", e.Policy)
			row(tw, "CLIENT", e.Client)
			if e.Rule != "" {
				row(tw, "RULE", e.Rule)
				row(tw, "PREFERENCE", strings.Join(e.Preference, " > "))
				row(tw, "KEPT SHARE", yesNo(e.KeptShare))
			}
			row(tw, "ANSWER", dash(e.AnswerRegion)+" "+dash(strings.Join(e.Answer, ",")))
			if e.Scope > 0 {
				row(tw, "ECS SCOPE", "/"+strconv.Itoa(e.Scope))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(w)
			tw = newTable(w)
			row(tw, "REGION", "WEIGHT", "HEALTH", "EFFECTIVE")
			for _, r := range e.Regions {
				row(tw, r.Name, strconv.Itoa(r.Weight), r.Health, strconv.Itoa(r.EffectiveWeight))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&clientAddr, "client", "", "the client: an address or a CIDR (required)")
	return cmd
}

// geoipLine describes a controller's GeoIP database for evac status.
func geoipLine(g *wire.GeoIPStatus) string {
	s := fmt.Sprintf("%s (%s, built %s, %d records)", g.File, dash(g.Type), g.BuildTime.UTC().Format(time.RFC3339), g.Records)
	if g.ReloadError != "" {
		s += "; LAST RELOAD FAILED, this database stays in force: " + g.ReloadError
	}
	return s
}
