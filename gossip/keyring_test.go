package gossip

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestKeyRotation rotates the pool key in the three documented steps, one
// node after another with gossip running, and checks that no node ever
// sees another drop out, that reports flow after each step, and that only
// the new key admits a newcomer at the end.
func TestKeyRotation(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	const size = 4
	nodes := startCluster(t, size, func(_ int, c *Config) { c.Key = oldKey })

	// Watch membership throughout: any member seen not alive is a failure.
	var drops atomic.Int64
	var firstDrop atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			for _, n := range nodes {
				for _, m := range n.Members() {
					if !m.Live() {
						if drops.Add(1) == 1 {
							firstDrop.Store(fmt.Sprintf("%s saw %s %s", n.Name(), m.Name, m.State))
						}
					}
				}
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	steps := []struct {
		name string
		keys [][]byte
	}{
		{"add new key as secondary", [][]byte{oldKey, newKey}},
		{"make new key primary", [][]byte{newKey, oldKey}},
		{"remove old key", [][]byte{newKey}},
	}
	for i, st := range steps {
		for _, n := range nodes {
			if err := n.SetKeys(st.keys); err != nil {
				t.Fatalf("%s: %s: %v", st.name, n.Name(), err)
			}
			time.Sleep(300 * time.Millisecond) // nodes disagree for a while, as in a real rollout
		}
		for _, n := range nodes {
			if got := n.KeyCount(); got != len(st.keys) {
				t.Fatalf("%s: %s has %d keys, want %d", st.name, n.Name(), got, len(st.keys))
			}
		}
		// Reports still flow everywhere, and for a while nobody is suspected
		// to death (the fast profile declares a silent node dead in 2-5 s).
		nodes[i].Publish(Report{Service: "api", Check: st.name[:3], Status: StatusPassing})
		seq := published(t, nodes[i], "api", st.name[:3]).Seq
		waitFor(t, st.name+": report reaches every node", 10*time.Second, func() bool {
			for _, n := range nodes {
				if !hasSeq(n, nodes[i].Name(), "api", st.name[:3], seq) {
					return false
				}
			}
			return true
		})
		time.Sleep(3 * time.Second)
		if d := drops.Load(); d > 0 {
			t.Fatalf("after %q: %d observations of a member not alive; first: %v", st.name, d, firstDrop.Load())
		}
	}

	// Only the new key admits a newcomer now.
	join := func(name string, key []byte) *Node {
		cfg := testConfig(name)
		cfg.Key = key
		cfg.Seeds = []string{nodes[0].LocalAddr()}
		cfg.RejoinInterval = 300 * time.Millisecond
		return startNode(t, cfg)
	}
	stale := join("stale", oldKey)
	fresh := join("fresh", newKey)
	waitFor(t, "newcomer with the new key joins", 10*time.Second, func() bool { return liveCount(fresh) == size+1 })
	time.Sleep(time.Second)
	if liveCount(stale) != 1 {
		t.Fatalf("a node with the removed key joined: %+v", stale.Members())
	}
	if drops.Load() > 0 {
		t.Fatalf("a member dropped: %v", firstDrop.Load())
	}
}

func TestSetKeysErrors(t *testing.T) {
	plain := startNode(t, testConfig("plain"))
	if err := plain.SetKeys([][]byte{bytes.Repeat([]byte{1}, 32)}); err == nil {
		t.Fatal("turning encryption on at run time must be refused")
	}
	cfg := testConfig("enc")
	cfg.Key = bytes.Repeat([]byte{1}, 32)
	enc := startNode(t, cfg)
	if err := enc.SetKeys(nil); err == nil {
		t.Fatal("empty keyring accepted")
	}
	if err := enc.SetKeys([][]byte{{1, 2, 3}}); err == nil {
		t.Fatal("short key accepted")
	}
	if enc.KeyCount() != 1 {
		t.Fatalf("failed SetKeys changed the ring: %d keys", enc.KeyCount())
	}
}
