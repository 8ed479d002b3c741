package state

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// DNSSEC key states and rollovers (docs/dnssec.md, "Rollover"). The key
// files stay on each server (--dnssec-keys); the replicated state records
// only which keys are in use and how: a key is named by its public
// metadata (DNSSECKeyState.ID: tag, algorithm, flags and a hash of the
// public key), never by private material. A cluster that never recorded
// key states (State.DNSSEC nil) signs with every key of each server's
// directory, as before rollovers existed.
//
// A recorded key is published (in the apex DNSKEY RRset; a key with the
// SEP flag also signs that RRset) or active (published, and signs what
// its role signs: a ZSK every other RRset, a KSK the DNSKEY RRset, a CSK
// both). A rollover replaces one active key by a new key of the same
// flags and algorithm in three steps, each a command:
//
//	start: the new key is published (the old one stays active)
//	next:  the new key becomes active, the old one stays published
//	next:  the old key is removed: the rollover is done
//
// abort removes the new key while it is merely published. Each next is
// refused before the rollover's NotBefore (the proposer computes the wait
// from the zone's TTLs and stamps it; Force overrides), so a resolver
// holding a cached DNSKEY RRset or signed data always finds a key that
// validates it.

// Key states.
const (
	KeyPublished = "published"
	KeyActive    = "active"
)

// Rollover phases: the new key's state (the rollover ends after active).
const (
	RolloverPublished = KeyPublished
	RolloverActive    = KeyActive
)

// Rollover actions.
const (
	RolloverStart = "start"
	RolloverNext  = "next"
	RolloverAbort = "abort"
)

// EventDNSSECRollover records a step of a key rollover; EventDNSSECKeys
// the recording of the key states.
const (
	EventDNSSECRollover = "dnssec.rollover"
	EventDNSSECKeys     = "dnssec.keys"
)

// sepFlag is the SEP bit of a DNSKEY's flags (a KSK or CSK).
const sepFlag = 1

// DNSSECKeyState is a key of the cluster's DNSKEY RRset and its state.
type DNSSECKeyState struct {
	// ID is "tag/algorithm/flags/hash", hash the first 16 hex digits of
	// SHA-256 over the public key (dnsserver.DNSSECKey.ID).
	ID        string    `json:"id"`
	Tag       uint16    `json:"tag"`
	Algorithm uint8     `json:"algorithm"`
	Flags     uint16    `json:"flags"`
	State     string    `json:"state"`
	Since     time.Time `json:"since"`
}

// SEP reports whether the key has the SEP flag (a KSK or a CSK).
func (k DNSSECKeyState) SEP() bool { return k.Flags&sepFlag != 0 }

// DNSSECRollover is a rollover in progress.
type DNSSECRollover struct {
	New string `json:"new"` // key id
	Old string `json:"old"` // key id
	// Phase is the new key's state: published, then active.
	Phase string `json:"phase"`
	// Since is when the phase began, Index its Raft index.
	Since time.Time `json:"since"`
	Index uint64    `json:"index"`
	// NotBefore is when the next step is safe (the proposer's wait from
	// the zone's TTLs; a forced step may come sooner).
	NotBefore time.Time `json:"not_before"`
	// DSTTL is the parent's DS TTL, for rollovers of a KSK or CSK.
	DSTTL   Duration  `json:"ds_ttl,omitempty"`
	Started time.Time `json:"started"`
	Actor   string    `json:"actor"`
	Reason  string    `json:"reason,omitempty"`
}

// DNSSECState is the cluster's recorded key states.
type DNSSECState struct {
	// Keys, sorted by ID.
	Keys     []DNSSECKeyState `json:"keys"`
	Rollover *DNSSECRollover  `json:"rollover,omitempty"`
	// Rollovers counts the completed ones.
	Rollovers int `json:"rollovers,omitempty"`
}

// Key returns the recorded key with id.
func (d *DNSSECState) Key(id string) (DNSSECKeyState, bool) {
	if d == nil {
		return DNSSECKeyState{}, false
	}
	for _, k := range d.Keys {
		if k.ID == id {
			return k, true
		}
	}
	return DNSSECKeyState{}, false
}

// KeyIDs lists the recorded keys' ids.
func (d *DNSSECState) KeyIDs() []string {
	if d == nil {
		return nil
	}
	out := make([]string, len(d.Keys))
	for i, k := range d.Keys {
		out[i] = k.ID
	}
	return out
}

// RecordDNSSECKeys records the keys the cluster signs with, all active,
// before the first rollover. The proposer takes them from the keys every
// member holds.
type RecordDNSSECKeys struct {
	Keys   []DNSSECKeyState `json:"keys"`
	Reason string           `json:"reason,omitempty"`
}

