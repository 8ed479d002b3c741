package health

import "github.com/evac-sh/evac/gossip"

// Enrolled keeps the evidence of enrolled agents only, for Compute and
// Capacity when the controllers enforce enrolment: an agent that is not
// enrolled, or that claims another region than the one it is enrolled
// for, is left out (neither alive nor total, its reports ignored), and a
// report counts only when it names its origin's enrolled region. Members
// that are not agents pass through. region returns an agent's enrolled
// region.
//
// The gossip layer already drops reports that do not check out as they
// arrive (gossip/identity.go); this filter also covers what was
// stored before an agent was revoked or re-enrolled elsewhere, and the
// membership metadata, which is not signed.
func Enrolled(members []gossip.Member, reports []gossip.Report, region func(name string) (string, bool)) ([]gossip.Member, []gossip.Report) {
	ms := make([]gossip.Member, 0, len(members))
	for _, m := range members {
		if m.Role == gossip.RoleAgent {
			if r, ok := region(m.Name); !ok || r != m.Region {
				continue
			}
		}
		ms = append(ms, m)
	}
	rs := make([]gossip.Report, 0, len(reports))
	for _, r := range reports {
		if want, ok := region(r.Origin); ok && want == r.Region {
			rs = append(rs, r)
		}
	}
	return ms, rs
}
