package state

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/evac-sh/evac/internal/yamlcheck"
)

// Policies a service may use to pick its answer.
const (
	PolicyWeighted = "weighted" // one region's endpoints, chosen by weight, stable per client subnet
	PolicyFailover = "failover" // the first listed region with effective weight above 0
	PolicyAll      = "all"      // every endpoint of every region with effective weight above 0
)

// Modes of the automatic steering engine.
const (
	ModeAuto   = "auto"
	ModeShadow = "shadow"
	ModeOff    = "off"
)

// Config is the cluster-wide steering config (`evac apply -f`, PUT /v1/config).
// It is replicated through Raft and versioned; see SPEC.md.
type Config struct {
	Zone        string            `yaml:"zone" json:"zone"`
	TTL         uint32            `yaml:"ttl,omitempty" json:"ttl,omitempty"`
	Nameservers map[string]string `yaml:"nameservers,omitempty" json:"nameservers,omitempty"`
	// Secondaries are secondary name servers: they may transfer the zone
	// and are sent NOTIFY on every change (secondary.go).
	Secondaries []Secondary `yaml:"secondaries,omitempty" json:"secondaries,omitempty"`
	// TransferAllow lists further networks (CIDR) that may transfer the zone
	// (AXFR, IXFR); the secondaries' addresses always may.
	TransferAllow []string `yaml:"transfer_allow,omitempty" json:"transfer_allow,omitempty"`
	// AllowLargeRRsets lets a record set have more than MaxRRSet records
	// (rrsets.go), which BIND 9.18 secondaries refuse by default.
	AllowLargeRRsets bool `yaml:"allow_large_rrsets,omitempty" json:"allow_large_rrsets,omitempty"`
	// Records are static records of the zone beside the services (see records.go).
	Records  []Record  `yaml:"records,omitempty" json:"records,omitempty"`
	Regions  []Region  `yaml:"regions" json:"regions"`
	Services []Service `yaml:"services" json:"services"`
	Policy   Policy    `yaml:"policy" json:"policy"`
	// Notifications are where the leader delivers audit events (notify.go).
	Notifications []Sink `yaml:"notifications,omitempty" json:"notifications,omitempty"`
	// Topology maps clients to their preference order of regions, for
	// services of policy nearest (topology.go).
	Topology *Topology `yaml:"topology,omitempty" json:"topology,omitempty"`
}

// Region is a region as the steering config declares it.
type Region struct {
	Name     string `yaml:"name" json:"name"`
	Capacity int    `yaml:"capacity,omitempty" json:"capacity,omitempty"`
	// Location places the region for distance ordering (topology.go).
	Location *Location `yaml:"location,omitempty" json:"location,omitempty"`
}

// Service is a name under the zone whose answers evac steers.
type Service struct {
	Name      string              `yaml:"name" json:"name"`
	Policy    string              `yaml:"policy,omitempty" json:"policy,omitempty"`
	TTL       uint32              `yaml:"ttl,omitempty" json:"ttl,omitempty"`
	Endpoints map[string][]string `yaml:"endpoints" json:"endpoints"`
}

