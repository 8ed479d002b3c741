package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
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
	// reloadErr says why the last reload of the key directory failed.
	reloadErr string
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
	mine := dnssecSummary(c.dnssecKeys())
	leaderID, _ := c.raft.Leader()
	members := make([]wire.DNSSECMember, 0, len(peers))
	verdict, unsigned, known := "", false, false
	// Once the cluster records its key states, agreement is holding every
	// key they name: the DNS server checks its own keys against the
	// replicated states at every build (dnsserver.Server.buildSigned), so
	// no comparison with the leader is needed, and the members' probes
	// only say who lacks what.
	recorded := c.fsm.State().DNSSEC
	if recorded != nil {
		known = true
	}
	for _, p := range peers {
		m := wire.DNSSECMember{ID: p.ID, Reachable: p.Reachable, Leader: p.ID == leaderID}
		if p.Reachable {
			m.Keys, m.Fingerprint = splitSummary(p.Status.DNSSECKeys)
			if recorded != nil {
				m.Lacks = lacking(recorded, p.Status.DNSSECKeyIDs)
			} else if p.ID == leaderID {
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

// lacking lists the keys d names that ids (a member's keys) lack.
func lacking(d *state.DNSSECState, ids []string) []string {
	var out []string
	for _, k := range d.Keys {
		if !slices.Contains(ids, k.ID) {
			out = append(out, k.ID)
		}
	}
	return out
}

// dnssecKeys is this controller's key directory as last loaded (nil:
// it does not sign).
func (c *Controller) dnssecKeys() *dnsserver.DNSSECKeys { return c.dns.DNSSECKeys() }

// ReloadDNSSECKeys reads the --dnssec-keys directory again (SIGHUP), so
// that a rollover's new key can be added without a restart, and signs
// with it at once (as the cluster's key states say). On an error the keys
// in force stay, and the log and GET /v1/status say why.
func (c *Controller) ReloadDNSSECKeys() error {
	cur := c.dnssecKeys()
	if cur == nil {
		return errors.New("dnssec: this controller was started without --dnssec-keys")
	}
	ks, err := dnsserver.LoadDNSSECKeys(cur.Dir)
	if err == nil {
		err = c.dns.SetDNSSECKeys(ks)
	}
	c.dnssec.mu.Lock()
	if err != nil {
		c.dnssec.reloadErr = fmt.Sprintf("%s: %v", time.Now().UTC().Format(time.RFC3339), err)
	} else {
		c.dnssec.reloadErr = ""
	}
	c.dnssec.mu.Unlock()
	if err != nil {
		c.logger.Error("DNSSEC key reload failed; the keys in force stay", zap.String("dir", cur.Dir),
			zap.Strings("keys", cur.Describe()), zap.Error(err))
		return fmt.Errorf("reload dnssec keys: %w", err)
	}
	c.raft.SetDNSSECKeys(dnssecSummary(ks), ks.IDs())
	c.logger.Info("DNSSEC keys reloaded", zap.String("dir", ks.Dir), zap.Strings("keys", ks.Describe()),
		zap.Strings("unpublished", ks.Unnamed(c.fsm.State().DNSSEC)))
	return nil
}

// dnssecStatus is the dnssec block of GET /v1/status.
func (c *Controller) dnssecStatus() *wire.DNSSECStatus {
	ks := c.dnssecKeys()
	st := c.fsm.State()
	c.dnssec.mu.Lock()
	members, reloadErr := slices.Clone(c.dnssec.members), c.dnssec.reloadErr
	c.dnssec.mu.Unlock()
	refusal := c.dns.DNSSECRefusal()
	if ks == nil && refusal == "" && st.DNSSEC == nil {
		return nil
	}
	out := &wire.DNSSECStatus{Keys: []string{}, KeyTags: []int{}, DS: []string{}, Members: members, Refusal: refusal, ReloadError: reloadErr}
	if ks != nil {
		out.Keys, out.Fingerprint = ks.Describe(), ks.Fingerprint()
		for _, t := range ks.Tags() {
			out.KeyTags = append(out.KeyTags, int(t))
		}
		if st.Config != nil {
			eff, _ := ks.ForState(st.DNSSEC)
			for _, ds := range eff.DS(st.Config.Zone, st.Config.TTL) {
				out.DS = append(out.DS, ds.String())
			}
		}
		out.Unpublished = ks.Unnamed(st.DNSSEC)
	}
	out.KeyStates, out.Rollover = keyStatesWire(st.DNSSEC, time.Now())
	out.Signing = ks != nil && refusal == ""
	if out.Members == nil {
		out.Members = []wire.DNSSECMember{}
	}
	return out
}

// warnings are the insecure settings in force and, while signed answers
// are refused, why.
func (c *Controller) warnings() []string {
	refusal := c.dns.DNSSECRefusal()
	if refusal == "" {
		return c.cfg.Warnings
	}
	return append(slices.Clone(c.cfg.Warnings), "DNSSEC: "+refusal)
}

func dnssecIDs(ks *dnsserver.DNSSECKeys) []string {
	if ks == nil {
		return nil
	}
	return ks.IDs()
}
