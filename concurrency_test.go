package litestream_test

import (
	"context"
	"database/sql"
	"fmt"
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

// Several writers, long-lived readers, application checkpoints (PASSIVE,
// TRUNCATE) and the library's own checkpoints (size, interval and explicit
// ones) run at once while the monitors replicate, compact and snapshot. The
// replica then restores exactly the source, and every TXID a writer saw
// confirmed restores a database that passes the integrity check.
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
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	app := MustOpenApp(t, db.Path(), 4096)
	chk, err := sql.Open("sqlite", "file:"+db.Path()+"?_pragma=busy_timeout(100)")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = chk.Close() }()

	runCtx, stop := context.WithTimeout(ctx, time.Duration(seconds)*time.Second)
	defer stop()
	var mu sync.Mutex
	var confirmed []int64 // local TXIDs seen after WaitReplicated returned
	var counts struct{ writes, reads, appChk, libChk, busy int }
	count := func(p *int) { mu.Lock(); *p++; mu.Unlock() }

	g, _ := errgroup.WithContext(ctx)
	for w := 0; w < 4; w++ {
		rng := rand.New(rand.NewSource(seed + int64(w)))
		g.Go(func() error {
			for i := 0; runCtx.Err() == nil; i++ {
				tx, err := app.Begin()
				if err != nil {
					return err
				}
				for j := rng.Intn(5) + 1; j > 0; j-- {
					if _, err := tx.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(?))`, w*1_000_000+i, rng.Intn(3000)); err != nil {
						_ = tx.Rollback()
						return err
					}
				}
				if _, err := tx.Exec(`UPDATE t SET v = v + 1 WHERE id % 17 = ?`, rng.Intn(17)); err != nil {
					_ = tx.Rollback()
					return err
				}
				if err := tx.Commit(); err != nil {
					return err
				}
				count(&counts.writes)
				if rng.Intn(8) == 0 {
					wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					err := db.WaitReplicated(wctx)
					cancel()
					if err != nil {
						return fmt.Errorf("writer %d: wait replicated: %w", w, err)
					}
					pos, err := db.Pos()
					if err != nil {
						return err
					}
					mu.Lock()
					confirmed = append(confirmed, int64(pos.TXID))
					mu.Unlock()
				}
			}
			return nil
		})
	}
	// Long-lived readers pin old WAL frames, so checkpoints cannot restart
	// the WAL while they read; the content they see must not change.
	for r := 0; r < 2; r++ {
		g.Go(func() error {
			for runCtx.Err() == nil {
				tx, err := app.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
				if err != nil {
					return err
				}
				var n1, n2 int64
				if err := tx.QueryRow(`SELECT count(*) FROM t`).Scan(&n1); err != nil {
					_ = tx.Rollback()
					return err
				}
				time.Sleep(time.Duration(100+r*150) * time.Millisecond) // hold the snapshot open
				if err := tx.QueryRow(`SELECT count(*) FROM t`).Scan(&n2); err != nil {
					_ = tx.Rollback()
					return err
				}
				if err := tx.Rollback(); err != nil {
					return err
				}
				if n1 != n2 {
					return fmt.Errorf("reader %d saw %d then %d rows in one transaction", r, n1, n2)
				}
				count(&counts.reads)
			}
			return nil
		})
	}
	g.Go(func() error { // application checkpoints
		for i := 0; runCtx.Err() == nil; i++ {
			mode := []string{"PASSIVE", "TRUNCATE"}[i%2]
			if _, err := chk.Exec(`PRAGMA wal_checkpoint(` + mode + `)`); isBusy(err) {
				count(&counts.busy)
			} else if err != nil {
				return fmt.Errorf("app %s checkpoint: %w", mode, err)
			}
			count(&counts.appChk)
			time.Sleep(70 * time.Millisecond) // pace, not a synchronisation
		}
		return nil
	})
	g.Go(func() error { // library checkpoints
		modes := []string{litestream.CheckpointModePassive, litestream.CheckpointModeFull, litestream.CheckpointModeRestart, litestream.CheckpointModeTruncate}
		for i := 0; runCtx.Err() == nil; i++ {
			mode := modes[i%len(modes)]
			if err := db.Checkpoint(ctx, mode); isBusy(err) {
				count(&counts.busy)
			} else if err != nil {
				return fmt.Errorf("library %s checkpoint: %w", mode, err)
			}
			count(&counts.libChk)
			time.Sleep(90 * time.Millisecond) // pace, not a synchronisation
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	if err := db.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	want := MustDump(t, app)
	if err := store.Close(ctx); err != nil {
		t.Fatal(err)
	}
	MustVerifyReplica(t, client)
	if got := MustCheckRestored(t, MustRestore(t, db.Replica, 0)); got != want {
		t.Fatalf("replica holds %s, source %s", got, want)
	}
	if len(confirmed) == 0 {
		t.Fatal("no writer confirmed a transaction")
	}
	for _, i := range []int{0, len(confirmed) / 3, 2 * len(confirmed) / 3} {
		MustCheckRestored(t, MustRestore(t, db.Replica, ltx.TXID(confirmed[i])))
	}
	l0 := L0TXIDs(t, client)
	t.Logf("%d writes, %d long reads, %d app and %d library checkpoints (%d busy), %d confirmations, %d L0 files, %s",
		counts.writes, counts.reads, counts.appChk, counts.libChk, counts.busy, len(confirmed), len(l0), want)
}
