package checks

import (
	"context"
	"fmt"
	"net"
)

// sourceDialer dials TCP from a fixed source address when that can work:
// a loopback source can only reach loopback targets, and the source must be
// of the target's address family. Otherwise it lets the kernel choose, so a
// misplaced SourceIP degrades to an unbound probe instead of a false failure.
type sourceDialer struct {
	src      net.IP // nil: let the kernel choose
	resolver *net.Resolver
}

func (d *sourceDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	if d.src == nil {
		return nd.DialContext(ctx, network, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(host)
	if ip == nil {
		ips, err := d.resolver.LookupIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("lookup %s: no addresses", host)
		}
		ip = ips[0]
		for _, cand := range ips {
			if sameFamily(cand, d.src) {
				ip = cand
				break
			}
		}
	}
	if bindable(d.src, ip) {
		nd.LocalAddr = &net.TCPAddr{IP: d.src}
	}
	return nd.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
}

func sameFamily(a, b net.IP) bool { return (a.To4() == nil) == (b.To4() == nil) }

// bindable reports whether a connection to dst may leave from src.
func bindable(src, dst net.IP) bool {
	if !sameFamily(src, dst) {
		return false
	}
	if src.IsLoopback() && !dst.IsLoopback() {
		return false
	}
	return true
}
