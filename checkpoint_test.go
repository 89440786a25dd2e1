// Tests of checkpoints alongside the application's own.
package litestream_test

import (
	"context"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/benbjohnson/litestream"
)

// After a library checkpoint the application's own checkpoints can still
// copy frames: the library's read transaction must not sit on read mark 0,
// which blocks them all (and makes every app commit past wal_autocheckpoint
// build a checkpoint iterator over the whole WAL, in vain).
func TestDB_Checkpoint_LeavesAppCheckpointsWorking(t *testing.T) {
	db, app, _ := MustOpenDB(t, 4096)
	ctx := context.Background()
	insert := func(n int) {
		t.Helper()
		for range n {
			if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
				t.Fatal(err)
			}
		}
	}
	insert(20)
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Checkpoint(ctx, litestream.CheckpointModePassive); err != nil {
		t.Fatal(err)
	}

	insert(50)
	var busy, frames, checkpointed int
	if err := app.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &checkpointed); err != nil {
		t.Fatal(err)
	}
	if checkpointed == 0 {
		t.Fatalf("app checkpoint copied no frames of %d: the library blocks it", frames)
	}
	if checkpointed >= frames {
		t.Fatalf("app checkpoint copied all %d frames past the library's read mark", frames)
	}

	// Nothing the app checkpointed is missing from the replica.
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, MustRestore(t, db.Replica, 0)), MustDump(t, app); got != want {
		t.Fatal("restored database differs from the source")
	}
}

// checkpointCount returns litestream_checkpoint_count for mode from reg.
func checkpointCount(t testing.TB, reg *prometheus.Registry, mode string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "litestream_checkpoint_count" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "mode" && l.GetValue() == mode {
					return int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return 0
}

// A long app reader keeps the emergency TRUNCATE checkpoint from
// completing, and each attempt holds app writers up to BusyTimeout. It must
// not run at every sync: attempts back off (doubling from MonitorInterval),
// the state change is logged once, and once the reader is gone the WAL is
// truncated, with every commit still restorable.
func TestDB_EmergencyTruncate_BacksOffWhileReaderHoldsWAL(t *testing.T) {
	ctx := context.Background()
	const truncatePageN = 20
	var logs syncBuffer
	reg := prometheus.NewRegistry()
	m, err := litestream.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	db, app, _ := MustOpenMonitoredDB(t, &logs, nil, func(db *litestream.DB) {
		db.SetMetrics(m)
		db.TruncatePageN = truncatePageN
		db.CheckpointInterval = 0
		db.BusyTimeout = 100 * time.Millisecond
	})
	base := db.MonitorInterval
	insert := func() {
		t.Helper()
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (1, randomblob(3000))`); err != nil {
			t.Fatal(err)
		}
	}
	walSize := func() int64 {
		fi, err := os.Stat(db.Path() + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	threshold := int64(litestream.WALHeaderSize + (litestream.WALFrameHeaderSize+4096)*truncatePageN)
	insert()
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	// A long reader in another connection, with a mark in the WAL.
	rd := MustOpenApp(t, db.Path(), 4096)
	conn, err := rd.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	const syncN = 40
	for range syncN {
		insert()
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	if size := walSize(); size < threshold {
		t.Fatalf("wal is %d bytes, under the truncate threshold %d, while the reader holds it", size, threshold)
	}
	// The k-th attempt after the first comes at least (2^k-1)*base later;
	// one more for an attempt at the very end.
	attempts := checkpointCount(t, reg, litestream.CheckpointModeTruncate)
	bound := int(math.Log2(float64(elapsed)/float64(base)+1)) + 2
	t.Logf("%d TRUNCATE attempts in %d syncs over %s (bound %d)", attempts, syncN, elapsed, bound)
	if attempts == 0 {
		t.Fatal("no TRUNCATE attempt with the wal past TruncatePageN")
	} else if attempts > bound {
		t.Fatalf("%d TRUNCATE attempts in %d syncs over %s while a reader held the wal, want at most %d (backing off from %s)", attempts, syncN, elapsed, bound, base)
	}
	if got := strings.Count(logs.String(), "emergency TRUNCATE checkpoint could not complete"); got != 1 {
		t.Fatalf("logged %d times that TRUNCATE could not complete, want once:\n%s", got, logs.String())
	}

	// Without the reader the next TRUNCATE, after the backoff, completes.
	if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	} else if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "wal truncated after the reader ended", func() bool {
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		return walSize() < threshold
	})
	if got := strings.Count(logs.String(), "emergency TRUNCATE backoff ended"); got != 1 {
		t.Fatalf("logged %d times that the TRUNCATE backoff ended, want once:\n%s", got, logs.String())
	}

	insert()
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, MustRestore(t, db.Replica, 0)), MustDump(t, app); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
}
