package gossip

import (
	"bytes"
	"log"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newStdLogger adapts zap to the *log.Logger memberlist writes to. Lines
// look like "[WARN] memberlist: text": the bracketed level selects the zap
// level and the "memberlist: " prefix is dropped (the logger is named).
func newStdLogger(l *zap.Logger) *log.Logger {
	l = l.WithOptions(zap.WithCaller(false), zap.AddStacktrace(zapcore.FatalLevel))
	return log.New(&levelWriter{log: l}, "", 0)
}

type levelWriter struct{ log *zap.Logger }

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
	if ce := w.log.Check(lvl, string(line)); ce != nil {
		ce.Write()
	}
	return n, nil
}
