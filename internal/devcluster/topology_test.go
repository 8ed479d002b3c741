package devcluster

import (
	"slices"
	"testing"

	"github.com/evac-sh/evac/controlplane/state"
)

func TestDevSteeringConfig(t *testing.T) {
	c, err := state.ParseConfig([]byte(SteeringYAML([]string{"us-east", "us-west", "eu-west"})))
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Service("api"); s == nil || s.Policy != state.PolicyNearest {
		t.Fatalf("api: %+v", s)
	}
	if s := c.Service("web"); s == nil || s.Policy != state.PolicyWeighted {
		t.Fatalf("web: %+v", s)
	}
	want := map[string][]string{
		"10.1.0.0/16": {"us-east", "us-west", "eu-west"},
		"10.2.0.0/16": {"us-west", "us-east", "eu-west"},
		"10.3.0.0/16": {"eu-west", "us-east", "us-west"},
	}
	for k, v := range want {
		if !slices.Equal(c.Topology.Nets[k], v) {
			t.Errorf("%s: %v, want %v", k, c.Topology.Nets[k], v)
		}
	}
	// Other region names still make a valid config.
	if _, err := state.ParseConfig([]byte(SteeringYAML([]string{"a", "b", "eu-west", "ap-north"}))); err != nil {
		t.Fatal(err)
	}
}
