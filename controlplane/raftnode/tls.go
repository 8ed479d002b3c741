package raftnode

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// Peer authentication under mutual TLS.
//
// A certificate signed by the Raft CA is not enough to talk to a node: the
// CA may also sign API client certificates or certificates for other
// services. Like etcd's --peer-cert-allowed-cn and Consul's
// verify_server_hostname, every peer, on both ends of a connection, must
// present a certificate that
//
//   - lists both the serverAuth and clientAuth extended key usages (a
//     controller dials and is dialled; an API client certificate is
//     clientAuth only), and
//   - names a member of the cluster: a DNS SAN equal to a member's Raft
//     server ID (case-insensitive), or an IP or DNS SAN equal to the host
//     of a member's Raft address.
//
// The members are the node's latest Raft configuration (raft's
// GetConfiguration, which includes an appended, not yet committed change).
// Before the node has a configuration (a fresh node waiting to be added),
// the Bootstrap list stands in for it; a fresh node without a Bootstrap
// list accepts any peer that passes the CA and key-usage checks, since it
// has nothing yet to protect and can only be brought in by a cluster that
// adds it. Admission therefore follows the configuration: a new member's
// certificate is accepted by the leader from the moment AddVoter (or
// AddNonvoter) appends it, and by the followers as the change replicates; a
// removed member's certificate is refused from its removal on.
//
// The dialling side also verifies, as TLS always does, that the server's
// certificate names the address it dialled (see tlsWrappers).

// memberSource returns the node's latest Raft configuration, and false
// while raft is not running yet.
type memberSource func() (raft.Configuration, bool)

// errPeerRefused marks a peer whose CA-valid certificate is not a member's.
var errPeerRefused = errors.New("raft peer certificate refused")

// refusal says why a peer's certificate was refused.
type refusal struct {
	reason      string
	subject     string
	names       []string
	fingerprint string // hex SHA-256 of the leaf certificate
}

func (r *refusal) Error() string {
	return fmt.Sprintf("%s: %s (subject %q, names %v)", errPeerRefused, r.reason, r.subject, r.names)
}

func (r *refusal) Unwrap() error { return errPeerRefused }

// peerVerifier checks peers' certificates against the cluster's members.
type peerVerifier struct {
	members   memberSource
	bootstrap []Peer
}

// verify is a tls.Config.VerifyConnection: it runs after the standard
// chain (and, on the dialling side, host name) verification.
func (v *peerVerifier) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: no certificate", errPeerRefused)
	}
	leaf := cs.PeerCertificates[0]
	sum := sha256.Sum256(leaf.Raw)
	ref := &refusal{subject: leaf.Subject.String(), names: certNames(leaf), fingerprint: hex.EncodeToString(sum[:8])}
	if !hasEKU(leaf, x509.ExtKeyUsageServerAuth) || !hasEKU(leaf, x509.ExtKeyUsageClientAuth) {
		ref.reason = "certificate must list both the serverAuth and clientAuth extended key usages (an API client certificate is not a controller's)"
		return ref
	}
	peers, source := v.currentMembers()
	if peers == nil {
		return nil // a fresh node with no bootstrap list: see the package comment
	}
	if !namesMember(leaf, peers) {
		ref.reason = "certificate names no member of the " + source + " by server ID or Raft address"
		return ref
	}
	return nil
}

// currentMembers returns the members to check against and where they come
// from; nil when there are none to check (fresh node, no bootstrap list).
func (v *peerVerifier) currentMembers() ([]Peer, string) {
	if v.members != nil {
		if cfg, ok := v.members(); ok && len(cfg.Servers) > 0 {
			peers := make([]Peer, len(cfg.Servers))
			for i, s := range cfg.Servers {
				peers[i] = Peer{ID: string(s.ID), Addr: string(s.Address)}
			}
			return peers, "Raft configuration"
		}
	}
	if len(v.bootstrap) > 0 {
		return v.bootstrap, "bootstrap list"
	}
	return nil, ""
}

