// Package auditexport appends a controller's audit events to a file as JSON
// lines (`evac server --events-export FILE`), so that events rolling off the
// replicated log (policy.events_retained) are not lost.
//
// Each controller exports the events its own replica applies, in sequence
// order, each once: on start it reads the last complete line of the file and
// goes on after that event's seq (a torn last line, from a crash in the
// middle of a write, is cut off and written again). Where the replica no
// longer holds the events after the last exported one (the controller was
// away while more than events_retained events were committed, and caught up
// from a snapshot), the gap is logged as an error naming the missing seqs:
// another controller's export has them.
package auditexport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/state"
)

// tailSize is how much of the file's end Open reads to find the last line;
// an event's JSON is far shorter.
const tailSize = 64 << 10

// Exporter appends events to one file. It is not safe for concurrent use:
// the controller's state follower owns it.
type Exporter struct {
	path string
	f    *os.File
	log  *zap.Logger
	last uint64 // seq of the last event in the file, 0 if none
	buf  bytes.Buffer
}

// Open opens (creating it 0600) the export file at path and finds the last
// event it holds.
func Open(path string, log *zap.Logger) (*Exporter, error) {
	if log == nil {
		log = zap.NewNop()
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("events export: %w", err)
	}
	e := &Exporter{path: path, f: f, log: log}
	if err := e.findLast(); err != nil {
		f.Close()
		return nil, fmt.Errorf("events export %s: %w", path, err)
	}
	return e, nil
}

// findLast reads the seq of the last complete line and cuts off a torn one.
func (e *Exporter) findLast() error {
	size, err := e.f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	start := max(0, size-tailSize)
	tail := make([]byte, size-start)
	if _, err := e.f.ReadAt(tail, start); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the end: %w", err)
	}
	end := bytes.LastIndexByte(tail, '\n') + 1 // the complete lines end here
	if end == 0 && start > 0 {
		return fmt.Errorf("no line end in the last %d bytes: not an events export", tailSize)
	}
	if keep := start + int64(end); keep < size {
		e.log.Warn("events export: cutting off a torn last line", zap.String("file", e.path), zap.Int64("bytes", size-keep))
		if err := e.f.Truncate(keep); err != nil {
			return fmt.Errorf("cut off the torn last line: %w", err)
		}
	}
	lines := bytes.Split(bytes.TrimSuffix(tail[:end], []byte("\n")), []byte("\n"))
	if last := lines[len(lines)-1]; len(last) > 0 {
		var ev struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(last, &ev); err != nil || ev.Seq == 0 {
			return fmt.Errorf("the last line is not an event with a seq: %.80q", last)
		}
		e.last = ev.Seq
	}
	return nil
}

// Last is the seq of the last event exported, 0 if none.
func (e *Exporter) Last() uint64 { return e.last }

// Export appends the events of evs (oldest first) after the last exported
// one and syncs the file. On an error nothing is counted as exported, so
// the next call writes them again.
func (e *Exporter) Export(evs []state.Event) error {
	e.buf.Reset()
	last := e.last
	for _, ev := range evs {
		if ev.Seq <= last {
			continue
		}
		if last > 0 && ev.Seq > last+1 {
			e.log.Error("events export: events rolled off this replica before they were exported; another controller's export has them",
				zap.String("file", e.path), zap.Uint64("first-missing", last+1), zap.Uint64("last-missing", ev.Seq-1))
		}
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("events export: encode event %d: %w", ev.Seq, err)
		}
		e.buf.Write(b)
		e.buf.WriteByte('\n')
		last = ev.Seq
	}
	if e.buf.Len() == 0 {
		return nil
	}
	fi, err := e.f.Stat()
	if err != nil {
		return fmt.Errorf("events export %s: %w", e.path, err)
	}
	// The file is opened O_APPEND: a copytruncate rotation leaves no hole.
	if _, err := e.f.Write(e.buf.Bytes()); err != nil {
		// Take back a partial write, so the retry leaves whole lines.
		_ = e.f.Truncate(fi.Size())
		return fmt.Errorf("events export %s: %w", e.path, err)
	}
	if err := e.f.Sync(); err != nil {
		return fmt.Errorf("events export %s: sync: %w", e.path, err)
	}
	e.last = last
	return nil
}

// Close closes the file.
func (e *Exporter) Close() error { return e.f.Close() }
