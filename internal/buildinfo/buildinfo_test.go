package buildinfo

import "testing"

func TestSemver(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", Release},
		{"dev", Release},
		{"v0.6.0", "0.6.0"},
		{"0.7.1-rc.1", "0.7.1-rc.1"},
		{"v0.6.0-3-gabc1234", "0.6.0-3-gabc1234"},
		{"aa66dac", Release + "+aa66dac"},
		{"aa66dac-dirty", Release + "+aa66dac-dirty"},
	} {
		if got := semver(tc.in); got != tc.want {
			t.Errorf("semver(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
