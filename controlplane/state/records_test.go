package state

import (
	"strings"
	"testing"
)

const recordsBase = `zone: example.com.
nameservers: {ns1: 192.0.2.53}
secondaries: ["192.0.2.1:53"]
regions: [{name: us-east}]
services:
  - name: api
    endpoints: {us-east: [192.0.2.11]}
`

func TestRecordsValid(t *testing.T) {
	c, err := ParseConfig([]byte(recordsBase + `transfer_allow: [10.1.2.3/8, "2001:db8::/32"]
records:
  - {name: WWW, type: cname, value: api}
  - {name: "@", type: TXT, value: "v=spf1 -all"}
  - {name: mail.example.com., type: A, value: 192.0.2.25}
  - {name: mail, type: AAAA, value: "2001:db8::25", ttl: 300}
  - {name: out, type: CNAME, value: Host.Other.NET.}
  - {name: _dmarc, type: TXT, value: "v=DMARC1; p=none"}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{
		{Name: "www", Type: "CNAME", Value: "api.example.com.", TTL: 30},
		{Name: "@", Type: "TXT", Value: "v=spf1 -all", TTL: 30},
		{Name: "mail", Type: "A", Value: "192.0.2.25", TTL: 30},
		{Name: "mail", Type: "AAAA", Value: "2001:db8::25", TTL: 300},
		{Name: "out", Type: "CNAME", Value: "host.other.net.", TTL: 30},
		{Name: "_dmarc", Type: "TXT", Value: "v=DMARC1; p=none", TTL: 30},
	}
	for i, r := range c.Records {
		if r != want[i] {
			t.Errorf("records[%d] = %+v, want %+v", i, r, want[i])
		}
	}
	if got := strings.Join(c.TransferAllow, ","); got != "10.0.0.0/8,2001:db8::/32" {
		t.Errorf("transfer_allow %s", got)
	}
}

func TestRecordsInvalid(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{`records: [{name: "@", type: CNAME, value: api}]`, "records[0].name: a CNAME cannot be at the zone apex"},
		{`records: [{name: api, type: TXT, value: x}]`, `records[0].name: "api" is a service name`},
		{`records: [{name: www, type: CNAME, value: api}, {name: www, type: TXT, value: x}]`, "records[1].name: a CNAME cannot be beside other data at www.example.com."},
		{`records: [{name: www, type: TXT, value: x}, {name: www, type: CNAME, value: api}]`, "records[1].name: a CNAME cannot be beside other data"},
		{`records: [{name: www, type: CNAME, value: a}, {name: www, type: CNAME, value: b}]`, "records[1].name: www.example.com. already has a CNAME"},
		{`records: [{name: ns1, type: CNAME, value: api}]`, "records[0].name: a CNAME cannot be at ns1.example.com., a name server host"},
		{`records: [{name: ns1, type: A, value: 192.0.2.9}]`, "records[0].name: ns1.example.com. is a name server host"},
		{`records: [{name: a, type: CNAME, value: b}, {name: b, type: CNAME, value: a}]`, "records[0].value: CNAME chain from a.example.com. loops"},
		{`records: [{name: a, type: CNAME, value: a}]`, "records[0].value: a CNAME cannot point to itself"},
		{`records: [{name: a, type: MX, value: x}]`, `records[0].type: "MX" must be A, AAAA, CNAME or TXT`},
		{`records: [{name: a, type: A, value: "2001:db8::1"}]`, `records[0].value: "2001:db8::1" is not an IPv4 address`},
		{`records: [{name: a, type: AAAA, value: 192.0.2.1}]`, `records[0].value: "192.0.2.1" is not an IPv6 address`},
		{`records: [{name: "a b", type: A, value: 192.0.2.1}]`, `records[0].name: "a b" is not a valid name`},
		{`records: [{name: "*", type: A, value: 192.0.2.1}]`, `records[0].name: "*" is not a valid name`},
		{`records: [{name: a.example.org., type: A, value: 192.0.2.1}]`, `records[0].name: "a.example.org." is not in the zone`},
		{`records: [{name: a, type: A, value: 192.0.2.1}, {name: a, type: A, value: 192.0.2.1}]`, "records[1].value: duplicate of records[0]"},
		{`records: [{name: a, type: CNAME, value: "-x-"}]`, `records[0].value: "-x-" is not a valid host name`},
		{`records: [{name: a, type: A, value: 192.0.2.1, ttl: 90000}]`, "records[0].ttl: must be at most 86400"},
		{`transfer_allow: [10.0.0.1]`, `transfer_allow[0]: "10.0.0.1" must be a CIDR`},
	}
	for _, tt := range tests {
		_, err := ParseConfig([]byte(recordsBase + tt.yaml + "\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s:\n got %v\nwant %q", tt.yaml, err, tt.want)
		}
	}
}
