package fnvmix

import (
	"hash/fnv"
	"testing"
)

// TestMatchesStdlibFNV: String, Bytes and Separator are FNV-1a exactly, so
// the values dnsserver depends on cannot drift.
func TestMatchesStdlibFNV(t *testing.T) {
	for _, tc := range []struct{ a, b string }{{"", ""}, {"us-east", "10.1.2.0/24"}, {"a", "bc"}, {"ab", "c"}} {
		std := fnv.New64a()
		_, _ = std.Write([]byte(tc.a))
		_, _ = std.Write([]byte{0})
		_, _ = std.Write([]byte(tc.b))
		got := Bytes(Separator(String(Offset, tc.a)), []byte(tc.b))
		if got != std.Sum64() {
			t.Errorf("%q,%q: %x, want %x", tc.a, tc.b, got, std.Sum64())
		}
	}
	// Mix64's values are pinned by dnsserver's golden subnet mapping
	// (TestWeightedStableAcrossServers); fmix64 maps 0 to 0.
	if Mix64(0) != 0 {
		t.Error("Mix64(0) != 0: not the murmur3 finaliser")
	}
}
