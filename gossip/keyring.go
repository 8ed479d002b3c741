package gossip

import (
	"bytes"
	"errors"
	"fmt"

	"go.uber.org/zap"
)

// SetKeys replaces the keyring: keys[0] becomes the primary key (used to
// encrypt), every key in keys is accepted to decrypt, and keys not listed
// are removed. Messages in flight under a removed key are dropped, so a
// rotation goes in three steps, each applied on every node before the next
// one: add the new key as a secondary; make it primary; remove the old
// one. A node started without encryption cannot turn it on here.
func (n *Node) SetKeys(keys [][]byte) error {
	if len(keys) == 0 {
		return errors.New("gossip: SetKeys needs at least one key")
	}
	if err := validKeys(keys[0], keys[1:]); err != nil {
		return err
	}
	kr := n.keyring
	if kr == nil {
		return errors.New("gossip: this node was started without a gossip key; restart it with one")
	}
	for _, k := range keys {
		if err := kr.AddKey(k); err != nil {
			return fmt.Errorf("gossip: add key: %w", err)
		}
	}
	if err := kr.UseKey(keys[0]); err != nil {
		return fmt.Errorf("gossip: use primary key: %w", err)
	}
	// Collect first: RemoveKey reorders the ring's slice in place.
	var drop [][]byte
	for _, have := range kr.GetKeys() {
		keep := false
		for _, k := range keys {
			if bytes.Equal(have, k) {
				keep = true
				break
			}
		}
		if !keep {
			drop = append(drop, append([]byte(nil), have...))
		}
	}
	for _, k := range drop {
		if err := kr.RemoveKey(k); err != nil {
			return fmt.Errorf("gossip: remove key: %w", err)
		}
	}
	removed := len(drop)
	n.log.Info("gossip keyring updated", zap.Int("keys", len(keys)), zap.Int("removed", removed))
	return nil
}

// KeyCount is the number of keys in the keyring (0 without encryption).
func (n *Node) KeyCount() int {
	kr := n.keyring
	if kr == nil {
		return 0
	}
	return len(kr.GetKeys())
}
