package gossip

import (
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// statusWithdrawn marks a tombstone: the origin no longer runs that check
// (e.g. it restarted with another config). It holds the key's sequence so
// the old report cannot come back, and is hidden from Reports().
const statusWithdrawn = "withdrawn"

type reportKey struct{ origin, service, check string }

func keyOf(r Report) reportKey { return reportKey{r.Origin, r.Service, r.Check} }

// Publish stamps r with this node's name as Origin, fills Region (the
// node's) and Time (now) when unset, caps Output and stores it. A report
// that changes anything but Time is a change: it gets the next sequence
// number, is queued for broadcast and sent straight to every live
// controller. An unchanged report only renews the stored one's Time: while
// every member speaks protocol 2 the heartbeat carries that to the others
// (wire.go); otherwise it is re-broadcast under a new sequence number, as
// protocol 1 does. A report lacking Service, Check or Status is dropped
// with a warning.
func (n *Node) Publish(r Report) { n.publish(r, false) }

// publish is Publish; force makes even an unchanged report a change (it
// must supersede a copy from an earlier life of this node).
func (n *Node) publish(r Report, force bool) {
	r.Origin = n.cfg.NodeName
	if r.Region == "" {
		r.Region = n.cfg.Region
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	// Invalid UTF-8 would not survive a JSON round trip, and with it the
	// signature would not verify.
	r.Output = capString(strings.ToValidUTF8(r.Output, "?"), maxOutput)
	r.Received = time.Now()
	v2 := n.v2.Load()
	n.mu.Lock()
	if old, ok := n.reports[keyOf(r)]; ok && v2 && !force && sameContent(old, r) {
		old.Time, old.Received = r.Time, r.Received
		n.reports[keyOf(r)] = old
		n.mu.Unlock()
		return
	}
	r.Seq = n.nextSeqLocked()
	if err := validReport(r); err != nil {
		n.mu.Unlock()
		n.log.Warn("report not published", zap.String("service", r.Service), zap.String("check", r.Check), zap.Error(err))
		return
	}
	if n.cfg.SigningKey != nil {
		r.Sig = make([]byte, sigLen) // counted while sizing; signed below
	}
	for len(encodeReport(r)) > maxMessage && r.Output != "" {
		// Escaping can inflate the output: shrink it until the message
		// fits one gossip packet, or it would never be sent. JSON is the
		// larger encoding: a report that fits it fits both.
		r.Output = capString(r.Output, len(r.Output)/2)
	}
	n.signReport(&r)
	msg := encodeReport(r)
	if v2 {
		msg = encodeReportV2(r)
	}
	n.putLocked(r)
	var ctrls []memberlist.Node
	if !n.cfg.NoDirect {
		ctrls = n.controllersLocked()
	}
	n.mu.Unlock()
	n.queue.QueueBroadcast(newReportBroadcast(r, msg))
	n.sendDirect(ctrls, msg)
	n.notify()
}

// sameContent reports whether b says what a already says.
func sameContent(a, b Report) bool {
	if a.Status != b.Status || a.Region != b.Region || a.Output != b.Output || (a.Capacity == nil) != (b.Capacity == nil) {
		return false
	}
	return a.Capacity == nil || *a.Capacity == *b.Capacity
}

// controllersLocked lists the live controllers when this node is an agent.
func (n *Node) controllersLocked() []memberlist.Node {
	if n.cfg.Role != RoleAgent || len(n.ctrls) == 0 {
		return nil
	}
	out := make([]memberlist.Node, 0, len(n.ctrls))
	for _, c := range n.ctrls {
		out = append(out, c.to)
	}
	return out
}

// sendDirect sends a change to the controllers in one packet each, so the
// leader hears of it at once rather than after the ~log(N) gossip hops a
// flood takes; the flood still carries it everywhere, and is what delivers
// it when this region is cut off from the controllers. Best effort: a lost
// packet only means the flood's latency.
func (n *Node) sendDirect(to []memberlist.Node, msg []byte) {
	for i := range to {
		if err := n.ml.SendBestEffort(&to[i], msg); err != nil {
			n.log.Debug("direct send failed", zap.String("member", to[i].Name), zap.Error(err))
		}
	}
}

// nextSeqLocked returns a sequence number above every one used before and
// at least the current unix time in nanoseconds.
func (n *Node) nextSeqLocked() uint64 {
	seq := uint64(time.Now().UnixNano())
	if seq <= n.lastSeq {
		seq = n.lastSeq + 1
	}
	n.lastSeq = seq
	return seq
}

// Reports returns the latest report per (origin, service, check), sorted.
func (n *Node) Reports() []Report {
	n.mu.Lock()
	out := make([]Report, 0, len(n.reports))
	for _, r := range n.reports {
		if r.Status != statusWithdrawn {
			out = append(out, r)
		}
	}
	n.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Origin != b.Origin {
			return a.Origin < b.Origin
		}
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		return a.Check < b.Check
	})
	return out
}

