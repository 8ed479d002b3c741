package state

import (
	"fmt"
	"net/netip"
	"sort"
)

// MaxRRSet is the largest record set a config may produce unless
// allow_large_rrsets is set: BIND 9.18 secondaries refuse a zone with a
// larger one (its max-records-per-type default), so a transfer to them
// would fail.
const MaxRRSet = 100

// checkRRSets refuses record sets larger than MaxRRSet unless
// c.AllowLargeRRsets. A service's A (AAAA) set is counted as the zone
// transfer carries it: every distinct IPv4 (IPv6) address of every region.
func (c *Config) checkRRSets() []error {
	if c.AllowLargeRRsets {
		return nil
	}
	var errs []error
	tooBig := func(field, set string, n int) {
		errs = append(errs, fmt.Errorf("%s: the %s record set would have %d records, more than %d; "+
			"BIND 9.18 secondaries refuse zones with such sets (max-records-per-type), "+
			"so transfers to them would fail; set allow_large_rrsets: true to allow it", field, set, n, MaxRRSet))
	}
	if n := len(c.Nameservers); n > MaxRRSet {
		tooBig("nameservers", c.Zone+" NS", n)
	}
	for i, s := range c.Services {
		var fam [2]map[string]bool
		fam[0], fam[1] = map[string]bool{}, map[string]bool{}
		for _, addrs := range s.Endpoints {
			for _, ip := range addrs {
				a, err := netip.ParseAddr(ip)
				if err != nil {
					continue // reported by Normalize
				}
				if a.Unmap().Is4() {
					fam[0][a.Unmap().String()] = true
				} else {
					fam[1][a.String()] = true
				}
			}
		}
		for f, typ := range []string{"A", "AAAA"} {
			if n := len(fam[f]); n > MaxRRSet {
				tooBig(fmt.Sprintf("services[%d].endpoints", i), s.Name+"."+c.Zone+" "+typ, n)
			}
		}
	}
	type set struct{ owner, typ string }
	sizes, first := map[set]int{}, map[set]int{}
	for i, r := range c.Records {
		k := set{r.Owner(c.Zone), r.Type}
		if _, ok := first[k]; !ok {
			first[k] = i
		}
		sizes[k]++
	}
	keys := make([]set, 0, len(sizes))
	for k, n := range sizes {
		if n > MaxRRSet {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return first[keys[i]] < first[keys[j]] })
	for _, k := range keys {
		tooBig(fmt.Sprintf("records[%d]", first[k]), k.owner+" "+k.typ, sizes[k])
	}
	return errs
}
