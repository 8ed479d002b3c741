package testutil

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Ports handed to tests come from below the kernel's ephemeral range, one
// after another, never twice in a process. A port found free with
// Listen(":0") comes from the ephemeral range and goes back to it when the
// probe closes: until the process under test binds it, the kernel may give
// it to any outgoing connection bound to that address (a Raft dialer
// binding its source IP takes one on every dial) or to the next ":0"
// probe, and the process then fails to start with "address already in
// use". That cost a CI run: a controller lost its port and a cluster test
// waited 30 s on a member that never came up.
const lowestPort = 10000

// portAllocator is process-wide because ports are: two tests in one binary
// must never be handed the same one.
var portAllocator struct {
	sync.Mutex
	next, limit int
}

// FreePort returns a port on ip that is free for both TCP and UDP now, that
// the kernel does not hand out on its own, and that no other caller in
// this process has been given.
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	return FreePortRun(t, ip, 1, true)
}

// FreePortRun returns the first of n consecutive such ports (evac dev
// gives controller i port base+i). Each is free for TCP, and for UDP too
// when udp is set.
func FreePortRun(t testing.TB, ip string, n int, udp bool) int {
	t.Helper()
	portAllocator.Lock()
	defer portAllocator.Unlock()
	if portAllocator.limit == 0 {
		portAllocator.limit = ephemeralLow()
		// Test binaries running at once (packages in parallel) start
		// apart; each port is checked anyway.
		span := portAllocator.limit - lowestPort
		portAllocator.next = lowestPort + (os.Getpid()*7919)%span
	}
	span := portAllocator.limit - lowestPort
	for tries := 0; tries < span; tries++ {
		base := portAllocator.next
		if base+n > portAllocator.limit {
			base = lowestPort
		}
		portAllocator.next = base + n
		if PortsFree(ip, base, n, udp) {
			return base
		}
	}
	t.Fatalf("no run of %d free ports on %s below %d", n, ip, portAllocator.limit)
	return 0
}

// PortsFree reports whether ports base..base+n-1 on ip can be bound now,
// for TCP and, when udp is set, UDP.
func PortsFree(ip string, base, n int, udp bool) bool {
	for p := base; p < base+n; p++ {
		addr := net.JoinHostPort(ip, strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		l.Close()
		if udp {
			u, err := net.ListenPacket("udp", addr)
			if err != nil {
				return false
			}
			u.Close()
		}
	}
	return true
}

// ephemeralLow is the bottom of the kernel's ephemeral port range (32768
// when it cannot be read).
func ephemeralLow() int {
	const fallback = 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return fallback
	}
	var lo, hi int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &lo, &hi); err != nil || lo <= lowestPort+1000 {
		return fallback
	}
	return lo
}
