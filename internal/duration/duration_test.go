package duration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "30s", want: 30 * time.Second},
		{in: "1m30s", want: 90 * time.Second},
		{in: "500ms", want: 500 * time.Millisecond},
		{in: " 2h ", want: 2 * time.Hour},
		{in: "0s", want: 0},
		{in: "0", want: 0},
		{in: "", want: 0},
		{in: "30", wantErr: `invalid duration "30" (want e.g. "30s" or "1m30s")`},
		{in: "soon", wantErr: `invalid duration "soon"`},
		{in: "1d", wantErr: `invalid duration "1d"`},
		{in: "-5s", wantErr: `invalid duration "-5s": must not be negative`},
	} {
		got, err := Parse(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Parse(%q) = %v, %v; want error %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got.D() != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestEncodings(t *testing.T) {
	type doc struct {
		D Duration `json:"d" yaml:"d"`
	}
	for _, tc := range []struct {
		name, yaml, json string
		want             time.Duration
		wantErr          string
	}{
		{name: "go duration", yaml: "d: 1m30s", json: `{"d":"1m30s"}`, want: 90 * time.Second},
		{name: "zero", yaml: "d: 0", json: `{"d":"0"}`, want: 0},
		{name: "no unit", yaml: "d: 30", json: `{"d":"30"}`, wantErr: `invalid duration "30"`},
		{name: "negative", yaml: "d: -1s", json: `{"d":"-1s"}`, wantErr: "must not be negative"},
		{name: "not a scalar", yaml: "d: [1s]", json: `{"d":["1s"]}`, wantErr: "duration must be a string"},
	} {
		var y doc
		err := yaml.Unmarshal([]byte("x: 1\n"+tc.yaml), &struct {
			X    int `yaml:"x"`
			*doc `yaml:",inline"`
		}{doc: &y})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "line 2") {
				t.Errorf("%s: YAML error %v, want %q on line 2", tc.name, err, tc.wantErr)
			}
		} else if err != nil || y.D.D() != tc.want {
			t.Errorf("%s: YAML %v, %v; want %v", tc.name, y.D, err, tc.want)
		}
		var j doc
		err = json.Unmarshal([]byte(tc.json), &j)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: JSON error %v, want %q", tc.name, err, tc.wantErr)
			}
		} else if err != nil || j.D.D() != tc.want {
			t.Errorf("%s: JSON %v, %v; want %v", tc.name, j.D, err, tc.want)
		}
	}
	// JSON also takes nanoseconds; everything writes back as a string.
	var j doc
	if err := json.Unmarshal([]byte(`{"d":1500000000}`), &j); err != nil || j.D.D() != 1500*time.Millisecond {
		t.Errorf("nanoseconds: %v, %v", j.D, err)
	}
	if err := json.Unmarshal([]byte(`{"d":-1}`), &j); err == nil {
		t.Error("negative nanoseconds accepted")
	}
	b, _ := json.Marshal(doc{D: Duration(90 * time.Second)})
	if string(b) != `{"d":"1m30s"}` {
		t.Errorf("JSON = %s", b)
	}
	yb, _ := yaml.Marshal(doc{D: Duration(90 * time.Second)})
	if string(yb) != "d: 1m30s\n" {
		t.Errorf("YAML = %q", yb)
	}
	var d Duration
	if err := d.UnmarshalText([]byte("2s")); err != nil || d.D() != 2*time.Second {
		t.Errorf("text: %v, %v", d, err)
	}
}
