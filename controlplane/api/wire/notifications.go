package wire

import (
	"time"
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