// originState indexes one origin's reports, so that a duplicate is
// recognised and a refresh applied without a walk over the whole table.
type originState struct {
	maxSeq  uint64      // highest report sequence stored, tombstones included
	refresh uint64      // newest refresh seen
	pulled  time.Time   // when its missed change was last pulled (pull.go)
	keys    []reportKey // the origin's keys in Node.reports
}

func (n *Node) originLocked(name string) *originState {
	o := n.origins[name]
	if o == nil {
		o = &originState{}
		n.origins[name] = o
	}
	return o
}

// putLocked stores r and keeps the origin index.
func (n *Node) putLocked(r Report) {
	k := keyOf(r)
	o := n.originLocked(r.Origin)
	if _, ok := n.reports[k]; !ok {
		o.keys = append(o.keys, k)
	}
	n.reports[k] = r
	o.maxSeq = max(o.maxSeq, r.Seq)
}

// deleteLocked removes a report and, with its last one, its origin.
func (n *Node) deleteLocked(k reportKey) {
	delete(n.reports, k)
	o := n.origins[k.origin]
	if o == nil {
		return
	}
	for i, have := range o.keys {
		if have == k {
			o.keys = append(o.keys[:i], o.keys[i+1:]...)
			break
		}
	}
	if len(o.keys) == 0 {
		delete(n.origins, k.origin)
	}
}

// storedSeqLocked is the stored sequence for a key given as bytes (a
// version 2 header), 0 when none: the duplicate check, without decoding.
func (n *Node) storedSeqLocked(origin, service, check []byte) uint64 {
	o := n.origins[string(origin)]
	if o == nil {
		return 0
	}
	for _, k := range o.keys {
		if k.service == string(service) && k.check == string(check) {
			return n.reports[k].Seq
		}
	}
	return 0
}

// storeLocked keeps r if it is newer than the stored report for its key
// and not past retention. The same sequence with a later Time is the same
// report renewed (a heartbeat reached the peer that sent it in push-pull):
// its Time and Received advance, and it is not a change.
func (n *Node) storeLocked(r Report, now time.Time) bool {
	if now.Sub(r.Time) > n.cfg.Retention {
		return false
	}
	k := keyOf(r)
	if old, ok := n.reports[k]; ok && old.Seq >= r.Seq {
		// Time is not signed: where enrolment is enforced only a signed
		// refresh renews a report, not a peer's copy.
		if old.Seq == r.Seq && r.Time.After(old.Time) && old.Status != statusWithdrawn && !n.enforcing() {
			old.Time, old.Received = r.Time, now
			n.reports[k] = old
		}
		return false
	}
	r.Received = now
	n.putLocked(r)
	return true
}

// handleReport processes a protocol 1 report received by broadcast: on
// first receipt it is stored and re-queued for broadcast (memberlist does
// not forward user messages itself). raw is the message as received.
func (n *Node) handleReport(raw []byte) {
	r, err := decodeReport(raw)
	if err != nil {
		n.log.Debug("dropped undecodable report", zap.Error(err))
		return
	}
	n.receive(r, raw)
}

// handleReportV2 is handleReport for protocol 2: the header is read in
// place and a report already held is dropped before anything is decoded.
func (n *Node) handleReportV2(raw []byte) {
	h, _, err := readReportHeader(raw)
	if err != nil {
		n.log.Debug("dropped undecodable report", zap.Error(err))
		return
	}
	n.mu.Lock()
	dup := n.storedSeqLocked(h.origin, h.service, h.check) >= h.seq
	n.mu.Unlock()
	if dup {
		return
	}
	r, err := decodeReportV2(raw)
	if err != nil {
		n.log.Debug("dropped undecodable report", zap.Error(err))
		return
	}
	n.receive(r, raw)
}

