package raftnode

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// The forward RPC lets a follower hand a write to the leader. After the
// forwardMagic byte the connection carries request/reply pairs, one at a
// time, each a frame: a 4-byte big-endian length, then the payload.
//
//	request: op(1) | leader-side timeout in ms (4) | body
//	  opApply        body = command bytes
//	  opAddVoter     body = uvarint len(id) | id | addr
//	  opRemoveServer body = id
//	  opAddNonvoter  body = as opAddVoter
//	  opStatus       body = empty (answered by any member, not only the leader)
//	reply:   code(1) | raft index (8) | body
//	  (codeOutcomeUnknown, 7, is new: a controller older than it reports
//	  such a failure as codeUnavailable, which its followers take as
//	  "not appended"; an older follower fails the request, unknown code,
//	  without retrying)
//	  codeOK         body = FSM response bytes (apply) or empty
//	  otherwise      body = error message
//
// Op and code numbers are only ever appended.
const (
	opApply        byte = 1
	opAddVoter     byte = 2
	opRemoveServer byte = 3
	opAddNonvoter  byte = 4 // body as opAddVoter
	opStatus       byte = 5 // empty body; any member answers, with its MemberStatus as JSON
)

const (
	codeOK             byte = 0
	codeNotLeader      byte = 1 // retry: the leader moved
	codeLeadershipLost byte = 2 // retry: ambiguous, may have committed
	codeUnavailable    byte = 3 // retry: leader shutting down, busy or out of time
	codeRejected       byte = 4 // the FSM returned an error
	codeBadFSMResponse byte = 5 // the FSM returned neither []byte nor error
	codeFailed         byte = 6 // anything else; not retried
	codeOutcomeUnknown byte = 7 // retry: the entry was appended, its commit not seen in time
)

const (
	maxFrame = 16 << 20
	// forwardIdleTimeout closes a server-side forward connection with no
	// request for this long; clients drop pooled connections sooner
	// (forwardPoolMaxIdle) to avoid reusing one the server is closing.
	forwardIdleTimeout   = 60 * time.Second
	forwardPoolMaxIdle   = 30 * time.Second
	forwardWriteTimeout  = 10 * time.Second
	forwardPoolPerLeader = 4
	// Leader-side wait when the caller's context has no deadline, and the
	// cap otherwise. The caller retries on codeUnavailable.
	forwardDefaultWait = 10 * time.Second
	forwardMaxWait     = 60 * time.Second
)

type fwdRequest struct {
	op      byte
	timeout time.Duration // how long the leader may wait
	cmd     []byte        // opApply
	id      string        // opAddVoter, opRemoveServer
	addr    string        // opAddVoter
}

type fwdReply struct {
	code  byte
	index uint64
	body  []byte
}

func encodeRequest(r fwdRequest) []byte {
	ms := r.timeout.Milliseconds()
	ms = min(max(ms, 1), int64(forwardMaxWait/time.Millisecond))
	b := make([]byte, 0, 5+len(r.cmd)+len(r.id)+len(r.addr)+binary.MaxVarintLen64)
	b = append(b, r.op)
	b = binary.BigEndian.AppendUint32(b, uint32(ms))
	switch r.op {
	case opApply:
		b = append(b, r.cmd...)
	case opAddVoter, opAddNonvoter:
		b = binary.AppendUvarint(b, uint64(len(r.id)))
		b = append(b, r.id...)
		b = append(b, r.addr...)
	case opRemoveServer:
		b = append(b, r.id...)
	}
	return b
}

func decodeRequest(b []byte) (fwdRequest, error) {
	if len(b) < 5 {
		return fwdRequest{}, fmt.Errorf("request of %d bytes is too short", len(b))
	}
	r := fwdRequest{
		op:      b[0],
		timeout: time.Duration(binary.BigEndian.Uint32(b[1:5])) * time.Millisecond,
	}
	body := b[5:]
	switch r.op {
	case opApply:
		r.cmd = body
	case opStatus:
	case opAddVoter, opAddNonvoter:
		n, k := binary.Uvarint(body)
		if k <= 0 || n > uint64(len(body)-k) {
			return fwdRequest{}, errors.New("add-voter request: bad id length")
		}
		r.id = string(body[k : k+int(n)])
		r.addr = string(body[k+int(n):])
	case opRemoveServer:
		r.id = string(body)
	default:
		return fwdRequest{}, fmt.Errorf("unknown op %d", r.op)
	}
	return r, nil
}

