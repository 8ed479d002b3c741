package gossip

import (
	"sort"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

// statusWithdrawn marks a tombstone: the origin no longer runs that check
// (e.g. it restarted with another config). It holds the key's sequence so
// the old report cannot come back, and is hidden from Reports().
const statusWithdrawn = "withdrawn"

type reportKey struct{ origin, service, check string }

func keyOf(r Report) reportKey { return reportKey{r.Origin, r.Service, r.Check} }

// Publish stamps r with this node's name as Origin and the next sequence
// number, fills Region (the node's) and Time (now) when unset, caps
// Output, stores it and queues it for broadcast. A report lacking Service,
// Check or Status is dropped with a warning.
func (n *Node) Publish(r Report) {
	r.Origin = n.cfg.NodeName
	if r.Region == "" {
		r.Region = n.cfg.Region
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Output = capString(r.Output, maxOutput)
	r.Received = time.Now()
	n.mu.Lock()
	r.Seq = n.nextSeqLocked()
	if err := validReport(r); err != nil {
		n.mu.Unlock()
		n.log.Warn("report not published", zap.String("service", r.Service), zap.String("check", r.Check), zap.Error(err))
		return
	}
	msg := encodeReport(r)
	for len(msg) > maxMessage && r.Output != "" {
		// Escaping can inflate the output: shrink it until the message
		// fits one gossip packet, or it would never be sent.
		r.Output = capString(r.Output, len(r.Output)/2)
		msg = encodeReport(r)
	}
	n.reports[keyOf(r)] = r
	n.mu.Unlock()
	n.queue.QueueBroadcast(newReportBroadcast(r, msg))
	n.notify()
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

// storeLocked keeps r if it is newer than the stored report for its key
// and not past retention.
func (n *Node) storeLocked(r Report, now time.Time) bool {
	if now.Sub(r.Time) > n.cfg.Retention {
		return false
	}
	k := keyOf(r)
	if old, ok := n.reports[k]; ok && old.Seq >= r.Seq {
		return false
	}
	r.Received = now
	n.reports[k] = r
	return true
}

// handleReport processes a report received by broadcast: on first receipt
// it is stored and re-queued for broadcast (memberlist does not forward
// user messages itself). raw is the message as received.
func (n *Node) handleReport(raw []byte) {
	r, err := decodeReport(raw)
	if err != nil {
		n.log.Debug("dropped undecodable report", zap.Error(err))
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
		n.Publish(r)
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
		if r.Origin == n.cfg.NodeName {
			own = append(own, r)
			continue
		}
		if n.storeLocked(r, now) {
			changed++
		}
	}
	for _, l := range leaves {
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
		delete(n.reports, k)
		reaped++
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
