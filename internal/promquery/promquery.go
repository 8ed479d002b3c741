// Package promquery evaluates a PromQL expression of one value through
// Prometheus's own API client: the agents' prometheus check and the
// controllers' blocking conditions share it.
package promquery

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// ErrNoValue is a query result that is not exactly one number (no series,
// several, NaN or an infinity).
var ErrNoValue = errors.New("no value")

// Client queries one Prometheus-compatible API.
type Client struct {
	api promv1.API
}

// New returns a client of the API at url, speaking through rt (nil: a
// transport of its own, with no proxy from the environment).
func New(url string, rt http.RoundTripper) (*Client, error) {
	if rt == nil {
		rt = &http.Transport{Proxy: nil, DisableKeepAlives: true}
	}
	cl, err := promapi.NewClient(promapi.Config{Address: url, RoundTripper: rt})
	if err != nil {
		return nil, err
	}
	return &Client{api: promv1.NewAPI(cl)}, nil
}

// Value evaluates query at ts and returns its one number, and the server's
// warnings as a suffix for a report (" (warnings: ...)"). A query that
// does not give exactly one finite number fails with ErrNoValue. When ctx
// has a deadline the server is told to give up by then too.
func (c *Client) Value(ctx context.Context, query string, ts time.Time) (float64, string, error) {
	var opts []promv1.Option
	// Prometheus parses the timeout parameter only in whole units ("2s",
	// not Go's "1.9999s"): send whole seconds.
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl).Truncate(time.Second); d > 0 {
			opts = append(opts, promv1.WithTimeout(d))
		}
	}
	res, warnings, _, err := c.api.Query(ctx, query, ts, opts...)
	if err != nil {
		return 0, "", err
	}
	warn := ""
	if len(warnings) > 0 {
		warn = " (warnings: " + strings.Join(warnings, "; ") + ")"
	}
	var v float64
	switch r := res.(type) {
	case model.Vector:
		if len(r) != 1 {
			return 0, warn, fmt.Errorf("%w: the query returned %d series, want 1 (aggregate it, e.g. sum(...))", ErrNoValue, len(r))
		}
		v = float64(r[0].Value)
	case *model.Scalar:
		v = float64(r.Value)
	default:
		return 0, warn, fmt.Errorf("%w: the query returned a %s, want an instant vector of one series or a scalar", ErrNoValue, res.Type())
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, warn, fmt.Errorf("%w: the query returned %v", ErrNoValue, v)
	}
	return v, warn, nil
}

// Format writes a value briefly: up to 4 decimals, no trailing zeros.
func Format(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.4f", f), "0"), ".")
}
