package checks

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/evac-sh/evac/internal/promquery"
)

// promProber judges a KPI: one PromQL query against a Prometheus-compatible
// query API, compared with a threshold (below/above) or with the same query
// evaluated Offset earlier (drop). It speaks the API through Prometheus's own
// client package. A query that errors, times out, or gives no value (no
// series, several series, NaN) fails the check: no signal is never "healthy".
type promProber struct {
	api    *promquery.Client
	url    string
	query  string
	below  *float64
	above  *float64
	drop   *float64
	offset time.Duration
	now    func() time.Time // the clock the queries are evaluated at
}

func newPromProber(c Check, dial *sourceDialer) (*promProber, error) {
	rt := &http.Transport{
		Proxy:                 nil, // the region's Prometheus itself, never a proxy from the environment
		DialContext:           dial.DialContext,
		DisableKeepAlives:     true, // one query or two per interval: no idle connection to own
		TLSHandshakeTimeout:   c.Timeout.D(),
		ResponseHeaderTimeout: c.Timeout.D(),
	}
	cl, err := promquery.New(c.URL, rt)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	p := &promProber{api: cl, url: c.URL, query: c.Query,
		below: c.Below, above: c.Above, drop: c.Drop, now: time.Now}
	if c.Drop != nil {
		off, err := ParseOffset(c.Offset)
		if err != nil {
			return nil, fmt.Errorf("offset: %w", err)
		}
		p.offset = off
	}
	return p, nil
}

func (p *promProber) probe(ctx context.Context) (Status, string) {
	now := p.now()
	v, warn, err := p.value(ctx, now)
	if err != nil {
		return StatusFailing, describeErr("prometheus "+p.url, err)
	}
	out := "value " + formatFloat(v)
	switch {
	case p.below != nil && v < *p.below:
		return StatusFailing, out + " below " + formatFloat(*p.below) + warn
	case p.above != nil && v > *p.above:
		return StatusFailing, out + " above " + formatFloat(*p.above) + warn
	case p.drop != nil:
		base, warn2, err := p.value(ctx, now.Add(-p.offset))
		if err != nil {
			return StatusFailing, out + "; " + model.Duration(p.offset).String() + " earlier: " + describeErr("prometheus "+p.url, err)
		}
		warn += warn2
		out += fmt.Sprintf(", %s earlier %s", model.Duration(p.offset), formatFloat(base))
		if base > 0 && v < base*(1-*p.drop) {
			return StatusFailing, fmt.Sprintf("%s: down %.0f%%, more than %.0f%%%s", out, 100*(1-v/base), 100**p.drop, warn)
		}
	}
	return StatusPassing, out + warn
}

// value evaluates the query at ts (internal/promquery).
func (p *promProber) value(ctx context.Context, ts time.Time) (float64, string, error) {
	return p.api.Value(ctx, p.query, ts)
}

// ParseOffset parses a Prometheus duration ("1w", "1d", "90m"): weeks and
// days are what a week-over-week KPI comparison is written in.
func ParseOffset(s string) (time.Duration, error) {
	d, err := model.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. \"1w\", \"1d\", \"1h\")", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("must be positive, got %q", s)
	}
	return time.Duration(d), nil
}

func formatFloat(f float64) string { return promquery.Format(f) }