// DNSSECRolloverStep is one step of a rollover.
type DNSSECRolloverStep struct {
	Action string `json:"action"` // start | next | abort
	// Key is the new key (start: its state is built here, published).
	Key DNSSECKeyState `json:"key,omitzero"`
	// Record are the keys to record, all active, when the cluster has
	// not recorded any (a start without a prior RecordDNSSECKeys).
	Record []DNSSECKeyState `json:"record,omitempty"`
	// Phase is the phase the step leaves (next, abort): a retried or
	// stale step is refused, never applied twice.
	Phase string `json:"phase,omitempty"`
	// Wait is how long after this step the next one is safe (start,
	// next), computed by the proposer.
	Wait   Duration `json:"wait,omitempty"`
	DSTTL  Duration `json:"ds_ttl,omitempty"`
	Force  bool     `json:"force,omitempty"`
	Reason string   `json:"reason,omitempty"`
}

// checkKeyState checks a key's shape (the proposer builds it from a
// parsed DNSKEY).
func checkKeyState(k DNSSECKeyState, field string) *refusal {
	parts := strings.Split(k.ID, "/")
	switch {
	case len(parts) != 4 || parts[0] != fmt.Sprint(k.Tag) || parts[1] != fmt.Sprint(k.Algorithm) || parts[2] != fmt.Sprint(k.Flags) || len(parts[3]) != 16:
		return refuse(CodeInvalid, "%s: key id %q is not tag/algorithm/flags/hash of the key", field, k.ID)
	case k.Flags&256 == 0:
		return refuse(CodeInvalid, "%s: key %s is not a zone key", field, k.ID)
	}
	return nil
}

func (a *applier) recordDNSSECKeys(b RecordDNSSECKeys) *refusal {
	if a.s.DNSSEC != nil {
		return refuse(CodeConflict, "the cluster's DNSSEC key states are recorded already")
	}
	if err := a.setRecorded(b.Keys, "keys"); err != nil {
		return err
	}
	a.event(Event{Kind: EventDNSSECKeys, Reason: b.Reason, Detail: "recorded the keys in use, all active: " + strings.Join(a.s.DNSSEC.KeyIDs(), " ")})
	return nil
}

// setRecorded records keys, all active, as the cluster's key states.
func (a *applier) setRecorded(keys []DNSSECKeyState, field string) *refusal {
	if len(keys) == 0 {
		return refuse(CodeInvalid, "%s: no keys to record", field)
	}
	out := make([]DNSSECKeyState, 0, len(keys))
	sep := false
	for i, k := range keys {
		if err := checkKeyState(k, fmt.Sprintf("%s[%d]", field, i)); err != nil {
			return err
		}
		if slices.ContainsFunc(out, func(o DNSSECKeyState) bool { return o.ID == k.ID }) {
			return refuse(CodeInvalid, "%s[%d]: key %s twice", field, i, k.ID)
		}
		k.State, k.Since = KeyActive, a.cmd.Time
		sep = sep || k.SEP()
		out = append(out, k)
	}
	if !sep {
		return refuse(CodeInvalid, "%s: no key has the SEP flag (a KSK or CSK is needed)", field)
	}
	slices.SortFunc(out, func(x, y DNSSECKeyState) int { return strings.Compare(x.ID, y.ID) })
	a.s.DNSSEC = &DNSSECState{Keys: out}
	a.answersChanged()
	return nil
}

func (a *applier) dnssecRollover(b DNSSECRolloverStep) *refusal {
	if b.Wait < 0 || b.DSTTL < 0 {
		return refuse(CodeInvalid, "wait and ds_ttl must not be negative")
	}
	switch b.Action {
	case RolloverStart:
		return a.rolloverStart(b)
	case RolloverNext:
		return a.rolloverNext(b)
	case RolloverAbort:
		return a.rolloverAbort(b)
	}
	return refuse(CodeInvalid, "action %q: must be start, next or abort", b.Action)
}

func (a *applier) rolloverStart(b DNSSECRolloverStep) *refusal {
	if err := checkKeyState(b.Key, "key"); err != nil {
		return err
	}
	if a.s.DNSSEC == nil {
		if len(b.Record) == 0 {
			return refuse(CodeConflict, "the cluster has not recorded its DNSSEC key states (evac dnssec rollover init)")
		}
		if err := a.setRecorded(b.Record, "record"); err != nil {
			return err
		}
	} else if len(b.Record) > 0 {
		return refuse(CodeConflict, "the cluster's DNSSEC key states are recorded already")
	}
	d := a.s.DNSSEC
	if r := d.Rollover; r != nil {
		return refuse(CodeConflict, "a rollover of key %s to %s is in progress (phase %s): finish or abort it first", r.Old, r.New, r.Phase)
	}
	if _, ok := d.Key(b.Key.ID); ok {
		return refuse(CodeConflict, "key %s is in the DNSKEY RRset already", b.Key.ID)
	}
	var old []DNSSECKeyState
	for _, k := range d.Keys {
		if k.State == KeyActive && k.Flags == b.Key.Flags && k.Algorithm == b.Key.Algorithm {
			old = append(old, k)
		}
	}
	if len(old) != 1 {
		return refuse(CodeConflict, "key %s replaces the one active key of flags %d and algorithm %d: there are %d (an algorithm or role change is not a rollover evac makes)",
			b.Key.ID, b.Key.Flags, b.Key.Algorithm, len(old))
	}
	k := b.Key
	k.State, k.Since = KeyPublished, a.cmd.Time
	keys := append(slices.Clone(d.Keys), k)
	slices.SortFunc(keys, func(x, y DNSSECKeyState) int { return strings.Compare(x.ID, y.ID) })
	a.s.DNSSEC = &DNSSECState{Keys: keys, Rollovers: d.Rollovers, Rollover: &DNSSECRollover{
		New: k.ID, Old: old[0].ID, Phase: RolloverPublished, Since: a.cmd.Time, Index: a.index,
		NotBefore: a.cmd.Time.Add(time.Duration(b.Wait)), DSTTL: b.DSTTL, Started: a.cmd.Time, Actor: a.cmd.Actor, Reason: b.Reason,
	}}
	a.answersChanged()
	a.event(Event{Kind: EventDNSSECRollover, Reason: b.Reason,
		Detail: fmt.Sprintf("start: key %s published beside %s (active); next step safe after %s", k.ID, old[0].ID, time.Duration(b.Wait))})
	return nil
}

