package raftnode

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// Timing selects the Raft timeouts.
type Timing int

const (
	// TimingDefault is raft.DefaultConfig: 1 s heartbeat and election
	// timeouts, 500 ms leader lease. For production across regions.
	TimingDefault Timing = iota
	// TimingFast is for tests and `evac dev` (all controllers on one host):
	// see fastHeartbeat and friends.
	TimingFast
)

// TimingFast values. A follower starts an election after a random
// 300–600 ms without hearing from the leader (the leader heartbeats every
// HeartbeatTimeout/10 = 30 ms, so ten heartbeats must go missing), a
// candidate waits 300–600 ms for votes, and a leader that cannot reach a
// quorum for 150 ms steps down. Pre-vote (on by default in raft v1.8) keeps
// a briefly starved follower from bumping the term.
//
// Measured with -race on 2 cores next to 9 CPU-bound processes, a 3-node
// cluster taking ~120 writes/s for 20 s: 200/200/100 ms stepped down or
// re-elected in most runs; 250/250/125 and these values held one leader and
// one term in every run. A new leader appears 0.3–0.7 s after the old one
// is killed (up to ~1 s under that load).
const (
	fastHeartbeat     = 300 * time.Millisecond
	fastElection      = 300 * time.Millisecond
	fastLeaderLease   = 150 * time.Millisecond
	fastCommitTimeout = 20 * time.Millisecond
)

const (
	defaultSnapshotThreshold = 8192 // raft.DefaultConfig's value
	snapshotsRetained        = 3
	transportMaxPool         = 3
	transportTimeout         = 10 * time.Second
)

// Config configures one controller's Raft node.
type Config struct {
	// NodeID is this node's stable Raft server ID.
	NodeID string
	// DataDir holds the raft-wal under DataDir/raft/wal and file snapshots
	// under DataDir/raft/snapshots (the newest 3 are kept). Everything
	// under DataDir/raft is kept 0600 (directories 0700) whatever the
	// umask: see filemodes.go.
	DataDir string
	// RaftAddr is the ip:port to bind and advertise, e.g. 127.0.9.1:7301.
	// The IP must be a literal, specific address (not 0.0.0.0): outbound
	// connections are bound to it too, so per-region loopback partitions
	// apply to this node's traffic. Port 0 is not supported.
	RaftAddr string
	// AdvertiseAddr, if set, is the ip:port the other nodes reach this
	// node's Raft at instead of RaftAddr (a proxy or a NAT in between); the
	// Bootstrap list names this node by it. Outbound connections are still
	// bound to RaftAddr's IP.
	AdvertiseAddr string
	// Bootstrap lists the initial voters, the same list on every node. A
	// node bootstraps only when it has no Raft state yet and finds itself in
	// the list; otherwise it waits to be added with AddVoter.
	Bootstrap []Peer
	// Timing selects TimingDefault or TimingFast.
	Timing Timing
	// Logger receives raft's and this package's logs. Nil means no logs.
	Logger *zap.Logger
	// TLS, when set, wraps every Raft and forwarding connection, accepted
	// and dialled, in mutual TLS with this one config: it presents
	// Certificates and verifies peers against RootCAs (ClientCAs, if set,
	// for incoming connections). A peer's certificate must also list the
	// serverAuth and clientAuth key usages and name a member of the current
	// Raft configuration (or of Bootstrap before there is one): its server
	// ID as a DNS SAN, or its Raft address's host as an IP or DNS SAN; see
	// tls.go. A dialled peer's certificate must name the dialled address
	// too. Nil means plain TCP.
	TLS *tls.Config
	// SnapshotThreshold is the number of log entries between snapshots;
	// 0 means 8192.
	SnapshotThreshold uint64
	// SnapshotInterval is how often raft checks whether SnapshotThreshold
	// entries have accumulated (it waits a random time between one and two
	// intervals); 0 means 2 minutes.
	SnapshotInterval time.Duration
	// TrailingLogs is how many entries stay in the log after a snapshot, so
	// that a follower slightly behind catches up from the log rather than
	// by a full snapshot transfer; 0 means 10240.
	TrailingLogs uint64
	// Edge makes this node an edge replica: a non-voter for good. It may
	// not be in Bootstrap, it refuses to start when its configuration
	// lists it as a voter, it says it is an edge when probed (so the
	// cluster refuses to make it a voter), and should it ever lead it
	// hands leadership away at once (see edge.go).
	Edge bool
	// DNSSECKeys is this node's DNSSEC key set as its status probe shows
	// it (public key tags and a fingerprint, no key material); "" none.
	DNSSECKeys string
	// DNSSECKeyIDs are the ids of this node's DNSSEC keys (tag/algorithm/
	// flags/hash of the public key), as its status probe shows them.
	// Node.SetDNSSECKeys replaces both after a reload.
	DNSSECKeyIDs []string
	// KnownCommands is the highest command type this node's FSM applies,
	// as its status probe shows it, so a leader can hold back a command
	// that a member of an older release would skip (0: not said, as by
	// releases before it was added).
	KnownCommands int
}

