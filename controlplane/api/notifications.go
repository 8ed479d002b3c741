package api

import (
	"net/http"
	"time"

	"github.com/evac-sh/evac/controlplane/state"
)

// Notification is one sink of GET /v1/notifications: what the leader has
// delivered to it, from the replicated progress, and what is pending.
type Notification struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Delivered uint64 `json:"delivered"`
	Failed    uint64 `json:"failed"`
	// Pending counts the events after the cursor that the sink takes.
	Pending         int       `json:"pending"`
	Cursor          uint64    `json:"cursor"`
	LastDeliveredAt time.Time `json:"last_delivered_at,omitzero"`
	// LastError is the error of the last event given up on.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Retrying is the error of the attempt the leader is retrying now (on
	// the leader only).
	Retrying string `json:"retrying,omitempty"`
}

// retrier is what a leader's backend tells of deliveries in progress.
type retrier interface{ RetryingError(sink string) string }

func (s *server) notifications(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Notifications(s.b.State(), s.b))
}

// Notifications reports every sink of st's config; b may also tell the
// error being retried (a retrier), when it leads.
func Notifications(st *state.State, b any) []Notification {
	out := []Notification{}
	if st.Config == nil {
		return out
	}
	rt, _ := b.(retrier)
	for i := range st.Config.Notifications {
		sink := &st.Config.Notifications[i]
		p := st.Notify[sink.Name]
		n := Notification{Name: sink.Name, Type: sink.Type, Delivered: p.Delivered, Failed: p.Failed, Cursor: p.Cursor,
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
