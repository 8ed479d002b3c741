package gossip

import (
	"crypto/ed25519"
	"encoding/binary"
	"math"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Agent identities (protocol 3). Every agent holds its own Ed25519 key
// (`evac agent keygen`) and signs each report, refresh and leave intent it
// originates;
// the controllers hold the enrolled agents' public keys and regions
// (replicated in Raft) and check every report end to end, however it came:
// broadcast, relayed, pulled or merged from push-pull. Relays forward the
// signed bytes unchanged and check nothing: they do not know the keys.
//
// What is signed is the report's content: origin, region, service, check,
// status, output, capacity and sequence, behind a domain prefix. Time is
// not signed: refreshes renew it without the origin re-signing the report,
// and the controllers judge staleness by their own clock. The sequence is
// the origin's unix-nanosecond clock when the report changed, and a
// receiver drops any report or refresh whose sequence is more than
// MaxSeqSkew in its own future, so a forged huge sequence cannot hold
// the real agent's reports off: at worst a relay that cannot check the
// signature holds a forged report for MaxSeqSkew.

// MaxSeqSkew is how far in a receiver's future a sequence may be. Agents'
// clocks must be within it of the controllers' (NTP).
const MaxSeqSkew = 5 * time.Minute

// sigLen is the length of an Ed25519 signature.
const sigLen = ed25519.SignatureSize

// Enrolment is the controllers' view of the enrolled agents.
type Enrolment interface {
	// Enforced reports whether only enrolled agents' signed reports are
	// accepted. When false, reports of agents not enrolled are accepted
	// unsigned, but an enrolled name is still checked.
	Enforced() bool
	// Lookup returns an enrolled agent's public key and region.
	Lookup(name string) (key ed25519.PublicKey, region string, ok bool)
}

// Drop reasons, the label of the controllers' dropped-report counter.
const (
	DropSeqFuture    = "seq_future"    // sequence too far in the receiver's future
	DropNotEnrolled  = "not_enrolled"  // origin is not an enrolled agent
	DropWrongRegion  = "wrong_region"  // region differs from the enrolled one
	DropUnsigned     = "unsigned"      // no signature from an enrolled origin
	DropBadSignature = "bad_signature" // signature does not verify
)

// DropReasons lists every reason, for metrics that start at zero.
var DropReasons = []string{DropSeqFuture, DropNotEnrolled, DropWrongRegion, DropUnsigned, DropBadSignature}

// drops counts refused reports and refreshes by reason.
type drops struct {
	mu sync.Mutex
	n  map[string]uint64
}

func (d *drops) add(reason string) {
	d.mu.Lock()
	if d.n == nil {
		d.n = map[string]uint64{}
	}
	d.n[reason]++
	d.mu.Unlock()
}

// Dropped returns how many reports and refreshes this node refused, by
// reason, since it started.
func (n *Node) Dropped() map[string]uint64 {
	n.drops.mu.Lock()
	defer n.drops.mu.Unlock()
	out := make(map[string]uint64, len(DropReasons))
	for _, r := range DropReasons {
		out[r] = n.drops.n[r]
	}
	return out
}

// reportSigBytes is what an origin signs for r.
func reportSigBytes(r Report) []byte {
	b := make([]byte, 0, 64+len(r.Origin)+len(r.Region)+len(r.Service)+len(r.Check)+len(r.Status)+len(r.Output))
	b = append(b, "evac-report-v3\x00"...)
	b = appendStr(b, r.Origin)
	b = appendStr(b, r.Region)
	b = appendStr(b, r.Service)
	b = appendStr(b, r.Check)
	b = appendStr(b, r.Status)
	b = appendStr(b, r.Output)
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	if r.Capacity != nil {
		b = append(b, 1)
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(*r.Capacity))
	} else {
		b = append(b, 0)
	}
	return b
}

// refreshSigBytes is what an origin signs for a refresh.
func refreshSigBytes(origin string, f refresh) []byte {
	b := make([]byte, 0, 64+len(origin))
	b = append(b, "evac-refresh-v3\x00"...)
	b = appendStr(b, origin)
	b = binary.BigEndian.AppendUint64(b, f.seq)
	b = binary.BigEndian.AppendUint64(b, f.table)
	b = binary.BigEndian.AppendUint64(b, uint64(f.sent))
	return binary.BigEndian.AppendUint64(b, uint64(f.asOf))
}

