package gossip

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	sockaddr "github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"
)

// transport is memberlist's transport (UDP packets, TCP streams, one
// listener of each on the same port) rewritten for two reasons:
//
//   - Garbage. memberlist's NetTransport reads every UDP packet into a
//     fresh 64 KiB buffer and hands that buffer on, so a node allocates
//     64 KiB per packet received whatever the packet's size (gossip packets
//     are at most 1400 bytes). With 1,000 agents in one process the
//     collector took half the CPU and the pool never fully joined. Here
//     each listener reads into one buffer of its own and hands on a copy
//     of exactly the packet. NetTransport also resolved the destination
//     (net.ResolveUDPAddr) on every packet sent; an ip:port is parsed
//     here without allocating.
//   - Source address. TCP streams are dialed from the node's own IP, so
//     per-region loopback addresses (and the nftables rules matching
//     them) see the node's address, not the kernel's default 127.0.0.1.
//     UDP leaves from the bound listener socket anyway.
type transport struct {
	tcp    *net.TCPListener
	udp    *net.UDPConn
	local  net.IP // source for dials; nil when bound to an unspecified address
	logger *log.Logger

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	closing  atomic.Bool
	done     chan struct{} // closed by Shutdown
	wg       sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*transport)(nil)

const (
	// maxPacket is the largest UDP payload; a packet is read whole into a
	// buffer this size and copied out.
	maxPacket = 65536
	// udpRecvBuf is the socket receive buffer asked for (memberlist's
	// figure), halved until the kernel accepts it.
	udpRecvBuf = 2 << 20
)

func newTransport(ip net.IP, port int, logger *log.Logger) (*transport, error) {
	// With port 0 the TCP listener picks the port and UDP may find it
	// taken: retry like memberlist does for its own transport.
	attempts := 1
	if port == 0 {
		attempts = 10
	}
	var err error
	for i := 0; i < attempts; i++ {
		var t *transport
		if t, err = listen(ip, port, logger); err == nil {
			return t, nil
		}
	}
	return nil, fmt.Errorf("gossip: listen on %s: %w", net.JoinHostPort(ip.String(), strconv.Itoa(port)), err)
}

func listen(ip net.IP, port int, logger *log.Logger) (*transport, error) {
	tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: port})
	if err != nil {
		return nil, err
	}
	port = tcp.Addr().(*net.TCPAddr).Port
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		_ = tcp.Close()
		return nil, err
	}
	for size := udpRecvBuf; size > 0; size /= 2 {
		if err = udp.SetReadBuffer(size); err == nil {
			break
		}
	}
	if err != nil {
		_ = tcp.Close()
		_ = udp.Close()
		return nil, fmt.Errorf("set UDP receive buffer: %w", err)
	}
	t := &transport{
		tcp: tcp, udp: udp, logger: logger,
		done:     make(chan struct{}),
		packetCh: make(chan *memberlist.Packet),
		streamCh: make(chan net.Conn),
	}
	if !ip.IsUnspecified() {
		t.local = ip
	}
	t.wg.Add(2)
	go t.acceptStreams()
	go t.readPackets()
	return t, nil
}

func (t *transport) port() int { return t.tcp.Addr().(*net.TCPAddr).Port }

// FinalAdvertiseAddr implements memberlist.Transport: the given address,
// else the bound IP, else (bound to every interface) a private IP.
func (t *transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip != "" {
		a := net.ParseIP(ip)
		if a == nil {
			return nil, 0, fmt.Errorf("gossip: advertise address %q is not an IP", ip)
		}
		if a4 := a.To4(); a4 != nil {
			a = a4
		}
		return a, port, nil
	}
	if t.local != nil {
		return t.local, t.port(), nil
	}
	private, err := sockaddr.GetPrivateIP()
	if err != nil {
		return nil, 0, fmt.Errorf("gossip: find a private IP to advertise: %w", err)
	}
	if private == "" {
		return nil, 0, errors.New("gossip: bound to every interface and no private IP to advertise: bind a specific IP")
	}
	return net.ParseIP(private), t.port(), nil
}

// WriteTo implements memberlist.Transport.
func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport.
func (t *transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	var err error
	if ap, perr := netip.ParseAddrPort(a.Addr); perr == nil {
		_, err = t.udp.WriteToUDPAddrPort(b, ap)
	} else { // a host name: resolve it
		var ua *net.UDPAddr
		if ua, err = net.ResolveUDPAddr("udp", a.Addr); err == nil {
			_, err = t.udp.WriteToUDP(b, ua)
		}
	}
	// Taken after the write, as memberlist does: it slightly
	// underestimates round trips rather than counting local delays.
	return time.Now(), err
}

// PacketCh implements memberlist.Transport.
func (t *transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// DialTimeout implements memberlist.Transport.
func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if t.local != nil && bindable(t.local, a.Addr) {
		d.LocalAddr = &net.TCPAddr{IP: t.local}
	}
	return d.Dial("tcp", a.Addr)
}

// StreamCh implements memberlist.Transport.
func (t *transport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown implements memberlist.Transport: it closes both listeners and
// waits for their goroutines. memberlist still reads the channels while it
// calls this, but a transport whose memberlist failed to start has no
// reader, so a hand-over also gives up when done is closed.
func (t *transport) Shutdown() error {
	if t.closing.Swap(true) {
		return nil
	}
	close(t.done)
	err := errors.Join(t.tcp.Close(), t.udp.Close())
	t.wg.Wait()
	return err
}

func (t *transport) acceptStreams() {
	defer t.wg.Done()
	const maxDelay = time.Second
	var delay time.Duration
	for {
		conn, err := t.tcp.AcceptTCP()
		if err != nil {
			if t.closing.Load() {
				return
			}
			// Out of file descriptors and the like: back off, as
			// memberlist does, rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), maxDelay)
			t.logger.Printf("[ERR] memberlist: accept TCP connection: %v", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		select {
		case t.streamCh <- conn:
		case <-t.done:
			_ = conn.Close()
			return
		}
	}
}

func (t *transport) readPackets() {
	defer t.wg.Done()
	buf := make([]byte, maxPacket)
	for {
		n, from, err := t.udp.ReadFromUDPAddrPort(buf)
		ts := time.Now()
		if err != nil {
			if t.closing.Load() {
				return
			}
			t.logger.Printf("[ERR] memberlist: read UDP packet: %v", err)
			continue
		}
		if n < 1 {
			t.logger.Printf("[ERR] memberlist: UDP packet too short (%d bytes) from=%s", n, from)
			continue
		}
		// memberlist keeps slices of the packet (queued user messages,
		// compound parts), so each packet gets its own exact-size copy.
		p := &memberlist.Packet{
			Buf:       append([]byte(nil), buf[:n]...),
			From:      net.UDPAddrFromAddrPort(from),
			Timestamp: ts,
		}
		select {
		case t.packetCh <- p:
		case <-t.done:
			return
		}
	}
}

// bindable reports whether a connection to addr can leave from src: same
// address family, and not loopback towards a non-loopback destination.
func bindable(src net.IP, addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	dst := net.ParseIP(host)
	if dst == nil {
		return true // a name: let the dial fail or succeed on its own
	}
	if (src.To4() == nil) != (dst.To4() == nil) {
		return false
	}
	return !src.IsLoopback() || dst.IsLoopback()
}