// Peer is one initial voter: its Raft server ID and address.
type Peer struct {
	ID   string
	Addr string
}

// ParsePeers parses "id=host:port,id2=host:port". Spaces around entries are
// ignored; an empty string yields no peers. IDs and addresses must be
// unique.
func ParsePeers(s string) ([]Peer, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	peers := make([]Peer, 0, len(parts))
	ids := make(map[string]int, len(parts))
	addrs := make(map[string]int, len(parts))
	for i, part := range parts {
		n := i + 1
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("%w: peer %d is empty (stray comma?)", ErrInvalidConfig, n)
		}
		id, addr, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%w: peer %d %q: missing '=' (want id=host:port)", ErrInvalidConfig, n, part)
		}
		id, addr = strings.TrimSpace(id), strings.TrimSpace(addr)
		if err := validateID(id); err != nil {
			return nil, fmt.Errorf("%w: peer %d %q: %w", ErrInvalidConfig, n, part, err)
		}
		if err := validatePeerAddr(addr); err != nil {
			return nil, fmt.Errorf("%w: peer %d %q: %w", ErrInvalidConfig, n, part, err)
		}
		if prev, dup := ids[id]; dup {
			return nil, fmt.Errorf("%w: peer %d: id %q already used by peer %d", ErrInvalidConfig, n, id, prev)
		}
		if prev, dup := addrs[addr]; dup {
			return nil, fmt.Errorf("%w: peer %d: address %q already used by peer %d", ErrInvalidConfig, n, addr, prev)
		}
		ids[id], addrs[addr] = n, n
		peers = append(peers, Peer{ID: id, Addr: addr})
	}
	return peers, nil
}

// validateID accepts letters, digits, '.', '_' and '-', 1–64 characters.
func validateID(id string) error {
	if id == "" {
		return fmt.Errorf("empty id")
	}
	if len(id) > 64 {
		return fmt.Errorf("id longer than 64 characters")
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return fmt.Errorf("id %q: character %q not allowed (use letters, digits, '.', '_', '-')", id, r)
		}
	}
	return nil
}

// validatePeerAddr checks host:port with a non-empty host and a port in
// 1..65535.
func validatePeerAddr(addr string) error {
	if addr == "" {
		return fmt.Errorf("empty address")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("address %q: empty host", addr)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return fmt.Errorf("address %q: port %q is not in 1..65535", addr, port)
	}
	return nil
}

// parseRaftAddr checks that addr is a literal, specific ip:port usable both
// to bind and to advertise.
func parseRaftAddr(addr string) (netip.AddrPort, error) {
	if err := validatePeerAddr(addr); err != nil {
		return netip.AddrPort{}, err
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: host must be an IP literal: %w", addr, err)
	}
	if ap.Addr().IsUnspecified() {
		return netip.AddrPort{}, fmt.Errorf("address %q: unspecified IP cannot be advertised", addr)
	}
	return ap, nil
}

// advertised is the address the other nodes reach this node at.
func (cfg *Config) advertised() string {
	if cfg.AdvertiseAddr != "" {
		return cfg.AdvertiseAddr
	}
	return cfg.RaftAddr
}

