// Package buildinfo reports what binary this is.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Release is the semantic version of the source tree: the release it is, or
// the release it leads to, with "-dev". A tagged release sets Version to its
// tag at build time; the Makefile does that from `git describe`.
const Release = "0.6.0-dev"

// Version is set at build time with -ldflags "-X ...buildinfo.Version=v1.2.3".
// Empty means Release.
var Version = ""

// BuildTime is set at build time with -ldflags "-X ...buildinfo.BuildTime=..."
// (RFC 3339, UTC); empty when the builder did not say.
var BuildTime = ""

// Revision is the VCS commit, set at build time with -ldflags where Go's own
// VCS stamping is off (GOFLAGS=-buildvcs=false); Go's stamp wins when present.
var Revision = ""

// Info is what `evac version -o json` prints.
type Info struct {
	Version    string `json:"version"`
	Revision   string `json:"revision"`
	Modified   bool   `json:"modified"`
	CommitTime string `json:"commit_time,omitempty"`
	BuildTime  string `json:"build_time,omitempty"`
	GoVersion  string `json:"go_version"`
	Platform   string `json:"platform"`
}

// Get reads the build: the version, and the VCS revision Go stamped into the
// binary (`go build` in a git checkout does; `go test` binaries say "unknown").
func Get() Info {
	in := Info{
		Version:   semver(Version),
		Revision:  Revision,
		BuildTime: BuildTime,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Revision = s.Value
			case "vcs.modified":
				in.Modified = s.Value == "true"
			case "vcs.time":
				in.CommitTime = s.Value
			}
		}
	}
	if in.Revision == "" {
		in.Revision = "unknown"
	}
	return in
}

// semver makes v a semantic version: empty is Release; a bare commit hash,
// as `git describe --always` gives without tags, becomes Release+commit.
func semver(v string) string {
	v = strings.TrimPrefix(v, "v")
	switch {
	case v == "" || v == "dev":
		return Release
	case v[0] >= '0' && v[0] <= '9' && strings.Count(v, ".") >= 2:
		return v
	default:
		return Release + "+" + v
	}
}

// String describes the build on one line: version, VCS revision, Go version.
func String() string {
	in := Get()
	dirty := ""
	if in.Modified {
		dirty = "-dirty"
	}
	s := fmt.Sprintf("evac %s (revision %s%s, %s, %s", in.Version, in.Revision, dirty, in.GoVersion, in.Platform)
	if in.BuildTime != "" {
		s += ", built " + in.BuildTime
	}
	return s + ")"
}
