// Package fnvmix is 64-bit FNV-1a followed by the murmur3 finaliser: a
// fast, allocation-free hash for rendezvous choices. FNV-1a alone lacks
// avalanche on short, similar keys (names, subnets); the finaliser
// supplies it.
//
// dnsserver's client-subnet mapping is built on it, so these functions
// are part of evac's contract: every controller, of every version, must
// send a given subnet to the same region for the same weights. Changing
// them moves every client.
package fnvmix

// FNV-1a, 64 bit.
const (
	Offset = 14695981039346656037
	Prime  = 1099511628211
)

// String continues FNV-1a state h over s.
func String(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * Prime
	}
	return h
}

// Bytes continues FNV-1a state h over b.
func Bytes(h uint64, b []byte) uint64 {
	for _, c := range b {
		h = (h ^ uint64(c)) * Prime
	}
	return h
}

// Separator continues FNV-1a state h over one zero byte, which keeps
// ("ab", "c") and ("a", "bc") apart.
func Separator(h uint64) uint64 { return h * Prime }

// Mix64 is the murmur3 64-bit finaliser.
func Mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
