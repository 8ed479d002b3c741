package checks

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// prober runs one attempt of a check. It returns the raw status and a
// human-readable output.
type prober interface {
	probe(ctx context.Context) (Status, string)
}

// maxBodyRead bounds how much of an HTTP response body is read.
const maxBodyRead = 4 << 10

type httpProber struct {
	client *http.Client
	method string
	url    string
	expect StatusRanges
	raw    string // expect_status as written, for output
	body   string // expected substring of the body, or ""
	header http.Header
	host   string // Host header override, or ""
}

func newHTTPProber(c Check, dial *sourceDialer) (*httpProber, error) {
	expect, err := ParseStatusRanges(c.ExpectStatus)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:                 nil, // probe the endpoint itself, never a proxy from the environment
		DialContext:           dial.DialContext,
		DisableKeepAlives:     true,
		TLSHandshakeTimeout:   c.Timeout.D(),
		ResponseHeaderTimeout: c.Timeout.D(),
		MaxIdleConns:          1,
	}
	client := &http.Client{
		Transport: tr,
		Timeout:   c.Timeout.D(),
		// The endpoint's own answer is what is judged: a redirect is a status.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	p := &httpProber{client: client, method: c.Method, url: c.Target, expect: expect, raw: c.ExpectStatus,
		body: c.ExpectBody, header: http.Header{}}
	for k, v := range c.Headers {
		if strings.EqualFold(k, "Host") {
			p.host = v
			continue
		}
		p.header.Set(k, v)
	}
	return p, nil
}

func (p *httpProber) probe(ctx context.Context) (Status, string) {
	req, err := http.NewRequestWithContext(ctx, p.method, p.url, nil)
	if err != nil {
		return StatusFailing, err.Error()
	}
	req.Header.Set("User-Agent", "evac-agent/health-check")
	req.Header.Set("Accept", "text/plain, application/json, */*")
	for k, vs := range p.header {
		req.Header[k] = vs
	}
	if p.host != "" {
		req.Host = p.host
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return StatusFailing, describeErr(p.method+" "+p.url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxBodyRead))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBodyRead))
	body := firstLine(bytes.NewReader(raw))

	out := "HTTP " + resp.Status
	if body != "" {
		out += ": " + body
	}
	if !p.expect.Contains(resp.StatusCode) {
		return StatusFailing, fmt.Sprintf("HTTP %s, want %s", resp.Status, p.raw) + bodySuffix(body)
	}
	if p.body != "" && !bytes.Contains(raw, []byte(p.body)) {
		return StatusFailing, fmt.Sprintf("HTTP %s, body lacks %q", resp.Status, p.body) + bodySuffix(body)
	}
	return StatusPassing, out
}

func bodySuffix(body string) string {
	if body == "" {
		return ""
	}
	return ": " + body
}

// firstLine returns the first non-empty line of r, trimmed.
func firstLine(r io.Reader) string {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxBodyRead)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			return l
		}
	}
	return ""
}

type tcpProber struct {
	dial   *sourceDialer
	target string
}

func (p *tcpProber) probe(ctx context.Context) (Status, string) {
	conn, err := p.dial.DialContext(ctx, "tcp", p.target)
	if err != nil {
		return StatusFailing, describeErr("TCP connect "+p.target, err)
	}
	_ = conn.Close()
	return StatusPassing, "TCP connect " + p.target + ": success"
}

func describeErr(what string, err error) string {
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return what + ": timeout"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return what + ": " + err.Error()
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// runProbe runs p with timeout and measures it.
func runProbe(ctx context.Context, p prober, timeout time.Duration) (Status, string, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	st, out := p.probe(ctx)
	return st, out, time.Since(start)
}

func timeUntil(t time.Time) time.Duration {
	if d := time.Until(t); d > 0 {
		return d
	}
	return time.Millisecond
}
