package controller

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/evac-sh/evac/controlplane/api"
	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/dnsserver"
	"github.com/evac-sh/evac/internal/duration"
)

// DNSSEC key rollovers (docs/dnssec.md, "Rollover"): the controller that
// takes the request validates it against the replicated state and the
// members' status probes (every member must hold the keys and apply the
// commands), computes the safe wait from the zone's TTLs, and the API
// proposes the resulting command (state/dnssec.go).

// DefaultDSTTL is the parent's DS TTL assumed for a KSK or CSK rollover
// when the request does not give one.
const DefaultDSTTL = 24 * time.Hour

// rolloverMargin is added to every wait: replication to every member and
// resolvers' clocks.
func rolloverMargin(wait time.Duration) time.Duration {
	return max(wait/10, 5*time.Second)
}

// maxDataTTL is the longest TTL of the zone's signed data: the zone TTL
// (SOA, NS, negative answers: the SOA minimum is the zone TTL), services'
// and static records' TTLs.
func maxDataTTL(c *state.Config) time.Duration {
	ttl := c.TTL
	for _, s := range c.Services {
		ttl = max(ttl, s.TTL)
	}
	for _, r := range c.Records {
		ttl = max(ttl, r.TTL)
	}
	return time.Duration(ttl) * time.Second
}

// publishWait is how long a new key stays merely published: the DNSKEY
// RRset's TTL (the zone TTL), so that every resolver's cached RRset holds
// it before it signs.
func publishWait(c *state.Config) time.Duration {
	w := time.Duration(c.TTL)*time.Second + secondaryLag(c)
	return w + rolloverMargin(w)
}

// secondaryLag is how much longer a step waits when the zone may be
// transferred: a secondary serves the DNSKEY and RRSIG sets of its last
// (signed) copy, and one that missed a NOTIFY takes up to the SOA refresh
// and a retry to catch up (dnsserver.SecondaryLag).
func secondaryLag(c *state.Config) time.Duration {
	if len(c.Secondaries) == 0 && len(c.TransferAllow) == 0 {
		return 0
	}
	return dnsserver.SecondaryLag
}

// activeWait is how long the old key stays published once the new one
// signs: the longest TTL of data it signed (for a SEP key also the
// parent's DS TTL: the operator replaces the DS at this step).
func activeWait(c *state.Config, r *state.DNSSECRollover, sep bool) time.Duration {
	w := maxDataTTL(c) + secondaryLag(c)
	if sep {
		w = max(w, time.Duration(r.DSTTL))
	}
	return w + rolloverMargin(w)
}

