// Regression tests for WAL capture: each drives one interleaving of app and
// library operations that once lost committed transactions, then checks that
// the latest restore equals what the app committed.
package litestream_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/internal/faultclient"
	"github.com/superfly/ltx"
)

// mustAppWithReplica returns a database path in a temp dir, an app pool on
// it and a file replica client beside it.
func mustAppWithReplica(t testing.TB) (string, *sql.DB, *file.ReplicaClient) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	return path, MustOpenApp(t, path, 4096), file.NewReplicaClient(filepath.Join(dir, "replica"))
}

// manual turns background sync and uploads off, so that the test alone
// decides when the library acts, and returns db.
func manual(db *litestream.DB) *litestream.DB {
	db.MonitorInterval = 0
	db.ShutdownSyncTimeout = 0
	db.Replica.MonitorEnabled = false
	return db
}

// mustOpenManualDB opens a DB on path with background sync and uploads
// off, so that the test alone decides when the library acts. At cleanup it
// closes the DB if still open and checks the replica through client.
func mustOpenManualDB(t testing.TB, path string, client litestream.ReplicaClient) *litestream.DB {
	t.Helper()
	db := manual(MustNewDB(t, path, client))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	return db
}

// mustInsert commits one row through the app.
func mustInsert(t testing.TB, app *sql.DB, v int) {
	t.Helper()
	if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(300))`, v); err != nil {
		t.Fatal(err)
	}
}

// mustInsertReplicated commits rows first..first+n-1, each synced and
// uploaded before the next.
func mustInsertReplicated(t testing.TB, db *litestream.DB, app *sql.DB, first, n int) {
	t.Helper()
	for v := first; v < first+n; v++ {
		mustInsert(t, app, v)
		if err := db.SyncAndWait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// mustExecReplicated runs stmt, uploads what it committed and returns the
// TXID then.
func mustExecReplicated(t testing.TB, db *litestream.DB, app *sql.DB, stmt string) ltx.TXID {
	t.Helper()
	if _, err := app.Exec(stmt); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(context.Background()); err != nil {
		t.Fatal(err)
	}
	pos, err := db.Pos()
	if err != nil {
		t.Fatal(err)
	}
	return pos.TXID
}

// mustInsertAside commits one row to a table of its own, so that the pages
// it changes are not written again by later commits to t: a lost frame
// then shows as a lost row.
func mustInsertAside(t testing.TB, app *sql.DB, v int) {
	t.Helper()
	if _, err := app.Exec(`CREATE TABLE IF NOT EXISTS aside (id INTEGER PRIMARY KEY, v INTEGER)`); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Exec(`INSERT INTO aside (v) VALUES (?)`, v); err != nil {
		t.Fatal(err)
	}
}

// appCheckpointBusy runs an app checkpoint and reports whether it was blocked.
// It waits at most 100ms for locks, not the pool's busy timeout.
func appCheckpointBusy(t testing.TB, app *sql.DB, mode string) (busy bool) {
	t.Helper()
	ctx := context.Background()
	conn, err := app.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	var prev int
	if err := conn.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&prev); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA busy_timeout = 100`); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = conn.ExecContext(ctx, `PRAGMA busy_timeout = `+strconv.Itoa(prev)) }()
	var b, log, done int
	if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&b, &log, &done); err != nil {
		t.Fatal(err)
	}
	return b != 0
}

// mustMatchLatest syncs, uploads and checks that the latest restore holds
// exactly what the app committed.
func mustMatchLatest(t testing.TB, db *litestream.DB, app *sql.DB) {
	t.Helper()
	ctx := context.Background()
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Replica.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want := MustDump(t, app)
	if got := MustCheckRestored(t, MustRestore(t, db.Replica, 0)); got != want {
		t.Fatalf("latest restore holds %s, app committed %s", got, want)
	}
}

