package client

import (
	"context"
	"net/http"

	"github.com/evac-sh/evac/controlplane/api"
)

// Notification is one sink of GET /v1/notifications: the API's own type,
// so the two cannot drift.
type Notification = api.Notification

// Notifications returns GET /v1/notifications.
func (c *Client) Notifications(ctx context.Context) ([]Notification, error) {
	var ns []Notification
	err := c.do(ctx, http.MethodGet, "/v1/notifications", nil, "", &ns)
	return ns, err
}
