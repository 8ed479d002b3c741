package devcluster

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/evac-sh/evac/controlplane/state"
)

// knownLocations places the regions evac dev knows by name (their cloud
// namesakes' cities), so the dev topology can order them by distance.
var knownLocations = map[string]state.Location{
	"us-east":      {Lat: 38.9, Lon: -77.0},  // Virginia
	"us-west":      {Lat: 45.6, Lon: -121.2}, // Oregon
	"eu-west":      {Lat: 53.3, Lon: -6.3},   // Dublin
	"eu-central":   {Lat: 50.1, Lon: 8.7},    // Frankfurt
	"ap-south":     {Lat: 19.1, Lon: 72.9},   // Mumbai
	"ap-east":      {Lat: 22.3, Lon: 114.2},  // Hong Kong
	"sa-east":      {Lat: -23.5, Lon: -46.6}, // São Paulo
	"ap-north":     {Lat: 35.7, Lon: 139.7},  // Tokyo
	"af-south":     {Lat: -33.9, Lon: 18.4},  // Cape Town
	"me-central":   {Lat: 25.2, Lon: 55.3},   // Dubai
	"ca-central":   {Lat: 45.5, Lon: -73.6},  // Montréal
	"us-central":   {Lat: 41.3, Lon: -95.9},  // Iowa
	"ap-southeast": {Lat: 1.35, Lon: 103.8},  // Singapore
}

// devNet is the client network whose first choice is the i-th region:
// 10.1.0.0/16 for the first, 10.2.0.0/16 for the second, and so on.
func devNet(i int) string { return fmt.Sprintf("10.%d.0.0/16", i+1) }

// preference is region i first, then the others by great-circle distance
// from it (regions without a known location last, in order).
func preference(regions []string, i int) []string {
	home, hasHome := knownLocations[regions[i]]
	type cand struct {
		name string
		d    float64
		idx  int
	}
	var cs []cand
	for j, r := range regions {
		if j == i {
			continue
		}
		d := math.Inf(1)
		if loc, ok := knownLocations[r]; ok && hasHome {
			d = distance(home, loc)
		}
		cs = append(cs, cand{r, d, j})
	}
	sort.SliceStable(cs, func(a, b int) bool {
		if cs[a].d != cs[b].d {
			return cs[a].d < cs[b].d
		}
		return cs[a].idx < cs[b].idx
	})
	out := []string{regions[i]}
	for _, c := range cs {
		out = append(out, c.name)
	}
	return out
}

func distance(a, b state.Location) float64 {
	rad := func(d float64) float64 { return d * math.Pi / 180 }
	s1 := math.Sin((rad(b.Lat) - rad(a.Lat)) / 2)
	s2 := math.Sin((rad(b.Lon) - rad(a.Lon)) / 2)
	h := s1*s1 + math.Cos(rad(a.Lat))*math.Cos(rad(b.Lat))*s2*s2
	return 2 * math.Asin(math.Sqrt(min(h, 1)))
}

// regionLine is a region's entry in the dev steering config.
func regionLine(r string) string {
	if loc, ok := knownLocations[r]; ok {
		return fmt.Sprintf("  - {name: %s, capacity: 100, location: {lat: %v, lon: %v}}\n", r, loc.Lat, loc.Lon)
	}
	return "  - {name: " + r + ", capacity: 100}\n"
}

// topologyYAML is the dev topology: clients in 10.(i+1).0.0/16 prefer the
// i-th region, then the others by distance; everyone else the regions in
// order.
func topologyYAML(regions []string) string {
	var b strings.Builder
	b.WriteString("topology:\n  nets:\n")
	for i := range regions {
		fmt.Fprintf(&b, "    %s: [%s]\n", devNet(i), strings.Join(preference(regions, i), ", "))
	}
	fmt.Fprintf(&b, "  default: [%s]\n", strings.Join(regions, ", "))
	return b.String()
}
