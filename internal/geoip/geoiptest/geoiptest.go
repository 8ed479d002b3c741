// Package geoiptest builds small MaxMind DB files for tests (nothing is
// downloaded), with the fields package geoip reads.
package geoiptest

import (
	"fmt"
	"net"
	"os"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// TestNetwork is one network of a database WriteTestDB builds.
type TestNetwork struct {
	CIDR      string
	Country   string // ISO code, "" for none
	Continent string // code, "" for none
	// Location, when Lat and Lon are both set (HasLocation).
	Lat, Lon    float64
	HasLocation bool
}

// WriteTestDB writes a small GeoIP2-City-shaped database to path, for tests
// and demos: nothing is downloaded. buildEpoch is its build time (Unix s).
func WriteTestDB(path string, buildEpoch int64, nets []TestNetwork) error {
	t, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "evac-Test-City", RecordSize: 28, BuildEpoch: buildEpoch,
		Description: map[string]string{"en": "evac test database"}, Languages: []string{"en"},
		IPVersion: 6, IncludeReservedNetworks: true})
	if err != nil {
		return err
	}
	for _, n := range nets {
		_, ipn, err := net.ParseCIDR(n.CIDR)
		if err != nil {
			return fmt.Errorf("%s: %w", n.CIDR, err)
		}
		rec := mmdbtype.Map{}
		if n.Country != "" {
			rec["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(n.Country)}
		}
		if n.Continent != "" {
			rec["continent"] = mmdbtype.Map{"code": mmdbtype.String(n.Continent)}
		}
		if n.HasLocation {
			rec["location"] = mmdbtype.Map{"latitude": mmdbtype.Float64(n.Lat), "longitude": mmdbtype.Float64(n.Lon)}
		}
		if err := t.Insert(ipn, rec); err != nil {
			return fmt.Errorf("%s: %w", n.CIDR, err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := t.WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
