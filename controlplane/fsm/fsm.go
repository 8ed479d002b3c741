// Package fsm adapts the pure state machine of package state to
// hashicorp/raft's FSM interface and publishes every new state.
//
// Threading, as hashicorp/raft guarantees it: Apply and Snapshot are called
// from one goroutine, never concurrently; Persist may run concurrently with
// later Applies; Restore runs alone. State is an immutable *state.State
// behind an atomic.Pointer, so readers (the DNS server, the API) never lock
// and never see a half-applied command. Snapshot captures the pointer; Persist
// serialises that immutable value while Apply goes on.
package fsm

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/state"
)

// snapshotFormat versions the snapshot encoding.
const snapshotFormat = 1

// FSM is evac's raft.FSM.
type FSM struct {
	cur    atomic.Pointer[state.State]
	logger *zap.Logger
	// applyMu orders Apply and Restore: raftnode replays the local log at
	// start (raftnode.ReplayingFSM) while raft's own FSM goroutine may
	// already apply the same entries.
	applyMu sync.Mutex

	mu   sync.Mutex
	subs map[chan struct{}]struct{}

	// ignored counts the log entries of a command type this binary does not
	// know, flagged ignorable, that it skipped (a newer release's).
	ignored *prometheus.CounterVec
}

// New returns an FSM holding the empty state.
func New(logger *zap.Logger) *FSM {
	f := &FSM{logger: logger, subs: map[chan struct{}]struct{}{},
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evac_fsm_ignored_commands_total",
			Help: "Raft log entries of a command type this controller does not know (a newer release's), flagged ignorable, skipped: upgrade it.",
		}, []string{"type"})}
	f.cur.Store(state.Empty())
	return f
}

// Collectors returns the FSM's metrics, for the controller's registry.
func (f *FSM) Collectors() []prometheus.Collector { return []prometheus.Collector{f.ignored} }

// State returns the current state. The value must not be modified.
func (f *FSM) State() *state.State { return f.cur.Load() }

// Subscribe returns a channel that receives a signal (coalesced, never
// blocking the FSM) after each new state, and a function that unsubscribes.
func (f *FSM) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	return ch, func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}
}

func (f *FSM) publish(s *state.State) {
	f.cur.Store(s)
	f.mu.Lock()
	for ch := range f.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	f.mu.Unlock()
}

// Apply applies one committed log entry. Its response is the JSON of a
// state.Result, which raftnode returns to the proposer (also when the
// proposer is a follower that forwarded the write).
func (f *FSM) Apply(l *raft.Log) any {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	cur := f.cur.Load()
	if l.Type != raft.LogCommand {
		return nil
	}
	if l.Index <= cur.Index {
		// Replayed at start already (raftnode's restore.go), or in the
		// snapshot: applying it again would record its events twice.
		b, _ := json.Marshal(state.Result{Index: l.Index, Duplicate: true})
		return b
	}
	cmd, err := state.Decode(l.Data)
	var res state.Result
	next := cur
	if err != nil {
		// Every replica refuses the same bytes the same way.
		res = state.Result{Index: l.Index, Error: err.Error(), Code: state.CodeInvalid}
		next = &state.State{}
		*next = *cur
		next.Index = l.Index
		f.logger.Warn("undecodable command refused", zap.Uint64("index", l.Index), zap.Error(err))
	} else {
		if !state.Known(cmd.Type) {
			f.unknown(l.Index, cmd)
		}
		next, res = state.Apply(cur, l.Index, cmd)
		if res.Error != "" {
			f.logger.Debug("command refused", zap.Uint64("index", l.Index),
				zap.Stringer("type", cmd.Type), zap.String("code", res.Code), zap.String("error", res.Error))
		}
	}
	f.publish(next)
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	return b
}

// unknown reports an entry of a command type this binary does not know,
// before state.Apply skips it (ignorable) or stops the controller (any
// other: applying the rest of a log it cannot follow would let it diverge;
// it must be upgraded).
func (f *FSM) unknown(index uint64, cmd state.Command) {
	fields := []zap.Field{zap.Uint64("index", index), zap.Uint8("type", uint8(cmd.Type)),
		zap.String("actor", cmd.Actor), zap.Time("time", cmd.Time)}
	if cmd.Type.Ignorable() {
		f.ignored.WithLabelValues(fmt.Sprint(uint8(cmd.Type &^ state.IgnoreUnknownFlag))).Inc()
		f.logger.Warn("skipped a command type this release does not know (flagged ignorable): upgrade this controller", fields...)
		return
	}
	f.logger.Error("a command type this release does not know and may not skip: stopping; upgrade this controller", fields...)
}

// AppliedIndex is the Raft index of the last command applied (the state's
// Index); with Apply's skip of older entries it makes FSM a
// raftnode.ReplayingFSM.
func (f *FSM) AppliedIndex() uint64 { return f.cur.Load().Index }

// Snapshot captures the current immutable state.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &snapshot{s: f.cur.Load()}, nil
}

// Restore replaces the state with a snapshot's. The new state is built aside
// and swapped in whole.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	s, err := ReadSnapshot(rc)
	if err != nil {
		return err
	}
	f.publish(s)
	f.logger.Info("state restored from snapshot", zap.Uint64("index", s.Index),
		zap.Uint64("config-version", s.ConfigVersion), zap.Int("events", len(s.Events)))
	return nil
}

type snapshotHeader struct {
	Format int `json:"format"`
}

// ReadSnapshot decodes a snapshot written by Persist (also used by backup tools).
func ReadSnapshot(r io.Reader) (*state.State, error) {
	dec := json.NewDecoder(bufio.NewReader(r))
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("read snapshot header: %w", err)
	}
	if h.Format != snapshotFormat {
		return nil, fmt.Errorf("snapshot format %d is not supported (want %d)", h.Format, snapshotFormat)
	}
	s := state.Empty()
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("read snapshot state: %w", err)
	}
	if s.Regions == nil {
		s.Regions = map[string]state.RegionState{}
	}
	return s, nil
}

type snapshot struct{ s *state.State }

// Persist writes the snapshot; it may run concurrently with Apply, which is
// safe because the captured state is immutable.
func (p *snapshot) Persist(sink raft.SnapshotSink) error {
	w := bufio.NewWriter(sink)
	enc := json.NewEncoder(w)
	err := enc.Encode(snapshotHeader{Format: snapshotFormat})
	if err == nil {
		err = enc.Encode(p.s)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (p *snapshot) Release() {}