// A caller's context that ends must not end the read transaction that keeps
// the app from restarting the WAL over frames not yet captured.
func TestDB_ReadLockOutlivesCallerContext(t *testing.T) {
	db, app, _ := MustOpenDB(t, 4096)
	for i := 0; i < 50; i++ {
		mustInsert(t, app, i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := db.Sync(ctx); err != nil { // the first sync begins the read transaction
		t.Fatal(err)
	}
	cancel()

	mustInsertAside(t, app, 50)
	// database/sql rolls a transaction back shortly after its context ends.
	// The read lock must keep blocking the app's TRUNCATE meanwhile.
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); {
		if !appCheckpointBusy(t, app, "TRUNCATE") {
			t.Error("app TRUNCATE got through: the read lock ended with the caller's context")
			break
		}
	}
	mustInsert(t, app, 51) // restarts the WAL if the TRUNCATE went through
	mustMatchLatest(t, db, app)
}

// A library checkpoint that backfills everything but ends SQLITE_BUSY under
// an app reader must not let a commit that raced it be lost when the app
// restarts the WAL.
func TestDB_CheckpointBusyKeepsRacedCommit(t *testing.T) {
	for _, mode := range []string{litestream.CheckpointModeFull, litestream.CheckpointModeRestart, litestream.CheckpointModeTruncate} {
		t.Run(mode, func(t *testing.T) {
			db, app, _ := MustOpenDB(t, 4096)
			db.BusyTimeout = 50 * time.Millisecond
			for i := 0; i < 20; i++ {
				mustInsert(t, app, i)
			}
			if err := db.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}

			// Just before the pragma: a commit the library has not synced,
			// then an app reader that sees it, so the checkpoint can backfill
			// everything but not restart.
			var reader *sql.Tx
			litestream.SetCrashPoint(func(name string) {
				if name != "checkpoint-pragma" || reader != nil {
					return
				}
				mustInsertAside(t, app, 1000)
				var err error
				if reader, err = app.Begin(); err != nil {
					t.Fatal(err)
				}
				var n int
				if err := reader.QueryRow(`SELECT COUNT(*) FROM t`).Scan(&n); err != nil {
					t.Fatal(err)
				}
			})
			t.Cleanup(func() { litestream.SetCrashPoint(func(string) {}) })

			err := db.Checkpoint(context.Background(), mode)
			if reader == nil {
				t.Fatal("checkpoint never reached its pragma")
			}
			if mode != litestream.CheckpointModeFull && err == nil {
				t.Fatalf("%s checkpoint under an app reader: want a busy error", mode)
			}
			// The commit that raced the pragma is captured before the call
			// returns, before anyone can restart the WAL over it.
			if err := db.Replica.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			var n int
			restored, err := sql.Open("sqlite", "file:"+MustRestore(t, db.Replica, 0))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = restored.Close() }()
			if err := restored.QueryRow(`SELECT COUNT(*) FROM aside WHERE v = 1000`).Scan(&n); err != nil || n != 1 {
				t.Fatalf("after the %s checkpoint returned, the replica lacks the commit that raced it: n=%d err=%v", mode, n, err)
			}

			if err := reader.Rollback(); err != nil {
				t.Fatal(err)
			}
			mustInsert(t, app, 1001) // restarts the WAL where it was fully backfilled
			mustMatchLatest(t, db, app)
		})
	}
}

// Frames the app appends to the old WAL generation while no DB is open,
// then backfills and restarts over, must reach the replica.
func TestDB_FramesAppendedWhileClosed(t *testing.T) {
	ctx := context.Background()
	path, app, client := mustAppWithReplica(t)
	open := func() *litestream.DB { return mustOpenManualDB(t, path, client) }

	db := open()
	for i := 0; i < 20; i++ {
		mustInsert(t, app, i)
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}

	for i := 20; i < 25; i++ {
		mustInsertAside(t, app, i) // appended to the generation the DB captured part of
	}
	if appCheckpointBusy(t, app, "PASSIVE") {
		t.Fatal("passive checkpoint blocked with no DB open")
	}
	mustInsert(t, app, 25) // restarts the WAL over the frames above

	db = open()
	defer func() { _ = db.Close(ctx) }()
	mustMatchLatest(t, db, app)
	MustVerifyReplica(t, client)
}

// Local capture must not wait for the backend: with every replica call
// failing, a sync still writes the L0 file and holds the read lock.
func TestDB_SyncWithBackendDown(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	app := MustOpenApp(t, path, 4096)
	fc := faultclient.New(file.NewReplicaClient(filepath.Join(dir, "replica")), faultclient.Config{Seed: 1, ErrorRate: 1})

	db := mustOpenManualDB(t, path, fc)
	defer func() { _ = db.Close(ctx) }()

	mustInsert(t, app, 1)
	if err := db.Sync(ctx); err != nil {
		t.Fatalf("sync with the backend down: %v", err)
	}
	if pos, err := db.Pos(); err != nil || pos.TXID == 0 {
		t.Fatalf("no local L0 file with the backend down: pos=%v err=%v", pos, err)
	}
	mustInsertAside(t, app, 2)
	if !appCheckpointBusy(t, app, "TRUNCATE") {
		t.Fatal("app TRUNCATE got through: the DB holds no read lock")
	}

	fc.SetEnabled(false)
	mustMatchLatest(t, db, app)
}

