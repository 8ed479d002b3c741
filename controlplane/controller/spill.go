package controller

import (
	"context"
	"sync"
	"time"

	"github.com/evac-sh/evac/controlplane/state"
)

// membersApplyTTL is how long a probe's answer to "does every controller
// apply this command type" is reused: the spill planner asks every tick.
const membersApplyTTL = 30 * time.Second

// commandSupport caches MembersApply's answers.
type commandSupport struct {
	mu   sync.Mutex
	at   map[state.CommandType]time.Time
	says map[state.CommandType]bool
}

// MembersApply reports whether every member of the Raft configuration
// applies command type t (spill.Source): a command an older release
// skips is held back while one is a member (rolling upgrades).
func (c *Controller) MembersApply(ctx context.Context, t state.CommandType) bool {
	cs := &c.cmdSupport
	cs.mu.Lock()
	if at, ok := cs.at[t]; ok && time.Since(at) < membersApplyTTL {
		ok := cs.says[t]
		cs.mu.Unlock()
		return ok
	}
	cs.mu.Unlock()
	ok := c.raft.MembersApply(ctx, int(t))
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.at == nil {
		cs.at, cs.says = map[state.CommandType]time.Time{}, map[state.CommandType]bool{}
	}
	cs.at[t], cs.says[t] = time.Now(), ok
	return ok
}
