package dnsserver

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr: a msghdr and the length the kernel moved
// (x/sys/unix has no such type).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [unsafe.Sizeof(uintptr(0)) - 4]byte
}

// mmsgIO reads and writes datagrams with recvmmsg and sendmmsg issued as raw
// system calls from inside the socket's RawConn callbacks:
//   - the Go scheduler is not told of the calls (they never block: the
//     socket is non-blocking, and EAGAIN returns to the netpoller), so a
//     sendmmsg of a batch, which runs the loopback or NIC transmit path for
//     every datagram and can take tens of microseconds, does not let sysmon
//     hand the reader's P to another thread: with GOMAXPROCS=1 that handoff
//     cost futex wake-ups, context switches and a wait to get the P back on
//     every long write (docs/benchmarks.md, "UDP latency");
//   - the sender's address stays in its raw sockaddr, which the reply is
//     sent to as is, and is parsed into a netip.AddrPort without allocating
//     (x/net's ReadBatch allocated a *net.UDPAddr and its IP per datagram);
//   - with busyPoll set, an empty socket is polled again for that long
//     before the reader parks in the netpoller: a query arriving within the
//     window is read at once instead of after an epoll wake-up and a
//     scheduler hand-off (docs/benchmarks.md, "Busy polling").
type mmsgIO struct {
	rc    syscall.RawConn
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // big enough for either family
	ohdrs []mmsghdr
	oiovs []unix.Iovec
	out   []mmsghdr // the replies not yet sent, a tail of ohdrs
	oidx  []int     // the datagram each of ohdrs answers

	n, sent int   // results of the last callback
	err     error // of the last callback
	recvFn  func(uintptr) bool
	sendFn  func(uintptr) bool

	busyPoll time.Duration  // 0: park as soon as the socket is empty
	stop     *atomic.Bool   // set when the server shuts down: stop polling
	polled   *atomic.Uint64 // reads that found data only by polling
	// The reader parks in the netpoller at least every parkEvery
	// (busyPollPark); awake is when it last came back from it, and
	// parking is set while it is there.
	parkEvery time.Duration
	awake     time.Time
	parking   bool
}

// busyPollPark bounds how long a busy-polling reader goes without parking.
// The Go scheduler looks for network events (the process's other sockets:
// the admin API, Raft, DNS over TCP) only when a P has nothing to run, or
// when sysmon gets to it, every 10 ms at best; a reader that polls and
// yields is always runnable, so with GOMAXPROCS=1 those sockets waited 10
// ms and more (docs/benchmarks.md, "Busy polling"). Parking once in a
// while lets the scheduler see them; the reader then pays one wake-up.
// A reader may poll busyPoll past it: a window once started runs out.
const busyPollPark = time.Millisecond

// newUDPIO reads into bufs. busyPoll is how long an empty socket is polled
// again before the reader waits in the netpoller (0: not at all); polling
// ends early once stop is set; polled counts the reads it saved a wait.
func newUDPIO(conn *net.UDPConn, bufs [][]byte, busyPoll time.Duration, stop *atomic.Bool, polled *atomic.Uint64) (udpIO, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("UDP socket: %w", err)
	}
	n := len(bufs)
	m := &mmsgIO{rc: rc, hdrs: make([]mmsghdr, n), iovs: make([]unix.Iovec, n), names: make([]unix.RawSockaddrInet6, n),
		ohdrs: make([]mmsghdr, n), oiovs: make([]unix.Iovec, n), oidx: make([]int, 0, n)}
	for i := range n {
		m.iovs[i].Base = &bufs[i][0]
		m.iovs[i].SetLen(len(bufs[i]))
		h := &m.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&m.names[i]))
		h.Iov = &m.iovs[i]
		h.SetIovlen(1)
	}
	m.recvFn, m.sendFn = m.recv, m.send
	m.busyPoll, m.stop, m.polled, m.parkEvery = busyPoll, stop, polled, busyPollPark
	return m, nil
}

