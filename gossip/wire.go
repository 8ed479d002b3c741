package gossip

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
)

// Gossip protocol version 2: binary reports and refreshes.
//
// Version 1 sends a report as JSON, so every receipt of every copy cost a
// JSON decode before the duplicate could be recognised; at 1,000 agents a
// node sees each report about 16 times. A version 2 report starts with a
// header (origin, service, check, seq) that is read in place, so a
// duplicate costs a map lookup and only a new report is decoded. It is
// also about a third of the JSON size, so more fit one gossip packet.
//
// A refresh says "my reports are unchanged and still current": one small
// message per node per heartbeat to the controllers, instead of every
// report flooded again (refresh.go).
//
// A node advertises the highest version it speaks in its metadata
// (MetaProto) and sends version 2 messages only while every live member
// advertises it; otherwise it sends version 1 JSON reports and re-sends
// unchanged reports as before. It reads both versions always, so a fleet
// upgraded one node at a time keeps working throughout.
//
// Version 3 adds the origin's signature (identity.go): a report with
// flagSigned ends with 64 signature bytes, a refresh may end with them.
// Version 2 decoders refuse trailing bytes, so the binary messages are
// sent only while every live member speaks version 3 (binaryProto); with
// an older member alive a node falls back to version 1 JSON reports,
// which carry the signature in a field older nodes ignore, so reports
// stay signed end to end through a rolling upgrade.
const protoVersion = 3

// binaryProto is the version every live member must speak before binary
// reports and refreshes are sent. A version 2 message is still read.
const binaryProto = 3

// Status codes of a version 2 report; statusCodeString means the status
// follows as a string (a status this version does not know).
const (
	statusCodeString    byte = 0
	statusCodePassing   byte = 1
	statusCodeFailing   byte = 2
	statusCodeWithdrawn byte = 3
)

const (
	flagCapacity byte = 1
	flagSigned   byte = 2 // protocol 3: a signature ends the report
)

var errShort = errors.New("truncated message")

// wireReader reads the fields of a binary message; the first error sticks.
type wireReader struct {
	b   []byte
	err error
}

func (r *wireReader) str() []byte {
	if r.err != nil {
		return nil
	}
	n, k := binary.Uvarint(r.b)
	if k <= 0 || n > maxWireOut || n > uint64(len(r.b)-k) {
		r.err = errShort
		return nil
	}
	v := r.b[k : k+int(n)]
	r.b = r.b[k+int(n):]
	return v
}

func (r *wireReader) u64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.err = errShort
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *wireReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.err = errShort
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// reportHeader is the part of a version 2 report read before deciding
// whether it is new. The byte slices alias the message.
type reportHeader struct {
	flags                  byte
	origin, service, check []byte
	seq                    uint64
}

// encodeReportV2 lays out: type, flags, origin, service, check, seq (the
// header), then time (unix ns), region, status code [status], output,
// [capacity as float64 bits], [signature] (protocol 3).
func encodeReportV2(r Report) []byte {
	b := make([]byte, 0, 48+sigLen+len(r.Origin)+len(r.Service)+len(r.Check)+len(r.Region)+len(r.Output))
	var flags byte
	if r.Capacity != nil {
		flags |= flagCapacity
	}
	if len(r.Sig) == sigLen {
		flags |= flagSigned
	}
	b = append(b, msgReportV2, flags)
	b = appendStr(b, r.Origin)
	b = appendStr(b, r.Service)
	b = appendStr(b, r.Check)
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixNano()))
	b = appendStr(b, r.Region)
	switch r.Status {
	case StatusPassing:
		b = append(b, statusCodePassing)
	case StatusFailing:
		b = append(b, statusCodeFailing)
	case statusWithdrawn:
		b = append(b, statusCodeWithdrawn)
	default:
		b = appendStr(append(b, statusCodeString), r.Status)
	}
	b = appendStr(b, r.Output)
	if r.Capacity != nil {
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(*r.Capacity))
	}
	if flags&flagSigned != 0 {
		b = append(b, r.Sig...)
	}
	return b
}