// Policy tunes automatic evacuation.
type Policy struct {
	UnhealthyBelow   float64  `yaml:"unhealthy_below,omitempty" json:"unhealthy_below,omitempty"`
	DetectAfter      Duration `yaml:"detect_after,omitempty" json:"detect_after,omitempty"`
	Ramp             []int    `yaml:"ramp,omitempty" json:"ramp,omitempty"`
	RestoreRamp      []int    `yaml:"restore_ramp,omitempty" json:"restore_ramp,omitempty"`
	StepInterval     Duration `yaml:"step_interval,omitempty" json:"step_interval,omitempty"`
	Mode             string   `yaml:"mode,omitempty" json:"mode,omitempty"`
	MaxEvacuated     *int     `yaml:"max_evacuated,omitempty" json:"max_evacuated,omitempty"`
	Budget           Budget   `yaml:"budget,omitempty" json:"budget,omitempty"`
	HoldDown         Duration `yaml:"hold_down,omitempty" json:"hold_down,omitempty"`
	AutoRestoreAfter Duration `yaml:"auto_restore_after,omitempty" json:"auto_restore_after,omitempty"`
	// Demand is the total traffic, in the units of regions' capacity, that
	// the weights split between regions. 0 turns the capacity check off.
	Demand int `yaml:"demand,omitempty" json:"demand,omitempty"`
	// MaxUtilization is the share of a region's capacity the capacity check
	// lets it take (default 1).
	MaxUtilization float64 `yaml:"max_utilization,omitempty" json:"max_utilization,omitempty"`
	// FlapThreshold unhealthy verdicts for a region within FlapWindow count
	// as sustained ill health even when none lasted detect_after.
	FlapThreshold int      `yaml:"flap_threshold,omitempty" json:"flap_threshold,omitempty"`
	FlapWindow    Duration `yaml:"flap_window,omitempty" json:"flap_window,omitempty"`
	// RequireEnrolledAgents: absent, only enrolled agents count once any
	// is enrolled; true, always; false, agents not enrolled count too
	// (enrolled ones are still checked). See agents.go.
	RequireEnrolledAgents *bool `yaml:"require_enrolled_agents,omitempty" json:"require_enrolled_agents,omitempty"`

	// ScheduleMinInterval is the shortest time allowed between two runs
	// of a schedule (limits.go; default 1m).
	ScheduleMinInterval Duration `yaml:"schedule_min_interval,omitempty" json:"schedule_min_interval,omitempty"`
	// EventsRetained is how many audit events the state keeps (default
	// 50,000); older ones roll off (a server's --events-export keeps them).
	EventsRetained int `yaml:"events_retained,omitempty" json:"events_retained,omitempty"`
	// MaxRunbooks is how many runbooks may be stored (limits.go; default
	// 64, at most 10,000).
	MaxRunbooks int `yaml:"max_runbooks,omitempty" json:"max_runbooks,omitempty"`
}

// Budget limits automatic evacuations.
type Budget struct {
	PerDay   int      `yaml:"per_day,omitempty" json:"per_day,omitempty"`
	Cooldown Duration `yaml:"cooldown,omitempty" json:"cooldown,omitempty"`
}

// ParseConfig decodes a steering config from YAML or JSON (JSON is YAML),
// rejecting unknown keys, then fills defaults and validates it whole.
func ParseConfig(data []byte) (*Config, error) {
	var c Config
	doc, err := yamlcheck.Decode(data, &c)
	var ye *yamlcheck.Errors
	switch {
	case errors.As(err, &ye) && ye.UnknownKeysOnly():
		// The rest decoded: report what validation finds too, in one round.
		if nerr := c.Normalize(); nerr != nil {
			return nil, ye.Merge(doc.Annotate(nerr))
		}
		return nil, err
	case err != nil:
		return nil, err
	}
	if err := c.Normalize(); err != nil {
		return nil, doc.Annotate(err)
	}
	// Checked here, at the edge (evac validate, evac apply, PUT /v1/config),
	// not in Normalize, which Apply also runs: a config an older release
	// accepted into the log must replay the same.
	if err := errors.Join(c.checkRRSets()...); err != nil {
		return nil, doc.Annotate(err)
	}
	return &c, nil
}

var labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidName reports whether s is usable as a region or service name: a
// lower-case DNS label.
func ValidName(s string) bool { return labelRE.MatchString(s) }

