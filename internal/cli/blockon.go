package cli

import (
	"errors"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/evac-sh/evac/controlplane/state"
)

// blockOnHelp is the help of --block-on.
const blockOnHelp = `blocking condition, a YAML flow mapping (repeatable): '{alertmanager: URL, alert: NAME}' ` +
	`or '{prometheus: URL, query: "PROMQL", above: N}' (or below: N); while one fires the run is skipped and a running drill aborted`

// parseBlockOn parses the --block-on values, each a YAML (or JSON) mapping
// with the fields of a block_on entry, and validates them.
func parseBlockOn(vals []string) ([]state.Blocker, error) {
	var out []state.Blocker
	for _, v := range vals {
		dec := yaml.NewDecoder(strings.NewReader(v))
		dec.KnownFields(true)
		var b state.Blocker
		if err := dec.Decode(&b); err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("empty")
			}
			return nil, Usagef("--block-on %q: %v (want e.g. '{alertmanager: http://127.0.0.1:9093, alert: HighErrorRate}')", v, yamlErr(err))
		}
		var rest yaml.Node
		if err := dec.Decode(&rest); !errors.Is(err, io.EOF) {
			return nil, Usagef("--block-on %q: one mapping per flag", v)
		}
		out = append(out, b)
	}
	if err := state.ValidateBlockers(out); err != nil {
		return nil, Usagef("--block-on: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return out, nil
}

// yamlErr trims the decoder's prefix from err.
func yamlErr(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "yaml: ")
	s = strings.TrimPrefix(s, "unmarshal errors:\n  ")
	return strings.TrimSpace(s)
}

// describeBlockOn lists conditions for a human: "alert HighErrorRate at
// http://127.0.0.1:9093; query sum(...) > 10 at http://127.0.0.1:9090".
func describeBlockOn(bs []state.Blocker) string {
	parts := make([]string, len(bs))
	for i, b := range bs {
		at := b.Alertmanager
		if at == "" {
			at = b.Prometheus
		}
		parts[i] = b.String() + " at " + at
	}
	return strings.Join(parts, "; ")
}
