package state

import (
	"fmt"
	"strings"
	"testing"
)

// addrs returns n documentation-range or 10/8 addresses from a base.
func addrList(n int, v6 bool, from int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		if v6 {
			fmt.Fprintf(&b, `"2001:db8::%x"`, from+i)
		} else {
			fmt.Fprintf(&b, "10.0.%d.%d", (from+i)/256, (from+i)%256)
		}
	}
	return b.String()
}

func TestLargeRRsets(t *testing.T) {
	head := "zone: example.com.\nnameservers: {ns1: 192.0.2.53}\nregions: [{name: a}, {name: b}]\n"
	txts := func(n int) string {
		var b strings.Builder
		b.WriteString("records:\n")
		for i := range n {
			fmt.Fprintf(&b, "  - {name: t, type: TXT, value: \"v%d\"}\n", i)
		}
		return b.String()
	}
	svc := func(a, b string) string {
		return fmt.Sprintf("services: [{name: api, policy: all, endpoints: {a: [%s], b: [%s]}}]\n", a, b)
	}
	tests := []struct {
		name, yaml, want string // want "": valid
	}{
		{"100 addresses", head + svc(addrList(50, false, 0), addrList(50, false, 50)), ""},
		{"101 addresses over two regions", head + svc(addrList(50, false, 0), addrList(51, false, 50)),
			"services[0].endpoints: the api.example.com. A record set would have 101 records"},
		{"shared addresses count once", head + svc(addrList(100, false, 0), addrList(100, false, 0)), ""},
		{"101 IPv6", head + svc(addrList(101, true, 0), "192.0.2.1"), "api.example.com. AAAA record set would have 101"},
		{"101 TXT", head + svc("192.0.2.1", "192.0.2.2") + txts(101), "records[0]: the t.example.com. TXT record set would have 101"},
		{"100 TXT", head + svc("192.0.2.1", "192.0.2.2") + txts(100), ""},
		{"allowed", head + "allow_large_rrsets: true\n" + svc(addrList(150, false, 0), "192.0.2.1") + txts(120), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), "BIND 9.18") || tc.want != "" && !strings.Contains(err.Error(), "allow_large_rrsets: true"):
				t.Fatalf("error does not say why or how to allow it: %v", err)
			}
		})
	}
}