// validate checks cfg and returns the parsed RaftAddr and advertised address.
func (cfg *Config) validate() (netip.AddrPort, netip.AddrPort, error) {
	var adv netip.AddrPort
	if cfg.AdvertiseAddr != "" {
		var err error
		if adv, err = parseRaftAddr(cfg.AdvertiseAddr); err != nil {
			return netip.AddrPort{}, netip.AddrPort{}, fmt.Errorf("%w: AdvertiseAddr: %w", ErrInvalidConfig, err)
		}
	}
	bind, err := cfg.validateAddrs()
	if err != nil {
		return netip.AddrPort{}, netip.AddrPort{}, err
	}
	if cfg.AdvertiseAddr == "" {
		adv = bind
	}
	return bind, adv, nil
}

func (cfg *Config) validateAddrs() (netip.AddrPort, error) {
	if err := validateID(cfg.NodeID); err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: NodeID: %w", ErrInvalidConfig, err)
	}
	if cfg.DataDir == "" {
		return netip.AddrPort{}, fmt.Errorf("%w: DataDir is empty", ErrInvalidConfig)
	}
	ap, err := parseRaftAddr(cfg.RaftAddr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: RaftAddr: %w", ErrInvalidConfig, err)
	}
	if cfg.Timing != TimingDefault && cfg.Timing != TimingFast {
		return netip.AddrPort{}, fmt.Errorf("%w: unknown Timing %d", ErrInvalidConfig, cfg.Timing)
	}
	ids := make(map[string]bool, len(cfg.Bootstrap))
	addrs := make(map[string]bool, len(cfg.Bootstrap))
	for i, p := range cfg.Bootstrap {
		if err := validateID(p.ID); err != nil {
			return netip.AddrPort{}, fmt.Errorf("%w: Bootstrap[%d]: %w", ErrInvalidConfig, i, err)
		}
		if err := validatePeerAddr(p.Addr); err != nil {
			return netip.AddrPort{}, fmt.Errorf("%w: Bootstrap[%d]: %w", ErrInvalidConfig, i, err)
		}
		if ids[p.ID] || addrs[p.Addr] {
			return netip.AddrPort{}, fmt.Errorf("%w: Bootstrap[%d]: duplicate id %q or address %q", ErrInvalidConfig, i, p.ID, p.Addr)
		}
		ids[p.ID], addrs[p.Addr] = true, true
		if p.ID == cfg.NodeID && p.Addr != cfg.advertised() {
			return netip.AddrPort{}, fmt.Errorf("%w: Bootstrap lists this node %q at %q but its advertised Raft address is %q", ErrInvalidConfig, p.ID, p.Addr, cfg.advertised())
		}
		if cfg.Edge && (p.ID == cfg.NodeID || p.Addr == cfg.advertised()) {
			return netip.AddrPort{}, fmt.Errorf("%w: Bootstrap lists this node (%s at %s), but an edge is never a voter: leave it out of the bootstrap list and join it with --join-cluster", ErrInvalidConfig, p.ID, p.Addr)
		}
		if p.Addr == cfg.advertised() && p.ID != cfg.NodeID {
			return netip.AddrPort{}, fmt.Errorf("%w: Bootstrap lists this node's Raft address %q under id %q, but NodeID is %q", ErrInvalidConfig, p.Addr, p.ID, cfg.NodeID)
		}
	}
	return ap, nil
}

// bootstrapsSelf reports whether cfg.Bootstrap includes this node.
func (cfg *Config) bootstrapsSelf() bool {
	for _, p := range cfg.Bootstrap {
		if p.ID == cfg.NodeID {
			return true
		}
	}
	return false
}

// raftConfig builds the raft.Config for cfg.
func (cfg *Config) raftConfig(logger *hclogZap) (*raft.Config, error) {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = logger
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	if rc.SnapshotThreshold == 0 {
		rc.SnapshotThreshold = defaultSnapshotThreshold
	}
	if cfg.SnapshotInterval != 0 {
		rc.SnapshotInterval = cfg.SnapshotInterval
	}
	if cfg.TrailingLogs != 0 {
		rc.TrailingLogs = cfg.TrailingLogs
	}
	if cfg.Timing == TimingFast {
		rc.HeartbeatTimeout = fastHeartbeat
		rc.ElectionTimeout = fastElection
		rc.LeaderLeaseTimeout = fastLeaderLease
		rc.CommitTimeout = fastCommitTimeout
	}
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return rc, nil
}
