package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/dnsserver"
)

// DNSSEC key agreement (docs/dnssec.md): every controller signs with the
// keys of its own --dnssec-keys directory, and the cluster's keys are the
// leader's. Each controller probes the members' status (the Raft port's
// status probe carries each member's key tags and a fingerprint of its
// public keys, never key material) and, when its keys differ from the
// leader's (other keys, or none where the leader has some), refuses to
// answer queries with DO (SERVFAIL) and says why in GET /v1/status and its
// log, rather than sign with keys no resolver trusts or answer unsigned in
// a signed zone; with keys where the leader has none, it does not sign
// either (unsigned answers, as the cluster gives). Without a leader (no
// quorum) it keeps its last verdict.

// dnssecSummary is a key set as the status probe shows it: "" without
// keys, else the keys (tag/algorithm/role) and the fingerprint.
func dnssecSummary(ks *dnsserver.DNSSECKeys) string {
	if ks == nil {
		return ""
	}
	return strings.Join(ks.Describe(), ",") + " " + ks.Fingerprint()
}

// dnssecCheck is the outcome of the last comparison with the leader.
type dnssecCheck struct {
	mu       sync.Mutex
	members  []wire.DNSSECMember
	refusal  string
	unsigned bool // the leader has no keys: answer unsigned, not SERVFAIL
}

// dnssecInterval is how often the members' keys are compared.
func (c *Controller) dnssecInterval() time.Duration {
	if c.cfg.Fast {
		return time.Second
	}
	return 15 * time.Second
}

// checkDNSSEC compares this controller's keys with the leader's until ctx
// ends.
func (c *Controller) checkDNSSEC(ctx context.Context) {
	t := time.NewTicker(c.dnssecInterval())
	defer t.Stop()
	for {
		c.compareDNSSEC(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Controller) compareDNSSEC(ctx context.Context) {
	peers, err := c.raft.PeerStatuses(ctx)
	if err != nil {
		return
	}
	mine := dnssecSummary(c.cfg.DNSSECKeys())
	leaderID, _ := c.raft.Leader()
	members := make([]wire.DNSSECMember, 0, len(peers))
	verdict, unsigned, known := "", false, false
	for _, p := range peers {
		m := wire.DNSSECMember{ID: p.ID, Reachable: p.Reachable, Leader: p.ID == leaderID}
		if p.Reachable {
			m.Keys, m.Fingerprint = splitSummary(p.Status.DNSSECKeys)
			if p.ID == leaderID {
				known = true
				if p.Status.DNSSECKeys != mine {
					verdict = mismatch(c.cfg.NodeID, mine, leaderID, p.Status.DNSSECKeys)
					unsigned = p.Status.DNSSECKeys == ""
				}
			}
		}
		members = append(members, m)
	}
	c.dnssec.mu.Lock()
	c.dnssec.members = members
	if known {
		c.dnssec.refusal, c.dnssec.unsigned = verdict, unsigned
	}
	verdict, unsigned = c.dnssec.refusal, c.dnssec.unsigned
	c.dnssec.mu.Unlock()
	c.dns.SetDNSSECRefusal(verdict, unsigned)
	if known {
		c.dns.DNSSECKeysChecked() // signed transfers may start (dnsserver/xfrsign.go)
	}
}

func splitSummary(s string) ([]string, string) {
	if s == "" {
		return []string{}, ""
	}
	keys, fp, _ := strings.Cut(s, " ")
	return strings.Split(keys, ","), fp
}

func mismatch(self, mine, leader, theirs string) string {
	show := func(s string) string {
		if s == "" {
			return "no DNSSEC keys"
		}
		k, fp := splitSummary(s)
		return fmt.Sprintf("keys %s (fingerprint %s)", strings.Join(k, " "), fp)
	}
	then := "answers with DO get SERVFAIL"
	if theirs == "" {
		then = "it does not sign either (answers with DO are unsigned)"
	}
	return fmt.Sprintf("this controller's (%s) DNSSEC keys differ from the leader's (%s): %s here, %s there; %s until --dnssec-keys holds the same keys on every controller",
		self, leader, show(mine), show(theirs), then)
}

// dnssecStatus is the dnssec block of GET /v1/status.
func (c *Controller) dnssecStatus() *wire.DNSSECStatus {
	ks := c.cfg.DNSSECKeys()
	c.dnssec.mu.Lock()
	members, refusal := slices.Clone(c.dnssec.members), c.dnssec.refusal
	c.dnssec.mu.Unlock()
	if ks == nil && refusal == "" {
		return nil
	}
	st := &wire.DNSSECStatus{Keys: []string{}, KeyTags: []int{}, DS: []string{}, Members: members, Refusal: refusal}
	if ks != nil {
		st.Keys, st.Fingerprint = ks.Describe(), ks.Fingerprint()
		for _, t := range ks.Tags() {
			st.KeyTags = append(st.KeyTags, int(t))
		}
		if s := c.fsm.State(); s.Config != nil {
			for _, ds := range ks.DS(s.Config.Zone, s.Config.TTL) {
				st.DS = append(st.DS, ds.String())
			}
		}
	}
	st.Signing = ks != nil && refusal == ""
	if st.Members == nil {
		st.Members = []wire.DNSSECMember{}
	}
	return st
}

// warnings are the insecure settings in force and, while signed answers
// are refused, why.
func (c *Controller) warnings() []string {
	c.dnssec.mu.Lock()
	refusal := c.dnssec.refusal
	c.dnssec.mu.Unlock()
	if refusal == "" {
		return c.cfg.Warnings
	}
	return append(slices.Clone(c.cfg.Warnings), "DNSSEC: "+refusal)
}
