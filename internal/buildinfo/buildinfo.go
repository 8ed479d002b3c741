// Package buildinfo reports what binary this is.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is set at build time with -ldflags "-X ...buildinfo.Version=v1.2.3".
var Version = "dev"

// String describes the build: version, VCS revision and Go version.
func String() string {
	rev, dirty := "unknown", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
	}
	return fmt.Sprintf("evac %s (revision %s%s, %s, %s/%s)", Version, rev, dirty, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
