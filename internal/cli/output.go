package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/client"
)

// newTable returns a tabwriter for aligned columns; Flush it when done.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// row writes cells separated by tabs and ends the line.
func row(w io.Writer, cells ...string) {
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// printJSON writes raw, the body the server sent, indented; v is used when
// raw is empty.
func printJSON(w io.Writer, raw json.RawMessage, v any) error {
	if len(bytes.TrimSpace(raw)) > 0 {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err == nil {
			buf.WriteByte('\n')
			_, err = w.Write(buf.Bytes())
			return err
		}
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// age renders t relative to now: "3m12s ago", "in 25s", or "-" for the zero
// time.
func age(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + shortDuration(-d)
	}
	return shortDuration(d) + " ago"
}

// shortDuration renders d with at most two units, to the second: "12s",
// "3m12s", "2h5m", "3d4h".
func shortDuration(d time.Duration) string {
	d = d.Truncate(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}

// percent renders a share 0..1 as "75%".
func percent(share float64) string {
	return strconv.FormatFloat(share*100, 'f', 0, 64) + "%"
}

// sharePercent is percent of a share that may be unknown ("-").
func sharePercent(share *float64) string {
	if share == nil {
		return "-"
	}
	return percent(*share)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func joinInts[T int | uint64](xs []T, sep string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatUint(uint64(x), 10)
	}
	return strings.Join(parts, sep)
}

// regionTable prints regions as NAME STATE WEIGHT HEALTH AGENTS SINCE REASON.
func regionTable(w io.Writer, now time.Time, regions ...wire.Region) error {
	tw := newTable(w)
	row(tw, "NAME", "STATE", "WEIGHT", "HEALTH", "HOME", "AGENTS", "SINCE", "REASON")
	for _, r := range regions {
		phase := string(r.State)
		switch {
		case r.Drill != nil:
			phase += " (drill)"
		case r.Automatic:
			phase += " (auto)"
		}
		home := "-"
		if r.HomeShare != nil {
			home = fmt.Sprintf("%.0f%%", 100**r.HomeShare)
		}
		row(tw, r.Name, phase, strconv.Itoa(r.Weight), sharePercent(r.Health), home,
			fmt.Sprintf("%d/%d", r.AgentsAlive, r.AgentsTotal), age(r.Since, now), dash(r.Reason))
	}
	return tw.Flush()
}

// spillLines says, under the regions table, where the clients of each
// region with a lowered weight went (its spill plan): HOME is the share of
// the nearest answers whose clients are homed in a region.
func spillLines(w io.Writer, rs []wire.Region) {
	for _, r := range rs {
		if r.Spill == nil || len(r.Spill.Flows) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s's clients (weight %d, %.1f answers/s moving):\n", r.Name, r.Spill.Weight, r.Spill.Moving)
		if err := spillTable(w, r.Spill); err != nil {
			return
		}
	}
}

// spillTable is a plan's receiving regions: the share of the moving
// clients each takes, the share of those reaching it it accepts, and its
// predicted utilisation.
func spillTable(w io.Writer, p *state.SpillPlan) error {
	tw := newTable(w)
	row(tw, "  TO", "SHARE", "ACCEPTS", "UTILISATION")
	for _, f := range p.Flows {
		util := "-"
		if f.Utilization != nil {
			util = fmt.Sprintf("%.2f", *f.Utilization)
		}
		row(tw, "  "+f.To, fmt.Sprintf("%.0f%%", 100*f.Share), fmt.Sprintf("%.0f%%", 100*f.Accept), util)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if p.Unplaced > 0 {
		fmt.Fprintf(w, "  %.0f%% fit nowhere: they stay with their first serving choice, over its capacity\n", 100*p.Unplaced)
	}
	return nil
}

// rampLine describes a ramp in progress, e.g.
// "evacuate ramp 50 -> 0: next step 2/2 (weight 0) in 25s".
func rampLine(rp *state.Ramp, now time.Time) string {
	if rp == nil || len(rp.Steps) == 0 {
		return ""
	}
	s := fmt.Sprintf("%s ramp %s", rp.Kind, joinInts(rp.Steps, " -> "))
	if rp.Next >= 0 && rp.Next < len(rp.Steps) {
		when := age(rp.NextAt, now)
		if !rp.NextAt.IsZero() && !rp.NextAt.After(now) {
			when = "overdue by " + shortDuration(now.Sub(rp.NextAt))
		}
		s += fmt.Sprintf(": next step %d/%d (weight %d) %s", rp.Next+1, len(rp.Steps), rp.Steps[rp.Next], when)
	}
	return s
}

// call opens a session for cmd and makes one request with get. With -o json
// it prints the server's answer as sent, and the returned session's json()
// is true: the caller stops there. Otherwise the caller renders v.
func call[T any](cmd *cobra.Command, get func(s *session, ctx context.Context) (T, error)) (*session, T, error) {
	var zero T
	s, err := newSession(cmd)
	if err != nil {
		return nil, zero, err
	}
	var raw json.RawMessage
	v, err := get(s, client.CaptureRaw(cmd.Context(), &raw))
	if err != nil {
		return s, zero, err
	}
	if s.json() {
		return s, v, printJSON(cmd.OutOrStdout(), raw, v)
	}
	return s, v, nil
}