func refused(status int, code, format string, args ...any) error {
	return &api.RequestError{Status: status, Code: code, Msg: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return refused(http.StatusConflict, state.CodeConflict, format, args...)
}

// keyState is a key as the replicated state names it.
func keyState(k *dnsserver.DNSSECKey) state.DNSSECKeyState {
	return state.DNSSECKeyState{ID: k.ID(), Tag: k.DNSKEY.KeyTag(), Algorithm: k.DNSKEY.Algorithm, Flags: k.DNSKEY.Flags}
}

// PrepareDNSSECRollover turns a rollover request (action init, start,
// next or abort) into the command to propose, or refuses it
// (*api.RequestError) with what is wrong.
func (c *Controller) PrepareDNSSECRollover(ctx context.Context, action string, req wire.DNSSECRolloverRequest) (state.CommandType, any, error) {
	st := c.fsm.State()
	if st.Config == nil {
		return 0, nil, refused(http.StatusConflict, state.CodeNoConfig, "no steering config has been applied")
	}
	ks := c.dnssecKeys()
	if ks == nil {
		return 0, nil, conflict("this controller has no DNSSEC keys (evac server --dnssec-keys DIR): send the request to one that signs")
	}
	peers, err := c.raft.PeerStatuses(ctx)
	if err != nil {
		return 0, nil, refused(http.StatusServiceUnavailable, wire.CodeUnavailable, "cannot probe the members: %v", err)
	}
	// An unreachable member is named by the checks below (init and
	// start need it to hold the keys; next needs it to have applied the
	// last step); abort needs nothing of it.
	var old []string
	for _, p := range peers {
		if p.Reachable && p.Status.KnownCommands < int(state.CmdDNSSECRollover) {
			old = append(old, p.ID)
		}
	}
	if len(old) > 0 {
		return 0, nil, conflict("members %s run a release that does not apply DNSSEC rollover commands: upgrade them first", strings.Join(old, ", "))
	}
	// lackers returns the members that lack one of ids ("id (unreachable)"
	// for those that did not answer).
	lackers := func(ids []string) []string {
		var out []string
		for _, p := range peers {
			if !p.Reachable {
				out = append(out, p.ID+" (unreachable)")
				continue
			}
			var miss []string
			for _, id := range ids {
				if !slices.Contains(p.Status.DNSSECKeyIDs, id) {
					miss = append(miss, id)
				}
			}
			if len(miss) > 0 {
				out = append(out, fmt.Sprintf("%s (lacks %s)", p.ID, strings.Join(miss, ", ")))
			}
		}
		return out
	}
	switch action {
	case "init":
		if st.DNSSEC != nil {
			return 0, nil, conflict("the cluster's DNSSEC key states are recorded already")
		}
		if l := lackers(ks.IDs()); len(l) > 0 {
			return 0, nil, conflict("not every member holds this controller's keys (%s): %s; make the key directories the same first",
				strings.Join(ks.IDs(), ", "), strings.Join(l, "; "))
		}
		for _, p := range peers {
			if extra := slices.DeleteFunc(slices.Clone(p.Status.DNSSECKeyIDs), func(id string) bool { return ks.Find(id) != nil }); len(extra) > 0 {
				return 0, nil, conflict("member %s holds keys this controller lacks (%s): the cluster's keys are ambiguous; make the key directories the same first",
					p.ID, strings.Join(extra, ", "))
			}
		}
		rec := make([]state.DNSSECKeyState, len(ks.Keys))
		for i, k := range ks.Keys {
			rec[i] = keyState(k)
		}
		return state.CmdDNSSECKeys, state.RecordDNSSECKeys{Keys: rec, Reason: req.Reason}, nil
	case state.RolloverStart:
		return c.prepareStart(st, ks, req, lackers)
	case state.RolloverNext, state.RolloverAbort:
		r := rolloverOf(st)
		if r == nil {
			return 0, nil, conflict("no DNSSEC key rollover is in progress")
		}
		body := state.DNSSECRolloverStep{Action: action, Phase: r.Phase, Reason: req.Reason, Force: req.Force}
		if action == state.RolloverAbort {
			if r.Phase != state.RolloverPublished {
				return 0, nil, conflict("the new key %s signs already (phase %s): a rollover is aborted only while its new key is merely published", r.New, r.Phase)
			}
			return state.CmdDNSSECRollover, body, nil
		}
		if left := time.Until(r.NotBefore); left > 0 && !req.Force {
			return 0, nil, refused(http.StatusConflict, state.CodeRule, "the next step of the rollover is safe from %s (%s left): resolvers may still hold what the last step changed; force overrides",
				r.NotBefore.UTC().Format(time.RFC3339), left.Round(time.Second))
		}
		if !req.Force {
			var behind []string
			for _, p := range peers {
				if !p.Reachable || p.Status.AppliedIndex < r.Index {
					behind = append(behind, p.ID)
				}
			}
			if len(behind) > 0 {
				return 0, nil, refused(http.StatusConflict, state.CodeRule, "members %s have not applied the last step (or are unreachable): they may still serve the previous keys; force overrides", strings.Join(behind, ", "))
			}
			if l := lackers(st.DNSSEC.KeyIDs()); len(l) > 0 {
				return 0, nil, refused(http.StatusConflict, state.CodeRule, "members cannot sign with the cluster's keys: %s; force overrides", strings.Join(l, "; "))
			}
		}
		if r.Phase == state.RolloverPublished {
			k, _ := st.DNSSEC.Key(r.New)
			body.Wait = duration.Duration(activeWait(st.Config, r, k.SEP()))
		}
		return state.CmdDNSSECRollover, body, nil
	}
	return 0, nil, refused(http.StatusNotFound, state.CodeNotFound, "unknown rollover action %q: init, start, next or abort", action)
}

func (c *Controller) prepareStart(st *state.State, ks *dnsserver.DNSSECKeys, req wire.DNSSECRolloverRequest, lackers func([]string) []string) (state.CommandType, any, error) {
	if req.Key == "" {
		return 0, nil, refused(http.StatusBadRequest, state.CodeInvalid, "key: the new key's tag (or id) is required")
	}
	var found []*dnsserver.DNSSECKey
	for _, k := range ks.Keys {
		if k.ID() == req.Key || strconv.Itoa(int(k.DNSKEY.KeyTag())) == req.Key {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		return 0, nil, refused(http.StatusNotFound, state.CodeNotFound, "key: no key %s in this controller's key directory %s (its keys: %s): copy the new key's files into every controller's and edge's directory and send them SIGHUP",
			req.Key, ks.Dir, strings.Join(ks.IDs(), " "))
	case 1:
	default:
		return 0, nil, refused(http.StatusBadRequest, state.CodeInvalid, "key: tag %s is shared by several keys: give its id (%s)", req.Key, strings.Join(ks.IDs(), " "))
	}
	nk := keyState(found[0])
	dsTTL := DefaultDSTTL
	if req.DSTTL != "" {
		d, err := time.ParseDuration(req.DSTTL)
		if err != nil || d < 0 {
			return 0, nil, refused(http.StatusBadRequest, state.CodeInvalid, "ds_ttl: %q is not a duration (e.g. 1h)", req.DSTTL)
		}
		dsTTL = d
	}
	body := state.DNSSECRolloverStep{Action: state.RolloverStart, Key: nk, Reason: req.Reason, Wait: duration.Duration(publishWait(st.Config))}
	if nk.SEP() {
		body.DSTTL = duration.Duration(dsTTL)
	}
	need := []string{nk.ID}
	if st.DNSSEC == nil {
		// The first rollover records the keys in use: every key of the
		// directory but the new one (which every member holds too).
		for _, k := range ks.Keys {
			if k != found[0] {
				body.Record = append(body.Record, keyState(k))
				need = append(need, k.ID())
			}
		}
	} else {
		if _, ok := st.DNSSEC.Key(nk.ID); ok {
			return 0, nil, conflict("key %s is in the DNSKEY RRset already", nk.ID)
		}
		need = append(need, st.DNSSEC.KeyIDs()...)
	}
	if l := lackers(need); len(l) > 0 {
		return 0, nil, conflict("not every member holds the keys (%s): %s; copy the key files into their --dnssec-keys directories and send them SIGHUP",
			strings.Join(need, ", "), strings.Join(l, "; "))
	}
	return state.CmdDNSSECRollover, body, nil
}

func rolloverOf(st *state.State) *state.DNSSECRollover {
	if st.DNSSEC == nil {
		return nil
	}
	return st.DNSSEC.Rollover
}

// keyRole is a recorded key's role: zsk, or ksk (csk) with the SEP flag
// when the recorded keys have (no) ZSK.
func keyRole(d *state.DNSSECState, k state.DNSSECKeyState) string {
	if !k.SEP() {
		return "zsk"
	}
	if slices.ContainsFunc(d.Keys, func(o state.DNSSECKeyState) bool { return !o.SEP() }) {
		return "ksk"
	}
	return "csk"
}

// keyStatesWire renders the recorded key states and the rollover in
// progress at now (nil, nil when nothing is recorded).
func keyStatesWire(d *state.DNSSECState, now time.Time) ([]wire.DNSSECKeyState, *wire.DNSSECRollover) {
	if d == nil {
		return nil, nil
	}
	keys := make([]wire.DNSSECKeyState, len(d.Keys))
	for i, k := range d.Keys {
		keys[i] = wire.DNSSECKeyState{ID: k.ID, Tag: int(k.Tag), Role: keyRole(d, k), State: k.State, Since: k.Since}
	}
	r := d.Rollover
	if r == nil {
		return keys, nil
	}
	out := &wire.DNSSECRollover{New: r.New, Old: r.Old, Phase: r.Phase, Since: r.Since, NotBefore: r.NotBefore,
		WaitLeft: max(r.NotBefore.Sub(now), 0).Round(time.Second).String(), Started: r.Started, Actor: r.Actor, Reason: r.Reason}
	if r.DSTTL > 0 {
		out.DSTTL = time.Duration(r.DSTTL).String()
	}
	switch r.Phase {
	case state.RolloverPublished:
		out.Next = fmt.Sprintf("next: key %s signs, %s stays published", r.New, r.Old)
	case state.RolloverActive:
		out.Next = fmt.Sprintf("next: key %s is removed from the DNSKEY RRset (done)", r.Old)
	}
	return keys, out
}

// DNSSECRolloverResult describes the key states of st after a rollover
// step: what the CLI prints, with what the operator must do next.
func (c *Controller) DNSSECRolloverResult(st *state.State) wire.DNSSECRolloverResult {
	keys, r := keyStatesWire(st.DNSSEC, time.Now())
	out := wire.DNSSECRolloverResult{KeyStates: keys, Rollover: r}
	if out.KeyStates == nil {
		out.KeyStates = []wire.DNSSECKeyState{}
	}
	if ks := c.dnssecKeys(); ks != nil && st.Config != nil {
		eff, _ := ks.ForState(st.DNSSEC)
		for _, ds := range eff.DS(st.Config.Zone, st.Config.TTL) {
			out.DS = append(out.DS, ds.String())
		}
	}
	d := st.DNSSEC
	switch {
	case d == nil:
	case d.Rollover == nil:
		out.Notes = append(out.Notes, "no rollover in progress; the key files of keys no longer listed may be removed from every key directory (they are ignored)")
	case d.Rollover.Phase == state.RolloverPublished:
		out.Notes = append(out.Notes, fmt.Sprintf("the new key is published; run evac dnssec rollover next after %s (%s)",
			d.Rollover.NotBefore.UTC().Format(time.RFC3339), r.WaitLeft))
	case d.Rollover.Phase == state.RolloverActive:
		k, _ := d.Key(d.Rollover.New)
		if k.SEP() {
			out.Notes = append(out.Notes, fmt.Sprintf("replace the zone's DS records at the parent NOW with the new key's (below; evac dnssec ds), and update every resolver's trust anchor that names the old key; the old key is removed once the old DS has expired from caches: evac dnssec rollover next after %s (ds_ttl %s)",
				d.Rollover.NotBefore.UTC().Format(time.RFC3339), r.DSTTL))
			if ks := c.dnssecKeys(); ks != nil && st.Config != nil {
				if nk := ks.Find(k.ID); nk != nil {
					one := &dnsserver.DNSSECKeys{Keys: []*dnsserver.DNSSECKey{nk}}
					out.DS = nil
					for _, ds := range one.DS(st.Config.Zone, st.Config.TTL) {
						out.DS = append(out.DS, ds.String())
					}
				}
			}
		} else {
			out.Notes = append(out.Notes, fmt.Sprintf("the new key signs; run evac dnssec rollover next after %s (%s) to remove the old key",
				d.Rollover.NotBefore.UTC().Format(time.RFC3339), r.WaitLeft))
		}
	}
	return out
}

var _ api.DNSSECRoller = (*Controller)(nil)
