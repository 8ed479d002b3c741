package dnsserver

import (
	"net/netip"
	"sync"
	"time"
)

// Response-rate limiting (after BIND's RRL), off unless Config.RateLimit is
// set (`evac server` sets DefaultRateLimit unless --dns-rate-limit says
// otherwise): each client subnet (/24, /56) may get RateLimit UDP responses
// per second, with a burst of one second's worth. Over the limit, every
// second response is a "slip" (empty, TC set: a real client retries over
// TCP, which is never limited) and the others are dropped, so a spoofed
// source gets little reflected traffic while a real one still gets through.
type rrlAction int

const (
	rrlOK rrlAction = iota
	rrlDrop
	rrlSlip
)

// DefaultRateLimit is `evac server`'s --dns-rate-limit: UDP responses per
// second to one client /24 (or /56). NSD ships with RRL on at 200/s per
// /24 with slip 2; Knot ships with it off and BIND's guide suggests 5 to 15
// for a plain authoritative server. evac answers with a 30 s TTL, often to
// resolvers that send EDNS Client Subnet, which ask once per client subnet
// and TTL, so a large resolver pool behind one /24 legitimately sends many
// queries a second: 100/s, half NSD's, keeps such a pool within the limit
// while a spoofed flood at any rate past it is reflected at most about 1:1
// in bytes (rrl_test.go: TestAmplificationUnderSpoofedFlood), and a real
// resolver over it still gets every answer over TCP after a slip.
const DefaultRateLimit = 100

// rrlMaxEntries bounds the table; when full, idle buckets are dropped (a
// full table of busy ones is cleared: forgetting is the safe direction).
const rrlMaxEntries = 1 << 16

type rrl struct {
	rate float64 // tokens per second, and the burst
	now  func() time.Time

	mu      sync.Mutex
	buckets map[subnetKey]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
	over   uint32 // responses over the limit, for the slip
}

func newRRL(perSecond int) *rrl {
	if perSecond <= 0 {
		return nil
	}
	return &rrl{rate: float64(perSecond), now: time.Now, buckets: map[subnetKey]*bucket{}}
}

// check takes one token for the client's subnet and says what to do.
func (l *rrl) check(addr netip.Addr) rrlAction {
	k := sourceKey(addr)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[k]
	if b == nil {
		if len(l.buckets) >= rrlMaxEntries {
			l.evict(now)
		}
		b = &bucket{tokens: l.rate, last: now}
		l.buckets[k] = b
	}
	b.tokens = min(l.rate, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return rrlOK
	}
	b.over++
	if b.over%2 == 0 {
		return rrlSlip
	}
	return rrlDrop
}

// evict drops buckets that have refilled; with none, it clears the table.
func (l *rrl) evict(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.rate {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= rrlMaxEntries {
		clear(l.buckets)
	}
}
