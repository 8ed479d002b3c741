package cli

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/internal/client"
)

func notificationsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "notifications",
		Short: "Show each notification sink: delivered, failed and pending events, and the last error",
		Long: `Show each notification sink of the steering config (notifications:): how many
events the leader delivered to it and gave up on, how many it takes are still
pending, and the last error. On the leader, RETRYING is the error of the
delivery being retried now.`,
		Example: `  evac notifications
  evac notifications -o json | jq '.[] | select(.pending > 0)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := newSession(cmd)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			ns, err := s.Notifications(client.CaptureRaw(cmd.Context(), &raw))
			if err != nil {
				return err
			}
			w, now := cmd.OutOrStdout(), time.Now()
			if s.json() {
				return printJSON(w, raw, ns)
			}
			if len(ns) == 0 {
				return writeLine(w, "no notification sinks (add notifications: to the steering config)\n")
			}
			tw := newTable(w)
			row(tw, "SINK", "TYPE", "DELIVERED", "FAILED", "PENDING", "LAST DELIVERED", "LAST ERROR", "RETRYING")
			for _, n := range ns {
				lastErr := "-"
				if n.LastError != "" {
					lastErr = age(n.LastErrorAt, now) + ": " + n.LastError
				}
				row(tw, n.Name, n.Type, strconv.FormatUint(n.Delivered, 10), strconv.FormatUint(n.Failed, 10),
					strconv.Itoa(n.Pending), age(n.LastDeliveredAt, now), lastErr, dash(n.Retrying))
			}
			return tw.Flush()
		},
	}
}
