package gossip

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// Pulls (protocol 2). A change is flooded and sent straight to the
// controllers; when the direct packets cannot arrive (the origin's region
// is cut off from the controllers) the flood alone carries it, and it
// sometimes misses a controller. Refreshes still reach that controller
// through relays, and each names the origin's newest change: a receiver
// whose newest is older knows it missed one. It then asks for the
// origin's reports newer than the one it holds (msgPull) from the origin
// and from pullPeers random agents of other regions, which the flood most
// likely reached; NotifyMsg does not say which relay forwarded a refresh,
// or that one would be asked. Each asked node answers with the reports it
// holds (msgPullReport, one v2 report per packet), which are stored under
// the usual rule: a report never replaces one with a higher sequence. So
// an answer can only bring a change the receiver lacks, never forge or
// roll one back; a node that holds nothing newer stays silent.
//
// One pull per origin per heartbeat interval at most, however many
// refreshes and relays name the missed change; a pull whose answers are
// lost is retried by the next refresh. A node of an older build drops the
// unknown message types, so a mixed fleet only loses the repair.

// pullPeers is how many agents besides the origin are asked.
const pullPeers = 2

// maxPullReports bounds one answer (an origin has a few checks; the bound
// keeps a request from costing more than a short burst of packets).
const maxPullReports = 64

// pullRequest asks for origin's reports with a sequence above have, to be
// sent to the member named from.
type pullRequest struct {
	from, origin string
	have         uint64
}

// encodePull lays out: type, from, origin, have.
func encodePull(p pullRequest) []byte {
	b := make([]byte, 0, 12+len(p.from)+len(p.origin))
	b = append(b, msgPull)
	b = appendStr(b, p.from)
	b = appendStr(b, p.origin)
	return binary.BigEndian.AppendUint64(b, p.have)
}

func decodePull(b []byte) (pullRequest, error) {
	if len(b) < 2 || b[0] != msgPull {
		return pullRequest{}, errors.New("not a pull message")
	}
	rd := wireReader{b: b[1:]}
	from, origin := rd.str(), rd.str()
	have := rd.u64()
	switch {
	case rd.err != nil:
		return pullRequest{}, rd.err
	case len(rd.b) != 0:
		return pullRequest{}, errors.New("trailing bytes after pull")
	case len(from) == 0 || len(from) > maxField || len(origin) == 0 || len(origin) > maxField:
		return pullRequest{}, errors.New("invalid pull")
	}
	return pullRequest{from: string(from), origin: string(origin), have: have}, nil
}

// pullLocked is called when a refresh names a change of o newer than any
// held: it returns the nodes to ask and the request, or nothing when this
// origin was pulled less than a heartbeat interval ago.
func (n *Node) pullLocked(origin string, o *originState, now time.Time) ([]memberlist.Node, []byte) {
	if now.Sub(o.pulled) < n.tm.heartbeat {
		return nil, nil
	}
	o.pulled = now
	to := make([]memberlist.Node, 0, pullPeers+1)
	if m := n.members[origin]; m != nil && m.Live() {
		to = append(to, m.to)
	}
	for _, r := range n.relaysLocked(pullPeers + 1) {
		if r.Name != origin && len(to) < pullPeers+1 {
			to = append(to, r)
		}
	}
	return to, encodePull(pullRequest{from: n.cfg.NodeName, origin: origin, have: o.maxSeq})
}

// handlePull answers a pull with the reports held of the origin that are
// newer than the requester's, tombstones included (they are changes too).
func (n *Node) handlePull(raw []byte) {
	p, err := decodePull(raw)
	if err != nil {
		n.log.Debug("dropped undecodable pull", zap.Error(err))
		return
	}
	n.mu.Lock()
	m := n.members[p.from]
	o := n.origins[p.origin]
	if m == nil || !m.Live() || o == nil || o.maxSeq <= p.have {
		n.mu.Unlock()
		return
	}
	to := m.to
	msgs := make([][]byte, 0, len(o.keys))
	for _, k := range o.keys {
		if r := n.reports[k]; r.Seq > p.have && len(msgs) < maxPullReports {
			msg := encodeReportV2(r)
			msg[0] = msgPullReport
			msgs = append(msgs, msg)
		}
	}
	n.mu.Unlock()
	for _, msg := range msgs {
		if err := n.ml.SendBestEffort(&to, msg); err != nil {
			n.log.Debug("pull answer not sent", zap.String("member", to.Name), zap.Error(err))
			return
		}
	}
}

// handlePullReport handles an answer to a pull as a received report: it
// is stored only if newer than the one held, and then flooded on as any
// first receipt is (the nodes the flood missed are likely missing it too).
func (n *Node) handlePullReport(raw []byte) {
	msg := append([]byte(nil), raw...)
	msg[0] = msgReportV2
	n.handleReportV2(msg)
}
