package dnsserver

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/evac-sh/evac/controlplane/state"
)

func TestMalformedQueries(t *testing.T) {
	srv := startServer(t, configured(t, testConfig()))
	conn, err := net.Dial("udp", srv.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(pkt []byte) *dns.Msg {
		t.Helper()
		if _, err := conn.Write(pkt); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 65535)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		return r
	}

	// A header promising a question, then garbage.
	pkt := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0x01}
	if r := send(pkt); r.Rcode != dns.RcodeFormatError || r.Id != 0x1234 {
		t.Errorf("garbage question: %v", r)
	}
	// Two questions.
	q := query("fo.example.com.", dns.TypeA)
	q.Question = append(q.Question, q.Question[0])
	b, _ := q.Pack()
	if r := send(b); r.Rcode != dns.RcodeFormatError {
		t.Errorf("two questions: %v", r)
	}
	// An ECS option with a prefix longer than the address (RFC 7871: FORMERR).
	b, _ = withEDNS(query("api.example.com.", dns.TypeA), 1232, "").Pack()
	ecs := []byte{0, 8, 0, 5, 0, 1, 40, 0, 10}   // code 8, length 5, family 1, /40, scope 0, 10
	b[len(b)-2], b[len(b)-1] = 0, byte(len(ecs)) // the OPT's RDLENGTH ends the packet
	b = append(b, ecs...)
	if r := send(b); r.Rcode != dns.RcodeFormatError {
		t.Errorf("bad ECS: %v", r)
	}
	// The server is still fine.
	if r := exchange(t, "udp", srv.udp, query("fo.example.com.", dns.TypeA)); len(r.Answer) != 2 {
		t.Errorf("after malformed queries: %v", r)
	}
}

// recorder is a fake dns.ResponseWriter.
type recorder struct {
	remote net.Addr
	msg    *dns.Msg
	raw    []byte // the last reply as written
	panics bool
}

func (w *recorder) LocalAddr() net.Addr { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (w *recorder) RemoteAddr() net.Addr {
	if w.panics {
		panic("broken writer")
	}
	return w.remote
}
func (w *recorder) WriteMsg(m *dns.Msg) error {
	w.msg = m.Copy()
	w.raw, _ = m.Pack()
	return nil
}
func (w *recorder) Write(b []byte) (int, error) {
	w.raw = append(w.raw[:0], b...)
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return 0, err
	}
	w.msg = m
	return len(b), nil
}
func (w *recorder) Close() error        { return nil }
func (w *recorder) TsigStatus() error   { return nil }
func (w *recorder) TsigTimersOnly(bool) {}
func (w *recorder) Hijack()             {}

func udpClient() net.Addr { return &net.UDPAddr{IP: net.IPv4(192, 0, 2, 99), Port: 5300} }

func TestServeDNSDirect(t *testing.T) {
	s := New(Config{})
	s.Update(configured(t, testConfig()))

	t.Run("no question", func(t *testing.T) {
		w := &recorder{remote: udpClient()}
		s.ServeDNS(w, &dns.Msg{MsgHdr: dns.MsgHdr{Id: 7}})
		if w.msg == nil || w.msg.Rcode != dns.RcodeFormatError || w.msg.Id != 7 {
			t.Fatalf("got %v", w.msg)
		}
	})
	t.Run("panic becomes SERVFAIL", func(t *testing.T) {
		w := &recorder{remote: udpClient(), panics: true}
		s.ServeDNS(w, query("fo.example.com.", dns.TypeA))
		if w.msg == nil || w.msg.Rcode != dns.RcodeServerFailure {
			t.Fatalf("got %v", w.msg)
		}
	})
	t.Run("RD copied, AA set, RA clear", func(t *testing.T) {
		for _, rd := range []bool{false, true} {
			w := &recorder{remote: udpClient()}
			q := query("fo.example.com.", dns.TypeA)
			q.RecursionDesired = rd
			s.ServeDNS(w, q)
			if w.msg.RecursionDesired != rd || !w.msg.Authoritative || w.msg.RecursionAvailable {
				t.Fatalf("rd %v: got %v", rd, w.msg.MsgHdr)
			}
		}
	})
	t.Run("nil request", func(t *testing.T) {
		s.ServeDNS(&recorder{remote: udpClient()}, nil) // must not panic
	})
	t.Run("unknown remote address", func(t *testing.T) {
		w := &recorder{remote: &net.UnixAddr{Name: "x", Net: "unix"}}
		s.ServeDNS(w, query("api.example.com.", dns.TypeA))
		if w.msg == nil || len(w.msg.Answer) != 2 {
			t.Fatalf("got %v", w.msg)
		}
	})
}