// After Close every method that would touch SQLite fails and reopens nothing.
func TestDB_MethodsAfterClose(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	app := MustOpenApp(t, path, 4096)
	mustInsert(t, app, 1)

	db := mustOpenManualDB(t, path, file.NewReplicaClient(filepath.Join(dir, "replica")))
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}

	calls := map[string]func() error{
		"Sync":        func() error { return db.Sync(ctx) },
		"SyncAndWait": func() error { return db.SyncAndWait(ctx) },
		"Checkpoint":  func() error { return db.Checkpoint(ctx, litestream.CheckpointModePassive) },
		"CRC64":       func() error { _, _, err := db.CRC64(ctx); return err },
		"Snapshot":    func() error { _, err := db.Snapshot(ctx); return err },
		"WaitReplicated": func() error {
			db.MonitorInterval = time.Second // the path that waits for the monitor
			db.Replica.MonitorEnabled = true
			waitCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			return db.WaitReplicated(waitCtx)
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, litestream.ErrDatabaseNotOpen) {
			t.Errorf("%s after Close: err=%v, want ErrDatabaseNotOpen", name, err)
		}
		if db.SQLDB() != nil {
			t.Fatalf("%s after Close reopened the database", name)
		}
	}
}

// A transaction lost to an unseen WAL restart showed up torn in restores:
// the next L0 file held the pages a later commit rewrote, with some of the
// lost transaction's rows on them, but not its other pages. Every
// transaction must restore whole.
func TestDB_TransactionWholeAcrossRestart(t *testing.T) {
	ctx := context.Background()
	path, app, client := mustAppWithReplica(t)
	open := func() *litestream.DB { return mustOpenManualDB(t, path, client) }

	db := open()
	mustInsert(t, app, 0)
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// One transaction of 50 rows over many pages, then a restart over it.
	tx, err := app.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if _, err := tx.Exec(`INSERT INTO t (v, pad) VALUES (7, randomblob(1000))`); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if appCheckpointBusy(t, app, "PASSIVE") {
		t.Fatal("passive checkpoint blocked with no DB open")
	}
	mustInsert(t, app, 8) // rewrites the last leaf page, which holds some of the 50 rows

	db = open()
	defer func() { _ = db.Close(ctx) }()
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	} else if err := db.Replica.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	restored, err := sql.Open("sqlite", "file:"+MustRestore(t, db.Replica, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = restored.Close() }()
	var n, later int
	if err := restored.QueryRow(`SELECT COUNT(*), (SELECT COUNT(*) FROM t WHERE v = 8) FROM t WHERE v = 7`).Scan(&n, &later); err != nil {
		t.Fatal(err)
	} else if later == 1 && n != 50 {
		t.Fatalf("restore holds the later commit but %d of the earlier transaction's 50 rows", n)
	}
	mustMatchLatest(t, db, app)
}

// A level-9 snapshot is of its position: when the app restarted the WAL
// after the last sync, the new generation's frames belong to later TXIDs.
// The snapshot read them up to the old generation's offset and stored a
// later state under the position's TXID.
func TestDB_SnapshotAfterAppRestart(t *testing.T) {
	ctx := context.Background()
	path, app, client := mustAppWithReplica(t)
	db := mustOpenManualDB(t, path, client) // a first run creates the library's tables
	mustInsert(t, app, 0)
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	} else if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	db = mustOpenManualDB(t, path, client)
	defer func() { _ = db.Close(ctx) }()

	for i := 0; i < 20; i++ {
		mustInsert(t, app, i)
	}
	if appCheckpointBusy(t, app, "PASSIVE") { // fully backfilled before the first sync
		t.Fatal("passive checkpoint blocked before the DB started")
	}
	if err := db.Sync(ctx); err != nil { // the read lock begins on a backfilled WAL
		t.Fatal(err)
	}
	mustInsertAside(t, app, 1) // restarts the WAL

	info, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Replica.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	fromSnapshot := MustCheckRestored(t, MustRestore(t, db.Replica, info.MaxTXID))
	if err := client.DeleteLTXFiles(ctx, []*ltx.FileInfo{info}); err != nil {
		t.Fatal(err)
	}
	if fromL0 := MustCheckRestored(t, MustRestore(t, db.Replica, info.MaxTXID)); fromSnapshot != fromL0 {
		t.Fatalf("L9 snapshot at TXID %s holds %s, the L0 files at that TXID %s", info.MaxTXID, fromSnapshot, fromL0)
	}
}