// readReportHeader reads the header of a msgReportV2 message (type byte
// included) without copying; rd is left at the body.
func readReportHeader(b []byte) (reportHeader, wireReader, error) {
	if len(b) < 2 || b[0] != msgReportV2 {
		return reportHeader{}, wireReader{}, errors.New("not a version 2 report")
	}
	rd := wireReader{b: b[1:]}
	h := reportHeader{flags: rd.byte()}
	h.origin, h.service, h.check = rd.str(), rd.str(), rd.str()
	h.seq = rd.u64()
	if rd.err != nil {
		return reportHeader{}, wireReader{}, rd.err
	}
	return h, rd, nil
}

// decodeReportV2 decodes and validates a whole msgReportV2 message.
func decodeReportV2(b []byte) (Report, error) {
	h, rd, err := readReportHeader(b)
	if err != nil {
		return Report{}, err
	}
	r := Report{Origin: string(h.origin), Service: string(h.service), Check: string(h.check), Seq: h.seq}
	r.Time = time.Unix(0, int64(rd.u64()))
	r.Region = string(rd.str())
	switch code := rd.byte(); code {
	case statusCodePassing:
		r.Status = StatusPassing
	case statusCodeFailing:
		r.Status = StatusFailing
	case statusCodeWithdrawn:
		r.Status = statusWithdrawn
	case statusCodeString:
		r.Status = string(rd.str())
	default:
		return Report{}, errors.New("unknown status code")
	}
	r.Output = string(rd.str())
	if h.flags&flagCapacity != 0 {
		c := math.Float64frombits(rd.u64())
		r.Capacity = &c
	}
	if h.flags&flagSigned != 0 {
		if len(rd.b) < sigLen {
			return Report{}, errShort
		}
		r.Sig = append([]byte(nil), rd.b[:sigLen]...)
		rd.b = rd.b[sigLen:]
	}
	if rd.err != nil {
		return Report{}, rd.err
	}
	if len(rd.b) != 0 {
		return Report{}, errors.New("trailing bytes after report")
	}
	return r, validReport(r)
}

// refresh is a version 2 heartbeat: the origin's reports are unchanged
// since its change with sequence table, and were current at asOf (the
// origin's clock: the oldest time one of its live reports was last
// published). seq orders refreshes of one origin; it comes from the same
// counter as report sequences.
type refresh struct {
	origin string
	seq    uint64
	table  uint64
	sent   int64  // unix ns, origin's clock
	asOf   int64  // unix ns, origin's clock
	sig    []byte // protocol 3: the origin's signature (identity.go), or nil
}

func encodeRefresh(f refresh) []byte {
	b := make([]byte, 0, 34+sigLen+len(f.origin))
	b = append(b, msgRefresh)
	b = appendStr(b, f.origin)
	b = binary.BigEndian.AppendUint64(b, f.seq)
	b = binary.BigEndian.AppendUint64(b, f.table)
	b = binary.BigEndian.AppendUint64(b, uint64(f.sent))
	b = binary.BigEndian.AppendUint64(b, uint64(f.asOf))
	return append(b, f.sig...)
}

// readRefresh decodes a msgRefresh or msgRefreshRelay message, with or
// without a signature; origin and the signature alias b.
func readRefresh(b []byte) (origin []byte, f refresh, err error) {
	if len(b) < 2 || (b[0] != msgRefresh && b[0] != msgRefreshRelay) {
		return nil, refresh{}, errors.New("not a refresh message")
	}
	rd := wireReader{b: b[1:]}
	origin = rd.str()
	f.seq, f.table = rd.u64(), rd.u64()
	f.sent, f.asOf = int64(rd.u64()), int64(rd.u64())
	if rd.err == nil && len(rd.b) == sigLen {
		f.sig, rd.b = rd.b, nil
	}
	switch {
	case rd.err != nil:
		return nil, refresh{}, rd.err
	case len(rd.b) != 0:
		return nil, refresh{}, errors.New("trailing bytes after refresh")
	case len(origin) == 0 || len(origin) > maxField || f.seq == 0 || f.table == 0:
		return nil, refresh{}, errors.New("invalid refresh")
	}
	return origin, f, nil
}
