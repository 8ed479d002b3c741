package raftnode

import (
	"context"
	"crypto/tls"
	"net"
)

// tlsWrappers returns the stream layer's wrappers for mutual TLS with cfg
// (see Config.TLS). The server side requires and verifies a client
// certificate against cfg.ClientCAs, or cfg.RootCAs when that is unset; the
// client side verifies the server against cfg.RootCAs and the host of the
// dialled address. Both complete the handshake before returning, under the
// caller's deadline (the peek deadline on accept, the dial timeout on dial).
func tlsWrappers(cfg *tls.Config) (server, client connWrapper) {
	srv := cfg.Clone()
	srv.ClientAuth = tls.RequireAndVerifyClientCert
	if srv.ClientCAs == nil {
		srv.ClientCAs = srv.RootCAs
	}
	server = func(ctx context.Context, c net.Conn) (net.Conn, error) {
		tc := tls.Server(c, srv)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, err
		}
		return tc, nil
	}
	client = func(ctx context.Context, c net.Conn) (net.Conn, error) {
		cc := cfg.Clone()
		if cc.ServerName == "" {
			host, _, err := net.SplitHostPort(c.RemoteAddr().String())
			if err != nil {
				return nil, err
			}
			cc.ServerName = host
		}
		tc := tls.Client(c, cc)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, err
		}
		return tc, nil
	}
	return server, client
}
