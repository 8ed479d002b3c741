package agent

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/evac-sh/evac/agent/checks"
	"github.com/evac-sh/evac/internal/yamlcheck"
)

// Defaults for unset config keys.
const (
	DefaultGossipAddr      = "0.0.0.0:7946"
	DefaultRefreshInterval = 10 * time.Second
)

// Config is the agent's YAML config file.
type Config struct {
	// Region this agent vouches for, e.g. "us-east".
	Region string `yaml:"region" json:"region"`
	// NodeName is unique in the gossip pool; defaults to the hostname.
	NodeName string `yaml:"node_name" json:"node_name"`
	// GossipAddr is ip:port, bound and advertised; default 0.0.0.0:7946.
	GossipAddr string `yaml:"gossip_addr" json:"gossip_addr"`
	// Join lists gossip seeds (host:port), controllers or other agents.
	Join []string `yaml:"join" json:"join,omitempty"`
	// GossipKeyFile holds the pool's key as `evac keygen` prints it.
	GossipKeyFile string `yaml:"gossip_key_file" json:"gossip_key_file,omitempty"`
	// KeyFile holds this agent's own private key (`evac agent keygen`);
	// every report is signed with it. Controllers that enforce enrolment
	// drop reports from an agent without one.
	KeyFile string `yaml:"key_file,omitempty" json:"key_file,omitempty"`
	// Checks to run.
	Checks []checks.Check `yaml:"checks" json:"checks"`
	// RefreshInterval: an unchanged result is re-published at most this
	// often (on the check's runs); default 10s. Controllers treat a report
	// not refreshed for 60s (20s with --fast) as no evidence, so keep this
	// and every check's interval well below that.
	RefreshInterval checks.Duration `yaml:"refresh_interval" json:"refresh_interval"`
	// Capacity is a static serving capacity this agent reports for its
	// region (any unit, the same across the region's agents); the
	// controllers sum it per region (capacity_reported in /v1/regions).
	Capacity *float64 `yaml:"capacity,omitempty" json:"capacity,omitempty"`
	// CapacityURL is fetched every refresh_interval; its body must be one
	// number, reported as the capacity. Exclusive with Capacity.
	CapacityURL string `yaml:"capacity_url,omitempty" json:"capacity_url,omitempty"`
}

// LoadConfig reads and decodes a config file; see ParseConfig. Its errors
// name the file, and each problem's line and field.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	c, _, err := parse(b)
	if err != nil {
		return Config{}, yamlcheck.InFile(path, err)
	}
	return c, nil
}

// ParseConfig decodes YAML strictly (unknown keys are errors) and fills
// defaults. It does not validate: override fields (flags), then call
// Validate. Every decoding problem is reported at once, with its line.
func ParseConfig(data []byte) (Config, error) {
	c, _, err := parse(data)
	return c, err
}

// CheckFile decodes and validates a config file as `evac validate` does:
// every problem, decoding or validation, as "FILE:LINE: field: message".
func CheckFile(path string, data []byte) (Config, error) {
	c, doc, err := parse(data)
	var ye *yamlcheck.Errors
	switch {
	case err == nil:
		err = doc.Annotate(c.Validate())
	case errors.As(err, &ye) && ye.UnknownKeysOnly():
		c.SetDefaults()
		if verr := c.Validate(); verr != nil {
			err = ye.Merge(doc.Annotate(verr))
		}
	}
	return c, yamlcheck.InFile(path, err)
}

func parse(data []byte) (Config, *yamlcheck.Doc, error) {
	var c Config
	if len(bytes.TrimSpace(data)) == 0 {
		c.SetDefaults()
		return c, nil, nil
	}
	doc, err := yamlcheck.Decode(data, &c)
	if err != nil {
		return c, doc, err
	}
	c.SetDefaults()
	return c, doc, nil
}

// SetDefaults fills unset fields: node_name (hostname), gossip_addr,
// refresh_interval.
func (c *Config) SetDefaults() {
	if c.NodeName == "" {
		if h, err := os.Hostname(); err == nil {
			c.NodeName = h
		}
	}
	if c.GossipAddr == "" {
		c.GossipAddr = DefaultGossipAddr
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = checks.Duration(DefaultRefreshInterval)
	}
}

// Validate reports every problem, each naming its field
// ("checks[1].timeout: must be less than interval").
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &checks.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if err := validName(c.Region); err != "" {
		add("region", "%s", err)
	}
	if err := validName(c.NodeName); err != "" {
		add("node_name", "%s", err)
	}
	if err := validBindAddr(c.GossipAddr); err != "" {
		add("gossip_addr", "%s", err)
	}
	for i, j := range c.Join {
		if _, port, err := net.SplitHostPort(j); err != nil || port == "" {
			add(fmt.Sprintf("join[%d]", i), "want host:port, got %q", j)
		}
	}
	if c.RefreshInterval <= 0 {
		add("refresh_interval", "must be positive")
	}
	if c.Capacity != nil && !(*c.Capacity >= 0 && *c.Capacity <= 1e15) {
		add("capacity", "must be between 0 and 1e15")
	}
	if c.CapacityURL != "" {
		if c.Capacity != nil {
			add("capacity_url", "capacity and capacity_url exclude each other")
		} else if u, err := url.Parse(c.CapacityURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("capacity_url", "want an http or https URL, got %q", c.CapacityURL)
		}
	}
	if len(c.Checks) == 0 {
		add("checks", "at least one check is required")
	}
	if err := checks.ValidateAll(c.Checks); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func validName(v string) string {
	if v == "" {
		return "required"
	}
	if len(v) > 128 {
		return "longer than 128 characters"
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Sprintf("%q: only letters, digits, '-', '_' and '.' allowed", v)
		}
	}
	return ""
}

func validBindAddr(v string) string {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Sprintf("want ip:port, got %q", v)
	}
	if host != "" && net.ParseIP(host) == nil {
		return fmt.Sprintf("host must be an IP address, got %q", host)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Sprintf("invalid port %q", port)
	}
	return ""
}
