package gossip

import (
	"crypto/ed25519"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// Refreshes (protocol 2). An agent re-publishes each unchanged result every
// refresh_interval so that the controllers can tell a live report from one
// whose agent stopped reporting (stale reports are no evidence). Protocol 1
// flooded every report each time: at N agents every node handled
// N × checks / refresh_interval reports a second, each ~16 times, and at
// 1,000 agents that flood alone filled every node's gossip packets. Now
// only changes are flooded. Staleness is judged by the controllers alone,
// so a node whose reports are unchanged sends one small refresh per
// heartbeat for all of them straight to every live controller, and the
// same refresh to refreshRelays random agents of other regions, which
// forward it to the controllers they know: a region cut off from the
// controllers still has its reports renewed through the others (the
// vantage-point rule), while a region cut off from everyone does not.
//
// A refresh names the origin's newest change (table) and the oldest time
// one of its live reports was last published (asOf). A receiver holding
// exactly that change as the origin's newest renews every live report of
// the origin as current since asOf: Time advances to asOf, Received to its
// own clock minus the refresh's age by the origin's clock. So a check that
// stops running stops renewing, and its origin's reports go stale as
// before. A receiver that missed a change (its newest is older) renews
// nothing, and pulls the change it missed (pull.go) from the origin and
// from agents that the flood most likely reached; until it arrives the
// copy ages out as before, as no evidence. Refreshes are ordered by their own sequence
// (the origin's report counter), so an old one never renews anything twice.
//
// Agents do not renew each other's copies; nothing on an agent reads their
// age, and a controller that syncs from an agent gets the Time that the
// next refresh corrects.

// refreshRelays is how many agents of other regions relay each refresh.
const refreshRelays = 2

// heartbeat sends a refresh of this node's reports, when every live member
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
	if n.cfg.SigningKey != nil {
		f.sig = ed25519.Sign(n.cfg.SigningKey, refreshSigBytes(f.origin, f))
	}
	ctrls := n.controllersLocked()
	relays := n.relaysLocked(refreshRelays)
	n.mu.Unlock()
	msg := encodeRefresh(f)
	n.sendDirect(ctrls, msg)
	msg[0] = msgRefreshRelay
	n.sendDirect(relays, msg)
}

// relaysLocked picks up to k live agents at random, from other regions
// when there are any (a relay in one's own region shares its cuts).
func (n *Node) relaysLocked(k int) []memberlist.Node {
	other := make([]memberlist.Node, 0, k)
	same := make([]memberlist.Node, 0, k)
	seenOther, seenSame := 0, 0
	// Reservoir sampling: one pass, no copy of the member table.
	sample := func(into *[]memberlist.Node, seen *int, m *member) {
		*seen++
		if len(*into) < k {
			*into = append(*into, m.to)
		} else if j := rand.IntN(*seen); j < k {
			(*into)[j] = m.to
		}
	}
	for name, m := range n.members {
		if !m.Live() || m.Role != RoleAgent || name == n.cfg.NodeName {
			continue
		}
		if m.Region != n.cfg.Region {
			sample(&other, &seenOther, m)
		} else if seenOther == 0 {
			sample(&same, &seenSame, m)
		}
	}
	if len(other) > 0 {
		return other
	}
	return same
}

// handleRefresh applies a refresh on first receipt.
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
	if reason := n.admitRefresh(string(origin), f, now); reason != "" {
		n.dropped("refresh", string(origin), reason)
		return
	}
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
	var to []memberlist.Node
	var pull []byte
	switch {
	case o.maxSeq == f.table:
		n.renewLocked(o, f, now)
	case o.maxSeq < f.table:
		to, pull = n.pullLocked(string(origin), o, now)
	}
	n.mu.Unlock()
	n.sendDirect(to, pull)
}

// handleRefreshRelay forwards a refresh to the controllers this node knows
// (a controller asked to relay applies it instead). The bytes go on
// unchanged but for the type byte, which the signature does not cover.
func (n *Node) handleRefreshRelay(raw []byte) {
	if _, _, err := readRefresh(raw); err != nil {
		n.log.Debug("dropped undecodable refresh", zap.Error(err))
		return
	}
	msg := append([]byte(nil), raw...)
	msg[0] = msgRefresh
	if n.cfg.Role == RoleController {
		n.handleRefresh(msg)
		return
	}
	n.mu.Lock()
	ctrls := n.controllersLocked()
	n.mu.Unlock()
	n.sendDirect(ctrls, msg)
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
