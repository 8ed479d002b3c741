package gossip

import (
	"bytes"
	"log"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/evac-sh/evac/internal/logging"
)

// garbageMessage is the rate-limited line for gossip input refused.
const garbageMessage = "gossip input refused: undecodable, unauthenticated or malformed"

// newGarbageLog returns the rate-limited logger of refused gossip input.
func newGarbageLog(l *zap.Logger) *logging.Limited {
	return logging.NewLimited(l, zapcore.WarnLevel, garbageMessage, 0)
}

// newStdLogger adapts zap to the *log.Logger memberlist writes to. Lines
// look like "[WARN] memberlist: text": the bracketed level selects the zap
// level and the "memberlist: " prefix is dropped (the logger is named).
func newStdLogger(l *zap.Logger) *log.Logger { return newLimitedStdLogger(l, nil) }

// newLimitedStdLogger is newStdLogger whose lines about input from the
// network (isGarbage) go to garbage, when not nil, which counts each and
// logs at most one line per interval: anyone who can send the gossip port
// a UDP packet, from any spoofed source, could otherwise write a log line
// per packet.
func newLimitedStdLogger(l *zap.Logger, garbage *logging.Limited) *log.Logger {
	l = l.WithOptions(zap.WithCaller(false), zap.AddStacktrace(zapcore.FatalLevel))
	return log.New(&levelWriter{log: l, garbage: garbage}, "", 0)
}

type levelWriter struct {
	log     *zap.Logger
	garbage *logging.Limited
}

func (w *levelWriter) Write(p []byte) (int, error) {
	n := len(p)
	line := bytes.TrimSpace(p)
	lvl := zapcore.InfoLevel
	if len(line) > 0 && line[0] == '[' {
		if end := bytes.IndexByte(line, ']'); end > 0 {
			switch string(line[1:end]) {
			case "DEBUG", "TRACE":
				lvl = zapcore.DebugLevel
			case "INFO":
				lvl = zapcore.InfoLevel
			case "WARN", "WARNING":
				lvl = zapcore.WarnLevel
			case "ERR", "ERROR":
				lvl = zapcore.ErrorLevel
			}
			line = bytes.TrimSpace(line[end+1:])
		}
	}
	line = bytes.TrimPrefix(line, []byte("memberlist: "))
	// A send racing this node's own shutdown: nothing is wrong, and no one
	// is left to act on it (evac dev's Ctrl-C logged a burst of these).
	if lvl > zapcore.DebugLevel && bytes.Contains(line, []byte("use of closed network connection")) {
		lvl = zapcore.DebugLevel
	}
	if w.garbage != nil && lvl >= zapcore.WarnLevel && isGarbage(line) {
		w.garbage.Log(zap.ByteString("detail", line))
		return n, nil
	}
	if ce := w.log.Check(lvl, string(line)); ce != nil {
		ce.Write()
	}
	return n, nil
}

// garbageMarks are fragments of memberlist's (v0.7.0) and our transport's
// warnings and errors about a packet or stream received that could not be
// decrypted, decoded or accepted.
var garbageMarks = [][]byte{
	[]byte("Decrypt packet failed"),
	[]byte("label"), // packet and stream label headers: missing, doubled, unacceptable
	[]byte("failed to receive"),
	[]byte("Failed to receive"),
	[]byte("Failed to read remote state"),
	[]byte("Failed to decode"),
	[]byte("Failed to decompress"),
	[]byte("invalid msgType"),
	[]byte("missing message type byte"),
	[]byte("not supported"),
	[]byte("invalid checksum"),
	[]byte("truncated messages"),
	[]byte("packet too short"),
	[]byte("Got ping for unexpected node"),
	[]byte("Too many pending push/pull requests"),
	[]byte("handler queue full"),
}

// isGarbage reports whether a memberlist line is about input from the
// network: it names a source ("from=") or matches a garbageMarks fragment.
func isGarbage(line []byte) bool {
	if bytes.Contains(line, []byte("from=")) {
		return true
	}
	for _, m := range garbageMarks {
		if bytes.Contains(line, m) {
			return true
		}
	}
	return false
}
