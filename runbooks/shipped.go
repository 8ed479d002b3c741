package runbooks

import (
	"embed"
	"io/fs"
	"sort"
)

//go:embed *.yaml
var shipped embed.FS

// Shipped returns the runbooks evac ships, by file name, as YAML source.
func Shipped() map[string][]byte {
	out := map[string][]byte{}
	names, _ := fs.Glob(shipped, "*.yaml")
	sort.Strings(names)
	for _, n := range names {
		b, err := shipped.ReadFile(n)
		if err == nil {
			out[n] = b
		}
	}
	return out
}