func encodeReply(r fwdReply) []byte {
	b := make([]byte, 0, 9+len(r.body))
	b = append(b, r.code)
	b = binary.BigEndian.AppendUint64(b, r.index)
	return append(b, r.body...)
}

func decodeReply(b []byte) (fwdReply, error) {
	if len(b) < 9 {
		return fwdReply{}, fmt.Errorf("reply of %d bytes is too short", len(b))
	}
	return fwdReply{code: b[0], index: binary.BigEndian.Uint64(b[1:9]), body: b[9:]}, nil
}

// writeFrame writes one length-prefixed frame with a single Write.
func writeFrame(w io.Writer, payload []byte) error {
	if len(payload) > maxFrame {
		return fmt.Errorf("frame of %d bytes exceeds the %d byte limit", len(payload), maxFrame)
	}
	buf := make([]byte, 4, 4+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(len(payload)))
	_, err := w.Write(append(buf, payload...))
	return err
}

func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return nil, fmt.Errorf("frame of %d bytes exceeds the %d byte limit", n, maxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// serveForward answers forward requests on one connection until it fails,
// idles out or the node shuts down (the stream layer closes it). It runs on
// the stream layer's per-connection goroutine.
func (n *Node) serveForward(c net.Conn) {
	defer func() { _ = c.Close() }()
	for {
		_ = c.SetReadDeadline(time.Now().Add(forwardIdleTimeout))
		payload, err := readFrame(c)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				n.log.Debug("forward connection ended", zap.Stringer("remote-addr", c.RemoteAddr()), zap.Error(err))
			}
			return
		}
		var rep fwdReply
		if req, err := decodeRequest(payload); err != nil {
			rep = fwdReply{code: codeFailed, body: []byte("bad forward request: " + err.Error())}
		} else if req.op == opStatus {
			b, _ := json.Marshal(n.status()) // membership.go
			rep = fwdReply{code: codeOK, body: b}
		} else {
			rep = n.serveRequest(req)
		}
		_ = c.SetWriteDeadline(time.Now().Add(forwardWriteTimeout))
		if err := writeFrame(c, encodeReply(rep)); err != nil {
			n.log.Debug("forward reply not sent", zap.Stringer("remote-addr", c.RemoteAddr()), zap.Error(err))
			return
		}
	}
}

// serveRequest runs a forwarded request on this node, which should be the
// leader; if not, raft says ErrNotLeader and the caller retries elsewhere.
func (n *Node) serveRequest(req fwdRequest) fwdReply {
	wait := req.timeout
	if wait <= 0 || wait > forwardMaxWait {
		wait = forwardDefaultWait
	}
	ctx, cancel := context.WithTimeout(n.ctx, wait)
	defer cancel()
	body, index, err := n.execLocal(ctx, req)
	if err == nil {
		return fwdReply{code: codeOK, index: index, body: body}
	}
	var rej *rejectedError
	switch {
	case errors.As(err, &rej):
		return fwdReply{code: codeRejected, index: index, body: []byte(rej.err.Error())}
	case errors.Is(err, ErrBadFSMResponse):
		return fwdReply{code: codeBadFSMResponse, index: index, body: []byte(err.Error())}
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fwdReply{code: codeNotLeader, body: []byte(err.Error())}
	case errors.Is(err, raft.ErrLeadershipLost):
		return fwdReply{code: codeLeadershipLost, body: []byte(err.Error())}
	case errors.Is(err, ErrOutcomeUnknown):
		return fwdReply{code: codeOutcomeUnknown, body: []byte(err.Error())}
	case retryable(err), errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, ErrShutdown),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fwdReply{code: codeUnavailable, body: []byte(err.Error())}
	default:
		return fwdReply{code: codeFailed, body: []byte(err.Error())}
	}
}

