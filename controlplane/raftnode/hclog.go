package raftnode

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// hclogZap is a thin hclog.Logger over a *zap.Logger, so raft and raft-wal
// log into the same stream as the rest of evac.
//
// Levels: Trace and Debug map to zap Debug, Warn to Warn, Error to Error.
// Info maps to Info except for raft's routine chatter (quietInfo), which goes
// to Debug: state changes and membership stay visible at Info, pipeline and
// snapshot housekeeping do not. Key/value pairs become zap fields; raft
// already uses kebab-case keys.
type hclogZap struct {
	z       *zap.Logger
	root    *zap.Logger // for ResetNamed
	name    string
	implied []any
	level   *atomic.Int32 // hclog.Level; shared by derived loggers, like hclog
}

// quietInfo lists raft and raft-wal INFO messages demoted to Debug.
var quietInfo = map[string]bool{
	"pipelining replication":              true,
	"aborting pipeline replication":       true,
	"starting snapshot up to":             true,
	"snapshot complete up to":             true,
	"creating new snapshot":               true,
	"reaping snapshot":                    true,
	"compacting logs":                     true,
	"no logs to truncate":                 true,
	"duplicate requestVote for same term": true,
}

// peerErrors lists raft ERROR messages about one unreachable peer, demoted to
// Warn: the leader logs them at every retry while a follower is down or
// partitioned, which the cluster survives (and which a controller's own
// shutdown causes on its peers). Losing quorum still shows: the leader steps
// down and elections are logged.
var peerErrors = map[string]bool{
	"failed to heartbeat to":         true,
	"failed to appendEntries to":     true,
	"failed to make requestVote RPC": true,
}

func newHclogZap(z *zap.Logger) *hclogZap {
	lv := new(atomic.Int32)
	lv.Store(int32(hclog.Trace))
	return &hclogZap{z: z, root: z, level: lv}
}

var _ hclog.Logger = (*hclogZap)(nil)

func (l *hclogZap) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off || level < hclog.Level(l.level.Load()) {
		return
	}
	var zl zapcore.Level
	switch level {
	case hclog.Trace, hclog.Debug:
		zl = zapcore.DebugLevel
	case hclog.Warn:
		zl = zapcore.WarnLevel
	case hclog.Error:
		zl = zapcore.ErrorLevel
		if peerErrors[msg] {
			zl = zapcore.WarnLevel
		}
	default: // Info, NoLevel
		zl = zapcore.InfoLevel
		if quietInfo[msg] {
			zl = zapcore.DebugLevel
		}
	}
	if zl > zapcore.InfoLevel && ownClose(args) {
		zl = zapcore.DebugLevel
	}
	ce := l.z.Check(zl, msg)
	if ce == nil {
		return
	}
	ce.Write(toFields(args)...)
}

func (l *hclogZap) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l *hclogZap) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l *hclogZap) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l *hclogZap) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l *hclogZap) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l *hclogZap) enabled(hl hclog.Level, zl zapcore.Level) bool {
	return hl >= hclog.Level(l.level.Load()) && l.z.Core().Enabled(zl)
}

func (l *hclogZap) IsTrace() bool { return l.enabled(hclog.Trace, zapcore.DebugLevel) }
func (l *hclogZap) IsDebug() bool { return l.enabled(hclog.Debug, zapcore.DebugLevel) }
func (l *hclogZap) IsInfo() bool  { return l.enabled(hclog.Info, zapcore.InfoLevel) }
func (l *hclogZap) IsWarn() bool  { return l.enabled(hclog.Warn, zapcore.WarnLevel) }
func (l *hclogZap) IsError() bool { return l.enabled(hclog.Error, zapcore.ErrorLevel) }

func (l *hclogZap) ImpliedArgs() []any { return l.implied }

func (l *hclogZap) With(args ...any) hclog.Logger {
	c := *l
	c.implied = append(append([]any(nil), l.implied...), args...)
	c.z = l.z.With(toFields(args)...)
	return &c
}

func (l *hclogZap) Name() string { return l.name }

func (l *hclogZap) Named(name string) hclog.Logger {
	c := *l
	if c.name != "" {
		c.name += "." + name
	} else {
		c.name = name
	}
	c.z = l.z.Named(name)
	return &c
}

func (l *hclogZap) ResetNamed(name string) hclog.Logger {
	c := *l
	c.name = name
	c.z = l.root.Named(name).With(toFields(l.implied)...)
	return &c
}

func (l *hclogZap) SetLevel(level hclog.Level) { l.level.Store(int32(level)) }
func (l *hclogZap) GetLevel() hclog.Level      { return hclog.Level(l.level.Load()) }

func (l *hclogZap) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(l.StandardWriter(opts), "", 0)
}

func (l *hclogZap) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	w, err := zap.NewStdLogAt(l.z, zapcore.InfoLevel)
	if err != nil { // only for invalid levels
		return io.Discard
	}
	return w.Writer()
}

// ownClose reports whether an error argument says a connection or the
// transport was closed, which during this node's Shutdown is expected and
// not worth a warning (raft logs "failed to decode incoming command" at
// ERROR for it).
func ownClose(args []any) bool {
	for i := 1; i < len(args); i += 2 {
		if err, ok := args[i].(error); ok && (errors.Is(err, net.ErrClosed) || errors.Is(err, raft.ErrTransportShutdown)) {
			return true
		}
	}
	return false
}

// toFields turns hclog's alternating key/value args into zap fields. Values
// are converted explicitly: zap.Any would reflect over structs such as
// *raft.Raft, which is both huge and racy.
func toFields(args []any) []zap.Field {
	if len(args) == 0 {
		return nil
	}
	fields := make([]zap.Field, 0, (len(args)+1)/2)
	for i := 0; i < len(args); i += 2 {
		if i+1 == len(args) {
			fields = append(fields, field("extra-value-at-end", args[i]))
			break
		}
		key, ok := args[i].(string)
		if !ok {
			key = fmt.Sprint(args[i])
		}
		fields = append(fields, field(key, args[i+1]))
	}
	return fields
}

func field(key string, v any) zap.Field {
	switch v := v.(type) {
	case nil:
		return zap.Skip()
	case string:
		return zap.String(key, v)
	case error:
		return zap.NamedError(key, v)
	case bool:
		return zap.Bool(key, v)
	case int:
		return zap.Int(key, v)
	case int32:
		return zap.Int32(key, v)
	case int64:
		return zap.Int64(key, v)
	case uint:
		return zap.Uint(key, v)
	case uint8:
		return zap.Uint8(key, v)
	case uint32:
		return zap.Uint32(key, v)
	case uint64:
		return zap.Uint64(key, v)
	case float64:
		return zap.Float64(key, v)
	case time.Duration:
		return zap.Duration(key, v)
	case time.Time:
		return zap.Time(key, v)
	case fmt.Stringer:
		return zap.Stringer(key, v)
	case hclog.Format:
		if len(v) > 0 {
			if f, ok := v[0].(string); ok {
				return zap.String(key, fmt.Sprintf(f, v[1:]...))
			}
		}
		return zap.String(key, fmt.Sprint(v...))
	default:
		return zap.String(key, fmt.Sprintf("%+v", v))
	}
}
