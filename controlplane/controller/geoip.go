package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/evac-sh/evac/controlplane/api/wire"
	"github.com/evac-sh/evac/controlplane/state"
	"github.com/evac-sh/evac/internal/geoip"
)

// geoDB is the controller's GeoIP database (Config.GeoIPDB) for the
// nearest policy: loaded at start (a failure stops the start), reloaded by
// ReloadGeoIP (SIGHUP), where a failure keeps the last good database and
// says so in GET /v1/status, the metrics, the log and an audit event.
type geoDB struct {
	mu       sync.Mutex
	db       *geoip.DB
	loadedAt time.Time
	lastErr  string
	errAt    time.Time

	failures prometheus.Counter
}

// startGeoIP loads the database at path and hands it to the DNS server.
func (c *Controller) startGeoIP(path string) error {
	db, err := geoip.Open(path)
	if err != nil {
		return fmt.Errorf("--geoip-db: %w", err)
	}
	g := &geoDB{db: db, loadedAt: time.Now(), failures: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "evac_geoip_reload_failures_total",
		Help: "GeoIP database reloads that failed (the last good database stays in force).",
	})}
	build := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "evac_geoip_build_timestamp_seconds",
		Help: "Build time of the GeoIP database in force (Unix seconds); compare across controllers.",
	}, func() float64 {
		g.mu.Lock()
		defer g.mu.Unlock()
		return float64(g.db.BuildTime.Unix())
	})
	stale := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "evac_geoip_reload_failed",
		Help: "1 when the last GeoIP database reload failed and an older database is in force.",
	}, func() float64 {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.lastErr != "" {
			return 1
		}
		return 0
	})
	if err := c.metrics.Register(g.failures, build, stale); err != nil {
		return fmt.Errorf("geoip metrics: %w", err)
	}
	c.geo = g
	c.dns.SetLocator(db)
	c.logger.Info("GeoIP database loaded", zap.String("file", path), zap.String("type", db.Type),
		zap.Time("build-time", db.BuildTime), zap.Int("records", db.Records))
	return nil
}

// ReloadGeoIP re-reads the GeoIP database file (SIGHUP). On failure the
// last good database stays in force and the error is returned.
func (c *Controller) ReloadGeoIP(ctx context.Context) error {
	g := c.geo
	if g == nil {
		return nil
	}
	g.mu.Lock()
	path := g.db.Path
	g.mu.Unlock()
	db, err := geoip.Open(path)
	if err != nil {
		g.failures.Inc()
		g.mu.Lock()
		g.lastErr, g.errAt = err.Error(), time.Now()
		build := g.db.BuildTime
		g.mu.Unlock()
		c.logger.Error("GeoIP database reload failed; the last good database stays in force",
			zap.String("file", path), zap.Time("build-time-in-force", build), zap.Error(err))
		c.recordGeoEvent(ctx, "geoip.reload_failed", fmt.Sprintf("%s: %v (in force: the database built %s)", c.cfg.NodeID, err, build.Format(time.RFC3339)))
		return err
	}
	g.mu.Lock()
	g.db, g.loadedAt, g.lastErr, g.errAt = db, time.Now(), "", time.Time{}
	g.mu.Unlock()
	c.dns.SetLocator(db)
	c.logger.Info("GeoIP database reloaded", zap.String("file", path), zap.Time("build-time", db.BuildTime), zap.Int("records", db.Records))
	c.recordGeoEvent(ctx, "geoip.reload", fmt.Sprintf("%s: database built %s", c.cfg.NodeID, db.BuildTime.Format(time.RFC3339)))
	return nil
}

// recordGeoEvent puts an audit event in the log, best effort (a
// controller without quorum still logs the reload).
func (c *Controller) recordGeoEvent(ctx context.Context, kind, detail string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	id := fmt.Sprintf("geoip:%s:%d", c.cfg.NodeID, time.Now().UnixNano())
	if _, err := c.Propose(ctx, state.CmdRecordEvent, "controller:"+c.cfg.NodeID, id, state.RecordEvent{Kind: kind, Detail: detail}); err != nil {
		c.logger.Warn("cannot record the GeoIP event", zap.String("kind", kind), zap.Error(err))
	}
}

// geoStatus is the GeoIP part of GET /v1/status, nil without a database.
func (c *Controller) geoStatus() *wire.GeoIPStatus {
	g := c.geo
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	s := &wire.GeoIPStatus{File: g.db.Path, Type: g.db.Type, BuildTime: g.db.BuildTime, LoadedAt: g.loadedAt,
		Records: g.db.Records, ReloadError: g.lastErr}
	if !g.errAt.IsZero() {
		t := g.errAt
		s.ReloadErrorAt = &t
	}
	return s
}
