// Tests of heartbeat pings: the client against a local HTTP server, and the
// Store pinging only while every database replicates.
package litestream_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
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

// While local capture fails (every L0 staging hits ENOSPC) the replica is
// caught up with a position that no longer moves: the heartbeat, a dead
// man's switch, must stop pinging although the replica monitor is idle.
func TestStore_Heartbeat_NoPingWhileCaptureFails(t *testing.T) {
	ctx := context.Background()
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv, pings := pingServer(t, &status)

	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db := litestream.NewDB(filepath.Join(dir, "db"))
	db.Replica = litestream.NewReplicaWithClient(db, client)
	db.MonitorInterval = 20 * time.Millisecond
	db.Replica.SyncInterval = 20 * time.Millisecond

	var failing atomic.Bool
	litestream.SetOpenFileHook(t, func(name string, flag int, perm os.FileMode) (*os.File, error) {
		if failing.Load() && strings.HasSuffix(name, ".tmp") {
			return nil, &os.PathError{Op: "open", Path: name, Err: syscall.ENOSPC}
		}
		return os.OpenFile(name, flag, perm)
	})

	store := litestream.NewStore([]*litestream.DB{db}, litestream.CompactionLevels{{Level: 0}})
	store.CompactionMonitorEnabled = false
	store.ShutdownSyncTimeout = time.Second
	store.HeartbeatCheckInterval = 10 * time.Millisecond
	const interval = 100 * time.Millisecond
	store.Heartbeat = &litestream.HeartbeatClient{URL: srv.URL, Interval: interval, Timeout: time.Second}
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { failing.Store(false); _ = store.Close(ctx) }()
	app := MustOpenApp(t, db.Path(), 4096)

	mustInsert(t, app, 1)
	waitFor(t, 10*time.Second, "a ping after the first sync", func() bool { return pings.Load() >= 1 })

	// From now on no sync can write an L0 file: commits are not captured.
	failing.Store(true)
	mustInsert(t, app, 2)
	if err := db.Sync(ctx); err == nil {
		t.Fatal("sync succeeded with L0 staging failing")
	}
	txid, _ := db.Pos()
	time.Sleep(2 * interval) // one more ping may be in flight for the syncs before
	before := pings.Load()
	time.Sleep(8 * interval) // a window in which no ping may come
	got := pings.Load() - before
	if after, _ := db.Pos(); after != txid {
		t.Fatalf("position moved from %v to %v although staging fails", txid, after)
	}
	t.Logf("pings during %s of failing capture: %d (replica lag: local TXID %s, replica %s)", 8*interval, got, txid.TXID, db.Replica.Pos().TXID)
	if got > 0 {
		t.Fatalf("%d heartbeat pings while every sync failed and a committed row was not captured, want none", got)
	}
}