func hasEKU(c *x509.Certificate, want x509.ExtKeyUsage) bool {
	for _, u := range c.ExtKeyUsage {
		if u == want || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

// namesMember reports whether c has a SAN naming one of peers: a DNS name
// equal to its ID, or an IP or DNS name equal to its address's host.
func namesMember(c *x509.Certificate, peers []Peer) bool {
	for _, p := range peers {
		for _, d := range c.DNSNames {
			if strings.EqualFold(d, p.ID) {
				return true
			}
		}
		host, _, err := net.SplitHostPort(p.Addr)
		if err != nil {
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			for _, cip := range c.IPAddresses {
				if a, ok := netip.AddrFromSlice(cip); ok && a.Unmap() == ip.Unmap() {
					return true
				}
			}
			continue
		}
		for _, d := range c.DNSNames {
			if strings.EqualFold(strings.TrimSuffix(d, "."), strings.TrimSuffix(host, ".")) {
				return true
			}
		}
	}
	return false
}

// certNames lists c's SANs for logs.
func certNames(c *x509.Certificate) []string {
	names := make([]string, 0, len(c.DNSNames)+len(c.IPAddresses)+len(c.URIs))
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	for _, u := range c.URIs {
		names = append(names, u.String())
	}
	return names
}

// refusalLog logs each refused peer once: keyed by its address's IP and
// its certificate's fingerprint (none when the handshake failed before a
// certificate was checked), so a peer retrying every heartbeat writes one
// line, not one per attempt. The set is bounded; when full it is emptied,
// which lets a peer be logged again after maxRefusalsRemembered others.
type refusalLog struct {
	log  *zap.Logger
	mu   sync.Mutex
	seen map[string]struct{}
}

const maxRefusalsRemembered = 4096

func newRefusalLog(log *zap.Logger) *refusalLog {
	return &refusalLog{log: log, seen: make(map[string]struct{})}
}

// first reports whether key has not been logged yet, and remembers it.
func (l *refusalLog) first(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[key]; ok {
		return false
	}
	if len(l.seen) >= maxRefusalsRemembered {
		clear(l.seen)
	}
	l.seen[key] = struct{}{}
	return true
}

// refused logs a failed handshake with the peer at remote (dialled when
// outbound), once per peer and certificate.
func (l *refusalLog) refused(remote net.Addr, outbound bool, err error) {
	host := remote.String()
	if h, _, e := net.SplitHostPort(host); e == nil && !outbound {
		host = h // inbound connections come from ephemeral ports
	}
	var ref *refusal
	if errors.As(err, &ref) {
		if !l.first(host + "|" + ref.fingerprint) {
			return
		}
		l.log.Warn("raft peer refused: its certificate does not name a cluster member",
			zap.String("peer", host), zap.Bool("outbound", outbound), zap.String("reason", ref.reason),
			zap.String("subject", ref.subject), zap.Strings("names", ref.names),
			zap.String("fingerprint", ref.fingerprint))
		return
	}
	if benignHandshakeError(err, outbound) || !l.first(host+"|handshake") {
		return
	}
	l.log.Warn("raft peer refused: TLS handshake failed (further failures from this peer are not logged)",
		zap.String("peer", host), zap.Bool("outbound", outbound), zap.Error(err))
}

// benignHandshakeError reports whether err is a handshake failure not worth
// a warning: a peer that went away or timed out, or, when dialling, anything
// but a certificate the node itself rejected (raft logs its failed dials).
func benignHandshakeError(err error, outbound bool) bool {
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		return false
	}
	if outbound {
		return true
	}
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// tlsWrappers returns the stream layer's wrappers for mutual TLS with cfg
// (see Config.TLS). The server side requires and verifies a client
// certificate against cfg.ClientCAs, or cfg.RootCAs when that is unset; the
// client side verifies the server against cfg.RootCAs and the host of the
// dialled address. Both sides then check that the peer's certificate is a
// member's (peerVerifier, against members and bootstrap), and log each
// refused peer once through log. Both complete the handshake before
// returning, under the caller's deadline (the peek deadline on accept, the
// dial timeout on dial).
func tlsWrappers(cfg *tls.Config, members memberSource, bootstrap []Peer, log *zap.Logger) (server, client connWrapper) {
	v := &peerVerifier{members: members, bootstrap: append([]Peer(nil), bootstrap...)}
	refusals := newRefusalLog(log)
	srv := cfg.Clone()
	srv.ClientAuth = tls.RequireAndVerifyClientCert
	if srv.ClientCAs == nil {
		srv.ClientCAs = srv.RootCAs
	}
	srv.VerifyConnection = v.verify
	server = func(ctx context.Context, c net.Conn) (net.Conn, error) {
		tc := tls.Server(c, srv)
		if err := tc.HandshakeContext(ctx); err != nil {
			refusals.refused(c.RemoteAddr(), false, err)
			return nil, err
		}
		return tc, nil
	}
	cli := cfg.Clone()
	cli.VerifyConnection = v.verify
	client = func(ctx context.Context, c net.Conn) (net.Conn, error) {
		cc := cli.Clone()
		if cc.ServerName == "" {
			host, _, err := net.SplitHostPort(c.RemoteAddr().String())
			if err != nil {
				return nil, err
			}
			cc.ServerName = host
		}
		tc := tls.Client(c, cc)
		if err := tc.HandshakeContext(ctx); err != nil {
			refusals.refused(c.RemoteAddr(), true, err)
			return nil, err
		}
		return tc, nil
	}
	return server, client
}

// latestConfiguration is the node's memberSource. It reads raft only once
// the stream layer serves, which New starts after raft.NewRaft has
// returned, so it never races with New assigning n.raft.
func (n *Node) latestConfiguration() (raft.Configuration, bool) {
	if !n.stream.serving.Load() {
		return raft.Configuration{}, false
	}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return raft.Configuration{}, false
	}
	return f.Configuration(), true
}
