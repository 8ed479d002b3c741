package gossip

import (
	"bytes"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// TestWrongKeyCannotJoin: nodes with another key, or none, neither join an
// encrypted pool nor get reports into it.
func TestWrongKeyCannotJoin(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	nodes := startCluster(t, 3, func(_ int, c *Config) { c.Key = key })
	nodes[1].Publish(Report{Service: "api", Check: "http", Status: StatusPassing})

	var intruders []*Node
	for _, k := range [][]byte{bytes.Repeat([]byte{8}, 32), bytes.Repeat([]byte{7}, 16), nil} {
		cfg := testConfig("intruder" + string(rune('a'+len(intruders))))
		cfg.Key = k
		cfg.Seeds = []string{nodes[0].LocalAddr(), nodes[2].LocalAddr()}
		cfg.RejoinInterval = 300 * time.Millisecond
		in := startNode(t, cfg)
		in.Publish(Report{Service: "api", Check: "http", Status: StatusFailing})
		intruders = append(intruders, in)
	}
	// Observe for several join attempts and gossip rounds.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if len(n.Members()) != 3 {
				t.Fatalf("%s admitted a member: %+v", n.Name(), n.Members())
			}
			for _, r := range n.Reports() {
				if r.Origin != "n1" {
					t.Fatalf("%s accepted a foreign report: %+v", n.Name(), r)
				}
			}
		}
		for _, in := range intruders {
			if len(in.Members()) != 1 || len(in.Reports()) != 1 {
				t.Fatalf("%s learned about the pool: %+v %+v", in.Name(), in.Members(), in.Reports())
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, ok := findReport(nodes[2], "n1", "api", "http"); !ok {
		t.Fatal("the pool itself must still gossip")
	}
}

// TestGarbageInput throws junk at the UDP and TCP gossip port of an
// unencrypted node, including junk framed as memberlist user messages that
// reach our decoder, and checks the pool still works.
func TestGarbageInput(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	target := nodes[0].LocalAddr()
	rng := rand.New(rand.NewPCG(1, 2))
	junk := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	const userMsg, compoundMsg, compressMsg, hasCrcMsg, pushPullMsg = 8, 7, 9, 12, 6
	payloads := [][]byte{
		{userMsg},
		{userMsg, msgReport},
		append([]byte{userMsg, msgReport}, []byte(`{"o":"x","s":`)...),
		append([]byte{userMsg, msgReport}, []byte(`{"o":"x","s":"api","c":"c","st":"passing","q":0}`)...),
		append([]byte{userMsg, msgReport}, []byte(`{"o":"","s":"api","c":"c","st":"passing","q":5}`)...),
		append([]byte{userMsg, msgReport}, []byte(`[1,2,3]`)...),
		append([]byte{userMsg, msgLeave}, []byte(`{"n":""}`)...),
		append([]byte{userMsg, msgState}, junk(50)...),
		append([]byte{userMsg, 0xff}, junk(20)...),
		append([]byte{userMsg, msgReportV2}, junk(40)...),
		append([]byte{userMsg, msgReportV2, 0, 1, 'x', 3, 'a', 'p', 'i'}, junk(9)...),
		append([]byte{userMsg, msgRefresh}, junk(40)...),
		append([]byte{userMsg, msgRefreshRelay}, junk(40)...),
		append([]byte{compoundMsg, 3}, junk(30)...),
		append([]byte{compressMsg}, junk(64)...),
		append([]byte{hasCrcMsg}, junk(64)...),
		append([]byte{0xf4}, junk(10)...),
	}
	for i := 0; i < 300; i++ {
		payloads = append(payloads, junk(1+rng.IntN(1500)))
	}

	udp, err := net.Dial("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = udp.Close() }()
	for _, p := range payloads {
		_, _ = udp.Write(p)
	}
	tcpPayloads := [][]byte{
		junk(100),
		append([]byte{pushPullMsg}, junk(200)...),
		append([]byte{userMsg, msgReport}, []byte(`{"o":"tcp"`)...),
		{pushPullMsg},
		{},
	}
	for _, p := range tcpPayloads {
		c, err := net.DialTimeout("tcp", target, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(p)
		_ = c.Close()
	}

	// The pool still works, and nothing from the junk was stored.
	nodes[1].Publish(Report{Service: "api", Check: "after", Status: StatusPassing})
	r := published(t, nodes[1], "api", "after")
	waitFor(t, "gossip still works", 5*time.Second, func() bool {
		return hasSeq(nodes[0], "n1", "api", "after", r.Seq) && hasSeq(nodes[2], "n1", "api", "after", r.Seq)
	})
	for _, rep := range nodes[0].Reports() {
		if rep.Origin != "n1" {
			t.Fatalf("junk stored: %+v", rep)
		}
	}
	if liveCount(nodes[0]) != 3 {
		t.Fatalf("membership disturbed: %+v", nodes[0].Members())
	}
}

// FuzzDelegate: no input to the delegate may panic.
func FuzzDelegate(f *testing.F) {
	f.Add([]byte{msgReport})
	f.Add(encodeReport(Report{Origin: "o", Service: "s", Check: "c", Status: "passing", Seq: 1, Time: time.Now()}))
	f.Add(encodeState([]Report{{Origin: "o", Service: "s", Check: "c", Status: "passing", Seq: 1, Time: time.Now()}}, []wireLeave{{Node: "x", Seq: 2}}))
	f.Add(encodeLeave(wireLeave{Node: "x", Seq: 1}))
	f.Add([]byte(`{"rs":null}`))
	f.Add(encodeReportV2(Report{Origin: "o", Service: "s", Check: "c", Status: "passing", Seq: 1, Time: time.Now()}))
	f.Add(encodeRefresh(refresh{origin: "o", seq: 2, table: 1, sent: 5, asOf: 4}))
	f.Add(append([]byte{msgRefreshRelay}, encodeRefresh(refresh{origin: "o", seq: 2, table: 1})[1:]...))
	cfg := testConfig("fuzz")
	n, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	defer func() { _ = n.Shutdown() }()
	d := delegate{n}
	f.Fuzz(func(t *testing.T, b []byte) {
		d.NotifyMsg(b)
		d.MergeRemoteState(b, false)
		_, _ = decodeReport(b)
		_, _, _, _ = decodeState(b)
		_, _ = decodeReportV2(b)
		_, _, _ = readRefresh(b)
	})
}
