// Tests of WaitReplicated and the metrics registry.
package litestream_test

import (
	"context"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Fifty writers that each commit and then wait all return with their rows
// on the replica, sharing syncs: no more L0 uploads than monitor intervals.
func TestDB_WaitReplicated_GroupCommit(t *testing.T) {
	dir := t.TempDir()
	client := &testClient{ReplicaClient: file.NewReplicaClient(filepath.Join(dir, "replica"))}
	db := MustNewDB(t, filepath.Join(dir, "db"), client)
	db.MonitorInterval = 100 * time.Millisecond
	db.Replica.SyncInterval = 100 * time.Millisecond
	store := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
	ctx := context.Background()
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	app := MustOpenApp(t, db.Path(), 4096)
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	before := client.l0Writes.Load()

	const writers = 50
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, i); err != nil {
				errs <- err
				return
			}
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := db.WaitReplicated(ctx); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	uploads := client.l0Writes.Load() - before
	// Restore what the replica holds right now: every row must be there.
	got := MustCheckRestored(t, MustRestore(t, db.Replica, 0))
	if want := MustDump(t, app); got != want {
		t.Fatalf("replica after all waiters returned: %s, want %s", got, want)
	}
	// The monitor writes at most one L0 file per MonitorInterval, however
	// many wait: a load that spreads the writers out over more intervals
	// raises the bound, waiters that synced on their own would break it.
	if limit := int64(elapsed/db.MonitorInterval) + 2; uploads > limit {
		t.Fatalf("%d L0 uploads for %d waiters in %s: want at most %d, one per %s: waiters did not share syncs",
			uploads, writers, elapsed.Round(time.Millisecond), limit, db.MonitorInterval)
	}
	t.Logf("%d waiters, %d L0 uploads in %s", writers, uploads, elapsed.Round(time.Millisecond))

	// A canceled context returns promptly with its error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := db.WaitReplicated(cctx); err != context.Canceled {
		t.Fatalf("canceled wait: err = %v", err)
	}
	if err := store.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// Metrics appear only on the registry passed in, and lag drops to zero
// as soon as the replica has caught up.
func TestMetrics_RegistryAndLag(t *testing.T) {
	db, app, _ := MustOpenDB(t, 4096)
	reg := prometheus.NewRegistry()
	m, err := litestream.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMetrics(m)

	ctx := context.Background()
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "litestream_sync_count", "litestream_txid", "litestream_replication_lag_txids"); n != 3 {
		t.Fatalf("registry has %d of the expected series", n)
	}
	lag := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "litestream_replication_lag_txids" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no lag gauge")
		return 0
	}
	if got := lag(); got < 1 {
		t.Fatalf("lag before upload = %v, want at least 1", got)
	}
	// The gauges follow the upload event; no local sync is needed.
	if err := db.Replica.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := lag(); got != 0 {
		t.Fatalf("lag after upload = %v, want 0", got)
	}

	// Nothing on the default registry.
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if len(mf.GetName()) > 10 && mf.GetName()[:11] == "litestream_" {
			t.Fatalf("%s registered on the default registry", mf.GetName())
		}
	}
}

// A wait whose context is already canceled returns the context's error,
// even with the replica caught up and syncs finishing all around it.
func TestDB_WaitReplicated_CanceledContext(t *testing.T) {
	ctx := context.Background()
	db, app, _ := MustOpenMonitoredDB(t, io.Discard, nil, nil)
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (0)`); err != nil {
		t.Fatal(err)
	}
	if err := db.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	for i := 1; i <= 200; i++ {
		if i%2 == 0 {
			// Caught up: nothing new to wait for.
			if err := db.WaitReplicated(ctx); err != nil {
				t.Fatal(err)
			}
		} else if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
		if err := db.WaitReplicated(canceled); err != context.Canceled {
			t.Fatalf("wait %d with a canceled context: err = %v, want context.Canceled", i, err)
		}
	}
}