// current returns the rollover in progress in the phase the step leaves.
func (a *applier) currentRollover(b DNSSECRolloverStep) (*DNSSECRollover, *refusal) {
	d := a.s.DNSSEC
	if d == nil || d.Rollover == nil {
		return nil, refuse(CodeConflict, "no DNSSEC key rollover is in progress")
	}
	r := d.Rollover
	if b.Phase != r.Phase {
		return nil, refuse(CodeConflict, "the rollover is in phase %s, not %s (a step was made meanwhile)", r.Phase, b.Phase)
	}
	return r, nil
}

func (a *applier) rolloverNext(b DNSSECRolloverStep) *refusal {
	r, err := a.currentRollover(b)
	if err != nil {
		return err
	}
	if !b.Force && a.cmd.Time.Before(r.NotBefore) {
		return refuse(CodeRule, "the next step of the rollover is safe from %s (%s left); force overrides",
			r.NotBefore.UTC().Format(time.RFC3339), r.NotBefore.Sub(a.cmd.Time).Round(time.Second))
	}
	d := a.s.DNSSEC
	keys := slices.Clone(d.Keys)
	n := &DNSSECState{Keys: keys, Rollovers: d.Rollovers}
	forced := ""
	if b.Force && a.cmd.Time.Before(r.NotBefore) {
		forced = fmt.Sprintf(" (forced, %s before it was safe)", r.NotBefore.Sub(a.cmd.Time).Round(time.Second))
	}
	switch r.Phase {
	case RolloverPublished:
		for i := range keys {
			switch keys[i].ID {
			case r.New:
				keys[i].State, keys[i].Since = KeyActive, a.cmd.Time
			case r.Old:
				keys[i].State, keys[i].Since = KeyPublished, a.cmd.Time
			}
		}
		nr := *r
		nr.Phase, nr.Since, nr.Index = RolloverActive, a.cmd.Time, a.index
		nr.NotBefore = a.cmd.Time.Add(time.Duration(b.Wait))
		n.Rollover = &nr
		a.event(Event{Kind: EventDNSSECRollover, Reason: b.Reason,
			Detail: fmt.Sprintf("next: key %s active, %s stays published%s; next step safe after %s", r.New, r.Old, forced, time.Duration(b.Wait))})
	case RolloverActive:
		n.Keys = slices.DeleteFunc(keys, func(k DNSSECKeyState) bool { return k.ID == r.Old })
		n.Rollovers++
		a.event(Event{Kind: EventDNSSECRollover, Reason: b.Reason,
			Detail: fmt.Sprintf("done: key %s removed, %s active%s", r.Old, r.New, forced)})
	default:
		return refuse(CodeConflict, "the rollover is in an unknown phase %q", r.Phase)
	}
	a.s.DNSSEC = n
	a.answersChanged()
	return nil
}

func (a *applier) rolloverAbort(b DNSSECRolloverStep) *refusal {
	r, err := a.currentRollover(b)
	if err != nil {
		return err
	}
	if r.Phase != RolloverPublished {
		return refuse(CodeConflict, "the new key %s signs already (phase %s): a rollover is aborted only while its new key is merely published; roll over again to go back", r.New, r.Phase)
	}
	d := a.s.DNSSEC
	keys := slices.DeleteFunc(slices.Clone(d.Keys), func(k DNSSECKeyState) bool { return k.ID == r.New })
	a.s.DNSSEC = &DNSSECState{Keys: keys, Rollovers: d.Rollovers}
	a.answersChanged()
	a.event(Event{Kind: EventDNSSECRollover, Reason: b.Reason, Detail: fmt.Sprintf("abort: key %s removed, %s stays active", r.New, r.Old)})
	return nil
}
