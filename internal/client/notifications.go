package client

import (
	"context"
	"net/http"

	"github.com/evac-sh/evac/controlplane/api/wire"
)

// Notifications returns GET /v1/notifications.
func (c *Client) Notifications(ctx context.Context) ([]wire.Notification, error) {
	var ns []wire.Notification
	err := c.do(ctx, http.MethodGet, "/v1/notifications", nil, "", &ns)
	return ns, err
}
