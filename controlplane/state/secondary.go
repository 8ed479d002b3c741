package state

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Secondary is a secondary name server of the zone. In YAML and JSON it is
// either a plain "ip:port" string or {address: "ip:port", tsig: NAME}.
type Secondary struct {
	Address string `yaml:"address" json:"address"`
	// TSIG names the key (in each server's --tsig-keys file) this secondary
	// must sign its transfers with; NOTIFY to it is signed with it too.
	// Empty: transfers are allowed by address alone. Normalize makes it a
	// lower-case absolute name.
	TSIG string `yaml:"tsig,omitempty" json:"tsig,omitempty"`
}

// UnmarshalYAML accepts "ip:port" or {address, tsig}, and no other key.
func (s *Secondary) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*s = Secondary{}
		return n.Decode(&s.Address)
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i].Value; k != "address" && k != "tsig" {
				return fmt.Errorf("line %d: field %s not found in a secondary (address, tsig)", n.Content[i].Line, k)
			}
		}
		type plain Secondary
		var p plain
		if err := n.Decode(&p); err != nil {
			return err
		}
		*s = Secondary(p)
		return nil
	}
	return fmt.Errorf("line %d: a secondary is \"ip:port\" or {address, tsig}", n.Line)
}

// UnmarshalJSON accepts "ip:port" (as configs before TSIG stored it in the
// Raft log) or {"address", "tsig"}.
func (s *Secondary) UnmarshalJSON(b []byte) error {
	var addr string
	if err := json.Unmarshal(b, &addr); err == nil {
		*s = Secondary{Address: addr}
		return nil
	}
	type plain Secondary
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("a secondary is \"ip:port\" or {address, tsig}: %w", err)
	}
	*s = Secondary(p)
	return nil
}

// normalizeSecondaries validates the secondaries and canonicalises their
// addresses and key names. Whether a server holds the named key is known
// only there (keys are files on each server, not replicated): a server
// without it logs an error and refuses that secondary's transfers.
func (c *Config) normalizeSecondaries() []error {
	var errs []error
	for i := range c.Secondaries {
		s := &c.Secondaries[i]
		f := fmt.Sprintf("secondaries[%d]", i)
		// The address is kept as written: configs in the Raft log from
		// before this form must replay the same.
		if _, err := netip.ParseAddrPort(s.Address); err != nil {
			errs = append(errs, fmt.Errorf("%s.address: %q must be ip:port (e.g. 192.0.2.60:53)", f, s.Address))
		}
		if s.TSIG != "" {
			name, ok := CanonicalKeyName(s.TSIG)
			if !ok {
				errs = append(errs, fmt.Errorf("%s.tsig: %q is not a valid key name (a domain name, e.g. transfer-key)", f, s.TSIG))
				continue
			}
			s.TSIG = name
		}
	}
	return errs
}

// CanonicalKeyName returns a TSIG key name in lower case with the final dot,
// and whether it is a valid domain name.
func CanonicalKeyName(name string) (string, bool) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n != "" && !strings.HasSuffix(n, ".") {
		n += "."
	}
	if n == "" || n == "." || len(n) > 254 {
		return "", false
	}
	for _, l := range strings.Split(strings.TrimSuffix(n, "."), ".") {
		if !recordLabelRE.MatchString(l) {
			return "", false
		}
	}
	return n, true
}
