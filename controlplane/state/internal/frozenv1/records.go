// FROZEN at commit aa66dac (the last release whose Apply parsed user input).
// This file is used ONLY to apply Raft log entries written by that release
// and earlier, so that they replay to the state that release produced. Never
// edit it: a change here changes the state old logs replay to. Live
// validation is in the package it was copied from.

package frozenv1

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// recordLabelRE is a label of a static record's name: a host name label,
// or one with underscores (_dmarc, _acme-challenge, _sip._tcp).
var recordLabelRE = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`)

func validRecordName(s string) bool {
	for _, l := range strings.Split(s, ".") {
		if !recordLabelRE.MatchString(l) {
			return false
		}
	}
	return s != ""
}

// Record is a static record of the zone, served as is beside the steered
// services: `records: [{name: www, type: CNAME, value: api.example.com.}]`.
type Record struct {
	// Name is relative to the zone ("www", "a.b") or "@" for the apex; an
	// absolute name in the zone is accepted and made relative.
	Name string `yaml:"name" json:"name"`
	// Type is A, AAAA, CNAME or TXT.
	Type string `yaml:"type" json:"type"`
	// Value is an address (A, AAAA), a host name (CNAME; relative names are
	// taken under the zone) or text (TXT; split into 255-byte strings).
	Value string `yaml:"value" json:"value"`
	TTL   uint32 `yaml:"ttl,omitempty" json:"ttl,omitempty"`
}

// Record types a static record may have.
const (
	RecordA     = "A"
	RecordAAAA  = "AAAA"
	RecordCNAME = "CNAME"
	RecordTXT   = "TXT"
)

// maxTXT bounds a TXT value so that a record always fits a message.
const maxTXT = 4000

// Owner returns the record's absolute, lower-case owner name in zone.
func (r Record) Owner(zone string) string {
	if r.Name == "@" {
		return zone
	}
	return r.Name + "." + zone
}

// normalizeRecords canonicalises and validates c.Records; services holds
// the service names. The zone must already be normalised.
func (c *Config) normalizeRecords(services map[string]bool) []error {
	var errs []error
	fail := func(i int, field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("records[%d].%s: %s", i, field, fmt.Sprintf(format, args...)))
	}
	nsHosts := map[string]bool{}
	for _, ns := range c.NameserverHosts() {
		nsHosts[ns.Host] = true
	}
	type owner struct {
		cname int // index of its CNAME, -1 if none
		other int // index of another record there, -1 if none
	}
	owners := map[string]*owner{}
	seen := map[string]int{}
	for i := range c.Records {
		r := &c.Records[i]
		r.Name = strings.ToLower(strings.TrimSpace(r.Name))
		r.Type = strings.ToUpper(strings.TrimSpace(r.Type))
		switch {
		case r.Name == "" || r.Name == "@" || r.Name == c.Zone:
			r.Name = "@"
		case strings.HasSuffix(r.Name, "."):
			if !strings.HasSuffix(r.Name, "."+c.Zone) {
				fail(i, "name", "%q is not in the zone %s", r.Name, c.Zone)
				continue
			}
			r.Name = strings.TrimSuffix(r.Name, "."+c.Zone)
		}
		if r.Name != "@" && !validRecordName(r.Name) {
			fail(i, "name", "%q is not a valid name (labels of a-z, 0-9, - and _)", r.Name)
			continue
		}
		if r.TTL == 0 {
			r.TTL = c.TTL
		}
		if r.TTL > 86400 {
			fail(i, "ttl", "must be at most 86400")
		}
		switch r.Type {
		case RecordA, RecordAAAA:
			a, err := netip.ParseAddr(strings.TrimSpace(r.Value))
			if err != nil || a.Zone() != "" || (r.Type == RecordA) != a.Is4() {
				fail(i, "value", "%q is not an IPv%s address", r.Value, map[bool]string{true: "4", false: "6"}[r.Type == RecordA])
				continue
			}
			r.Value = a.String()
		case RecordCNAME:
			v := strings.ToLower(strings.TrimSpace(r.Value))
			if v == "@" {
				v = c.Zone
			} else if !strings.HasSuffix(v, ".") {
				v += "." + c.Zone
			}
			if !validHost(v) {
				fail(i, "value", "%q is not a valid host name", r.Value)
				continue
			}
			r.Value = v
		case RecordTXT:
			if len(r.Value) > maxTXT {
				fail(i, "value", "TXT longer than %d bytes", maxTXT)
				continue
			}
		default:
			fail(i, "type", "%q must be A, AAAA, CNAME or TXT", r.Type)
			continue
		}
		at := r.Owner(c.Zone)
		switch {
		case r.Name != "@" && services[r.Name]:
			fail(i, "name", "%q is a service name; a service's records come from its endpoints", r.Name)
			continue
		case r.Type == RecordCNAME && r.Name == "@":
			fail(i, "name", "a CNAME cannot be at the zone apex (it would sit beside SOA and NS)")
			continue
		case r.Type == RecordCNAME && nsHosts[at]:
			fail(i, "name", "a CNAME cannot be at %s, a name server host", at)
			continue
		case r.Type == RecordCNAME && r.Value == at:
			fail(i, "value", "a CNAME cannot point to itself")
			continue
		case (r.Type == RecordA || r.Type == RecordAAAA) && nsHosts[at]:
			fail(i, "name", "%s is a name server host; its address comes from nameservers", at)
			continue
		}
		key := at + " " + r.Type + " " + r.Value
		if j, dup := seen[key]; dup {
			fail(i, "value", "duplicate of records[%d]", j)
			continue
		}
		seen[key] = i
		o := owners[at]
		if o == nil {
			o = &owner{cname: -1, other: -1}
			owners[at] = o
		}
		if r.Type == RecordCNAME {
			if o.cname >= 0 {
				fail(i, "name", "%s already has a CNAME (records[%d]); a name has at most one", at, o.cname)
				continue
			}
			o.cname = i
		} else if o.other < 0 {
			o.other = i
		}
		if o.cname >= 0 && o.other >= 0 {
			fail(i, "name", "a CNAME cannot be beside other data at %s (records[%d] and records[%d])",
				at, o.cname, o.other)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	// CNAME chains within the zone must end.
	cnames := map[string]string{}
	for _, r := range c.Records {
		if r.Type == RecordCNAME {
			cnames[r.Owner(c.Zone)] = r.Value
		}
	}
	for i, r := range c.Records {
		if r.Type != RecordCNAME {
			continue
		}
		at := r.Owner(c.Zone)
		for hops := 0; ; hops++ {
			next, ok := cnames[at]
			if !ok {
				break
			}
			if hops >= 8 {
				fail(i, "value", "CNAME chain from %s loops or is longer than 8", r.Owner(c.Zone))
				break
			}
			at = next
		}
	}
	return errs
}
