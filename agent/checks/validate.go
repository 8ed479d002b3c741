package checks

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// maxNameLen bounds check and service names: they travel in every gossip
// report, which must fit in one UDP packet.
const maxNameLen = 64

// FieldError is a validation error naming the offending field, e.g.
// "checks[1].timeout: must be less than interval".
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Validate checks c (after WithDefaults) and returns the first problem as a
// *FieldError whose Field is the YAML key ("timeout", "target", ...).
func (c Check) Validate() error {
	c = c.WithDefaults()
	if err := validName("name", c.Name); err != nil {
		return err
	}
	if err := validName("service", c.Service); err != nil {
		return err
	}
	switch c.Type {
	case TypeHTTP:
		if err := validHTTPTarget(c.Target); err != nil {
			return err
		}
		if !validMethod(c.Method) {
			return fieldErr("method", "invalid HTTP method %q", c.Method)
		}
		if _, err := ParseStatusRanges(c.ExpectStatus); err != nil {
			return fieldErr("expect_status", "%v", err)
		}
		if err := validHeaders(c.Headers); err != nil {
			return err
		}
		if err := c.onlyFor(TypeDNS, map[string]string{"query": c.Query, "query_type": c.QueryType,
			"expect_rcode": c.ExpectRcode, "expect_address": c.ExpectAddress, "protocol": c.Protocol}); err != nil {
			return err
		}
		if err := c.onlyFor(TypePrometheus, c.promFields()); err != nil {
			return err
		}
	case TypeTCP:
		if err := validTCPTarget(c.Target); err != nil {
			return err
		}
		if err := c.onlyFor(TypeHTTP, c.httpFields()); err != nil {
			return err
		}
		if err := c.onlyFor(TypeDNS, map[string]string{"query": c.Query, "query_type": c.QueryType,
			"expect_rcode": c.ExpectRcode, "expect_address": c.ExpectAddress, "protocol": c.Protocol}); err != nil {
			return err
		}
		if err := c.onlyFor(TypePrometheus, c.promFields()); err != nil {
			return err
		}
	case TypeDNS:
		if err := validTCPTarget(c.Target); err != nil {
			return err
		}
		if err := c.onlyFor(TypeHTTP, c.httpFields()); err != nil {
			return err
		}
		if err := validDNS(c); err != nil {
			return err
		}
		if err := c.onlyFor(TypePrometheus, c.promFields()); err != nil {
			return err
		}
	case TypePrometheus:
		if err := validPrometheus(c); err != nil {
			return err
		}
	case "":
		return fieldErr("type", "required (http, tcp, dns or prometheus)")
	default:
		return fieldErr("type", "unknown type %q (want http, tcp, dns or prometheus)", c.Type)
	}
	if c.Timeout >= c.Interval {
		return fieldErr("timeout", "must be less than interval (%s >= %s)", c.Timeout, c.Interval)
	}
	return nil
}

func (c Check) httpFields() map[string]string {
	h := ""
	if len(c.Headers) > 0 {
		h = "set"
	}
	return map[string]string{"method": c.Method, "expect_status": c.ExpectStatus, "expect_body": c.ExpectBody, "headers": h}
}

func (c Check) promFields() map[string]string {
	set := func(f *float64) string {
		if f == nil {
			return ""
		}
		return "set"
	}
	return map[string]string{"url": c.URL, "below": set(c.Below), "above": set(c.Above), "drop": set(c.Drop), "offset": c.Offset}
}

// validPrometheus checks a prometheus check: a query API URL, a PromQL
// query, and exactly one rule: below and/or above, or drop with offset.
func validPrometheus(c Check) error {
	if c.Target != "" {
		return fieldErr("target", "not for prometheus checks (use url: the query API's base URL)")
	}
	if c.URL == "" {
		return fieldErr("url", "required for prometheus checks (the query API's base URL, e.g. http://127.0.0.1:9090)")
	}
	if err := validHTTPTarget(c.URL); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return fieldErr("url", "%s", fe.Msg)
		}
		return fieldErr("url", "%v", err)
	}
	if strings.TrimSpace(c.Query) == "" {
		return fieldErr("query", "required for prometheus checks (a PromQL expression giving one number)")
	}
	if err := c.onlyFor(TypeHTTP, c.httpFields()); err != nil {
		return err
	}
	if err := c.onlyFor(TypeDNS, map[string]string{"query_type": c.QueryType,
		"expect_rcode": c.ExpectRcode, "expect_address": c.ExpectAddress, "protocol": c.Protocol}); err != nil {
		return err
	}
	for name, f := range map[string]*float64{"below": c.Below, "above": c.Above, "drop": c.Drop} {
		if f != nil && (math.IsNaN(*f) || math.IsInf(*f, 0)) {
			return fieldErr(name, "must be a finite number")
		}
	}
	switch {
	case c.Drop != nil && (c.Below != nil || c.Above != nil):
		return fieldErr("drop", "give either drop (with offset) or below/above, not both")
	case c.Drop != nil:
		if *c.Drop <= 0 || *c.Drop >= 1 {
			return fieldErr("drop", "a share between 0 and 1, exclusive (0.3 fails on a 30%% drop), got %v", *c.Drop)
		}
		if c.Offset == "" {
			return fieldErr("offset", "required with drop: how far back to compare, e.g. 1w")
		}
		if _, err := ParseOffset(c.Offset); err != nil {
			return fieldErr("offset", "%v", err)
		}
	case c.Offset != "":
		return fieldErr("offset", "only with drop")
	case c.Below == nil && c.Above == nil:
		return fieldErr("below", "a prometheus check needs a rule: below, above, or drop with offset")
	case c.Below != nil && c.Above != nil && *c.Below > *c.Above:
		return fieldErr("below", "%v is over above (%v): no value could pass", *c.Below, *c.Above)
	}
	return nil
}

