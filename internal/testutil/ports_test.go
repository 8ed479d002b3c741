package testutil

import (
	"net"
	"strconv"
	"testing"
)

func TestFreePortNeverRepeatsAndAvoidsEphemeralRange(t *testing.T) {
	limit := ephemeralLow()
	seen := map[int]bool{}
	for i := 0; i < 200; i++ {
		p := FreePort(t, "127.0.0.1")
		if p < lowestPort || p >= limit {
			t.Fatalf("port %d outside [%d, %d)", p, lowestPort, limit)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	base := FreePortRun(t, "127.0.0.1", 3, true)
	for p := base; p < base+3; p++ {
		if seen[p] {
			t.Fatalf("run port %d handed out before", p)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("run port %d not free: %v", p, err)
		}
		l.Close()
	}
}

func TestFreePortSkipsBoundPorts(t *testing.T) {
	p := FreePort(t, "127.0.0.1")
	// Hold the next port the allocator would give; it must be skipped.
	portAllocator.Lock()
	next := portAllocator.next
	portAllocator.Unlock()
	// (If something else holds it already, it must be skipped all the same.)
	if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(next))); err == nil {
		defer l.Close()
	}
	if q := FreePort(t, "127.0.0.1"); q == next || q == p {
		t.Fatalf("got %d, a port in use (held %d, previous %d)", q, next, p)
	}
}
