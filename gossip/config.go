package gossip

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// Profiles select memberlist timings.
const (
	// ProfileLAN is memberlist's DefaultLANConfig: a failed node is marked
	// dead by all others after roughly 7-10 s.
	ProfileLAN = "lan"
	// ProfileFast is for tests and `evac dev` on one machine: probes every
	// 500 ms, gossip every 100 ms, short suspicion (dead in about 2-5 s).
	ProfileFast = "fast"
)

// Roles of a gossip node.
const (
	RoleAgent      = "agent"
	RoleController = "controller"
)

// Metadata keys always present in a member's Meta.
const (
	MetaRegion  = "region"
	MetaRole    = "role"
	MetaVersion = "version"
	// MetaProto is the highest gossip protocol version the member speaks
	// (wire.go); absent means 1.
	MetaProto = "proto"
)

// DefaultRetention is how long dead and left members, and reports no
// longer refreshed, are kept.
const DefaultRetention = 24 * time.Hour

// Config configures a Node.
type Config struct {
	NodeName string
	Region   string
	Role     string // RoleAgent | RoleController
	// BindAddr is ip:port, bound and advertised. Port 0 picks a free port
	// (see Node.LocalAddr). An unspecified IP (0.0.0.0) binds every
	// interface and advertises a private IP chosen by memberlist.
	BindAddr string
	// Seeds are host:port addresses joined at start and re-joined
	// periodically.
	Seeds []string
	// Key is an optional 16, 24 or 32-byte AES key; nil means no encryption.
	Key []byte
	// ExtraKeys are further keys accepted to decrypt (a keyring during a
	// rotation); Key stays the one used to encrypt. Requires Key.
	ExtraKeys [][]byte
	// Profile is ProfileLAN (default) or ProfileFast.
	Profile string
	// RejoinInterval defaults to 30s (lan) or 3s (fast).
	RejoinInterval time.Duration
	// HeartbeatInterval is how often a node with reports of its own
	// gossips a refresh (wire.go) while its reports are unchanged; default
	// 10s (lan) or 2s (fast). Receivers count a report as current as of
	// the refresh, so it must be well under the controllers' staleness
	// bound (60s, or 20s with --fast).
	HeartbeatInterval time.Duration
	// Meta is extra metadata (e.g. a controller's HTTP address). Region,
	// role and version are always included and may not be set here. The
	// JSON encoding of the whole must fit memberlist's 512-byte limit.
	Meta map[string]string
	// Version is advertised in metadata; defaults to the build's module
	// version, or "dev".
	Version string
	// Retention is how long dead/left members and stale reports are kept;
	// default DefaultRetention.
	Retention time.Duration
	Logger    *zap.Logger

	// ProbeInterval and ProbeTimeout override the profile's failure
	// detector timings when set (memberlist probes one member every
	// interval and suspects it when no ack comes within the timeout).
	// Consul exposes the same two for large pools and slow networks;
	// bench/gossip raises them because its 1,000 agents share two cores.
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration

	// SigningKey, on an agent, signs every report and refresh it
	// originates (identity.go); nil sends them unsigned.
	SigningKey ed25519.PrivateKey
	// Enrolment, on a controller, is checked for every report and refresh
	// received (identity.go); nil accepts them as before.
	Enrolment Enrolment

	// NoDirect stops an agent from sending its changes straight to the
	// controllers, leaving them to the flood alone (bench/gossip measures
	// the flood this way: it is the only path from a region cut off from
	// the controllers).
	NoDirect bool

	// protoOverride makes the node speak an older protocol version, so
	// tests can run a mixed fleet; 0 means protoVersion.
	protoOverride int
	// noPushPull turns memberlist's periodic push-pull off, so tests can
	// tell a change repaired by a pull from one repaired by push-pull.
	noPushPull bool
}

// timings derived from the profile, besides memberlist's own config.
type timings struct {
	rejoin    time.Duration
	reap      time.Duration
	heartbeat time.Duration
}

