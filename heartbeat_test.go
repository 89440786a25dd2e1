// Tests of heartbeat pings: the client against a local HTTP server, and the
// Store pinging only while every database replicates.
package litestream_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/internal/faultclient"
)

// pingServer counts GET requests and answers each with status.
func pingServer(t *testing.T, status *atomic.Int32) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			t.Errorf("heartbeat method %s, want GET", r.Method)
		}
		n.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestHeartbeatClient(t *testing.T) {
	ctx := context.Background()
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv, pings := pingServer(t, &status)

	c := litestream.NewHeartbeatClient(srv.URL, time.Second)
	if c.Interval != litestream.MinHeartbeatInterval || c.Timeout != litestream.DefaultHeartbeatTimeout {
		t.Fatalf("NewHeartbeatClient: interval %s timeout %s, want %s and %s", c.Interval, c.Timeout, litestream.MinHeartbeatInterval, litestream.DefaultHeartbeatTimeout)
	}
	if !c.ShouldPing() || !c.LastPingAt().IsZero() {
		t.Fatal("a new client should be due, with no last ping")
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	} else if pings.Load() != 1 {
		t.Fatalf("server saw %d pings, want 1", pings.Load())
	}
	c.RecordPing()
	if c.ShouldPing() || time.Since(c.LastPingAt()) > time.Minute {
		t.Fatalf("after RecordPing: ShouldPing %v, LastPingAt %s", c.ShouldPing(), c.LastPingAt())
	}

	status.Store(http.StatusServiceUnavailable)
	if err := c.Ping(ctx); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("ping answered 503: err %v, want one naming the status", err)
	}

	if err := (&litestream.HeartbeatClient{}).Ping(ctx); err != nil {
		t.Fatalf("ping without URL: %v, want a no-op", err)
	}
	if err := (&litestream.HeartbeatClient{URL: "http://127.0.0.1:1/"}).Ping(ctx); err == nil {
		t.Fatal("ping of a closed port succeeded")
	}
}

// The Store pings after successful syncs of every database, and stops
// pinging while a database cannot replicate.
func TestStore_Heartbeat(t *testing.T) {
	ctx := context.Background()
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv, pings := pingServer(t, &status)

	dir := t.TempDir()
	raw := file.NewReplicaClient(filepath.Join(dir, "replica"))
	fc := faultclient.New(raw, faultclient.Config{Seed: 1, ErrorRate: 1})
	fc.SetEnabled(false)
	db := newVerifiedDB(t, filepath.Join(dir, "db"), fc, raw)
	db.MonitorInterval = 20 * time.Millisecond
	db.Replica.SyncInterval = 20 * time.Millisecond

	store := litestream.NewStore([]*litestream.DB{db}, litestream.CompactionLevels{{Level: 0}})
	store.CompactionMonitorEnabled = false
	store.ShutdownSyncTimeout = time.Second // a failed test closes with the replica still failing
	store.HeartbeatCheckInterval = 10 * time.Millisecond
	const interval = 100 * time.Millisecond
	store.Heartbeat = &litestream.HeartbeatClient{URL: srv.URL, Interval: interval, Timeout: time.Second}
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close(ctx) }()
	app := MustOpenApp(t, db.Path(), 4096)

	mustInsert(t, app, 1)
	waitFor(t, 10*time.Second, "a ping after the first sync", func() bool { return pings.Load() >= 1 })

	// The replica fails from now on, with a write waiting to go out. One
	// more ping may still come, for the syncs before the failure.
	fc.SetEnabled(true)
	mustInsert(t, app, 2)
	failingSince := time.Now()
	waitFor(t, 10*time.Second, "failed uploads for over an interval", func() bool {
		return fc.Counts()[faultclient.KindError] >= 3 && time.Since(failingSince) > 2*interval
	})
	before, failedBefore, quietSince := pings.Load(), fc.Counts()[faultclient.KindError], time.Now()
	waitFor(t, 10*time.Second, "several heartbeat intervals of failing uploads", func() bool {
		return time.Since(quietSince) > 4*interval && fc.Counts()[faultclient.KindError] > failedBefore
	})
	if got := pings.Load(); got != before {
		t.Fatalf("%d pings while the replica failed, want none", got-before)
	}

	// The server counts a ping when it arrives, the client records it when
	// the answer does: wait for both.
	fc.SetEnabled(false)
	waitFor(t, 10*time.Second, "a ping after the replica recovered, recorded by LastPingAt", func() bool {
		return pings.Load() > before && !store.Heartbeat.LastPingAt().Before(quietSince)
	})
}

// A Store without databases has nothing healthy to report and never pings.
func TestStore_HeartbeatWithoutDatabases(t *testing.T) {
	ctx := context.Background()
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv, pings := pingServer(t, &status)

	store := litestream.NewStore(nil, litestream.CompactionLevels{{Level: 0}})
	store.HeartbeatCheckInterval = 5 * time.Millisecond
	store.Heartbeat = &litestream.HeartbeatClient{URL: srv.URL, Interval: time.Millisecond}
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, 5*time.Second, "many check intervals", func() bool { return time.Since(start) > 100*time.Millisecond })
	if err := store.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := pings.Load(); n != 0 {
		t.Fatalf("%d pings with no databases, want 0", n)
	}
}
