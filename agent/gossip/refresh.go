package gossip

import (
	"time"

	"go.uber.org/zap"
)

// Refreshes (protocol 2). An agent re-publishes each unchanged result every
// refresh_interval so that the controllers can tell a live report from one
// whose agent stopped reporting (stale reports are no evidence). Protocol 1
// re-broadcast every report each time, so at N agents every node handled
// N × checks / refresh_interval reports a second, each ~16 times. Now
// only changes are broadcast, and a node whose reports are unchanged
// gossips one small refresh per heartbeat for all of them.
//
// A refresh names the origin's newest change (table) and the oldest time
// one of its live reports was last published (asOf). A receiver holding
// exactly that change as the origin's newest renews every live report of
// the origin as current since asOf: Time advances to asOf, Received to its
// own clock minus the refresh's age by the origin's clock. So a check that
// stops running stops renewing, and its origin's reports go stale as
// before. A receiver that missed a change (its newest is older) renews
// nothing: its copy of the origin's reports ages out, as no evidence, until
// push-pull brings the change. Refreshes are ordered by their own sequence
// (the origin's report counter), so an old one never renews anything twice.

// heartbeat queues a refresh of this node's reports, when every live member
// speaks protocol 2 and the node has live reports.
func (n *Node) heartbeat() {
	if !n.v2.Load() || n.left.Load() {
		return
	}
	now := time.Now()
	n.mu.Lock()
	o := n.origins[n.cfg.NodeName]
	var asOf time.Time
	if o != nil {
		for _, k := range o.keys {
			r := n.reports[k]
			if r.Status != statusWithdrawn && (asOf.IsZero() || r.Time.Before(asOf)) {
				asOf = r.Time
			}
		}
	}
	if asOf.IsZero() {
		n.mu.Unlock()
		return
	}
	f := refresh{origin: n.cfg.NodeName, seq: n.nextSeqLocked(), table: o.maxSeq, sent: now.UnixNano(), asOf: asOf.UnixNano()}
	n.mu.Unlock()
	n.queue.QueueBroadcast(&namedBroadcast{name: "refresh\x00" + f.origin, msg: encodeRefresh(f)})
}

// handleRefresh applies a refresh on first receipt and relays it.
func (n *Node) handleRefresh(raw []byte) {
	origin, f, err := readRefresh(raw)
	if err != nil {
		n.log.Debug("dropped undecodable refresh", zap.Error(err))
		return
	}
	if string(origin) == n.cfg.NodeName {
		return
	}
	now := time.Now()
	n.mu.Lock()
	o := n.origins[string(origin)]
	if o != nil && f.seq <= o.refresh {
		n.mu.Unlock()
		return
	}
	if o == nil {
		o = n.originLocked(string(origin))
	}
	o.refresh = f.seq
	if o.maxSeq == f.table {
		n.renewLocked(o, f, now)
	}
	n.mu.Unlock()
	n.queue.QueueBroadcast(&namedBroadcast{name: "refresh\x00" + string(origin), msg: append([]byte(nil), raw...)})
}

// renewLocked applies f to the origin's live reports.
func (n *Node) renewLocked(o *originState, f refresh, now time.Time) {
	asOf := time.Unix(0, f.asOf)
	received := now.Add(-time.Duration(max(0, f.sent-f.asOf)))
	for _, k := range o.keys {
		r := n.reports[k]
		if r.Status == statusWithdrawn {
			continue
		}
		if asOf.After(r.Time) {
			r.Time = asOf
		}
		if received.After(r.Received) {
			r.Received = received
		}
		n.reports[k] = r
	}
}