func (c *Config) normalize() (ip net.IP, port int, t timings, meta []byte, err error) {
	if c.NodeName == "" {
		return nil, 0, t, nil, fmt.Errorf("gossip: node name is required")
	}
	if c.Role != RoleAgent && c.Role != RoleController {
		return nil, 0, t, nil, fmt.Errorf("gossip: role %q: want %q or %q", c.Role, RoleAgent, RoleController)
	}
	host, p, err := net.SplitHostPort(c.BindAddr)
	if err != nil {
		return nil, 0, t, nil, fmt.Errorf("gossip: bind address %q: %v", c.BindAddr, err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	if ip = net.ParseIP(host); ip == nil {
		return nil, 0, t, nil, fmt.Errorf("gossip: bind address %q: host must be an IP address", c.BindAddr)
	}
	if port, err = strconv.Atoi(p); err != nil || port < 0 || port > 65535 {
		return nil, 0, t, nil, fmt.Errorf("gossip: bind address %q: invalid port", c.BindAddr)
	}
	if c.ProbeInterval < 0 || c.ProbeTimeout < 0 {
		return nil, 0, t, nil, fmt.Errorf("gossip: negative probe interval or timeout")
	}
	if c.ProbeInterval > 0 && c.ProbeTimeout > 0 && c.ProbeTimeout >= c.ProbeInterval {
		return nil, 0, t, nil, fmt.Errorf("gossip: probe timeout %s must be under the probe interval %s", c.ProbeTimeout, c.ProbeInterval)
	}
	if c.SigningKey != nil && len(c.SigningKey) != ed25519.PrivateKeySize {
		return nil, 0, t, nil, fmt.Errorf("gossip: signing key is %d bytes, want %d", len(c.SigningKey), ed25519.PrivateKeySize)
	}
	if err := validKeys(c.Key, c.ExtraKeys); err != nil {
		return nil, 0, t, nil, err
	}
	switch c.Profile {
	case "", ProfileLAN:
		c.Profile = ProfileLAN
		t = timings{rejoin: 30 * time.Second, reap: time.Minute, heartbeat: 10 * time.Second}
	case ProfileFast:
		t = timings{rejoin: 3 * time.Second, reap: 5 * time.Second, heartbeat: 2 * time.Second}
	default:
		return nil, 0, t, nil, fmt.Errorf("gossip: unknown profile %q (want %q or %q)", c.Profile, ProfileLAN, ProfileFast)
	}
	if c.RejoinInterval > 0 {
		t.rejoin = c.RejoinInterval
	}
	if c.HeartbeatInterval > 0 {
		t.heartbeat = c.HeartbeatInterval
	}
	if c.Retention <= 0 {
		c.Retention = DefaultRetention
	}
	if c.Version == "" {
		c.Version = buildVersion()
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	all := make(map[string]string, len(c.Meta)+4)
	for k, v := range c.Meta {
		if k == MetaRegion || k == MetaRole || k == MetaVersion || k == MetaProto {
			return nil, 0, t, nil, fmt.Errorf("gossip: meta key %q is reserved", k)
		}
		all[k] = v
	}
	all[MetaRegion], all[MetaRole], all[MetaVersion] = c.Region, c.Role, c.Version
	if c.proto() >= 2 { // a version 1 node advertises nothing
		all[MetaProto] = strconv.Itoa(c.proto())
	}
	if meta, err = json.Marshal(all); err != nil {
		return nil, 0, t, nil, fmt.Errorf("gossip: encode meta: %v", err)
	}
	if len(meta) > memberlist.MetaMaxSize {
		return nil, 0, t, nil, fmt.Errorf("gossip: metadata is %d bytes encoded, limit %d", len(meta), memberlist.MetaMaxSize)
	}
	return ip, port, t, meta, nil
}

// proto is the protocol version this node advertises: protoVersion, or 1
// when Config.protoOverride says so (tests of a mixed fleet).
func (c *Config) proto() int {
	if c.protoOverride > 0 {
		return c.protoOverride
	}
	return protoVersion
}

func validKeys(primary []byte, extra [][]byte) error {
	switch len(primary) {
	case 0:
		if len(extra) > 0 {
			return fmt.Errorf("gossip: extra keys without a primary key")
		}
	case 16, 24, 32:
	default:
		return fmt.Errorf("gossip: key must be 16, 24 or 32 bytes, got %d", len(primary))
	}
	for i, k := range extra {
		switch len(k) {
		case 16, 24, 32:
		default:
			return fmt.Errorf("gossip: extra key %d must be 16, 24 or 32 bytes, got %d", i+1, len(k))
		}
	}
	return nil
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// memberlistConfig builds the memberlist configuration for the profile.
func (c *Config) memberlistConfig() *memberlist.Config {
	conf := memberlist.DefaultLANConfig()
	if c.Profile == ProfileFast {
		conf.TCPTimeout = 2 * time.Second
		conf.ProbeInterval = 500 * time.Millisecond
		conf.ProbeTimeout = 300 * time.Millisecond
		conf.SuspicionMult = 3
		conf.SuspicionMaxTimeoutMult = 3
		conf.GossipInterval = 100 * time.Millisecond
		conf.PushPullInterval = 5 * time.Second
		conf.GossipToTheDeadTime = 5 * time.Second
		conf.DeadNodeReclaimTime = time.Second
		conf.AwarenessMaxMultiplier = 4
	}
	// memberlist compresses every gossip packet with LZW by default; a new
	// LZW writer per packet was the largest CPU and garbage cost at a few
	// hundred nodes, for small binary messages that barely compress.
	// Receivers decompress whatever is flagged compressed, so peers that
	// still compress are read as before.
	conf.EnableCompression = false
	if c.ProbeInterval > 0 {
		conf.ProbeInterval = c.ProbeInterval
	}
	if c.ProbeTimeout > 0 {
		conf.ProbeTimeout = c.ProbeTimeout
	}
	if c.noPushPull {
		conf.PushPullInterval = 0
	}
	conf.Name = c.NodeName
	if len(c.Key) > 0 {
		// The keyring is created here so that Node.SetKeys can rotate it.
		kr, _ := memberlist.NewKeyring(c.ExtraKeys, c.Key) // validated in normalize
		conf.Keyring = kr
	}
	conf.Logger = newStdLogger(c.Logger.Named("memberlist"))
	return conf
}
