package gossip

import (
	"fmt"
	"sync"

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
	if drop := d.n.dropMsg.Load(); drop != nil && (*drop)(buf) {
		return
	}
	switch buf[0] {
	case msgReport:
		d.n.handleReport(buf)
	case msgLeave:
		d.n.handleLeave(buf)
	case msgReportV2, msgRefresh, msgRefreshRelay, msgPull, msgPullReport:
		// A node held at protocol 1 ignores these, as an old binary does.
		if d.n.cfg.proto() < 2 {
			return
		}
		switch buf[0] {
		case msgReportV2:
			d.n.handleReportV2(buf)
		case msgRefresh:
			d.n.handleRefresh(buf)
		case msgRefreshRelay:
			d.n.handleRefreshRelay(buf)
		case msgPull:
			d.n.handlePull(buf)
		case msgPullReport:
			d.n.handlePullReport(buf)
		}
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

// namedBroadcast is one queued message; a newer one with the same name
// (the same report key, origin of a refresh, or leaving member) replaces
// it in the queue.
type namedBroadcast struct {
	name string
	msg  []byte
	done chan struct{} // closed when sent to its limit; nil unless waited for
	once sync.Once
}

var _ memberlist.NamedBroadcast = (*namedBroadcast)(nil)

func newReportBroadcast(r Report, msg []byte) *namedBroadcast {
	return &namedBroadcast{name: "report\x00" + r.Origin + "\x00" + r.Service + "\x00" + r.Check, msg: msg}
}

func (b *namedBroadcast) Name() string    { return b.name }
func (b *namedBroadcast) Message() []byte { return b.msg }
func (b *namedBroadcast) Finished() {
	if b.done != nil {
		b.once.Do(func() { close(b.done) })
	}
}

func (b *namedBroadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(memberlist.NamedBroadcast)
	return ok && o.Name() == b.name
}