// seqTooNew reports whether seq is more than MaxSeqSkew past now.
func seqTooNew(seq uint64, now time.Time) bool {
	return seq > uint64(now.Add(MaxSeqSkew).UnixNano())
}

// enforcing reports whether this node checks reports against enrolments
// and enforces them.
func (n *Node) enforcing() bool {
	return n.cfg.Enrolment != nil && n.cfg.Enrolment.Enforced()
}

// admit returns why r must be dropped, or "" to accept it. Every node
// bounds the sequence; an agent with a key checks echoes of its own
// origin; a controller with an Enrolment checks the origin's identity.
func (n *Node) admit(r Report, now time.Time) string {
	if seqTooNew(r.Seq, now) {
		return DropSeqFuture
	}
	if r.Origin == n.cfg.NodeName {
		if n.cfg.SigningKey != nil && !ed25519.Verify(n.cfg.SigningKey.Public().(ed25519.PublicKey), reportSigBytes(r), r.Sig) {
			return DropBadSignature
		}
		return ""
	}
	e := n.cfg.Enrolment
	if e == nil {
		return ""
	}
	key, region, ok := e.Lookup(r.Origin)
	switch {
	case !ok && e.Enforced():
		return DropNotEnrolled
	case !ok:
		return ""
	case r.Region != region:
		return DropWrongRegion
	case len(r.Sig) == 0:
		return DropUnsigned
	case len(r.Sig) != sigLen || !ed25519.Verify(key, reportSigBytes(r), r.Sig):
		return DropBadSignature
	}
	return ""
}

// admitRefresh is admit for a refresh of origin's reports.
func (n *Node) admitRefresh(origin string, f refresh, now time.Time) string {
	if seqTooNew(f.seq, now) || seqTooNew(f.table, now) {
		return DropSeqFuture
	}
	e := n.cfg.Enrolment
	if e == nil {
		return ""
	}
	key, _, ok := e.Lookup(origin)
	switch {
	case !ok && e.Enforced():
		return DropNotEnrolled
	case !ok:
		return ""
	case len(f.sig) == 0:
		return DropUnsigned
	case len(f.sig) != sigLen || !ed25519.Verify(key, refreshSigBytes(origin, f), f.sig):
		return DropBadSignature
	}
	return ""
}

// leaveSigBytes is what a leaving agent signs.
func leaveSigBytes(l wireLeave) []byte {
	b := make([]byte, 0, 32+len(l.Node))
	b = append(b, "evac-leave-v3\x00"...)
	b = appendStr(b, l.Node)
	return binary.BigEndian.AppendUint64(b, l.Seq)
}

// admitLeave is admit for a leave intent. A forged intent would have the
// controllers record a real agent that then fails as having left, which is
// no evidence against its region; so an enrolled agent's intent must be
// signed by it. Intents of other members (controllers, agents not
// enrolled, which count for nothing while enrolment is enforced) pass.
func (n *Node) admitLeave(l wireLeave, now time.Time) string {
	if seqTooNew(l.Seq, now) {
		return DropSeqFuture
	}
	e := n.cfg.Enrolment
	if e == nil {
		return ""
	}
	key, _, ok := e.Lookup(l.Node)
	switch {
	case !ok:
		return ""
	case len(l.Sig) == 0:
		return DropUnsigned
	case !ed25519.Verify(key, leaveSigBytes(l), l.Sig):
		return DropBadSignature
	}
	return ""
}

func (n *Node) signLeave(l *wireLeave) {
	if n.cfg.SigningKey != nil {
		l.Sig = ed25519.Sign(n.cfg.SigningKey, leaveSigBytes(*l))
	}
}

// signReport signs r with this node's key, if it has one.
func (n *Node) signReport(r *Report) {
	if n.cfg.SigningKey != nil {
		r.Sig = ed25519.Sign(n.cfg.SigningKey, reportSigBytes(*r))
	}
}

// droppedLocked is dropped for a report, which is counted only if it
// would have been stored: a copy of a report already held, stripped of
// its signature by a node of an older build, is no news.
func (n *Node) droppedLocked(what string, r Report, reason string) {
	if old, ok := n.reports[keyOf(r)]; ok && old.Seq >= r.Seq {
		return
	}
	n.dropped(what, r.Origin, reason)
}

// dropped counts a refused report or refresh and logs it at debug level
// (a flood of forgeries must not flood the log; the counter is the signal).
func (n *Node) dropped(what, origin, reason string) {
	n.drops.add(reason)
	n.log.Debug("dropped "+what, zap.String("origin", origin), zap.String("reason", reason))
}