func TestUpdateRebuildsOnlyOnChange(t *testing.T) {
	s := New(Config{})
	s.Update(state.Empty()) // no config: nothing
	if s.view.Load() != nil {
		t.Fatal("view built without a config")
	}
	st := configured(t, testConfig())
	s.Update(st)
	v1 := s.view.Load()
	s.Update(st)
	// A command that changes neither serial nor config.
	st = apply(t, st, state.CmdRecordEvent, state.RecordEvent{Kind: state.EventNote, Reason: "hello"})
	s.Update(st)
	if s.view.Load() != v1 {
		t.Fatal("view rebuilt without a change")
	}
	st = withWeights(t, st, 40)
	s.Update(st)
	if v2 := s.view.Load(); v2 == v1 || v2.serial != st.Serial {
		t.Fatalf("view not rebuilt after a weight change (serial %d)", st.Serial)
	}
	v2 := s.view.Load()
	c := testConfig()
	c.TTL = 60
	st = apply(t, st, state.CmdApplyConfig, normalized(t, c))
	s.Update(st)
	if v3 := s.view.Load(); v3 == v2 || v3.soa[0].Header().Ttl != 60 {
		t.Fatal("view not rebuilt after a config change")
	}
}

func TestConcurrentQueriesAndUpdates(t *testing.T) {
	base := configured(t, testConfig())
	states := []*state.State{base, withWeights(t, base, 10, 90, 0), withWeights(t, base, 100, 0, 50)}
	s := New(Config{})
	s.Update(base)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			s.Update(states[i%len(states)])
		}
	})
	for g := range 4 {
		wg.Go(func() {
			q := withEDNS(query("api.example.com.", dns.TypeA), 1232, "10.9.8.0/24")
			for i := 0; ctx.Err() == nil; i++ {
				w := &recorder{remote: &net.UDPAddr{IP: net.IPv4(10, byte(g), byte(i), 1), Port: 1}}
				s.ServeDNS(w, q)
				if w.msg == nil || len(w.msg.Answer) != 2 || len(answerRegions(w.msg)) != 1 {
					t.Errorf("answer %v", w.msg)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()

	// Shutdown before Start, twice.
	s := New(Config{Addr: "127.0.0.1:0"})
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Fatal("Start after Shutdown succeeded")
	}

	// Start, serve, Shutdown twice, with a TCP client still connected.
	s = New(Config{Addr: "127.0.0.1:0"})
	s.Update(configured(t, testConfig()))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
	u, c := s.Addr()
	if u.(*net.UDPAddr).Port != c.(*net.TCPAddr).Port {
		t.Fatalf("UDP %v and TCP %v on different ports", u, c)
	}
	idle, err := net.Dial("tcp", c.String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	exchange(t, "tcp", c.String(), query("fo.example.com.", dns.TypeA))

	// A second server cannot take the same port.
	other := New(Config{Addr: u.String()})
	if err := other.Start(); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second server on %v: %v", u, err)
	}
	if err := other.Shutdown(ctx); err != nil {
		t.Error(err)
	}

	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := (&dns.Client{Timeout: 200 * time.Millisecond}).Exchange(query("fo.example.com.", dns.TypeA), u.String()); err == nil {
		t.Error("UDP still answering after Shutdown")
	}
	// goleak in TestMain checks that no goroutine is left.
}

func TestBadAddress(t *testing.T) {
	s := New(Config{Addr: "not an address"})
	if err := s.Start(); err == nil {
		t.Fatal("Start succeeded")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestShutdownWithExpiredContext(t *testing.T) {
	s := New(Config{Addr: "127.0.0.1:0"})
	s.Update(configured(t, testConfig()))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	_, c := s.Addr()
	conn, err := net.Dial("tcp", c.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exchange(t, "tcp", c.String(), query("fo.example.com.", dns.TypeA))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("shutdown: %v", err)
	}
	// Whatever the race between ctx and the listeners, nothing is left
	// running (goleak) and a second Shutdown is a no-op.
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
