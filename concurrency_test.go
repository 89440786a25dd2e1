// Tests of replication while many connections read and write.
package litestream_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
	"golang.org/x/sync/errgroup"
)

// isBusy reports whether err is SQLite refusing a lock, which checkpoints
// racing readers and writers may legitimately get.
func isBusy(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "database is locked") || strings.Contains(err.Error(), "SQLITE_BUSY"))
}

// concurrencyStats counts what the goroutines of TestStore_Concurrency did.
type concurrencyStats struct {
	mu                                  sync.Mutex
	writes, reads, appChk, libChk, busy int
	confirmed                           []ltx.TXID // local TXIDs seen after WaitReplicated returned
	slowest                             map[string]time.Duration
}

func (s *concurrencyStats) add(p *int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*p++
}

// Several writers, long-lived readers, application checkpoints (PASSIVE,
// TRUNCATE) and the library's own checkpoints (size, interval and explicit
// ones) run at once while the monitors replicate, compact and snapshot. The
// replica then restores exactly the source, and TXIDs that writers saw
// confirmed restore databases that pass the integrity check.
// LITESTREAM_CONCURRENCY_SECONDS sets how long they run (default 6).
func TestStore_Concurrency(t *testing.T) {
	seconds := envInt(t, "LITESTREAM_CONCURRENCY_SECONDS", 6)
	seed := time.Now().UnixNano()
	t.Logf("seed %d, %ds", seed, seconds)
	ctx := context.Background()
	dir := t.TempDir()
	db, client, store := newStoreDB(t, dir, litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: 200 * time.Millisecond}})
	db.MonitorInterval = 20 * time.Millisecond
	db.MinCheckpointPageN = 32
	db.CheckpointInterval = 100 * time.Millisecond
	store.SnapshotInterval = time.Second
	closeStore := mustOpenStore(t, store)
	app := MustOpenApp(t, db.Path(), 4096)
	chk, err := sql.Open("sqlite", "file:"+db.Path()+"?_pragma=busy_timeout(100)")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = chk.Close() }()

	runCtx, stop := context.WithTimeout(ctx, time.Duration(seconds)*time.Second)
	defer stop()
	stats := concurrencyStats{slowest: map[string]time.Duration{}}
	var g errgroup.Group
	for w := 0; w < 4; w++ {
		rng := rand.New(rand.NewSource(seed + int64(w)))
		g.Go(func() error { return concurrentWriter(runCtx, db, app, rng, w, &stats) })
	}
	for r := 0; r < 2; r++ {
		g.Go(func() error { return longReader(runCtx, app, time.Duration(100+r*150)*time.Millisecond, &stats) })
	}
	g.Go(func() error {
		return checkpointer(runCtx, "app", []string{"PASSIVE", "TRUNCATE"}, &stats.appChk, &stats, appCheckpoint(chk))
	})
	g.Go(func() error {
		modes := []string{litestream.CheckpointModePassive, litestream.CheckpointModeFull, litestream.CheckpointModeRestart, litestream.CheckpointModeTruncate}
		return checkpointer(runCtx, "library", modes, &stats.libChk, &stats, func(mode string) error { return db.Checkpoint(ctx, mode) })
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	if err := db.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	want := MustDump(t, app)
	if err := closeStore(); err != nil {
		t.Fatal(err)
	}
	MustVerifyReplica(t, client)
	if got := MustCheckRestored(t, MustRestore(t, db.Replica, 0)); got != want {
		t.Fatalf("replica holds %s, source %s", got, want)
	}
	if len(stats.confirmed) == 0 {
		t.Fatal("no writer confirmed a transaction")
	}
	for _, i := range []int{0, len(stats.confirmed) / 3, 2 * len(stats.confirmed) / 3} {
		MustCheckRestored(t, MustRestore(t, db.Replica, stats.confirmed[i]))
	}
	t.Logf("%d writes, %d long reads, %d app and %d library checkpoints (%d busy errors), %d confirmations, %d L0 files, %s; slowest checkpoints %v",
		stats.writes, stats.reads, stats.appChk, stats.libChk, stats.busy, len(stats.confirmed), len(L0TXIDs(t, client)), want, stats.slowest)
}

// concurrentWriter commits small transactions until ctx ends, waiting for
// replication after some of them.
func concurrentWriter(ctx context.Context, db *litestream.DB, app *sql.DB, rng *rand.Rand, w int, stats *concurrencyStats) error {
	for i := 0; ctx.Err() == nil; i++ {
		// SQLite's lock is not fair: with checkpoints taking the write lock
		// back to back, a writer can outwait its busy timeout. Like an
		// application, it rolls back and tries again.
		if err := concurrentTxn(app, rng, w*1_000_000+i); isBusy(err) {
			stats.add(&stats.busy)
			continue
		} else if err != nil {
			return fmt.Errorf("writer %d: %w", w, err)
		}
		stats.add(&stats.writes)
		if rng.Intn(8) > 0 {
			continue
		}
		txid, err := waitReplicatedTXID(db)
		if err != nil {
			return fmt.Errorf("writer %d: %w", w, err)
		}
		stats.mu.Lock()
		stats.confirmed = append(stats.confirmed, txid)
		stats.mu.Unlock()
	}
	return nil
}

func concurrentTxn(app *sql.DB, rng *rand.Rand, v int) error {
	tx, err := app.Begin()
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for j := rng.Intn(5) + 1; j > 0; j-- {
		if _, err := tx.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(?))`, v, rng.Intn(3000)); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
	}
	if _, err := tx.Exec(`UPDATE t SET v = v + 1 WHERE id % 17 = ?`, rng.Intn(17)); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// longReader holds read transactions open for hold each, pinning old WAL
// frames so that checkpoints cannot restart the WAL meanwhile; what it
// reads must not change within a transaction.
func longReader(ctx context.Context, app *sql.DB, hold time.Duration, stats *concurrencyStats) error {
	for ctx.Err() == nil {
		tx, err := app.BeginTx(context.Background(), &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return fmt.Errorf("reader: begin: %w", err)
		}
		var n1, n2 int64
		err = tx.QueryRow(`SELECT count(*) FROM t`).Scan(&n1)
		if err == nil {
			time.Sleep(hold) // hold the snapshot open
			err = tx.QueryRow(`SELECT count(*) FROM t`).Scan(&n2)
		}
		_ = tx.Rollback()
		if err != nil {
			return fmt.Errorf("reader: %w", err)
		} else if n1 != n2 {
			return fmt.Errorf("reader saw %d then %d rows in one transaction", n1, n2)
		}
		stats.add(&stats.reads)
	}
	return nil
}

func appCheckpoint(chk *sql.DB) func(mode string) error {
	return func(mode string) error {
		_, err := chk.Exec(`PRAGMA wal_checkpoint(` + mode + `)`)
		return err
	}
}

// checkpointer runs fn with each mode in turn until ctx ends; busy errors
// are counted, not failures.
func checkpointer(ctx context.Context, who string, modes []string, n *int, stats *concurrencyStats, fn func(mode string) error) error {
	for i := 0; ctx.Err() == nil; i++ {
		mode := modes[i%len(modes)]
		start := time.Now()
		err := fn(mode)
		stats.mu.Lock()
		stats.slowest[who+" "+mode] = max(stats.slowest[who+" "+mode], time.Since(start))
		stats.mu.Unlock()
		if isBusy(err) {
			stats.add(&stats.busy)
		} else if err != nil {
			return fmt.Errorf("%s %s checkpoint: %w", who, mode, err)
		}
		stats.add(n)
		time.Sleep(150 * time.Millisecond) // pace, not a synchronisation
	}
	return nil
}

// Close waits for a snapshot being read (as the Store's snapshot monitor
// does during Store.Close) instead of closing the database file under it.
func TestDB_Close_WaitsForSnapshotReader(t *testing.T) {
	db, app, _ := MustOpenDB(t, 4096)
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(3000))`, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	_, rc, err := db.SnapshotReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	// One byte in: the snapshot's encoder is blocked mid-file.
	first := make([]byte, 1)
	if _, err := io.ReadFull(rc, first); err != nil {
		t.Fatal(err)
	}

	closed := make(chan error, 1)
	go func() { closed <- db.Close(ctx) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a snapshot was being read", err)
	case <-time.After(300 * time.Millisecond): // grace for a wrong Close to finish
	}

	rest, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read snapshot during Close: %v", err)
	}
	if err := ltx.NewDecoder(bytes.NewReader(append(first, rest...))).Verify(); err != nil {
		t.Fatalf("snapshot read during Close does not verify: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
