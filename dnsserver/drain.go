package dnsserver

import (
	"cmp"
	"math"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evac-sh/evac/controlplane/state"

	"github.com/evac-sh/evac/internal/fnvmix"
)

// Drain tracking: how fast resolvers stop being told a region after its
// weight is lowered (docs/drain.md).
//
// Definition. For a change committed at T that lowers region R, the
// population is the (resolver subnet, service) pairs this server answered
// with R within the service's TTL before the change (their last answer
// before the change named R, at or after T minus that TTL; the deadline
// below uses the longest TTL of R's services), and whose answer the new
// weights move off R. A pair is drained at the first answer after the new
// answers are in place that does not name R; its drain time counts from
// T, so it includes this controller's replication lag. The 50/90/99%
// figures are nearest-rank over the population. Pairs not drained by
// T+TTL+slack are past the TTL: resolvers that kept asking and were still
// told R, or that held the old answer (or left) and never asked again. The
// subnet is the one the weighted choice uses: the ECS subnet when present,
// else the source /24 or /56.
//
// Cost. Every answer that names a region is recorded in a table of recent
// answers: one per UDP reader goroutine, locked once per batch of up to 32
// datagrams, and one, locked per query, for the general path. A record is
// a hash, a probe of at most recProbe slots and a store: no allocation.
// While a change is measured, each answer also looks its pair up in the
// change's population (a read-only open-addressed table with atomic
// marks). Memory is fixed: recSlots pairs per table (the least recently
// answered pair in a probe window is evicted), and at most
// Config.DrainMaxPopulation pairs per change (more are left out and the
// report says Capped).

// Recent-answer tables.
const (
	recSlots = 1 << 12
	recProbe = 8
)

// Defaults of Config's drain settings.
const (
	DefaultDrainSlack         = 2 * time.Second
	DefaultDrainMaxPopulation = 10000
)

// seen is what one reply told a client about regions: filled by the answer
// paths, recorded by their callers after the reply is sent.
type seen struct {
	svc  uint8  // 1 + the service's index; 0: record nothing
	mask uint64 // the regions the answer named
	// The client subnet: key when keyed, else worked out from the ECS
	// option's data (which points into the query) or the source address.
	keyed bool
	key   subnetKey
	ecs   []byte
	from  netip.Addr
}

// subnet returns the client subnet of sn.
func (sn *seen) subnet() subnetKey {
	if !sn.keyed {
		if k, _, ok := ecsWireKey(sn.ecs); ok {
			sn.key = k
		} else {
			sn.key = sourceKey(sn.from)
		}
		sn.keyed, sn.ecs = true, nil
	}
	return sn.key
}

// recSlot is the last answer naming a region that one pair got.
type recSlot struct {
	h    uint64 // pairHash(key, svc): compared before the key
	at   int64  // Unix nanoseconds; 0: empty slot
	mask uint64
	svc  uint8
	key  subnetKey
}

// answerTable is a table of recent answers. Its owner locks mu around its
// records; the tracker locks it to read.
type answerTable struct {
	mu    sync.Mutex
	slots [recSlots]recSlot
}

// pairHash hashes a (subnet, service) pair: FNV-1a, then the murmur3
// finaliser (as unitHash).
func pairHash(k *subnetKey, svc uint8) uint64 {
	h := fnvmix.Bytes(fnvmix.Offset, k.bytes())
	h = (h ^ uint64(svc)) * fnvmix.Prime
	return fnvmix.Mix64(h)
}

// record notes that the pair, of hash h, was told mask at now; r.mu must
// be held.
func (r *answerTable) record(k *subnetKey, svc uint8, h, mask uint64, now int64) {
	victim := -1
	for p := range recProbe {
		i := int((h + uint64(p)) & (recSlots - 1))
		s := &r.slots[i]
		if s.h == h && s.at != 0 && s.svc == svc && s.key == *k {
			s.mask, s.at = mask, now
			return
		}
		if s.at == 0 {
			victim = i
			break
		}
		if victim < 0 || s.at < r.slots[victim].at {
			victim = i
		}
	}
	r.slots[victim] = recSlot{h: h, key: *k, svc: svc, mask: mask, at: now}
}

// note records one reply (sn.mask > 0) and checks it against the changes
// being measured. The caller holds rec.mu.
func (s *Server) note(rec *answerTable, sn *seen, now int64) {
	k := sn.subnet()
	h := pairHash(&k, sn.svc)
	if sn.mask != 0 {
		rec.record(&k, sn.svc, h, sn.mask, now)
	}
	if ws := s.watches.Load(); ws != nil {
		for _, w := range *ws {
			w.observe(&k, sn.svc, h, sn.mask, now)
		}
	}
}