// Normalize fills defaults, canonicalises names and validates the config
// whole. Errors name the field, e.g. `services[0].endpoints.us-east[1]`.
func (c *Config) Normalize() error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}

	c.Zone = strings.ToLower(strings.TrimSpace(c.Zone))
	if c.Zone != "" && !strings.HasSuffix(c.Zone, ".") {
		c.Zone += "."
	}
	if c.Zone == "" || c.Zone == "." {
		fail("zone", "required (e.g. example.com.)")
	} else {
		for _, l := range strings.Split(strings.TrimSuffix(c.Zone, "."), ".") {
			if !labelRE.MatchString(l) {
				fail("zone", "%q is not a valid domain name", c.Zone)
				break
			}
		}
	}
	if c.TTL == 0 {
		c.TTL = 30
	}
	if c.TTL > 86400 {
		fail("ttl", "must be at most 86400, got %d", c.TTL)
	}
	if len(c.Nameservers) == 0 {
		fail("nameservers", "at least one name server is required (e.g. {ns1: 192.0.2.53})")
	}
	for name, ip := range c.Nameservers {
		if _, err := netip.ParseAddr(ip); err != nil {
			fail("nameservers."+name, "%q is not an IP address", ip)
		}
		if !validHost(strings.ToLower(name)) {
			fail("nameservers."+name, "not a valid host name")
		}
	}
	errs = append(errs, c.normalizeSecondaries()...)

	regions := map[string]bool{}
	if len(c.Regions) == 0 {
		fail("regions", "at least one region is required")
	}
	for i, r := range c.Regions {
		f := fmt.Sprintf("regions[%d]", i)
		switch {
		case !ValidName(r.Name):
			fail(f+".name", "%q must be a lower-case DNS label (a-z, 0-9, -)", r.Name)
		case regions[r.Name]:
			fail(f+".name", "duplicate region %q", r.Name)
		}
		if r.Capacity < 0 {
			fail(f+".capacity", "must not be negative")
		}
		regions[r.Name] = true
	}

	services := map[string]bool{}
	if len(c.Services) == 0 {
		fail("services", "at least one service is required")
	}
	for i := range c.Services {
		s := &c.Services[i]
		f := fmt.Sprintf("services[%d]", i)
		s.Name = strings.ToLower(s.Name)
		switch {
		case !ValidName(s.Name):
			fail(f+".name", "%q must be a lower-case DNS label", s.Name)
		case services[s.Name]:
			fail(f+".name", "duplicate service %q", s.Name)
		}
		services[s.Name] = true
		if s.Policy == "" {
			s.Policy = PolicyWeighted
		}
		if s.Policy != PolicyWeighted && s.Policy != PolicyFailover && s.Policy != PolicyAll && s.Policy != PolicyNearest {
			fail(f+".policy", "%q must be weighted, failover, all or nearest", s.Policy)
		}
		if s.TTL == 0 {
			s.TTL = c.TTL
		}
		if s.TTL > 86400 {
			fail(f+".ttl", "must be at most 86400")
		}
		if len(s.Endpoints) == 0 {
			fail(f+".endpoints", "at least one region's endpoints are required")
		}
		for _, rn := range sortedKeys(s.Endpoints) {
			if !regions[rn] {
				fail(f+".endpoints."+rn, "unknown region %q (not in regions)", rn)
			}
			if len(s.Endpoints[rn]) == 0 {
				fail(f+".endpoints."+rn, "no addresses")
			}
			for j, ip := range s.Endpoints[rn] {
				a, err := netip.ParseAddr(ip)
				if err != nil || a.Zone() != "" {
					fail(fmt.Sprintf("%s.endpoints.%s[%d]", f, rn, j), "%q is not an IP address", ip)
					continue
				}
				s.Endpoints[rn][j] = a.String()
			}
		}
		if nameservers := c.Nameservers; nameservers != nil {
			if _, clash := nameservers[s.Name]; clash {
				fail(f+".name", "%q is also a name server name", s.Name)
			}
		}
	}
	for i, cidr := range c.TransferAllow {
		p, err := netip.ParsePrefix(strings.TrimSpace(cidr))
		if err != nil {
			fail(fmt.Sprintf("transfer_allow[%d]", i), "%q must be a CIDR (e.g. 192.0.2.0/24)", cidr)
			continue
		}
		c.TransferAllow[i] = p.Masked().String()
	}
	errs = append(errs, c.normalizeRecords(services)...)
	errs = append(errs, c.normalizeTopology(regions)...)
	errs = append(errs, c.Policy.normalize()...)
	errs = append(errs, c.normalizeSinks(regions)...)
	return errors.Join(errs...)
}

