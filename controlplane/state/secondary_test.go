package state

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestSecondaries(t *testing.T) {
	base := "zone: example.com.\nnameservers: {ns1: 192.0.2.53}\nregions: [{name: a}]\nservices: [{name: api, endpoints: {a: [192.0.2.1]}}]\n"
	tests := []struct {
		name, yaml string
		want       []Secondary
		err        string
	}{
		{"plain strings", `secondaries: ["192.0.2.60:53", "[2001:db8::60]:5353"]`,
			[]Secondary{{Address: "192.0.2.60:53"}, {Address: "[2001:db8::60]:5353"}}, ""},
		{"objects", `secondaries: [{address: "192.0.2.60:53", tsig: Transfer-Key}, {address: "192.0.2.61:53"}]`,
			[]Secondary{{Address: "192.0.2.60:53", TSIG: "transfer-key."}, {Address: "192.0.2.61:53"}}, ""},
		{"mixed", "secondaries:\n  - 192.0.2.60:53\n  - {address: 192.0.2.61:53, tsig: k.example.}\n",
			[]Secondary{{Address: "192.0.2.60:53"}, {Address: "192.0.2.61:53", TSIG: "k.example."}}, ""},
		{"bad address", `secondaries: [{address: "192.0.2.60", tsig: k}]`, nil, `secondaries[0].address: "192.0.2.60" must be ip:port`},
		{"bad plain address", `secondaries: ["ns.example.com:53"]`, nil, `secondaries[0].address`},
		{"bad key name", `secondaries: [{address: "192.0.2.60:53", tsig: "bad key"}]`, nil, `secondaries[0].tsig: "bad key" is not a valid key name`},
		{"unknown field", `secondaries: [{address: "192.0.2.60:53", key: k}]`, nil, "field key not found"},
		{"a list", `secondaries: [[1]]`, nil, "a secondary is"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(base + tc.yaml + "\n"))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Secondaries, tc.want) {
				t.Fatalf("got %+v, want %+v", c.Secondaries, tc.want)
			}
			// Through JSON (the Raft log) and back.
			b, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			var back Config
			if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back.Secondaries, tc.want) {
				t.Fatalf("JSON round trip: %v %+v", err, back.Secondaries)
			}
		})
	}
	// A config stored before secondaries had keys: plain strings in JSON.
	var old Config
	if err := json.Unmarshal([]byte(`{"zone":"example.com.","secondaries":["192.0.2.60:53"]}`), &old); err != nil ||
		!reflect.DeepEqual(old.Secondaries, []Secondary{{Address: "192.0.2.60:53"}}) {
		t.Fatalf("old JSON: %v %+v", err, old.Secondaries)
	}
}