// noteGeneral records a reply of the general path.
func (s *Server) noteGeneral(sn *seen) {
	if sn.svc == 0 {
		return
	}
	now := time.Now().UnixNano()
	s.generalRec.mu.Lock()
	s.note(&s.generalRec, sn, now)
	s.generalRec.mu.Unlock()
}

// DrainChange is a weight change to measure: Region's weight was lowered
// by a command committed at At.
type DrainChange struct {
	Region string
	At     time.Time
}

// DrainWatch is one change being measured. Its figures are read with
// Server.CloseDrain.
type DrainWatch struct {
	region   string
	bit      uint64
	at       int64 // the change, Unix nanoseconds
	ttl      uint32
	deadline time.Time
	capped   bool
	complete bool
	services []string // by svc-1, for the report

	members []member // open addressing; len a power of two
	n       int
}

// member is one pair of a change's population.
type member struct {
	used  bool
	svc   uint8
	key   subnetKey
	lastR int64 // the last answer naming the region before the change

	drained atomic.Int64 // 1 + nanoseconds after the change; 0: not yet
	askedR  atomic.Int32 // answers still naming the region since
	lastAt  atomic.Int64 // the last of those
}

// Deadline is when the measurement is due to close: the change's time plus
// the TTL plus the slack.
func (w *DrainWatch) Deadline() time.Time { return w.deadline }

func (w *DrainWatch) find(k *subnetKey, svc uint8, h uint64) *member {
	if w.n == 0 {
		return nil
	}
	m := uint64(len(w.members) - 1)
	for i := h & m; ; i = (i + 1) & m {
		e := &w.members[i]
		if !e.used {
			return nil
		}
		if e.svc == svc && e.key == *k {
			return e
		}
	}
}

// observe applies one answer to the change's population.
func (w *DrainWatch) observe(k *subnetKey, svc uint8, h, mask uint64, now int64) {
	e := w.find(k, svc, h)
	if e == nil {
		return
	}
	if mask&w.bit != 0 {
		e.askedR.Add(1)
		e.lastAt.Store(now)
		return
	}
	if e.drained.Load() == 0 {
		e.drained.CompareAndSwap(0, max(now-w.at, 0)+1)
	}
}

// watch builds the measurement of ch against the new view v: the
// population from the recent answers, then it is published so that every
// answer from now on is checked against it. Called with updateMu held,
// before v is published, so no answer from v is missed.
func (s *Server) watch(v *view, ch DrainChange) *DrainWatch {
	w := &DrainWatch{region: ch.Region, bit: v.regionBits[ch.Region], at: ch.At.UnixNano()}
	for i, st := range v.services {
		w.services = append(w.services, st.name)
		// The region's services by their endpoints: the new answers may
		// no longer name it at all.
		if _, ok := v.cfg.Services[i].Endpoints[ch.Region]; ok {
			w.ttl = max(w.ttl, st.ttl)
		}
	}
	if w.ttl == 0 {
		w.ttl = v.cfg.TTL
	}
	window := time.Duration(w.ttl) * time.Second
	w.deadline = ch.At.Add(window + s.drainSlack())
	since := s.recordingSince.Load()
	w.complete = since != 0 && since <= ch.At.Add(-window).UnixNano()
	if w.bit == 0 {
		return w // a region past the 64th: nothing is recorded for it
	}

	// The newest answer per pair, over every table.
	type pair struct {
		key subnetKey
		svc uint8
	}
	// A pair's window is its own service's TTL.
	from := make([]int64, len(v.services))
	for i, st := range v.services {
		from[i] = ch.At.Add(-time.Duration(st.ttl) * time.Second).UnixNano()
	}
	newest := make(map[pair]int, recSlots) // -> index in cands
	cands := make([]recSlot, 0, recSlots)
	for _, rec := range s.answerTables() {
		rec.mu.Lock()
		for i := range rec.slots {
			sl := rec.slots[i]
			if sl.at == 0 || int(sl.svc) > len(v.services) || sl.at < from[sl.svc-1] {
				continue
			}
			id := pair{sl.key, sl.svc}
			j, ok := newest[id]
			switch {
			case !ok:
				newest[id] = len(cands)
				cands = append(cands, sl)
			case sl.at > cands[j].at:
				cands[j] = sl
			}
		}
		rec.mu.Unlock()
	}
	var pop []recSlot
	for _, c := range cands {
		if c.mask&w.bit == 0 {
			continue // last told another region
		}
		if v.services[c.svc-1].due(&c.key, s.locator())&w.bit != 0 {
			continue // still due the region under the new weights
		}
		pop = append(pop, c)
	}
	if limit := s.drainMaxPopulation(); len(pop) > limit {
		// Keep a deterministic sample: the lowest hashes.
		slices.SortFunc(pop, func(a, b recSlot) int { return cmp.Compare(a.h, b.h) })
		pop, w.capped = pop[:limit], true
	}
	size := 1
	for size < 2*len(pop) {
		size *= 2
	}
	w.members = make([]member, size)
	w.n = len(pop)
	for _, c := range pop {
		m := uint64(size - 1)
		i := c.h & m
		for w.members[i].used {
			i = (i + 1) & m
		}
		e := &w.members[i]
		e.used, e.svc, e.key, e.lastR = true, c.svc, c.key, c.at
	}
	return w
}

