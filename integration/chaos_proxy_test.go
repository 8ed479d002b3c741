package integration

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// delayProxy sits in front of one controller's Raft port (this kernel has
// no netem): the other controllers reach the controller through it
// (--raft-advertise-addr), and it holds every chunk of bytes for the
// current delay before passing it on. It listens on the controller's IP
// and dials the controller from the connecting peer's IP, so nftables
// rules on addresses see the same packets as without it.
type delayProxy struct {
	ln     net.Listener
	target string
	delay  atomic.Int64 // nanoseconds
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
	closed chan struct{}
}

// startDelayProxy listens on ip (a free port) and forwards to target.
func startDelayProxy(t *testing.T, ip, target string) *delayProxy {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, freePort(t, ip)))
	if err != nil {
		t.Fatal(err)
	}
	p := &delayProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, closed: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *delayProxy) addr() string { return p.ln.Addr().String() }

// setDelay sets the one-way delay of every byte from now on.
func (p *delayProxy) setDelay(d time.Duration) { p.delay.Store(int64(d)) }

func (p *delayProxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(in)
		}()
	}
}

func (p *delayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.closed:
		return false
	default:
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *delayProxy) handle(in net.Conn) {
	defer in.Close()
	if !p.track(in) {
		return
	}
	src := in.RemoteAddr().(*net.TCPAddr).IP
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 5 * time.Second}
	out, err := d.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer out.Close()
	if !p.track(out) {
		return
	}
	done := make(chan struct{}, 2)
	go func() { p.pipe(out, in); done <- struct{}{} }()
	go func() { p.pipe(in, out); done <- struct{}{} }()
	<-done
	// One direction ended: close both so the other ends too.
	in.Close()
	out.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, in)
	delete(p.conns, out)
	p.mu.Unlock()
}

type chunk struct {
	at time.Time
	b  []byte
}

// pipe copies src to dst, each chunk no earlier than its arrival plus the
// delay; order is kept.
func (p *delayProxy) pipe(dst, src net.Conn) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan chunk, 256)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case ch <- chunk{time.Now(), buf[:n]}:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		if d := time.Duration(p.delay.Load()); d > 0 {
			time.Sleep(time.Until(c.at.Add(d)))
		}
		if _, err := dst.Write(c.b); err != nil {
			return
		}
	}
}

func (p *delayProxy) close() {
	p.mu.Lock()
	close(p.closed)
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}
