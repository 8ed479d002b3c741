package gossip

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Message types: the first byte of every user message and of the
// push-pull state. Only ever append.
const (
	msgReport byte = 1 // one Report
	msgState  byte = 2 // the whole report table (push-pull)
	msgLeave  byte = 3 // a member's intent to leave, sent before memberlist's leave
	// Protocol version 2 (wire.go): sent only while every live member
	// speaks it, always accepted.
	msgReportV2     byte = 4 // one Report, binary, header first
	msgRefresh      byte = 5 // an origin's reports are unchanged and current
	msgRefreshRelay byte = 6 // a msgRefresh to forward to the controllers
	msgPull         byte = 7 // a request for an origin's reports newer than a sequence (pull.go)
	msgPullReport   byte = 8 // one msgReportV2 sent in answer to a msgPull
)

// Limits enforced on decoded reports, so that a peer cannot make us store
// arbitrary amounts of data.
const (
	maxField     = 128
	maxOutput    = 256 // Publish truncates to this
	maxWireOut   = 1024
	maxMessage   = 1100 // encoded report; a gossip packet holds 1400 bytes
	maxStateRows = 200000
)

// Report statuses. StatusWarmingUp is a check that has not run `rise`
// times yet: no evidence either way (controlplane/health). It travels as a plain
// string (statusCodeString), so a controller that predates it would count
// it as failing: upgrade controllers before agents.
const (
	StatusPassing   = "passing"
	StatusFailing   = "failing"
	StatusWarmingUp = "warming_up"
)

// Report is one check result of one node, as gossiped.
type Report struct {
	Origin  string    `json:"origin"`
	Region  string    `json:"region"`
	Service string    `json:"service"`
	Check   string    `json:"check"`
	Status  string    `json:"status"`
	Output  string    `json:"output,omitempty"`
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	// Capacity is the origin's reported serving capacity, if it reports
	// one (agent config `capacity` or `capacity_url`).
	Capacity *float64 `json:"capacity,omitempty"`
	// Sig is the origin's Ed25519 signature of the report's content
	// (identity.go); empty from an agent without a key.
	Sig []byte `json:"-"`
	// Received is when this node stored the report (by its own clock, so
	// staleness is judged without trusting the origin's clock). Not gossiped.
	Received time.Time `json:"-"`
}

// wireReport is Report with short keys and the time as unix nanoseconds.
type wireReport struct {
	Origin  string   `json:"o"`
	Region  string   `json:"r,omitempty"`
	Service string   `json:"s"`
	Check   string   `json:"c"`
	Status  string   `json:"st"`
	Output  string   `json:"out,omitempty"`
	Seq     uint64   `json:"q"`
	Time    int64    `json:"t"`
	Cap     *float64 `json:"cap,omitempty"`
	// Sig (protocol 3) is ignored by older nodes, which decode JSON
	// leniently: a signed report stays readable to a mixed fleet.
	Sig []byte `json:"sig,omitempty"`
}

type wireState struct {
	Reports []wireReport `json:"rs"`
	Leaves  []wireLeave  `json:"lv,omitempty"`
}

// wireLeave is a leave intent: memberlist does not tell its event delegate
// whether a member left or failed, so a leaving node says so itself.
type wireLeave struct {
	Node string `json:"n"`
	Seq  uint64 `json:"q"`
	// Sig (protocol 3) is the leaving agent's signature (identity.go).
	Sig []byte `json:"sig,omitempty"`
}

func validLeave(l wireLeave) error {
	if l.Node == "" || len(l.Node) > maxField || l.Seq == 0 || (len(l.Sig) != 0 && len(l.Sig) != sigLen) {
		return errors.New("invalid leave intent")
	}
	return nil
}

func encodeLeave(l wireLeave) []byte {
	b, _ := json.Marshal(l)
	return append([]byte{msgLeave}, b...)
}

