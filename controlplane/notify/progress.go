package notify

import (
	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
)

// Progress is GET /v1/notifications: every sink of st's config with what
// the leader delivered to it, from the replicated progress, and what is
// pending; b may also tell the error being retried (its RetryingError, on
// the leader).
func Progress(st *state.State, b any) []wire.Notification {
	out := []wire.Notification{}
	if st.Config == nil {
		return out
	}
	rt, _ := b.(interface{ RetryingError(sink string) string })
	for i := range st.Config.Notifications {
		sink := &st.Config.Notifications[i]
		p := st.Notify[sink.Name]
		n := wire.Notification{Name: sink.Name, Type: sink.Type, Delivered: p.Delivered, Failed: p.Failed, Cursor: p.Cursor,
			LastDeliveredAt: p.LastDeliveredAt, LastError: p.LastError, LastErrorAt: p.LastErrorAt}
		for _, e := range st.EventsSince(p.Cursor, 0) {
			if sink.Wants(e) {
				n.Pending++
			}
		}
		if rt != nil {
			n.Retrying = rt.RetryingError(sink.Name)
		}
		out = append(out, n)
	}
	return out
}
