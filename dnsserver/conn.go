package dnsserver

import (
	"net"
	"sync"
	"time"
)

// tcpWriteTimeout bounds a write to a TCP client: miekg/dns sets no write
// deadline, so a client that stops reading would otherwise hold a handler
// goroutine (and Shutdown) forever.
const tcpWriteTimeout = 5 * time.Second

// connListener tracks the TCP connections it accepted so that Shutdown can
// close them when its context ends, and gives each a write deadline.
type connListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

func (l *connListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	l.conns[tc] = struct{}{}
	l.mu.Unlock()
	return tc, nil
}

// closeAll closes every connection still open.
func (l *connListener) closeAll() {
	l.mu.Lock()
	conns := make([]*trackedConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

type trackedConn struct {
	net.Conn
	l    *connListener
	once sync.Once
}

func (c *trackedConn) Write(b []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(tcpWriteTimeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