// onlyFor returns an error naming the first set field of fields (sorted),
// which only checks of type typ take.
func (c Check) onlyFor(typ string, fields map[string]string) error {
	names := make([]string, 0, len(fields))
	for k, v := range fields {
		if v != "" {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	return fieldErr(names[0], "only for %s checks", typ)
}

func validHeaders(h map[string]string) error {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") {
			return fieldErr("headers", "invalid header name %q", k)
		}
		if strings.ContainsAny(h[k], "\r\n") {
			return fieldErr("headers."+k, "value contains a line break")
		}
	}
	return nil
}

func validDNS(c Check) error {
	if c.Query == "" {
		return fieldErr("query", "required for dns checks (the name to ask)")
	}
	if _, ok := dns.IsDomainName(c.Query); !ok {
		return fieldErr("query", "%q is not a domain name", c.Query)
	}
	if _, ok := dns.StringToType[c.QueryType]; !ok {
		return fieldErr("query_type", "unknown record type %q", c.QueryType)
	}
	if _, ok := dns.StringToRcode[c.ExpectRcode]; !ok {
		return fieldErr("expect_rcode", "unknown rcode %q (want e.g. NOERROR, NXDOMAIN)", c.ExpectRcode)
	}
	if c.ExpectAddress != "" && net.ParseIP(c.ExpectAddress) == nil {
		return fieldErr("expect_address", "%q is not an IP address", c.ExpectAddress)
	}
	if c.Protocol != "udp" && c.Protocol != "tcp" {
		return fieldErr("protocol", "%q: want udp or tcp", c.Protocol)
	}
	return nil
}

// ValidateAll validates every check and that no two share a service and
// name. Errors name the field with its index: "checks[1].timeout: ...".
// All problems are returned, joined.
func ValidateAll(list []Check) error {
	var errs []error
	seen := make(map[string]int, len(list))
	for i, c := range list {
		prefix := fmt.Sprintf("checks[%d].", i)
		if err := c.Validate(); err != nil {
			var fe *FieldError
			if errors.As(err, &fe) {
				errs = append(errs, &FieldError{Field: prefix + fe.Field, Msg: fe.Msg})
			} else {
				errs = append(errs, fmt.Errorf("checks[%d]: %w", i, err))
			}
			continue
		}
		if j, dup := seen[c.Key()]; dup {
			errs = append(errs, fieldErr(prefix+"name", "duplicate check %q for service %q (also checks[%d])", c.Name, c.Service, j))
			continue
		}
		seen[c.Key()] = i
	}
	return errors.Join(errs...)
}

func validName(field, v string) error {
	if v == "" {
		return fieldErr(field, "required")
	}
	if len(v) > maxNameLen {
		return fieldErr(field, "longer than %d characters", maxNameLen)
	}
	for _, r := range v {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return fieldErr(field, "%q: only letters, digits, '-', '_' and '.' allowed", v)
		}
	}
	return nil
}

func validHTTPTarget(target string) error {
	if target == "" {
		return fieldErr("target", "required (a URL for http checks)")
	}
	u, err := url.Parse(target)
	if err != nil {
		return fieldErr("target", "invalid URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fieldErr("target", "URL scheme must be http or https, got %q", u.Scheme)
	}
	if u.Host == "" {
		return fieldErr("target", "URL has no host")
	}
	return nil
}

func validTCPTarget(target string) error {
	if target == "" {
		return fieldErr("target", "required (host:port for tcp checks)")
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return fieldErr("target", "want host:port: %v", err)
	}
	if host == "" {
		return fieldErr("target", "missing host in %q", target)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fieldErr("target", "invalid port %q", port)
	}
	return nil
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, r := range m {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Lo, Hi int }

// StatusRanges is a parsed expect_status value.
type StatusRanges []StatusRange

// Contains reports whether code is in any of the ranges.
func (rs StatusRanges) Contains(code int) bool {
	for _, r := range rs {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}

// ParseStatusRanges parses "200", "200-399" or a comma-separated list of
// codes and ranges ("200-299,304").
func ParseStatusRanges(s string) (StatusRanges, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty status list")
	}
	var out StatusRanges
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := parseCode(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = parseCode(hi); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("range %q is reversed", part)
			}
		}
		out = append(out, StatusRange{Lo: a, Hi: b})
	}
	return out, nil
}

func parseCode(s string) (int, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 599 {
		return 0, fmt.Errorf("invalid HTTP status %q (want 100-599)", s)
	}
	return n, nil
}
