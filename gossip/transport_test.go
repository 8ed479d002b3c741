package gossip

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestTransportSourceAddress: TCP streams and UDP packets leave from the
// node's own IP, not the kernel's default 127.0.0.1.
func TestTransportSourceAddress(t *testing.T) {
	tr, err := newTransport(net.ParseIP("127.0.3.7"), 0, newStdLogger(zap.NewNop()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tr.Shutdown() }()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	accepted := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- err.Error()
			return
		}
		accepted <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		_ = c.Close()
	}()
	c, err := tr.DialTimeout(ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if got := <-accepted; got != "127.0.3.7" {
		t.Fatalf("TCP left from %s", got)
	}

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pc.Close() }()
	if _, err := tr.WriteTo([]byte("x"), pc.LocalAddr().String()); err != nil {
		t.Fatal(err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 16)
	_, from, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if ip := from.(*net.UDPAddr).IP.String(); ip != "127.0.3.7" {
		t.Fatalf("UDP left from %s", ip)
	}

	if bindable(net.ParseIP("127.0.3.7"), "192.0.2.1:7946") || bindable(net.ParseIP("127.0.3.7"), "[::1]:7946") {
		t.Fatal("must not bind loopback towards public or other-family addresses")
	}
}

// TestTransportPackets: each packet is handed on in a buffer of its own,
// exactly its size (not a shared or 64 KiB one), with its sender; a packet
// to a host name is resolved and sent.
func TestTransportPackets(t *testing.T) {
	tr, err := newTransport(net.ParseIP("127.0.3.8"), 0, newStdLogger(zap.NewNop()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tr.Shutdown() }()
	pc, err := net.ListenPacket("udp", "127.0.3.9:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pc.Close() }()
	to := tr.udp.LocalAddr()
	sent := []string{"first packet", "2nd"}
	for _, p := range sent {
		if _, err := pc.WriteTo([]byte(p), to); err != nil {
			t.Fatal(err)
		}
	}
	var got []*memberlist.Packet
	for range sent {
		select {
		case p := <-tr.PacketCh():
			got = append(got, p)
		case <-time.After(2 * time.Second):
			t.Fatal("no packet")
		}
	}
	for i, p := range got {
		if string(p.Buf) != sent[i] || cap(p.Buf) > len(sent[i])+8 {
			t.Errorf("packet %d: %q (cap %d), want %q in its own buffer", i, p.Buf, cap(p.Buf), sent[i])
		}
		if p.From.String() != pc.LocalAddr().String() || p.Timestamp.IsZero() {
			t.Errorf("packet %d from %s at %v", i, p.From, p.Timestamp)
		}
	}

	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	if _, err := tr.WriteTo([]byte("by name"), net.JoinHostPort("localhost", port)); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.WriteTo([]byte("x"), "no-port"); err == nil {
		t.Error("wrote to an address without a port")
	}
}

// TestTransportShutdownWithoutReader: a transport whose memberlist never
// started (nobody reads its channels) still shuts down with a packet and a
// stream waiting to be handed over.
func TestTransportShutdownWithoutReader(t *testing.T) {
	tr, err := newTransport(net.ParseIP("127.0.3.8"), 0, newStdLogger(zap.NewNop()))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.3.9:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pc.Close() }()
	if _, err := pc.WriteTo([]byte("x"), tr.udp.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", tr.tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	time.Sleep(100 * time.Millisecond) // both are read and waiting
	done := make(chan error, 1)
	go func() { done <- tr.Shutdown() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown hung")
	}
	if err := tr.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

// TestNodesOnRegionAddresses: nodes on different loopback subnets advertise
// and see each other's own addresses.
func TestNodesOnRegionAddresses(t *testing.T) {
	a := testConfig("a")
	a.BindAddr = "127.0.4.1:0"
	na := startNode(t, a)
	b := testConfig("b")
	b.BindAddr = "127.0.5.1:0"
	b.Region = "r2"
	b.Seeds = []string{na.LocalAddr()}
	nb := startNode(t, b)
	waitFor(t, "joined", 5*time.Second, func() bool { return liveCount(na) == 2 && liveCount(nb) == 2 })
	for _, m := range na.Members() {
		if m.Name == "b" && (!strings.HasPrefix(m.Addr, "127.0.5.1:") || m.Region != "r2") {
			t.Fatalf("member b: %+v", m)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	base := testConfig("x")
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no name", func(c *Config) { c.NodeName = "" }, "node name"},
		{"bad role", func(c *Config) { c.Role = "boss" }, "role"},
		{"bad addr", func(c *Config) { c.BindAddr = "nope" }, "bind address"},
		{"hostname addr", func(c *Config) { c.BindAddr = "localhost:0" }, "must be an IP"},
		{"bad port", func(c *Config) { c.BindAddr = "127.0.0.1:99999" }, "invalid port"},
		{"bad key", func(c *Config) { c.Key = []byte("short") }, "16, 24 or 32"},
		{"bad profile", func(c *Config) { c.Profile = "wan" }, "unknown profile"},
		{"reserved meta", func(c *Config) { c.Meta = map[string]string{"region": "x"} }, "reserved"},
		{"negative probe", func(c *Config) { c.ProbeTimeout = -time.Second }, "negative probe"},
		{"probe timeout over interval", func(c *Config) { c.ProbeInterval, c.ProbeTimeout = time.Second, 2*time.Second }, "under the probe interval"},
		{"big meta", func(c *Config) { c.Meta = map[string]string{"x": strings.Repeat("y", 600)} }, "limit 512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.mod(&c)
			_, err := New(c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// A port in use is an error, not a hang.
	n := startNode(t, base)
	c := base
	c.NodeName = "y"
	c.BindAddr = n.LocalAddr()
	if _, err := New(c); err == nil {
		t.Fatal("bound a port in use")
	}
}

func TestLogAdapter(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := newStdLogger(zap.New(core))
	l.Printf("[DEBUG] memberlist: a")
	l.Printf("[INFO] memberlist: b")
	l.Printf("[WARN] memberlist: c")
	l.Printf("[ERR] memberlist: d")
	l.Printf("no level")
	l.Printf("[ERR] memberlist: Failed to send indirect UDP ping: write udp 127.0.1.2:7946->127.0.3.1:7946: use of closed network connection")
	want := []struct {
		lvl zapcore.Level
		msg string
	}{{zapcore.DebugLevel, "a"}, {zapcore.InfoLevel, "b"}, {zapcore.WarnLevel, "c"}, {zapcore.ErrorLevel, "d"}, {zapcore.InfoLevel, "no level"},
		{zapcore.DebugLevel, "Failed to send indirect UDP ping: write udp 127.0.1.2:7946->127.0.3.1:7946: use of closed network connection"}}
	got := logs.All()
	if len(got) != len(want) {
		t.Fatalf("got %d entries", len(got))
	}
	for i, w := range want {
		if got[i].Level != w.lvl || got[i].Message != w.msg {
			t.Errorf("entry %d: %s %q", i, got[i].Level, got[i].Message)
		}
	}
}
