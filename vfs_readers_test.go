// vfs_readers_test.go: readers through the VFS run invariant-keeping
// transactions while a Store replicates, compacts and snapshots a writer's
// transfers. LITESTREAM_VFS_SECONDS sets how long (default 10; make
// torture runs 60).
package litestream_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
)

const (
	vfsAccounts = 200
	vfsBalance  = 100
)

func TestVFS_ConcurrentReaders(t *testing.T) {
	seconds := envInt(t, "LITESTREAM_VFS_SECONDS", 10)
	seed := time.Now().UnixNano()
	t.Logf("seed %d, %ds", seed, seconds)
	ctx := context.Background()
	db, client, store := newStoreDB(t, t.TempDir(), litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: 300 * time.Millisecond}})
	db.MonitorInterval = 20 * time.Millisecond
	store.SnapshotInterval = 2 * time.Second
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(ctx) })
	app := MustOpenApp(t, db.Path(), 4096)
	for _, q := range []string{
		`CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL, pad BLOB)`,
		`CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount INTEGER)`,
		`CREATE TABLE meta (version INTEGER)`,
		`INSERT INTO meta VALUES (0)`,
	} {
		if _, err := app.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= vfsAccounts; i++ {
		if _, err := app.Exec(`INSERT INTO accounts VALUES (?, ?, randomblob(300))`, i, vfsBalance); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}

	v := litestream.NewVFS(client, nil)
	v.PollInterval = 50 * time.Millisecond
	v.CacheSize = 256 << 10 // small: readers keep fetching from the replica
	if err := v.Register(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	pool := mustOpenVFSDB(t, v, "db")
	pool.SetMaxIdleConns(8) // connections live across transactions, page caches and all

	runCtx, stop := context.WithTimeout(ctx, time.Duration(seconds)*time.Second)
	defer stop()
	var version atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // writer: transfers keep the total; each bumps the version and logs one ledger row
		defer wg.Done()
		rng := rand.New(rand.NewSource(seed))
		for runCtx.Err() == nil {
			from, to, amount := 1+rng.Intn(vfsAccounts), 1+rng.Intn(vfsAccounts), rng.Intn(50)
			tx, err := app.Begin()
			if err != nil {
				t.Error(err)
				return
			}
			for _, q := range []struct {
				sql  string
				args []any
			}{
				{`UPDATE accounts SET balance = balance - ?, pad = randomblob(?) WHERE id = ?`, []any{amount, rng.Intn(2000), from}},
				{`UPDATE accounts SET balance = balance + ? WHERE id = ?`, []any{amount, to}},
				{`INSERT INTO ledger (amount) VALUES (?)`, []any{amount}},
				{`UPDATE meta SET version = version + 1`, nil},
			} {
				if _, err := tx.Exec(q.sql, q.args...); err != nil {
					t.Error(err)
					_ = tx.Rollback()
					return
				}
			}
			if err := tx.Commit(); err != nil {
				t.Error(err)
				return
			}
			version.Add(1)
			if rng.Intn(200) == 0 {
				if _, err := app.Exec(`VACUUM`); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()

	var good, removed, advanced atomic.Int64
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lastSeen int64
			for runCtx.Err() == nil {
				seen, err := vfsCheckInvariants(ctx, pool)
				var violation *vfsViolation
				switch {
				case errors.As(err, &violation):
					t.Errorf("invariant broken: %v", err)
					return
				case err != nil && errors.Is(v.LastError(), litestream.ErrTxNotAvailable):
					removed.Add(1) // the pinned TXID's files were compacted away: the transaction failed whole
				case err != nil:
					t.Errorf("read transaction: %v (cause: %v)", err, v.LastError())
					return
				default:
					good.Add(1)
					if seen > lastSeen {
						advanced.Add(1)
					}
					lastSeen = seen
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d transactions kept the invariants, %d saw new versions, %d failed on removed files; writer reached version %d", good.Load(), advanced.Load(), removed.Load(), version.Load())
	if good.Load() < 20 || advanced.Load() < 2 {
		t.Fatalf("too few checked transactions (%d) or version advances (%d)", good.Load(), advanced.Load())
	}

	// A follower sees the writer's last commit within poll interval plus
	// sync time; the bound here is generous for a loaded machine, the
	// measured delay is logged.
	final := version.Load()
	start := time.Now()
	waitFor(t, 15*time.Second, fmt.Sprintf("followers to see version %d", final), func() bool {
		seen, err := vfsCheckInvariants(ctx, pool)
		return err == nil && seen == final
	})
	t.Logf("final version visible after %s (poll interval %s)", time.Since(start), v.PollInterval)
}

// vfsViolation is a broken invariant, as opposed to a failed read.
type vfsViolation struct{ msg string }

func (e *vfsViolation) Error() string { return e.msg }

// vfsCheckInvariants reads in one transaction, in separate statements that
// touch different pages: the total balance, every account row by row, the
// version and the ledger length. It returns the version seen.
func vfsCheckInvariants(ctx context.Context, pool *sql.DB) (int64, error) {
	tx, err := pool.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	var total, n, version, ledger, ledgerSum int64
	if err := tx.QueryRow(`SELECT sum(balance), count(*) FROM accounts`).Scan(&total, &n); err != nil {
		return 0, err
	}
	rows, err := tx.Query(`SELECT balance, length(pad) FROM accounts ORDER BY id`)
	if err != nil {
		return 0, err
	}
	var scanned int64
	for rows.Next() {
		var b, l int64
		if err := rows.Scan(&b, &l); err != nil {
			_ = rows.Close()
			return 0, err
		}
		scanned += b
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	if err := tx.QueryRow(`SELECT version FROM meta`).Scan(&version); err != nil {
		return 0, err
	}
	if err := tx.QueryRow(`SELECT count(*), coalesce(sum(amount), 0) FROM ledger`).Scan(&ledger, &ledgerSum); err != nil {
		return 0, err
	}
	switch {
	case n != vfsAccounts || total != vfsAccounts*vfsBalance || scanned != total:
		return 0, &vfsViolation{fmt.Sprintf("accounts %d, total %d, scanned total %d; want %d and %d", n, total, scanned, vfsAccounts, vfsAccounts*vfsBalance)}
	case ledger != version:
		return 0, &vfsViolation{fmt.Sprintf("version %d but %d ledger rows in the same transaction", version, ledger)}
	}
	return version, nil
}