// replyError turns a reply from the leader at addr into this package's
// errors, nil for codeOK.
func replyError(addr string, rep fwdReply) error {
	msg := string(rep.body)
	switch rep.code {
	case codeOK:
		return nil
	case codeNotLeader:
		return fmt.Errorf("forwarded to %s: %w (%s)", addr, ErrNotLeader, msg)
	case codeLeadershipLost:
		return fmt.Errorf("forwarded to %s: %w", addr, raft.ErrLeadershipLost)
	case codeUnavailable:
		return fmt.Errorf("forwarded to %s: %w: %s", addr, errUnavailable, msg)
	case codeOutcomeUnknown:
		return &ambiguousError{err: fmt.Errorf("forwarded to %s: %w: %s", addr, errUnavailable, msg)}
	case codeRejected:
		return &rejectedError{err: errors.New(msg)}
	case codeBadFSMResponse:
		return fmt.Errorf("forwarded to %s: %w: %s", addr, ErrBadFSMResponse, msg)
	default:
		return fmt.Errorf("forwarded to %s: leader failed the request: %s", addr, msg)
	}
}

// forwardPool keeps a few idle forward connections per leader address.
type forwardPool struct {
	stream *streamLayer

	mu     sync.Mutex
	closed bool
	idle   map[string][]idleConn
}

type idleConn struct {
	c     net.Conn
	since time.Time
}

func newForwardPool(s *streamLayer) *forwardPool {
	return &forwardPool{stream: s, idle: make(map[string][]idleConn)}
}

func (p *forwardPool) get(ctx context.Context, addr string) (net.Conn, error) {
	p.mu.Lock()
	for conns := p.idle[addr]; len(conns) > 0; conns = p.idle[addr] {
		ic := conns[len(conns)-1]
		p.idle[addr] = conns[:len(conns)-1]
		if time.Since(ic.since) < forwardPoolMaxIdle {
			p.mu.Unlock()
			return ic.c, nil
		}
		_ = ic.c.Close()
	}
	p.mu.Unlock()
	return p.stream.dialForward(ctx, addr)
}

func (p *forwardPool) put(addr string, c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle[addr]) >= forwardPoolPerLeader {
		_ = c.Close()
		return
	}
	p.idle[addr] = append(p.idle[addr], idleConn{c: c, since: time.Now()})
	// Drop expired connections, e.g. to a former leader.
	for a, conns := range p.idle {
		kept := conns[:0]
		for _, ic := range conns {
			if time.Since(ic.since) < forwardPoolMaxIdle {
				kept = append(kept, ic)
			} else {
				_ = ic.c.Close()
			}
		}
		if len(kept) == 0 {
			delete(p.idle, a)
		} else {
			p.idle[a] = kept
		}
	}
}

func (p *forwardPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for addr, conns := range p.idle {
		for _, ic := range conns {
			_ = ic.c.Close()
		}
		delete(p.idle, addr)
	}
}

// pastDeadline unblocks I/O at once when set as a deadline.
var pastDeadline = time.Unix(1, 0)

// roundTrip sends req to the leader at addr and returns the decoded reply
// (whose code may still be an error) or a transport error. Cancelling ctx
// unblocks it at once. A failure after the request was written is
// ambiguous (ErrOutcomeUnknown): the leader may be acting on it.
func (p *forwardPool) roundTrip(ctx context.Context, addr string, req fwdRequest) (fwdReply, error) {
	c, err := p.get(ctx, addr)
	if err != nil {
		if ctx.Err() != nil {
			return fwdReply{}, ctx.Err()
		}
		return fwdReply{}, &transportError{err}
	}
	deadline, _ := ctx.Deadline() // zero: none
	_ = c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(pastDeadline) })
	err = writeFrame(c, encodeRequest(req))
	sent := err == nil
	var payload []byte
	if sent {
		payload, err = readFrame(c)
	}
	if !stop() || ctx.Err() != nil {
		_ = c.Close()
		if sent {
			return fwdReply{}, &ambiguousError{err: ctx.Err()}
		}
		return fwdReply{}, ctx.Err()
	}
	if err != nil {
		_ = c.Close()
		terr := &transportError{fmt.Errorf("forward to %s: %w", addr, err)}
		if sent {
			return fwdReply{}, &ambiguousError{err: terr}
		}
		return fwdReply{}, terr
	}
	rep, err := decodeReply(payload)
	if err != nil {
		_ = c.Close()
		return fwdReply{}, fmt.Errorf("forward to %s: %w", addr, err)
	}
	_ = c.SetDeadline(time.Time{})
	p.put(addr, c)
	return rep, nil
}
