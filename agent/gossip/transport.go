package gossip

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// sourceTransport is memberlist's NetTransport with TCP streams dialed from
// the node's own IP. UDP already leaves from the bound listener socket.
type sourceTransport struct {
	*memberlist.NetTransport
	local net.IP // nil when bound to an unspecified address
}

var _ memberlist.NodeAwareTransport = (*sourceTransport)(nil)

func newSourceTransport(ip net.IP, port int, conf *memberlist.Config) (*sourceTransport, error) {
	nc := &memberlist.NetTransportConfig{
		BindAddrs: []string{ip.String()},
		BindPort:  port,
		Logger:    conf.Logger,
	}
	// With port 0 the TCP listener picks the port and UDP may find it
	// taken: retry like memberlist does for its own transport.
	attempts := 1
	if port == 0 {
		attempts = 10
	}
	var err error
	for i := 0; i < attempts; i++ {
		var nt *memberlist.NetTransport
		if nt, err = memberlist.NewNetTransport(nc); err == nil {
			t := &sourceTransport{NetTransport: nt}
			if !ip.IsUnspecified() {
				t.local = ip
			}
			return t, nil
		}
	}
	return nil, fmt.Errorf("gossip: listen on %s: %w", net.JoinHostPort(ip.String(), strconv.Itoa(port)), err)
}

// DialTimeout implements memberlist.Transport.
func (t *sourceTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *sourceTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if t.local != nil && bindable(t.local, a.Addr) {
		d.LocalAddr = &net.TCPAddr{IP: t.local}
	}
	return d.Dial("tcp", a.Addr)
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
