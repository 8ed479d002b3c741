package checks

import (
	"net"
	"strings"
	"time"

	"github.com/evac-sh/evac/internal/duration"
)

// Check types.
const (
	TypeHTTP = "http"
	TypeTCP  = "tcp"
	TypeDNS  = "dns"
	// TypePrometheus judges a KPI: a PromQL query against the region's
	// Prometheus, compared with a threshold or with its value a period ago.
	TypePrometheus = "prometheus"
)

// Defaults applied to zero fields by WithDefaults.
const (
	DefaultInterval     = 10 * time.Second
	DefaultTimeout      = 2 * time.Second
	DefaultRise         = 1
	DefaultFall         = 1
	DefaultMethod       = "GET"
	DefaultExpectStatus = "200-399"
	DefaultQueryType    = "A"
	DefaultExpectRcode  = "NOERROR"
	DefaultDNSProtocol  = "udp"
)

// Check is one health check of one service, as written in an agent config.
type Check struct {
	// Name identifies the check within its service.
	Name string `yaml:"name" json:"name"`
	// Service is the steered service this check vouches for (e.g. "api").
	Service string `yaml:"service" json:"service"`
	// Type is TypeHTTP, TypeTCP or TypeDNS.
	Type string `yaml:"type" json:"type"`
	// Target is a URL for http checks, host:port for tcp checks, and the
	// server's host:port for dns checks (port 53 when omitted).
	Target string `yaml:"target" json:"target"`
	// Interval between runs; default 10s.
	Interval Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	// Timeout of one run; must be less than Interval. Default 2s, or half
	// the interval when that is shorter.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Rise is how many consecutive passes turn a failing check passing.
	Rise int `yaml:"rise,omitempty" json:"rise,omitempty"`
	// Fall is how many consecutive failures turn a passing check failing.
	Fall int `yaml:"fall,omitempty" json:"fall,omitempty"`
	// Method is the HTTP method (http only); default GET.
	Method string `yaml:"method,omitempty" json:"method,omitempty"`
	// ExpectStatus lists the passing HTTP statuses (http only), as codes and
	// ranges separated by commas: "200", "200-299,304". Default "200-399".
	ExpectStatus string `yaml:"expect_status,omitempty" json:"expect_status,omitempty"`
	// ExpectBody, if set, must occur in the first 4 KiB of the response
	// body (http only).
	ExpectBody string `yaml:"expect_body,omitempty" json:"expect_body,omitempty"`
	// Headers are sent with the request (http only); "Host" sets the
	// virtual host.
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`

	// Query is the name asked (dns), e.g. "api.example.com", or the PromQL
	// expression evaluated (prometheus), which must give one number.
	Query string `yaml:"query,omitempty" json:"query,omitempty"`
	// QueryType is the record type asked (dns only); default A.
	QueryType string `yaml:"query_type,omitempty" json:"query_type,omitempty"`
	// ExpectRcode is the response code that passes (dns only), by name:
	// NOERROR (default), NXDOMAIN, ...
	ExpectRcode string `yaml:"expect_rcode,omitempty" json:"expect_rcode,omitempty"`
	// ExpectAddress, if set, must be among the A/AAAA records of the
	// answer (dns only).
	ExpectAddress string `yaml:"expect_address,omitempty" json:"expect_address,omitempty"`
	// Protocol is udp (default) or tcp (dns only).
	Protocol string `yaml:"protocol,omitempty" json:"protocol,omitempty"`

	// URL is the base URL of a Prometheus-compatible query API (prometheus
	// only), e.g. "http://127.0.0.1:9090".
	URL string `yaml:"url,omitempty" json:"url,omitempty"`
	// Below fails the check while the value is under it (prometheus only).
	Below *float64 `yaml:"below,omitempty" json:"below,omitempty"`
	// Above fails the check while the value is over it (prometheus only).
	Above *float64 `yaml:"above,omitempty" json:"above,omitempty"`
	// Drop fails the check while the value is more than this share (0..1)
	// under the same query evaluated Offset earlier (prometheus only): 0.3
	// with offset 1w is "30% fewer than this time last week".
	Drop *float64 `yaml:"drop,omitempty" json:"drop,omitempty"`
	// Offset is how far back Drop compares, as a Prometheus duration
	// ("1w", "1d", "1h"); required with drop.
	Offset string `yaml:"offset,omitempty" json:"offset,omitempty"`
}

// WithDefaults returns a copy of c with every unset optional field filled.
func (c Check) WithDefaults() Check {
	if c.Interval <= 0 {
		c.Interval = Duration(DefaultInterval)
	}
	if c.Timeout <= 0 {
		c.Timeout = Duration(DefaultTimeout)
		if c.Timeout >= c.Interval {
			c.Timeout = c.Interval / 2
		}
	}
	if c.Rise <= 0 {
		c.Rise = DefaultRise
	}
	if c.Fall <= 0 {
		c.Fall = DefaultFall
	}
	if c.Type == TypeHTTP {
		if c.Method == "" {
			c.Method = DefaultMethod
		}
		c.Method = strings.ToUpper(c.Method)
		if c.ExpectStatus == "" {
			c.ExpectStatus = DefaultExpectStatus
		}
	}
	if c.Type == TypeDNS {
		if c.QueryType == "" {
			c.QueryType = DefaultQueryType
		}
		if c.ExpectRcode == "" {
			c.ExpectRcode = DefaultExpectRcode
		}
		if c.Protocol == "" {
			c.Protocol = DefaultDNSProtocol
		}
		c.QueryType = strings.ToUpper(c.QueryType)
		c.ExpectRcode = strings.ToUpper(c.ExpectRcode)
		c.Protocol = strings.ToLower(c.Protocol)
		if c.Target != "" {
			if _, _, err := net.SplitHostPort(c.Target); err != nil {
				c.Target = net.JoinHostPort(strings.Trim(c.Target, "[]"), "53")
			}
		}
	}
	return c
}

// Key is "service/name", unique within one agent.
func (c Check) Key() string { return c.Service + "/" + c.Name }

// Duration is evac's one duration type (internal/duration): a Go duration
// string such as "2s" or "1m30s" in YAML and JSON.
type Duration = duration.Duration