// receive stores a decoded broadcast report and relays it on first
// receipt, unless admit refuses it (identity.go).
func (n *Node) receive(r Report, raw []byte) {
	if reason := n.admit(r, time.Now()); reason != "" {
		n.mu.Lock()
		n.droppedLocked("report", r, reason)
		n.mu.Unlock()
		return
	}
	if r.Origin == n.cfg.NodeName {
		n.ownEcho([]Report{r})
		return
	}
	n.mu.Lock()
	fresh := n.storeLocked(r, time.Now())
	n.mu.Unlock()
	if !fresh {
		return
	}
	n.queue.QueueBroadcast(newReportBroadcast(r, append([]byte(nil), raw...)))
	n.notify()
}

// ownEcho handles reports that claim this node as origin. Ordinary echoes
// of our own broadcasts are ignored. A report we do not have, or one with a
// higher sequence than ours, comes from an earlier life of this node (a
// restart, perhaps with a clock behind): supersede it with our current
// report, or with a tombstone if we no longer run that check.
func (n *Node) ownEcho(rs []Report) {
	var republish []Report
	n.mu.Lock()
	for _, r := range rs {
		cur, ok := n.reports[keyOf(r)]
		if ok && r.Seq <= cur.Seq {
			continue
		}
		if r.Seq > n.lastSeq {
			n.lastSeq = r.Seq
		}
		if !ok {
			if r.Status == statusWithdrawn {
				continue // already a tombstone; nothing to supersede with
			}
			cur = Report{Region: r.Region, Service: r.Service, Check: r.Check, Status: statusWithdrawn}
		}
		cur.Time = time.Now()
		republish = append(republish, cur)
	}
	n.mu.Unlock()
	for _, r := range republish {
		n.publish(r, true)
	}
}

// localState is the push-pull payload: the whole table, tombstones included.
func (n *Node) localState() []byte {
	n.mu.Lock()
	rs := make([]Report, 0, len(n.reports))
	for _, r := range n.reports {
		rs = append(rs, r)
	}
	leaves := n.leftIntentsLocked()
	n.mu.Unlock()
	return encodeState(rs, leaves)
}

// mergeState merges a peer's push-pull payload by sequence number.
func (n *Node) mergeState(buf []byte) {
	rs, leaves, skipped, err := decodeState(buf)
	if err != nil {
		n.log.Warn("dropped undecodable push-pull state", zap.Error(err))
		return
	}
	if skipped > 0 {
		n.log.Debug("skipped invalid reports in push-pull state", zap.Int("count", skipped))
	}
	var own []Report
	changed := 0
	now := time.Now()
	n.mu.Lock()
	for _, r := range rs {
		if reason := n.admit(r, now); reason != "" {
			n.droppedLocked("push-pull report", r, reason)
			continue
		}
		if r.Origin == n.cfg.NodeName {
			own = append(own, r)
			continue
		}
		if n.storeLocked(r, now) {
			changed++
		}
	}
	for _, l := range leaves {
		if reason := n.admitLeave(l, now); reason != "" {
			if l.Seq > n.leaves[l.Node] {
				n.dropped("push-pull leave intent", l.Node, reason)
			}
			continue
		}
		if n.applyLeaveLocked(l, now) {
			changed++
		}
	}
	n.mu.Unlock()
	if len(own) > 0 {
		n.ownEcho(own)
	}
	if changed > 0 {
		n.notify()
	}
}

// reapReportsLocked drops reports older than retention, except this
// node's own live reports.
func (n *Node) reapReportsLocked(now time.Time) int {
	reaped := 0
	for k, r := range n.reports {
		if now.Sub(r.Time) <= n.cfg.Retention {
			continue
		}
		if r.Origin == n.cfg.NodeName && r.Status != statusWithdrawn {
			continue
		}
		n.deleteLocked(k)
		reaped++
	}
	for name, o := range n.origins {
		if len(o.keys) == 0 { // only refreshes were seen from it
			delete(n.origins, name)
		}
	}
	return reaped
}

func capString(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