func (p *Policy) normalize() []error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("policy.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if p.UnhealthyBelow == 0 {
		p.UnhealthyBelow = 0.5
	}
	if p.UnhealthyBelow < 0 || p.UnhealthyBelow > 1 {
		fail("unhealthy_below", "must be between 0 and 1, got %v", p.UnhealthyBelow)
	}
	if p.DetectAfter == 0 {
		p.DetectAfter = Duration(30e9)
	}
	if len(p.Ramp) == 0 {
		p.Ramp = []int{50, 0}
	}
	if err := ValidateRamp(p.Ramp, 0); err != nil {
		fail("ramp", "%v", err)
	}
	if len(p.RestoreRamp) == 0 {
		p.RestoreRamp = []int{50, 100}
	}
	if err := ValidateRamp(p.RestoreRamp, 100); err != nil {
		fail("restore_ramp", "%v", err)
	}
	if p.StepInterval == 0 {
		p.StepInterval = Duration(30e9)
	}
	if p.Mode == "" {
		p.Mode = ModeAuto
	}
	if p.Mode != ModeAuto && p.Mode != ModeShadow && p.Mode != ModeOff {
		fail("mode", "%q must be auto, shadow or off", p.Mode)
	}
	if p.MaxEvacuated == nil {
		one := 1
		p.MaxEvacuated = &one
	}
	if *p.MaxEvacuated < 0 {
		fail("max_evacuated", "must not be negative")
	}
	if p.Budget.PerDay == 0 {
		p.Budget.PerDay = 3
	}
	if p.Budget.PerDay < 0 {
		fail("budget.per_day", "must not be negative")
	}
	if p.Budget.Cooldown == 0 {
		p.Budget.Cooldown = Duration(30 * 60e9)
	}
	if p.Demand < 0 {
		fail("demand", "must not be negative")
	}
	if p.MaxUtilization == 0 {
		p.MaxUtilization = 1
	}
	if p.MaxUtilization < 0 || p.MaxUtilization > 1 {
		fail("max_utilization", "must be between 0 and 1, got %v", p.MaxUtilization)
	}
	if p.FlapThreshold == 0 {
		p.FlapThreshold = 3
	}
	if p.FlapThreshold < 2 {
		fail("flap_threshold", "must be at least 2")
	}
	if p.FlapWindow == 0 {
		p.FlapWindow = Duration(10 * p.DetectAfter)
	}
	if p.HoldDown == 0 {
		p.HoldDown = Duration(10 * 60e9)
	}
	errs = append(errs, p.normalizeLimits()...)
	return errs
}

// ValidateRamp checks a ramp of traffic weights: each step 0..100, moving
// monotonically towards target (0 to evacuate, 100 to restore) and ending on
// it. It is the API's and the config's rule, which a release may tighten;
// Apply checks a ramp with checkRamp, which must never change.
func ValidateRamp(ramp []int, target int) error { return checkRamp(ramp, target) }

// checkRamp is the ramp rule Apply enforces at commit (an evacuation's or
// restore's ramp, from the command or the policy): the shape its steps
// need. It is part of what a log replays to: never change it.
func checkRamp(ramp []int, target int) error {
	if len(ramp) == 0 {
		return errors.New("at least one step is required")
	}
	if len(ramp) > 20 {
		return fmt.Errorf("at most 20 steps, got %d", len(ramp))
	}
	for i, w := range ramp {
		if w < 0 || w > 100 {
			return fmt.Errorf("step %d: weight %d is not within 0..100", i, w)
		}
		if i > 0 && ((target == 0 && w > ramp[i-1]) || (target == 100 && w < ramp[i-1])) {
			return fmt.Errorf("step %d: weight %d moves away from %d", i, w, target)
		}
	}
	if ramp[len(ramp)-1] != target {
		return fmt.Errorf("the last step must be %d, got %d", target, ramp[len(ramp)-1])
	}
	return nil
}

func validHost(s string) bool {
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if !labelRE.MatchString(l) {
			return false
		}
	}
	return s != ""
}

// NameserverHosts returns the name servers as absolute names (relative names
// are taken under the zone), sorted, with their addresses.
func (c *Config) NameserverHosts() []NameServer {
	out := make([]NameServer, 0, len(c.Nameservers))
	for _, name := range sortedKeys(c.Nameservers) {
		host := strings.ToLower(name)
		if !strings.HasSuffix(host, ".") {
			host += "." + c.Zone
		}
		out = append(out, NameServer{Host: host, Addr: c.Nameservers[name]})
	}
	return out
}

// NameServer is one NS record target with its glue address.
type NameServer struct {
	Host string
	Addr string
}

// RegionNames lists the regions in config order.
func (c *Config) RegionNames() []string {
	out := make([]string, len(c.Regions))
	for i, r := range c.Regions {
		out[i] = r.Name
	}
	return out
}

// ServiceNames lists the services in config order.
func (c *Config) ServiceNames() []string {
	out := make([]string, len(c.Services))
	for i, s := range c.Services {
		out[i] = s.Name
	}
	return out
}

// Service returns the named service, or nil.
func (c *Config) Service(name string) *Service {
	for i := range c.Services {
		if c.Services[i].Name == name {
			return &c.Services[i]
		}
	}
	return nil
}

// HasRegion reports whether the config declares region r.
func (c *Config) HasRegion(r string) bool {
	for _, x := range c.Regions {
		if x.Name == r {
			return true
		}
	}
	return false
}

// Marshal renders the config as YAML.
func (c *Config) Marshal() ([]byte, error) { return yaml.Marshal(c) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