// UpdateWatching is Update, and starts measuring the drain of each change
// against the new answers (see the definition above). The changes' watches
// are returned in order; close each with CloseDrain.
func (s *Server) UpdateWatching(st *state.State, changes []DrainChange) []*DrainWatch {
	return s.update(st, changes)
}

// CloseDrain stops measuring w and returns its figures as of now.
// superseded says the region's weight rose again before the deadline: then
// no pair is counted past the TTL.
func (s *Server) CloseDrain(w *DrainWatch, now time.Time, superseded bool) state.DrainFigures {
	s.updateMu.Lock()
	if ws := s.watches.Load(); ws != nil {
		rest := slices.DeleteFunc(slices.Clone(*ws), func(x *DrainWatch) bool { return x == w })
		if len(rest) == 0 {
			s.watches.Store(nil)
		} else {
			s.watches.Store(&rest)
		}
	}
	s.updateMu.Unlock()
	return w.figures(now, superseded)
}

// figures computes the report of w as of now.
func (w *DrainWatch) figures(now time.Time, superseded bool) state.DrainFigures {
	f := state.DrainFigures{
		Population: w.n, Capped: w.capped, TTLSeconds: w.ttl, ClosedAt: now, Superseded: superseded,
		WindowComplete: w.complete,
		SlackMs:        w.deadline.Sub(time.Unix(0, w.at).Add(time.Duration(w.ttl) * time.Second)).Milliseconds(),
	}
	var times []int64
	var late []*member
	for i := range w.members {
		e := &w.members[i]
		if !e.used {
			continue
		}
		if d := e.drained.Load(); d != 0 {
			times = append(times, d-1)
		} else {
			late = append(late, e)
		}
	}
	slices.Sort(times)
	f.Drained = len(times)
	rank := func(p float64) *int64 {
		k := int(math.Ceil(p * float64(w.n)))
		if w.n == 0 || k > len(times) {
			return nil
		}
		v := time.Duration(times[max(k, 1)-1]).Milliseconds()
		return &v
	}
	f.P50Ms, f.P90Ms, f.P99Ms = rank(0.50), rank(0.90), rank(0.99)
	if superseded {
		return f
	}
	f.PastTTL = len(late)
	var out []state.LingeringResolver
	for _, e := range late {
		last := max(e.lastR, e.lastAt.Load())
		p := netip.PrefixFrom(keyAddr(&e.key), int(e.key.b[1]))
		out = append(out, state.LingeringResolver{Subnet: p.String(), Service: w.services[e.svc-1],
			LastAnswered: time.Unix(0, last).UTC(), AskedAfter: int(e.askedR.Load())})
	}
	// The ones that kept asking first, then by subnet.
	slices.SortFunc(out, func(a, b state.LingeringResolver) int {
		if c := cmp.Compare(b.AskedAfter, a.AskedAfter); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Subnet, b.Subnet), cmp.Compare(a.Service, b.Service))
	})
	if len(out) > state.MaxPastTTLSample {
		out = out[:state.MaxPastTTLSample]
	}
	f.PastTTLResolvers = out
	return f
}

// keyAddr is the masked address of a subnet key.
func keyAddr(k *subnetKey) netip.Addr {
	if k.b[0] == 4 {
		return netip.AddrFrom4([4]byte(k.b[2:6]))
	}
	return netip.AddrFrom16([16]byte(k.b[2:18]))
}

func (s *Server) drainSlack() time.Duration {
	if s.cfg.DrainSlack > 0 {
		return s.cfg.DrainSlack
	}
	return DefaultDrainSlack
}

func (s *Server) drainMaxPopulation() int {
	if s.cfg.DrainMaxPopulation > 0 {
		return s.cfg.DrainMaxPopulation
	}
	return DefaultDrainMaxPopulation
}

// answerTables returns every recent-answer table: the general path's and one
// per UDP reader.
func (s *Server) answerTables() []*answerTable {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*answerTable{&s.generalRec}, s.udpRecs...)
}
