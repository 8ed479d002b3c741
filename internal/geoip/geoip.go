// Package geoip reads a MaxMind DB (GeoIP2 or GeoLite2 Country or City,
// or any database with the same country, continent and location fields)
// for the nearest policy's country, continent and distance rules.
//
// Why it is shaped this way: the DNS answer path must not allocate, and
// decoding a record with maxminddb allocates (strings, maps). So Open
// decodes every distinct record once, at load, into a small fixed-size
// Place keyed by the record's offset in the data section; a query is a
// tree walk (Reader.Lookup, no allocation) and one map read. The file is
// read into memory rather than mapped, so a database replaced by a reload
// stays valid for queries still holding it (the garbage collector frees it,
// never an munmap under a reader).
package geoip

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/evac-sh/evac/dnsserver/topology"
)

// DB is one loaded database. It is immutable and safe for concurrent use.
type DB struct {
	r      *maxminddb.Reader
	places map[uintptr]topology.Place // by record offset; Bits unset

	// Path is the file it was read from.
	Path string
	// Type is the database's type (e.g. GeoLite2-City).
	Type string
	// BuildTime is when the database was built (its metadata).
	BuildTime time.Time
	// Records is the number of distinct data records decoded.
	Records int
}

// record is the subset of a GeoIP2 record evac reads.
type record struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	Continent struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"continent"`
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
}

// Open reads, verifies and indexes the database at path. A missing,
// unreadable or corrupt file is an error naming it.
func Open(path string) (*DB, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("geoip database: %w", err)
	}
	r, err := maxminddb.OpenBytes(b)
	if err != nil {
		return nil, fmt.Errorf("geoip database %s: %w", path, err)
	}
	if err := r.Verify(); err != nil {
		return nil, fmt.Errorf("geoip database %s: corrupt: %w", path, err)
	}
	d := &DB{r: r, places: map[uintptr]topology.Place{}, Path: path, Type: r.Metadata.DatabaseType,
		BuildTime: time.Unix(int64(r.Metadata.BuildEpoch), 0).UTC()}
	for res := range r.Networks() {
		if err := res.Err(); err != nil {
			return nil, fmt.Errorf("geoip database %s: %w", path, err)
		}
		off := res.Offset()
		if _, ok := d.places[off]; ok {
			continue
		}
		var rec record
		if err := res.Decode(&rec); err != nil {
			return nil, fmt.Errorf("geoip database %s: network %s: %w", path, res.Prefix(), err)
		}
		d.places[off] = place(&rec)
	}
	if len(d.places) == 0 {
		return nil, fmt.Errorf("geoip database %s: %w", path, errors.New("no networks with data"))
	}
	d.Records = len(d.places)
	return d, nil
}

func place(rec *record) topology.Place {
	var p topology.Place
	cc := rec.Country.ISOCode
	if cc == "" {
		cc = rec.RegisteredCountry.ISOCode
	}
	if len(cc) == 2 {
		p.Country = [2]byte{upper(cc[0]), upper(cc[1])}
	}
	if c := rec.Continent.Code; len(c) == 2 {
		p.Continent = [2]byte{upper(c[0]), upper(c[1])}
	}
	if la, lo := rec.Location.Latitude, rec.Location.Longitude; la != nil && lo != nil &&
		*la >= -90 && *la <= 90 && *lo >= -180 && *lo <= 180 {
		p.Lat, p.Lon, p.HasLocation = *la, *lo, true
	}
	return p
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// Locate returns what the database says about a, and the prefix length of
// the network holding it (with or without data). It does not allocate.
func (d *DB) Locate(a netip.Addr) (topology.Place, bool) {
	res := d.r.Lookup(a)
	bits := 0
	if pfx := res.Prefix(); pfx.IsValid() {
		bits = pfx.Bits()
		if a.Is4() && pfx.Addr().Is6() { // an IPv4 address outside the IPv4 subtree
			bits = max(0, bits-96)
		}
	}
	if res.Err() != nil || !res.Found() {
		return topology.Place{Bits: bits}, false
	}
	p, ok := d.places[res.Offset()]
	p.Bits = bits
	return p, ok
}
