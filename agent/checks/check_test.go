package checks

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func httpCheck() Check {
	return Check{Name: "root", Service: "api", Type: TypeHTTP, Target: "http://127.0.0.1:8080/health",
		Interval: Duration(5 * time.Second), Timeout: Duration(time.Second)}
}

func dnsCheck() Check {
	return Check{Name: "dns", Service: "api", Type: TypeDNS, Target: "127.0.0.1:53", Query: "api.example.com",
		ExpectAddress: "192.0.2.11"}
}

func TestValidate(t *testing.T) {
	tcp := Check{Name: "port", Service: "api", Type: TypeTCP, Target: "127.0.0.1:443"}
	tests := []struct {
		name    string
		mutate  func(*Check)
		base    Check
		wantErr string // "" = valid; else the error must start with this
	}{
		{"http ok", func(*Check) {}, httpCheck(), ""},
		{"tcp ok", func(*Check) {}, tcp, ""},
		{"tcp defaults", func(c *Check) { c.Interval, c.Timeout = 0, 0 }, tcp, ""},
		{"short interval gets short default timeout", func(c *Check) { c.Interval, c.Timeout = Duration(time.Second), 0 }, tcp, ""},
		{"missing name", func(c *Check) { c.Name = "" }, httpCheck(), "name: required"},
		{"bad name", func(c *Check) { c.Name = "a b" }, httpCheck(), "name: "},
		{"long name", func(c *Check) { c.Name = strings.Repeat("x", 65) }, httpCheck(), "name: longer"},
		{"missing service", func(c *Check) { c.Service = "" }, httpCheck(), "service: required"},
		{"missing type", func(c *Check) { c.Type = "" }, httpCheck(), "type: required"},
		{"unknown type", func(c *Check) { c.Type = "icmp" }, httpCheck(), "type: unknown type"},
		{"http missing target", func(c *Check) { c.Target = "" }, httpCheck(), "target: required"},
		{"http bad scheme", func(c *Check) { c.Target = "ftp://x/" }, httpCheck(), "target: URL scheme"},
		{"http no host", func(c *Check) { c.Target = "http:///x" }, httpCheck(), "target: URL has no host"},
		{"tcp no port", func(c *Check) { c.Target = "127.0.0.1" }, tcp, "target: want host:port"},
		{"tcp bad port", func(c *Check) { c.Target = "127.0.0.1:99999" }, tcp, "target: invalid port"},
		{"tcp no host", func(c *Check) { c.Target = ":80" }, tcp, "target: missing host"},
		{"timeout equals interval", func(c *Check) { c.Timeout = c.Interval }, httpCheck(), "timeout: must be less than interval"},
		{"timeout above interval", func(c *Check) { c.Timeout = Duration(time.Minute) }, httpCheck(), "timeout: must be less than interval"},
		{"bad method", func(c *Check) { c.Method = "G E T" }, httpCheck(), "method: invalid"},
		{"lowercase method ok", func(c *Check) { c.Method = "head" }, httpCheck(), ""},
		{"bad expect", func(c *Check) { c.ExpectStatus = "2xx" }, httpCheck(), "expect_status: invalid HTTP status"},
		{"reversed expect", func(c *Check) { c.ExpectStatus = "399-200" }, httpCheck(), "expect_status: range"},
		{"expect list ok", func(c *Check) { c.ExpectStatus = "200-299, 304" }, httpCheck(), ""},
		{"tcp with method", func(c *Check) { c.Method = "GET" }, tcp, "method: only for http"},
		{"tcp with expect", func(c *Check) { c.ExpectStatus = "200" }, tcp, "expect_status: only for http"},
		{"tcp with expect_body", func(c *Check) { c.ExpectBody = "ok" }, tcp, "expect_body: only for http"},
		{"http with headers ok", func(c *Check) { c.Headers = map[string]string{"Host": "api", "X-A": "b"} }, httpCheck(), ""},
		{"http bad header name", func(c *Check) { c.Headers = map[string]string{"X A": "b"} }, httpCheck(), "headers: invalid header name"},
		{"http header line break", func(c *Check) { c.Headers = map[string]string{"X-A": "b\r\nX-B: c"} }, httpCheck(), "headers.X-A: value contains"},
		{"http with query", func(c *Check) { c.Query = "a.example." }, httpCheck(), "query: only for dns"},
		{"dns ok", func(*Check) {}, dnsCheck(), ""},
		{"dns default port", func(c *Check) { c.Target = "127.0.0.1" }, dnsCheck(), ""},
		{"dns no query", func(c *Check) { c.Query = "" }, dnsCheck(), "query: required"},
		{"dns bad query", func(c *Check) { c.Query = "a..b" }, dnsCheck(), "query: "},
		{"dns bad type", func(c *Check) { c.QueryType = "AX" }, dnsCheck(), "query_type: unknown"},
		{"dns bad rcode", func(c *Check) { c.ExpectRcode = "FINE" }, dnsCheck(), "expect_rcode: unknown"},
		{"dns bad address", func(c *Check) { c.ExpectAddress = "1.2.3" }, dnsCheck(), "expect_address: "},
		{"dns bad protocol", func(c *Check) { c.Protocol = "quic" }, dnsCheck(), "protocol: "},
		{"dns with method", func(c *Check) { c.Method = "GET" }, dnsCheck(), "method: only for http"},
		{"dns bad target", func(c *Check) { c.Target = "127.0.0.1:0" }, dnsCheck(), "target: invalid port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.base
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want prefix %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateAllNamesIndex(t *testing.T) {
	bad := httpCheck()
	bad.Timeout = Duration(10 * time.Second)
	dup := httpCheck()
	err := ValidateAll([]Check{httpCheck(), bad, dup})
	if err == nil {
		t.Fatal("want error")
	}
	msg := err.Error()
	for _, want := range []string{"checks[1].timeout: must be less than interval", "checks[2].name: duplicate check"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

func TestDefaults(t *testing.T) {
	c := Check{Name: "a", Service: "s", Type: TypeHTTP, Target: "http://x/"}.WithDefaults()
	if c.Interval.D() != DefaultInterval || c.Timeout.D() != DefaultTimeout || c.Rise != 1 || c.Fall != 1 ||
		c.Method != "GET" || c.ExpectStatus != "200-399" {
		t.Fatalf("defaults not applied: %+v", c)
	}
	c = Check{Name: "a", Service: "s", Type: TypeTCP, Target: "x:1", Interval: Duration(time.Second)}.WithDefaults()
	if c.Timeout.D() != 500*time.Millisecond || c.Method != "" {
		t.Fatalf("tcp defaults wrong: %+v", c)
	}
}

func TestYAMLAndJSON(t *testing.T) {
	src := `
name: root
service: api
type: http
target: http://127.0.0.1/
interval: 2s
timeout: 500ms
rise: 2
fall: 3
expect_status: "200"
`
	var c Check
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	if c.Interval.D() != 2*time.Second || c.Timeout.D() != 500*time.Millisecond || c.Rise != 2 || c.Fall != 3 || c.ExpectStatus != "200" {
		t.Fatalf("decoded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"interval":"2s"`) || !strings.Contains(string(b), `"expect_status":"200"`) {
		t.Fatalf("json %s", b)
	}
	var back Check
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, c) {
		t.Fatalf("json round trip: %v %+v", err, back)
	}
	if err := yaml.Unmarshal([]byte("interval: 5\n"), &c); err == nil {
		t.Fatal("a bare number must not be accepted as a duration")
	}
}

func TestStatusRanges(t *testing.T) {
	rs, err := ParseStatusRanges("200-299,304, 418")
	if err != nil {
		t.Fatal(err)
	}
	for code, want := range map[int]bool{199: false, 200: true, 299: true, 300: false, 304: true, 418: true, 500: false} {
		if got := rs.Contains(code); got != want {
			t.Errorf("Contains(%d) = %v", code, got)
		}
	}
	for _, bad := range []string{"", "abc", "99", "600", "300-200", "200-"} {
		if _, err := ParseStatusRanges(bad); err == nil {
			t.Errorf("ParseStatusRanges(%q) accepted", bad)
		}
	}
}

func TestCapOutput(t *testing.T) {
	long := strings.Repeat("é", 300) // 600 bytes
	got := CapOutput(long)
	if len(got) > MaxOutput || !strings.HasSuffix(got, "...") {
		t.Fatalf("len %d", len(got))
	}
	if !strings.HasPrefix(long, strings.TrimSuffix(got, "...")) {
		t.Fatal("split a rune")
	}
	if CapOutput("short") != "short" {
		t.Fatal("short output changed")
	}
}
