// Heartbeat pings: an HTTP GET to a monitoring URL (a dead man's switch such
// as healthchecks.io) sent only while every database keeps replicating.

package litestream

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/benbjohnson/litestream/internal"
)

// Heartbeat defaults.
const (
	DefaultHeartbeatInterval      = 5 * time.Minute
	DefaultHeartbeatTimeout       = 30 * time.Second
	MinHeartbeatInterval          = 1 * time.Minute
	DefaultHeartbeatCheckInterval = 15 * time.Second
)

// HeartbeatClient pings URL at most once per Interval. The Store decides
// when a ping is deserved (see Store.Heartbeat); the client only sends it
// and remembers when it last succeeded.
type HeartbeatClient struct {
	// URL receives a GET per ping. Empty makes Ping a no-op.
	URL string

	// Interval is the least time between pings.
	Interval time.Duration

	// Timeout bounds one ping request.
	Timeout time.Duration

	mu         sync.Mutex
	lastPingAt time.Time
}

// NewHeartbeatClient returns a client pinging url every interval, raised to
// MinHeartbeatInterval if shorter, with DefaultHeartbeatTimeout per request.
func NewHeartbeatClient(url string, interval time.Duration) *HeartbeatClient {
	if interval < MinHeartbeatInterval {
		interval = MinHeartbeatInterval
	}
	return &HeartbeatClient{URL: url, Interval: interval, Timeout: DefaultHeartbeatTimeout}
}

// Ping sends one GET to URL; any status outside 2xx is an error.
func (c *HeartbeatClient) Ping(ctx context.Context) error {
	if c.URL == "" {
		return nil
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultHeartbeatTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
	if err != nil {
		return fmt.Errorf("create heartbeat request for %q: %w", c.URL, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("heartbeat request: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused

	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return fmt.Errorf("heartbeat %s: unexpected status code: %d", c.URL, resp.StatusCode)
	}
	return nil
}

// ShouldPing reports whether Interval has passed since the last recorded ping.
func (c *HeartbeatClient) ShouldPing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Since(c.lastPingAt) >= c.Interval
}

// LastPingAt returns when RecordPing was last called, or the zero time.
func (c *HeartbeatClient) LastPingAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastPingAt
}

// RecordPing notes a successful ping now.
func (c *HeartbeatClient) RecordPing() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastPingAt = time.Now()
}

// monitorHeartbeat checks every HeartbeatCheckInterval whether a ping is
// due and deserved, and sends it.
func (s *Store) monitorHeartbeat(interval time.Duration) {
	internal.Tick(s.ctx, interval, func() bool {
		s.sendHeartbeatIfDue(s.ctx)
		return true
	})
}

// sendHeartbeatIfDue pings when the interval has passed and every database
// has replicated successfully since the last ping; a ping for replication
// that has stalled would hide the very failure it exists to report.
func (s *Store) sendHeartbeatIfDue(ctx context.Context) {
	s.mu.Lock()
	hb := s.Heartbeat
	s.mu.Unlock()
	if hb == nil || !hb.ShouldPing() {
		return
	}
	lastPing := hb.LastPingAt()
	dbs := s.DBs()
	if len(dbs) == 0 {
		return
	}
	for _, db := range dbs {
		if synced := db.LastSuccessfulSyncAt(); synced.IsZero() || !synced.After(lastPing) {
			return
		}
	}
	if err := hb.Ping(ctx); err != nil {
		if ctx.Err() == nil && !s.heartbeatFailing {
			s.heartbeatFailing = true
			s.logger().Error("heartbeat ping failed", "url", hb.URL, "error", err)
		}
		return
	}
	hb.RecordPing()
	if s.heartbeatFailing {
		s.heartbeatFailing = false
		s.logger().Info("heartbeat ping succeeded again", "url", hb.URL)
	}
}
