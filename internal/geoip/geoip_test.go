package geoip_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/dnsserver/topology"
	"github.com/evac-sh/evac/internal/geoip"
	"github.com/evac-sh/evac/internal/geoip/geoiptest"
)

var testNets = []geoiptest.TestNetwork{
	{CIDR: "81.0.0.0/8", Country: "DE", Continent: "EU", Lat: 50.1, Lon: 8.7, HasLocation: true},
	{CIDR: "82.0.0.0/8", Country: "FR", Continent: "EU", Lat: 48.9, Lon: 2.35, HasLocation: true},
	{CIDR: "24.0.0.0/8", Country: "US", Continent: "NA", Lat: 41.9, Lon: -87.6, HasLocation: true},
	{CIDR: "126.0.0.0/8", Country: "JP", Continent: "AS", Lat: 35.7, Lon: 139.7, HasLocation: true},
	{CIDR: "2a00::/16", Country: "GB", Continent: "EU"},
	{CIDR: "27.0.0.0/8", Continent: "AS"}, // a continent alone
}

func writeDB(t *testing.T, epoch int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "test.mmdb")
	if err := geoiptest.WriteTestDB(p, epoch, testNets); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLocate(t *testing.T) {
	db, err := geoip.Open(writeDB(t, 1700000000))
	if err != nil {
		t.Fatal(err)
	}
	if !db.BuildTime.Equal(time.Unix(1700000000, 0)) || db.Type != "evac-Test-City" || db.Records != len(testNets) {
		t.Fatalf("metadata: %v %q %d", db.BuildTime, db.Type, db.Records)
	}
	for _, tc := range []struct {
		addr          string
		ok            bool
		country, cont string
		hasLoc        bool
		bits          int
	}{
		{"81.2.3.4", true, "DE", "EU", true, 8},
		{"24.1.1.1", true, "US", "NA", true, 8},
		{"2a00:1::1", true, "GB", "EU", false, 16},
		{"27.1.1.1", true, "", "AS", false, 8},
		{"10.1.1.1", false, "", "", false, 0},
	} {
		p, ok := db.Locate(netip.MustParseAddr(tc.addr))
		if ok != tc.ok || string(trim(p.Country)) != tc.country || string(trim(p.Continent)) != tc.cont || p.HasLocation != tc.hasLoc {
			t.Errorf("%s: %+v %v", tc.addr, p, ok)
		}
		if tc.ok && p.Bits != tc.bits {
			t.Errorf("%s: bits %d, want %d", tc.addr, p.Bits, tc.bits)
		}
	}
	a := netip.MustParseAddr("81.2.3.4")
	if n := testing.AllocsPerRun(1000, func() { db.Locate(a) }); n != 0 {
		t.Fatalf("Locate allocates %v times", n)
	}
}

func trim(b [2]byte) []byte {
	if b == [2]byte{} {
		return nil
	}
	return b[:]
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := geoip.Open(filepath.Join(dir, "missing.mmdb")); err == nil || !strings.Contains(err.Error(), "missing.mmdb") {
		t.Fatalf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.mmdb")
	if err := os.WriteFile(bad, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := geoip.Open(bad); err == nil || !strings.Contains(err.Error(), "bad.mmdb") {
		t.Fatalf("corrupt file: %v", err)
	}
	// Truncated: a real database cut in half.
	good, err := os.ReadFile(writeDB(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.mmdb")
	if err := os.WriteFile(cut, good[:len(good)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := geoip.Open(cut); err == nil {
		t.Fatal("truncated database opened")
	}
}

// TestRuleOrder: nets, then country, continent, distance, default.
func TestRuleOrder(t *testing.T) {
	db, err := geoip.Open(writeDB(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	c := &state.Config{
		Regions: []state.Region{
			{Name: "us-east", Location: &state.Location{Lat: 38.9, Lon: -77.0}},
			{Name: "us-west", Location: &state.Location{Lat: 45.6, Lon: -121.2}},
			{Name: "eu-west", Location: &state.Location{Lat: 53.3, Lon: -6.3}},
		},
		Topology: &state.Topology{
			Nets:       map[string][]string{"81.1.0.0/16": {"us-west"}},
			Countries:  map[string][]string{"DE": {"eu-west", "us-east"}},
			Continents: map[string][]string{"AS": {"us-west", "eu-west"}},
			Default:    []string{"us-east", "us-west", "eu-west"},
		},
	}
	tb, err := topology.Build(c)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]uint8, 3)
	for _, tc := range []struct {
		addr  string
		rule  topology.Rule
		list  []string
		scope int
	}{
		{"81.1.2.3", topology.RuleNet, []string{"us-west"}, 16},
		{"81.2.2.3", topology.RuleCountry, []string{"eu-west", "us-east"}, 15}, // 81.2.0.0/15 holds no net
		{"126.1.1.1", topology.RuleContinent, []string{"us-west", "eu-west"}, 8},
		{"82.1.1.1", topology.RuleDistance, []string{"eu-west", "us-east", "us-west"}, 8}, // Paris
		{"24.1.1.1", topology.RuleDistance, []string{"us-east", "us-west", "eu-west"}, 8}, // Chicago
		{"10.1.1.1", topology.RuleDefault, []string{"us-east", "us-west", "eu-west"}, 0},
	} {
		m := tb.Lookup(netip.MustParseAddr(tc.addr), db, buf)
		if m.Rule != tc.rule || !slices.Equal(tb.ListNames(m.List), tc.list) {
			t.Errorf("%s: %v %v, want %v %v", tc.addr, m.Rule, tb.ListNames(m.List), tc.rule, tc.list)
		}
		if tc.scope != 0 && m.Scope != tc.scope {
			t.Errorf("%s: scope %d, want %d", tc.addr, m.Scope, tc.scope)
		}
	}
	a := netip.MustParseAddr("82.1.1.1")
	if n := testing.AllocsPerRun(1000, func() { tb.Lookup(a, db, buf) }); n != 0 {
		t.Fatalf("Lookup with GeoIP allocates %v times", n)
	}
}

func BenchmarkLocate(b *testing.B) {
	p := filepath.Join(b.TempDir(), "test.mmdb")
	if err := geoiptest.WriteTestDB(p, 1, testNets); err != nil {
		b.Fatal(err)
	}
	db, err := geoip.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	a := netip.MustParseAddr("81.2.3.4")
	b.ReportAllocs()
	for b.Loop() {
		db.Locate(a)
	}
}
