package client

import (
	"context"
	"net/http"

	"github.com/evac-sh/evac/controlplane/api/wire"
)

// DNSSECRollover returns GET /v1/dnssec/rollover: the cluster's key
// states and the rollover in progress.
func (c *Client) DNSSECRollover(ctx context.Context) (wire.DNSSECRolloverResult, error) {
	var out wire.DNSSECRolloverResult
	err := c.do(ctx, http.MethodGet, "/v1/dnssec/rollover", nil, "", &out)
	return out, err
}

// DNSSECRolloverStep sends POST /v1/dnssec/rollover/{action}: init,
// start, next or abort.
func (c *Client) DNSSECRolloverStep(ctx context.Context, action string, req wire.DNSSECRolloverRequest) (wire.DNSSECRolloverResult, error) {
	var out wire.DNSSECRolloverResult
	err := c.Do(ctx, http.MethodPost, "/v1/dnssec/rollover/"+action, req, &out)
	return out, err
}
