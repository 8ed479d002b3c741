//go:build !linux

package dnsserver

import (
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// xnetIO reads and writes datagrams with golang.org/x/net's batch calls
// (one datagram per call outside Linux).
type xnetIO struct {
	bc  batchConn
	in  []ipv4.Message
	out []ipv4.Message
	w   [][1][]byte
	n   int
}

// batchConn is what ipv4.PacketConn and ipv6.PacketConn have in common.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// newUDPIO reads into bufs; busy polling is Linux-only, and its arguments
// are ignored here.
func newUDPIO(conn *net.UDPConn, bufs [][]byte, _ time.Duration, _ *atomic.Bool, _ *atomic.Uint64) (udpIO, error) {
	var bc batchConn = ipv4.NewPacketConn(conn)
	if a := conn.LocalAddr().(*net.UDPAddr); a.IP.To4() == nil {
		bc = ipv6.NewPacketConn(conn)
	}
	x := &xnetIO{bc: bc, in: make([]ipv4.Message, len(bufs)), out: make([]ipv4.Message, 0, len(bufs)), w: make([][1][]byte, len(bufs))}
	for i := range bufs {
		x.in[i].Buffers = [][]byte{bufs[i]}
	}
	return x, nil
}

func (x *xnetIO) read(ns []int, from []netip.AddrPort) (int, error) {
	for i := range x.in {
		x.in[i].Addr = nil
	}
	n, err := x.bc.ReadBatch(x.in, 0)
	if err != nil {
		return 0, err
	}
	for i := range n {
		ns[i], from[i] = x.in[i].N, netip.AddrPort{}
		if ua, ok := x.in[i].Addr.(*net.UDPAddr); ok {
			from[i] = ua.AddrPort()
		}
	}
	x.n = n
	return n, nil
}

func (x *xnetIO) write(replies [][]byte, bad func(i int, err error)) error {
	x.out = x.out[:0]
	var idx [udpBatch]int
	k := 0
	for i, r := range replies[:x.n] {
		if len(r) == 0 {
			continue
		}
		x.w[i][0] = r
		x.out = append(x.out, ipv4.Message{Buffers: x.w[i][:], Addr: x.in[i].Addr})
		idx[k] = i
		k++
	}
	out, j := x.out, 0
	for len(out) > 0 {
		k, err := x.bc.WriteBatch(out, 0)
		if err != nil {
			bad(idx[j], err)
			k = max(k, 1)
		}
		out, j = out[k:], j+k
	}
	for i := range x.w {
		x.w[i][0] = nil
	}
	return nil
}