func (m *mmsgIO) read(ns []int, from []netip.AddrPort) (int, error) {
	for i := range m.hdrs {
		m.hdrs[i].hdr.Namelen = uint32(unsafe.Sizeof(m.names[i]))
		m.hdrs[i].hdr.Flags = 0
		m.hdrs[i].len = 0
	}
	m.n, m.err = 0, nil
	if err := m.rc.Read(m.recvFn); err != nil {
		return 0, err
	}
	if m.err != nil {
		return 0, m.err
	}
	for i := range m.n {
		ns[i] = int(m.hdrs[i].len)
		from[i] = sockaddrAddrPort(&m.names[i], m.hdrs[i].hdr.Namelen)
	}
	return m.n, nil
}

func (m *mmsgIO) recv(fd uintptr) bool {
	if m.parking {
		m.awake, m.parking = time.Now(), false
	}
	var until time.Time // the end of the busy-poll window, once started
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&m.hdrs[0])), uintptr(len(m.hdrs)), 0, 0, 0)
		switch e {
		case 0:
			m.n = int(r)
			if !until.IsZero() {
				m.polled.Add(1)
			}
			return true
		case unix.EINTR:
		case unix.EAGAIN:
			if m.busyPoll <= 0 || m.stop.Load() {
				return false // the netpoller waits for the next datagram
			}
			if until.IsZero() {
				now := time.Now()
				if now.Sub(m.awake) >= m.parkEvery {
					m.parking = true
					return false
				}
				until = now.Add(m.busyPoll)
			}
			// Let other goroutines on this P run (the other readers,
			// Raft, the API): polling costs idle CPU, never their turn.
			runtime.Gosched()
			if time.Now().After(until) {
				m.parking = true
				return false
			}
		default:
			m.err = e
			return true
		}
	}
}

func (m *mmsgIO) write(replies [][]byte, bad func(i int, err error)) error {
	k := 0
	idx := m.oidx[:0]
	for i, r := range replies[:m.n] {
		if len(r) == 0 {
			continue
		}
		m.oiovs[k].Base = &r[0]
		m.oiovs[k].SetLen(len(r))
		h := &m.ohdrs[k].hdr
		h.Name = (*byte)(unsafe.Pointer(&m.names[i]))
		h.Namelen = m.hdrs[i].hdr.Namelen
		h.Iov = &m.oiovs[k]
		h.SetIovlen(1)
		idx = append(idx, i)
		k++
	}
	m.out = m.ohdrs[:k]
	for len(m.out) > 0 {
		m.sent, m.err = 0, nil
		if err := m.rc.Write(m.sendFn); err != nil {
			return err
		}
		if m.err != nil {
			// One bad destination must not cost the others their answers.
			bad(idx[0], m.err)
			m.sent = 1
		}
		m.out, idx = m.out[m.sent:], idx[m.sent:]
	}
	return nil
}

func (m *mmsgIO) send(fd uintptr) bool {
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&m.out[0])), uintptr(len(m.out)), 0, 0, 0)
		switch e {
		case 0:
			m.sent = int(r)
			return true
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			m.err = e
			return true
		}
	}
}

// sockaddrAddrPort parses a sockaddr_in or sockaddr_in6; the zero AddrPort
// for anything else.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6, l uint32) netip.AddrPort {
	port := func(p *uint16) uint16 {
		b := (*[2]byte)(unsafe.Pointer(p))
		return uint16(b[0])<<8 | uint16(b[1])
	}
	switch sa.Family {
	case unix.AF_INET:
		if l < unix.SizeofSockaddrInet4 {
			return netip.AddrPort{}
		}
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), port(&s4.Port))
	case unix.AF_INET6:
		if l < unix.SizeofSockaddrInet6 {
			return netip.AddrPort{}
		}
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port(&sa.Port))
	}
	return netip.AddrPort{}
}