func decodeLeave(b []byte) (wireLeave, error) {
	if len(b) < 2 || b[0] != msgLeave {
		return wireLeave{}, errors.New("not a leave message")
	}
	var l wireLeave
	if err := json.Unmarshal(b[1:], &l); err != nil {
		return wireLeave{}, fmt.Errorf("decode leave: %w", err)
	}
	return l, validLeave(l)
}

func toWire(r Report) wireReport {
	return wireReport{Origin: r.Origin, Region: r.Region, Service: r.Service, Check: r.Check,
		Status: r.Status, Output: r.Output, Seq: r.Seq, Time: r.Time.UnixNano(), Cap: r.Capacity, Sig: r.Sig}
}

func fromWire(w wireReport) (Report, error) {
	r := Report{Origin: w.Origin, Region: w.Region, Service: w.Service, Check: w.Check,
		Status: w.Status, Output: w.Output, Seq: w.Seq, Time: time.Unix(0, w.Time), Capacity: w.Cap, Sig: w.Sig}
	return r, validReport(r)
}

func validReport(r Report) error {
	switch {
	case r.Origin == "" || r.Service == "" || r.Check == "" || r.Status == "":
		return errors.New("report lacks origin, service, check or status")
	case len(r.Origin) > maxField || len(r.Region) > maxField || len(r.Service) > maxField ||
		len(r.Check) > maxField || len(r.Status) > maxField:
		return errors.New("report field too long")
	case len(r.Output) > maxWireOut:
		return errors.New("report output too long")
	case r.Seq == 0:
		return errors.New("report has no sequence number")
	case len(r.Sig) != 0 && len(r.Sig) != sigLen:
		return errors.New("report signature has the wrong length")
	case r.Capacity != nil && !(*r.Capacity >= 0 && *r.Capacity <= 1e15):
		return errors.New("report capacity out of range")
	}
	return nil
}

func encodeReport(r Report) []byte {
	b, _ := json.Marshal(toWire(r)) // plain strings and ints: cannot fail
	return append([]byte{msgReport}, b...)
}

// decodeReport decodes a msgReport message (type byte included).
func decodeReport(b []byte) (Report, error) {
	if len(b) < 2 || b[0] != msgReport {
		return Report{}, errors.New("not a report message")
	}
	var w wireReport
	if err := json.Unmarshal(b[1:], &w); err != nil {
		return Report{}, fmt.Errorf("decode report: %w", err)
	}
	return fromWire(w)
}

func encodeState(rs []Report, leaves []wireLeave) []byte {
	st := wireState{Reports: make([]wireReport, len(rs)), Leaves: leaves}
	for i, r := range rs {
		st.Reports[i] = toWire(r)
	}
	b, _ := json.Marshal(st)
	return append([]byte{msgState}, b...)
}

// decodeState decodes push-pull state. Invalid rows are skipped and
// counted.
func decodeState(b []byte) ([]Report, []wireLeave, int, error) {
	if len(b) < 2 || b[0] != msgState {
		return nil, nil, 0, errors.New("not a state message")
	}
	var st wireState
	if err := json.Unmarshal(b[1:], &st); err != nil {
		return nil, nil, 0, fmt.Errorf("decode state: %w", err)
	}
	if len(st.Reports) > maxStateRows || len(st.Leaves) > maxStateRows {
		return nil, nil, 0, fmt.Errorf("state has %d reports and %d leaves, limit %d", len(st.Reports), len(st.Leaves), maxStateRows)
	}
	out := make([]Report, 0, len(st.Reports))
	skipped := 0
	for _, w := range st.Reports {
		r, err := fromWire(w)
		if err != nil {
			skipped++
			continue
		}
		out = append(out, r)
	}
	leaves := make([]wireLeave, 0, len(st.Leaves))
	for _, l := range st.Leaves {
		if validLeave(l) != nil {
			skipped++
			continue
		}
		leaves = append(leaves, l)
	}
	return out, leaves, skipped, nil
}
