package gossip

import (
	"fmt"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// delegate is the memberlist.Delegate; it is kept off Node's method set.
type delegate struct{ n *Node }

var _ memberlist.Delegate = delegate{}

func (d delegate) NodeMeta(limit int) []byte {
	if len(d.n.meta) > limit {
		return nil // checked in New; never happens
	}
	return d.n.meta
}

// NotifyMsg receives user messages; buf is only valid during the call.
func (d delegate) NotifyMsg(buf []byte) {
	defer d.n.recoverInput("message")
	if len(buf) == 0 {
		return
	}
	switch buf[0] {
	case msgReport:
		d.n.handleReport(buf)
	case msgLeave:
		d.n.handleLeave(buf)
	default:
		d.n.log.Debug("dropped message of unknown type", zap.Uint8("type", buf[0]))
	}
}

func (d delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.n.queue.GetBroadcasts(overhead, limit)
}

func (d delegate) LocalState(bool) []byte { return d.n.localState() }

func (d delegate) MergeRemoteState(buf []byte, _ bool) {
	defer d.n.recoverInput("push-pull state")
	d.n.mergeState(buf)
}

// recoverInput keeps a bug in input handling from killing the process:
// memberlist runs the delegate on its own goroutines.
func (n *Node) recoverInput(what string) {
	if v := recover(); v != nil {
		n.log.Error("recovered from panic handling gossip input", zap.String("input", what), zap.String("panic", fmt.Sprint(v)))
	}
}

// reportBroadcast is one queued report; a newer report for the same key
// replaces it in the queue (memberlist.NamedBroadcast).
type reportBroadcast struct {
	name string
	msg  []byte
}

var _ memberlist.NamedBroadcast = (*reportBroadcast)(nil)

func newReportBroadcast(r Report, msg []byte) *reportBroadcast {
	return &reportBroadcast{name: "report\x00" + r.Origin + "\x00" + r.Service + "\x00" + r.Check, msg: msg}
}

func (b *reportBroadcast) Name() string    { return b.name }
func (b *reportBroadcast) Message() []byte { return b.msg }
func (b *reportBroadcast) Finished()       {}

func (b *reportBroadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(memberlist.NamedBroadcast)
	return ok && o.Name() == b.name
}
