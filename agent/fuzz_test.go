package agent

import (
	"bytes"
	"errors"
	"regexp"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/evac-sh/evac/agent/checks"
)

// fieldPathRE is what a validation error names: region, join[2],
// checks[1].timeout, checks[0].headers.X-Y ...
var fieldPathRE = regexp.MustCompile(`^[a-z_]+(\[[0-9]+\])?(\.[^ ]+)?$`)

// FuzzAgentConfig: the agent's config (what `evac agent --config` and
// `evac validate` read) either fails to decode, or fails validation with
// errors that each name a field, or is valid and survives a round trip
// through YAML unchanged (as YAML) and still valid.
func FuzzAgentConfig(f *testing.F) {
	f.Add([]byte(fullConfig))
	// deploy/example/run.sh and the integration cluster write these.
	f.Add([]byte(`region: us-east
node_name: us-east-a1
gossip_addr: 127.0.21.1:7946
join: [127.0.19.1:7946, 127.0.19.2:7946, 127.0.19.3:7946]
gossip_key_file: /tmp/gossip.key
checks:
  - {name: http, service: api, type: http, target: "http://127.0.21.100:8000/", interval: 2s, timeout: 1s, rise: 2, fall: 2}
`))
	f.Add([]byte(`region: eu-west
node_name: eu-west-a2
gossip_addr: 127.0.3.2:7946
refresh_interval: 5s
capacity: 40
checks:
  - {name: dns, service: api, type: dns, target: "127.0.3.53:53", query: api.example.com., query_type: A, expect_rcode: NOERROR, expect_address: 192.0.2.1, protocol: udp}
  - {name: hdr, service: api, type: http, target: "https://h/x", method: HEAD, expect_status: "200-299,301", headers: {X-A: b}}
`))
	f.Add([]byte("region: a\ncapacity_url: http://127.0.0.1/cap\nchecks: [{name: p, service: s, type: tcp, target: 'h:1', interval: 1s, timeout: 2s}]\n"))
	f.Add([]byte("refresh_interval: 10\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			for _, e := range leaves(err) {
				var fe *checks.FieldError
				if !errors.As(e, &fe) || !fieldPathRE.MatchString(fe.Field) {
					t.Fatalf("validation error does not name a field: %q", e)
				}
			}
			return
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal a valid config: %v", err)
		}
		again, err := ParseConfig(out)
		if err != nil {
			t.Fatalf("re-parse of a valid config: %v\n%s", err, out)
		}
		// Compared as YAML: a nil list and an empty one are the same config.
		out2, err := yaml.Marshal(again)
		if err != nil {
			t.Fatalf("marshal the re-parsed config: %v", err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the config:\n%s\n%s", out, out2)
		}
		if err := again.Validate(); err != nil {
			t.Fatalf("round trip made a valid config invalid: %v\n%s", err, out)
		}
	})
}

// leaves flattens joined errors.
func leaves(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}
