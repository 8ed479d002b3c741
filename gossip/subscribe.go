package gossip

// Subscribe returns a channel that receives a value after members or
// reports change, and a cancel function. Notifications are coalesced (the
// channel holds at most one) and never block the node: read Members() and
// Reports() after each one. The channel is closed by cancel or Shutdown.
func (n *Node) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.subMu.Lock()
	defer n.subMu.Unlock()
	if n.closed {
		close(ch)
		return ch, func() {}
	}
	id := n.nextSub
	n.nextSub++
	n.subs[id] = ch
	return ch, func() {
		n.subMu.Lock()
		defer n.subMu.Unlock()
		if c, ok := n.subs[id]; ok {
			delete(n.subs, id)
			close(c)
		}
	}
}

func (n *Node) notify() {
	n.subMu.Lock()
	defer n.subMu.Unlock()
	for _, ch := range n.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (n *Node) closeSubs() {
	n.subMu.Lock()
	defer n.subMu.Unlock()
	n.closed = true
	for id, ch := range n.subs {
		delete(n.subs, id)
		close(ch)
	}
}
