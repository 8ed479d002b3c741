package gossip

import (
	"sync"
	"sync/atomic"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/internal/logging"
)

// retransmitFloorNodes is the smallest pool size the broadcast queue's
// retransmit limit (RetransmitMult × ⌈log10(N+1)⌉ sends per node) is
// computed for. Every node re-sends a report on first receipt, so each
// node receives about that many copies and misses one with probability
// about e^-limit. memberlist's limit for a small pool (4 sends under 10
// nodes) missed some node in a third of 6-node test runs; the floor gives
// 12 sends up to 999 nodes and 16 from 1,000, where the doubled limit used
// before (32) made every node decode each report twice as often for no
// measurable gain in delivery.
const retransmitFloorNodes = 100

// Node is one member of the gossip pool: an agent or a controller.
type Node struct {
	cfg  Config
	log  *zap.Logger
	tm   timings
	meta []byte
	addr string // advertised ip:port

	ml      *memberlist.Memberlist
	keyring *memberlist.Keyring // nil without encryption
	queue   *memberlist.TransmitLimitedQueue
	live    atomic.Int64 // live members, for the queue's retransmit limit
	v2      atomic.Bool  // every live member speaks binaryProto (wire.go)
	// dropMsg, when set (tests only), drops the user messages it returns
	// true for before they are handled: a deterministic lost packet.
	dropMsg atomic.Pointer[func([]byte) bool]
	drops   drops // refused reports and refreshes (identity.go)
	// garbage counts and logs, rate-limited, the input memberlist refused.
	garbage *logging.Limited

	mu      sync.Mutex
	members map[string]*member
	reports map[reportKey]Report
	origins map[string]*originState // index of reports by origin
	nLive   int                     // live members (countLocked)
	nOld    int                     // live members speaking protocol 1 only
	ctrls   map[string]*member      // live controllers: changes and refreshes are sent to them directly
	leaves  map[string]uint64       // member -> newest leave intent seen
	lvSig   map[string][]byte       // member -> its newest intent's signature (identity.go)
	revived map[string]bool         // addresses of members back from dead/left
	lastSeq uint64
	kick    chan struct{} // a member came back: push-pull with it

	subMu   sync.Mutex
	subs    map[int]chan struct{}
	nextSub int
	closed  bool

	lifeMu   sync.Mutex // serializes Leave and Shutdown
	left     atomic.Bool
	shutdown bool
	stop     chan struct{}
	wg       sync.WaitGroup
}

// New starts a gossip node: it binds cfg.BindAddr, then joins the seeds in
// the background, retrying every RejoinInterval (a seed that is not up yet
// is not an error).
func New(cfg Config) (*Node, error) {
	ip, port, tm, meta, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:     cfg,
		log:     cfg.Logger, // the caller's logger names the node (one "node" key per line)
		tm:      tm,
		meta:    meta,
		members: make(map[string]*member),
		leaves:  make(map[string]uint64),
		lvSig:   make(map[string][]byte),
		revived: make(map[string]bool),
		kick:    make(chan struct{}, 1),
		reports: make(map[reportKey]Report),
		origins: make(map[string]*originState),
		ctrls:   make(map[string]*member),
		subs:    make(map[int]chan struct{}),
		stop:    make(chan struct{}),
	}
	mlc := cfg.memberlistConfig()
	n.garbage = newGarbageLog(cfg.Logger.Named("memberlist").With(zap.String("node", cfg.NodeName)))
	mlc.Logger = newLimitedStdLogger(cfg.Logger.Named("memberlist"), n.garbage)
	tr, err := newTransport(ip, port, mlc.Logger)
	if err != nil {
		return nil, err
	}
	mlc.Transport = tr
	n.keyring = mlc.Keyring
	mlc.Delegate = delegate{n}
	mlc.Events = events{n}
	n.queue = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return int(max(retransmitFloorNodes, n.live.Load())) },
		RetransmitMult: mlc.RetransmitMult,
	}
	ml, err := memberlist.Create(mlc)
	if err != nil {
		_ = tr.Shutdown()
		return nil, err
	}
	n.ml = ml
	n.addr = ml.LocalNode().Address()
	n.log.Info("gossip node started", zap.String("addr", n.addr), zap.String("region", cfg.Region),
		zap.String("role", cfg.Role), zap.String("profile", cfg.Profile), zap.Bool("encrypted", len(cfg.Key) > 0), zap.Int("keys", n.KeyCount()))
	n.wg.Add(1)
	go n.background()
	return n, nil
}

// GarbageInput is how many packets and streams memberlist refused as
// undecodable, unauthenticated or malformed (logged at most once per
// interval).
func (n *Node) GarbageInput() uint64 { return n.garbage.Total() }

// LocalAddr is the advertised ip:port (the bound port when BindAddr asked
// for port 0).
func (n *Node) LocalAddr() string { return n.addr }

// Name is the node name.
func (n *Node) Name() string { return n.cfg.NodeName }

// Shutdown stops the node without a leave message (others will declare it
// dead), waits for its goroutines and closes subscriptions. Idempotent.
func (n *Node) Shutdown() error {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	if n.shutdown {
		return nil
	}
	n.shutdown = true
	close(n.stop)
	n.wg.Wait()
	err := n.ml.Shutdown()
	n.garbage.Close()
	n.closeSubs()
	n.log.Info("gossip node stopped")
	return err
}

func (n *Node) memberFields(m *member) []zap.Field {
	return []zap.Field{zap.String("member", m.Name), zap.String("member-addr", m.Addr),
		zap.String("region", m.Region), zap.String("role", m.Role), zap.String("state", string(m.State))}
}
