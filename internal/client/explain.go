package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/evac-sh/evac/dnsserver"
)

// Explanation is GET /v1/explain: why a client gets the answer it gets for
// a service. It is the type the server sends (dnsserver.Explanation), so
// the two cannot drift apart.
type Explanation = dnsserver.Explanation

// ExplainRegion is one region of an Explanation.
type ExplainRegion = dnsserver.ExplainRegion

// Explain returns GET /v1/explain?name=NAME&client=CLIENT; client is an
// address (a query's source) or a CIDR (an EDNS Client Subnet).
func (c *Client) Explain(ctx context.Context, name, clientAddr string) (Explanation, error) {
	var e Explanation
	q := url.Values{"name": {name}, "client": {clientAddr}}
	err := c.do(ctx, http.MethodGet, "/v1/explain?"+q.Encode(), nil, "", &e)
	return e, err
}
