// Package drain measures, on every controller, how fast DNS resolvers stop
// being told a region after a drill lowers its weight, and puts the figures
// into the replicated drill record.
//
// Why it is shaped this way:
//   - Detector is a pure function of the event log: the weight changes of
//     regions a drill holds, each with the drill step that made it, its
//     Raft index and its committed time. Every controller finds the same
//     changes in its own replica.
//   - The measuring itself is the DNS server's (dnsserver/drain.go): only
//     it sees the queries. The Measurer starts a measurement with the new
//     answers (dnsserver.Server.UpdateWatching), closes it at its deadline,
//     or early when the region's weight rises again, and queues the figures.
//   - The figures enter the drill record as a typed Raft command
//     (state.CmdDrillDrain) carrying the node id and every time, proposed
//     through the usual forwarding to the leader, off the goroutine that
//     updates DNS: a cluster without a leader delays reports, never answers.
package drain

import (
	"slices"
	"sort"
	"time"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/runbooks"
)

// Change is a weight change of a region held by a drill.
type Change struct {
	Drill string
	// Step is the index of the drill step that made it; -1 when the
	// drill's end did (abort, pre-emption).
	Step   int
	Region string
	From   int
	To     int
	Index  uint64
	At     time.Time
}

// Lowered reports whether the change lowered the weight.
func (c Change) Lowered() bool { return c.To < c.From }

// Detector follows the event log of successive states and returns the
// weight changes of drill-held regions it has not returned before.
type Detector struct {
	started bool
	seq     uint64
	weights map[string]int
}

// Next returns the changes in st's events since the previous call. The
// first call only takes st's weights as the starting point when st already
// has a history (a restored snapshot): its past changes are not measured.
func (d *Detector) Next(st *state.State) []Change {
	if st == nil {
		return nil
	}
	if !d.started {
		d.started = true
		d.weights = map[string]int{}
		for n, r := range st.Regions {
			d.weights[n] = r.Weight
		}
		d.seq = st.NextSeq - 1
		if st.NextSeq == 0 {
			d.seq = 0
		}
		return nil
	}
	evs := st.EventsSince(d.seq, 0)
	if len(evs) == 0 {
		return nil
	}
	if evs[0].Seq != d.seq+1 {
		// Events were trimmed past what we saw: start again from st.
		d.started = false
		return d.Next(st)
	}
	var out []Change
	for _, e := range evs {
		d.seq = e.Seq
		if e.Weight == nil || e.Region == "" {
			continue
		}
		from, ok := d.weights[e.Region]
		if !ok {
			from = 100 // a region enters the config at full weight
		}
		to := *e.Weight
		d.weights[e.Region] = to
		if from == to {
			continue
		}
		if id, step, ok := drillOf(st, e); ok {
			out = append(out, Change{Drill: id, Step: step, Region: e.Region, From: from, To: to, Index: e.Index, At: e.Time})
		}
	}
	return out
}

// drillOf finds the drill that held e's region when e happened, and the
// step that was running it.
func drillOf(st *state.State, e state.Event) (string, int, bool) {
	ids := st.DrillIDs()
	sort.Strings(ids)
	for _, id := range ids {
		d := st.Drills[id]
		if !slices.Contains(d.Regions, e.Region) || e.Time.Before(d.StartedAt) ||
			!d.EndedAt.IsZero() && e.Time.After(d.EndedAt) {
			continue
		}
		step := -1
		for i, s := range d.Steps {
			if s.Region != e.Region || s.StartedAt.IsZero() || e.Time.Before(s.StartedAt) ||
				!s.EndedAt.IsZero() && e.Time.After(s.EndedAt) {
				continue
			}
			if s.Kind == runbooks.KindShift || s.Kind == runbooks.KindRestore {
				step = i
			}
		}
		if step < 0 && !e.Time.Equal(d.EndedAt) {
			continue // not this drill's doing
		}
		return id, step, true
	}
	return "", 0, false
}

// MaxTTL is the longest TTL of the config's answers: a change older than
// it (plus the slack) can no longer be measured.
func MaxTTL(c *state.Config) time.Duration {
	if c == nil {
		return 0
	}
	ttl := c.TTL
	for _, s := range c.Services {
		ttl = max(ttl, s.TTL)
	}
	return time.Duration(ttl) * time.Second
}
