package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Explanation is GET /v1/explain: why a client gets the answer it gets for
// a service (see dnsserver.Explanation, which the server sends).
type Explanation struct {
	Name         string          `json:"name"`
	Policy       string          `json:"policy"`
	Client       string          `json:"client"`
	Rule         string          `json:"rule,omitempty"`
	Preference   []string        `json:"preference"`
	Regions      []ExplainRegion `json:"regions"`
	KeptShare    bool            `json:"kept_share"`
	AnswerRegion string          `json:"answer_region,omitempty"`
	Answer       []string        `json:"answer"`
	Scope        int             `json:"scope"`
	Serial       uint32          `json:"serial"`
}

// ExplainRegion is one region of an Explanation.
type ExplainRegion struct {
	Name            string `json:"name"`
	Weight          int    `json:"weight"`
	Health          string `json:"health"`
	EffectiveWeight int    `json:"effective_weight"`
}

// Explain returns GET /v1/explain?name=NAME&client=CLIENT; client is an
// address (a query's source) or a CIDR (an EDNS Client Subnet).
func (c *Client) Explain(ctx context.Context, name, clientAddr string) (Explanation, error) {
	var e Explanation
	q := url.Values{"name": {name}, "client": {clientAddr}}
	err := c.do(ctx, http.MethodGet, "/v1/explain?"+q.Encode(), nil, "", &e)
	return e, err
}

// GeoIPStatus is the GeoIP database of a controller (GET /v1/status).
type GeoIPStatus struct {
	File          string     `json:"file"`
	Type          string     `json:"type"`
	BuildTime     time.Time  `json:"build_time"`
	LoadedAt      time.Time  `json:"loaded_at"`
	Records       int        `json:"records"`
	ReloadError   string     `json:"reload_error,omitempty"`
	ReloadErrorAt *time.Time `json:"reload_error_at,omitempty"`
}
