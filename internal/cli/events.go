package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/client"
)

// followInterval is how often `events --follow` polls.
const followInterval = time.Second

func eventsCmd() *cobra.Command {
	var (
		since  uint64
		limit  int
		follow bool
	)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Print the audit log: who changed what, when and why",
		Long: `Print the audit log's events with a sequence number above --since, oldest
first, at most --limit of them. With --follow, keep polling every second and print
new events as they are recorded, until interrupted; with -o json, --follow prints
one event per line (JSON Lines).`,
		Example: `  evac events
  evac events --since 120 --limit 20
  evac events --follow
  evac events --follow -o json | jq -r .kind`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return Usagef("--limit must not be negative")
			}
			s, err := newSession(cmd)
			if err != nil {
				return err
			}
			if follow {
				return followEvents(cmd.Context(), s, since, limit)
			}
			var raw json.RawMessage
			evs, err := s.Events(client.CaptureRaw(cmd.Context(), &raw), since, limit)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if s.json() {
				return printJSON(w, raw, evs)
			}
			printEventHeader(w)
			for _, e := range evs {
				printEvent(w, e)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&since, "since", 0, "print events with a sequence number above this")
	f.IntVar(&limit, "limit", 100, "at most this many events per request (0: the server's limit)")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new events until interrupted")
	return cmd
}

// followEvents polls for events after since until ctx ends, which is a
// normal exit. Connection errors are reported and retried (a controller
// restarting should not end a tail); errors the server returns end it.
func followEvents(ctx context.Context, s *session, since uint64, limit int) error {
	w, errw := s.cmd.OutOrStdout(), s.cmd.ErrOrStderr()
	if !s.json() {
		printEventHeader(w)
	}
	enc := json.NewEncoder(w)
	t := time.NewTicker(followInterval)
	defer t.Stop()
	connDown := false
	for {
		evs, err := s.Events(ctx, since, limit)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			var ce *client.ConnError
			if !errors.As(err, &ce) {
				return err
			}
			if !connDown {
				fmt.Fprintf(errw, "warning: %v (retrying)\n", err)
				connDown = true
			}
		default:
			connDown = false
			for _, e := range evs {
				if s.json() {
					if err := enc.Encode(e); err != nil {
						return err
					}
				} else {
					printEvent(w, e)
				}
				since = max(since, e.Seq)
			}
			if limit > 0 && len(evs) >= limit {
				continue // more are waiting: fetch them now
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Events are printed with fixed widths rather than through a tabwriter so
// that --follow's rows line up with the header printed before them.
// Columns wider than their width are cut with "…" so the next ones stay
// in place (-o json has every value whole).
const eventFormat = "%-7s %-20s %-14s %-20s %-22s %-6s %s\n"

// fit cuts s to n runes, marking the cut.
func fit(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func printEventHeader(w io.Writer) {
	fmt.Fprintf(w, eventFormat, "SEQ", "TIME", "ACTOR", "KIND", "REGION", "WEIGHT", "REASON")
}

func printEvent(w io.Writer, e state.Event) {
	weight := "-"
	if e.Weight != nil {
		weight = strconv.Itoa(*e.Weight)
	}
	region := e.Region
	if e.Service != "" {
		region = strings.TrimPrefix(region+"/"+e.Service, "/")
	}
	reason := e.Reason
	if e.Detail != "" {
		reason = strings.TrimSpace(reason + " (" + e.Detail + ")")
	}
	ts := "-"
	if !e.Time.IsZero() {
		ts = e.Time.UTC().Format("2006-01-02T15:04:05Z")
	}
	fmt.Fprintf(w, eventFormat, strconv.FormatUint(e.Seq, 10), ts, fit(dash(e.Actor), 14), fit(e.Kind, 20),
		fit(dash(region), 22), weight, dash(reason))
}
