package controller

import (
	"crypto/ed25519"
	"encoding/base64"

	"github.com/evac-sh/evac/controlplane/fsm"
	"github.com/evac-sh/evac/controlplane/health"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/gossip"
)

// enrolment is the gossip layer's view of the enrolled agents: the local
// replica's, read at each report (an atomic load), so an enrolment or a
// revocation takes effect as soon as this controller applies it.
type enrolment struct{ fsm *fsm.FSM }

var _ gossip.Enrolment = enrolment{}

func (e enrolment) Enforced() bool { return e.fsm.State().AgentsEnforced() }

func (e enrolment) Lookup(name string) (ed25519.PublicKey, string, bool) {
	rec, ok := e.fsm.State().Agents[name]
	if !ok {
		return nil, "", false
	}
	key, err := base64.StdEncoding.DecodeString(rec.PublicKey) // normalised before it was proposed
	if err != nil || len(key) != ed25519.PublicKeySize {
		return nil, "", false
	}
	return key, rec.Region, true
}

// evidence is the gossip view that health counts: while enrolment is
// enforced, only enrolled agents of their enrolled region (health.Enrolled).
func (c *Controller) evidence(st *state.State) ([]gossip.Member, []gossip.Report) {
	if c.gossip == nil { // an edge: no gossip, no evidence
		return nil, nil
	}
	members, reports := c.gossip.Members(), c.gossip.Reports()
	if !st.AgentsEnforced() {
		return members, reports
	}
	return health.Enrolled(members, reports, func(name string) (string, bool) {
		rec, ok := st.Agents[name]
		return rec.Region, ok
	})
}
