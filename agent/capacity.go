package agent

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// capacity returns the capacity to report, or nil.
func (a *Agent) capacity() *float64 {
	if a.cfg.Capacity != nil {
		v := *a.cfg.Capacity
		return &v
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.capKnown {
		v := a.capValue
		return &v
	}
	return nil
}

// pollCapacity fetches capacity_url every refresh interval until ctx ends.
// A failed fetch keeps the last figure for up to three intervals, then
// stops reporting one (the controllers then sum without this agent).
func (a *Agent) pollCapacity(ctx context.Context) {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	every := a.cfg.RefreshInterval.D()
	var lastOK time.Time
	for {
		v, err := fetchCapacity(ctx, client, a.cfg.CapacityURL)
		now := time.Now()
		a.mu.Lock()
		switch {
		case err == nil:
			changed := !a.capKnown || a.capValue != v
			a.capKnown, a.capValue, lastOK = true, v, now
			if changed {
				clear(a.lastPub) // carry the new figure with the next results
			}
		case a.capKnown && now.Sub(lastOK) > 3*every:
			a.capKnown = false
		}
		a.mu.Unlock()
		if err != nil {
			a.log.Warn("capacity_url fetch failed", zap.String("url", a.cfg.CapacityURL), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

func fetchCapacity(ctx context.Context, client *http.Client, url string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 128))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %s", resp.Status)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil || math.IsNaN(v) || v < 0 || v > 1e15 {
		return 0, fmt.Errorf("body is not a capacity (a number from 0 to 1e15): %q", strings.TrimSpace(string(b)))
	}
	return v, nil
}
