package gossip

import (
	"encoding/json"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// MemberState is a member's state as this node sees it.
type MemberState string

// Member states.
const (
	StateAlive MemberState = "alive"
	// StateSuspect is reserved and not reported yet: memberlist v0.7.0
	// exposes no member's suspicion (the Node.State it hands out is never
	// updated; the real state is private), so a suspect member shows as
	// alive until it is declared dead.
	StateSuspect MemberState = "suspect"
	StateDead    MemberState = "dead"
	StateLeft    MemberState = "left"
)

// Member is one node of the gossip pool, including dead and left members
// for Config.Retention after their last change.
type Member struct {
	Name       string            `json:"name"`
	Addr       string            `json:"addr"`
	Region     string            `json:"region"`
	Role       string            `json:"role"`
	State      MemberState       `json:"state"`
	Meta       map[string]string `json:"meta,omitempty"`
	LastChange time.Time         `json:"last_change"`
}

// Live reports whether the member is in the pool (alive or suspect).
func (m Member) Live() bool { return m.State == StateAlive || m.State == StateSuspect }

// member is the table entry behind a Member.
type member struct {
	Member
	leaving bool // a leave intent arrived while it was alive
	proto   int  // gossip protocol version from its metadata
	// to addresses it for SendBestEffort: a copy, as memberlist updates
	// its own Node under its lock.
	to memberlist.Node
}

// memberProto reads MetaProto; a member without it speaks version 1.
func memberProto(meta map[string]string) int {
	v, err := strconv.Atoi(meta[MetaProto])
	if err != nil || v < 1 {
		return 1
	}
	return v
}

// events is the memberlist.EventDelegate. memberlist calls it with its
// node lock held: it only touches the Node's own table.
type events struct{ n *Node }

var _ memberlist.EventDelegate = events{}

func (e events) NotifyJoin(node *memberlist.Node)   { e.n.memberUp(node) }
func (e events) NotifyUpdate(node *memberlist.Node) { e.n.memberUp(node) }
func (e events) NotifyLeave(node *memberlist.Node)  { e.n.memberDown(node) }

func (n *Node) memberUp(node *memberlist.Node) {
	n.updateMember(node)
	n.notify()
}

func (n *Node) updateMember(node *memberlist.Node) {
	meta := parseMeta(node.Meta)
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	m, ok := n.members[node.Name]
	if !ok {
		m = &member{Member: Member{Name: node.Name}}
		n.members[node.Name] = m
	}
	n.uncountLocked(m)
	defer n.countLocked(m)
	m.Addr = node.Address()
	m.Meta = meta
	m.Region, m.Role = meta[MetaRegion], meta[MetaRole]
	m.proto = memberProto(meta)
	m.to = memberlist.Node{Name: node.Name, Addr: node.Addr, Port: node.Port}
	if m.Role == RoleController && node.Name != n.cfg.NodeName {
		n.ctrls[node.Name] = m
	} else {
		delete(n.ctrls, node.Name)
	}
	if !m.Live() {
		if ok && node.Name != n.cfg.NodeName {
			n.revived[m.Addr] = true // back from dead or left: sync with it
			select {
			case n.kick <- struct{}{}:
			default:
			}
		}
		m.leaving = false
		m.State = StateAlive
		m.LastChange = now
		n.log.Info("member up", n.memberFields(m)...)
	}
}

func (n *Node) memberDown(node *memberlist.Node) {
	now := time.Now()
	n.mu.Lock()
	m, ok := n.members[node.Name]
	if !ok {
		meta := parseMeta(node.Meta)
		m = &member{Member: Member{Name: node.Name, Addr: node.Address(), Meta: meta, Region: meta[MetaRegion], Role: meta[MetaRole]}}
		n.members[node.Name] = m
	}
	n.uncountLocked(m)
	delete(n.ctrls, node.Name)
	st := StateDead
	if m.leaving || (node.Name == n.cfg.NodeName && n.left.Load()) {
		st = StateLeft
	}
	if m.State != st {
		m.State = st
		m.LastChange = now
		n.log.Info("member down", n.memberFields(m)...)
	}
	n.countLocked(m)
	n.mu.Unlock()
	n.notify()
}

// uncountLocked and countLocked bracket every change to a member, keeping
// the count of live members and of those speaking only protocol 1 without
// a walk over the table (a join at 1,000 members would make that O(N²)).
func (n *Node) uncountLocked(m *member) {
	if m.Live() {
		n.nLive--
		if m.proto < binaryProto {
			n.nOld--
		}
	}
}

func (n *Node) countLocked(m *member) {
	if m.Live() {
		n.nLive++
		if m.proto < binaryProto {
			n.nOld++
		}
	}
	n.live.Store(int64(n.nLive))
	n.v2.Store(n.nOld == 0 && n.cfg.proto() >= binaryProto)
}

// Members returns every member known, sorted by name: alive ones and, for
// Config.Retention, dead and left ones. The result is a copy.
func (n *Node) Members() []Member {
	n.mu.Lock()
	out := make([]Member, 0, len(n.members))
	for _, m := range n.members {
		c := m.Member
		c.Meta = make(map[string]string, len(m.Meta))
		for k, v := range m.Meta {
			c.Meta[k] = v
		}
		out = append(out, c)
	}
	n.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// reapMembersLocked forgets dead and left members older than retention.
func (n *Node) reapMembersLocked(now time.Time) int {
	reaped := 0
	for name, m := range n.members {
		if !m.Live() && now.Sub(m.LastChange) > n.cfg.Retention {
			delete(n.members, name)
			delete(n.leaves, name)
			delete(n.lvSig, name)
			reaped++
		}
	}
	return reaped
}

func parseMeta(b []byte) map[string]string {
	m := map[string]string{}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			return map[string]string{}
		}
	}
	return m
}
