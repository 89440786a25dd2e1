// Randomized round-trip tests of DB and the SQLite version check.
package litestream_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// A randomized workload replicates, and every L0 TXID restores to exactly
// the source's content at that TXID.
func TestDB_RoundTrip_Randomized(t *testing.T) {
	for _, pageSize := range []int{512, 4096, 65536} {
		t.Run(sizeName(pageSize), func(t *testing.T) {
			seed := time.Now().UnixNano()
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewSource(seed))
			ctx := context.Background()

			db, app, client := MustOpenDB(t, pageSize)
			db.MinCheckpointPageN = 40
			chk, err := sql.Open("sqlite", "file:"+db.Path()+"?_pragma=busy_timeout(50)")
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = chk.Close() }()

			want := map[ltx.TXID]string{}
			var last ltx.TXID
			sync := func() {
				t.Helper()
				if err := db.Sync(ctx); err != nil {
					t.Fatal(err)
				}
				pos, err := db.Pos()
				if err != nil {
					t.Fatal(err)
				}
				dump := MustDump(t, app)
				for txid := last + 1; txid <= pos.TXID; txid++ {
					want[txid] = dump
				}
				last = pos.TXID
			}

			sync()
			for step := 0; step < 60; step++ {
				MustRandomStep(t, rng, app, chk, pageSize)
				if rng.Intn(4) > 0 {
					sync()
				}
			}
			sync()
			if err := db.Replica.Sync(ctx); err != nil {
				t.Fatal(err)
			}

			txids := L0TXIDs(t, client)
			if len(txids) == 0 || txids[0] != 1 || txids[len(txids)-1] != last {
				t.Fatalf("L0 TXIDs %v, want 1..%d", txids, last)
			}
			t.Logf("%d L0 files", len(txids))
			for _, txid := range txids {
				got := MustCheckRestored(t, MustRestore(t, db.Replica, txid))
				if got != want[txid] {
					t.Fatalf("restore at txid %s: content %s, want %s", txid, got, want[txid])
				}
			}
			if got := MustCheckRestored(t, MustRestore(t, db.Replica, 0)); got != want[last] {
				t.Fatalf("restore latest: content %s, want %s", got, want[last])
			}
		})
	}
}

func sizeName(pageSize int) string { return fmt.Sprintf("page%d", pageSize) }

// MustRandomStep applies one random application action.
func MustRandomStep(t testing.TB, rng *rand.Rand, app, chk *sql.DB, pageSize int) {
	t.Helper()
	exec := func(db *sql.DB, q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	switch n := rng.Intn(100); {
	case n < 35:
		tx, err := app.Begin()
		if err != nil {
			t.Fatal(err)
		}
		for i := rng.Intn(20) + 1; i > 0; i-- {
			if _, err := tx.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(?))`, rng.Int63n(1000), rng.Intn(200)); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	case n < 50:
		exec(app, `UPDATE t SET v = v + 1, pad = randomblob(?) WHERE id % ? = 0`, rng.Intn(300), rng.Intn(5)+2)
	case n < 60:
		exec(app, `DELETE FROM t WHERE id % ? = 0`, rng.Intn(7)+3)
	case n < 72:
		exec(app, `INSERT INTO t (v, pad) VALUES (?, randomblob(?))`, rng.Int63n(1000), pageSize*(rng.Intn(4)+1)+rng.Intn(100))
	case n < 78:
		exec(app, `VACUUM`)
	case n < 86:
		exec(chk, `PRAGMA wal_checkpoint(PASSIVE)`)
	case n < 92:
		exec(chk, `PRAGMA wal_checkpoint(TRUNCATE)`)
	default:
		exec(app, `PRAGMA wal_autocheckpoint = 10`)
		for i := 0; i < 30; i++ {
			exec(app, `INSERT INTO t (v, pad) VALUES (?, randomblob(?))`, i, pageSize/2)
		}
		exec(app, `PRAGMA wal_autocheckpoint = 0`)
	}
}

// SQLite before 3.51.3 has a WAL-reset corruption bug that replication's
// checkpoint-then-write pattern triggers; the linked driver must be newer.
func TestSQLiteVersion(t *testing.T) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	var version string
	if err := db.QueryRow(`SELECT sqlite_version()`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	var major, minor, patch int
	if _, err := fmt.Sscanf(version, "%d.%d.%d", &major, &minor, &patch); err != nil {
		t.Fatalf("parse %q: %v", version, err)
	}
	if v := major*1_000_000 + minor*1_000 + patch; v < 3_051_003 {
		t.Fatalf("linked SQLite %s is older than 3.51.3", version)
	}
}

// BenchmarkDB_SyncOneCommit syncs and uploads one single-row commit, the
// path of every sporadic write. Its bytes allocated per op set how often
// the garbage collector interrupts replication, which shows in the lag's
// tail.
func BenchmarkDB_SyncOneCommit(b *testing.B) {
	db, app, _ := MustOpenDB(b, 4096)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, i); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := db.Sync(ctx); err != nil {
			b.Fatal(err)
		} else if err := db.Replica.Sync(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// Two DBs on one database file, however its path is spelled, would share
// its local files, each with its own cached position, and replace each
// other's L0 files: the second one fails to open, naming the first, and
// the file can be opened again once the first is closed.
func TestDB_Open_SecondDBOnSameFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	MustOpenApp(t, path, 4096)
	if err := os.Symlink(path, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	first := MustNewDB(t, path, file.NewReplicaClient(filepath.Join(dir, "replica1")))
	if err := first.Open(); err != nil {
		t.Fatal(err)
	}
	for _, other := range []string{filepath.Join(dir, ".", "db"), filepath.Join(dir, "sub", "..", "db"), filepath.Join(dir, "link")} {
		db := litestream.NewDB(other)
		db.Replica = litestream.NewReplicaWithClient(db, file.NewReplicaClient(filepath.Join(dir, "replica2")))
		if err := db.Open(); err == nil {
			_ = db.Close(context.Background())
			t.Fatalf("a second DB opened %s while %s is open", other, path)
		} else if !strings.Contains(err.Error(), "already open through another DB") || !strings.Contains(err.Error(), path) {
			t.Fatalf("second DB on %s: %v", other, err)
		}
	}
	if err := first.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	again := MustNewDB(t, filepath.Join(dir, ".", "db"), file.NewReplicaClient(filepath.Join(dir, "replica1")))
	if err := again.Open(); err != nil {
		t.Fatalf("open after the first DB closed: %v", err)
	}
}

// Two DBs of one process on one replica would interleave their TXIDs in it,
// and the replica would restore neither: the second fails to open, whether
// it got the same client or another client on the same directory. With a
// lease, a standby on the same replica may open and wait for it.
func TestDB_Open_SecondDBOnSameReplica(t *testing.T) {
	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	MustOpenApp(t, filepath.Join(dir, "a"), 4096)
	MustOpenApp(t, filepath.Join(dir, "b"), 4096)
	first := MustNewDB(t, filepath.Join(dir, "a"), client)
	if err := first.Open(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*file.ReplicaClient{client, file.NewReplicaClient(filepath.Join(dir, "sub", "..", "replica"))} {
		db := litestream.NewDB(filepath.Join(dir, "b"))
		db.Replica = litestream.NewReplicaWithClient(db, c)
		if err := db.Open(); err == nil {
			_ = db.Close(context.Background())
			t.Fatalf("a second DB opened on replica %s", c.Path())
		} else if !strings.Contains(err.Error(), "already replicates DB") || !strings.Contains(err.Error(), first.Path()) {
			t.Fatalf("second DB on replica %s: %v", c.Path(), err)
		}
	}
	if err := first.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	again := MustNewDB(t, filepath.Join(dir, "b"), client)
	if err := again.Open(); err != nil {
		t.Fatalf("open after the first DB closed: %v", err)
	}
}

// Close of a DB whose Open failed (here another DB holds the file) writes
// nothing: no final sync into the other DB's local files, no upload.
func TestDB_Close_AfterFailedOpenWritesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	app := MustOpenApp(t, path, 4096)
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	first := newManualDB(path, client)
	if err := first.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Close(ctx) })
	mustInsertReplicated(t, first, app, 1, 3)
	mustInsert(t, app, 4) // committed, not captured yet
	localBefore, _ := os.ReadDir(first.LTXLevelDir(0))
	replicaBefore := L0TXIDs(t, client)

	second := newManualDB(path, client)
	if err := second.Open(); err == nil {
		t.Fatal("a second DB on the same file opened")
	}
	if err := second.Close(ctx); err != nil {
		t.Fatalf("close of the DB that did not open: %v", err)
	}
	localAfter, _ := os.ReadDir(first.LTXLevelDir(0))
	if replicaAfter := L0TXIDs(t, client); len(localAfter) != len(localBefore) || len(replicaAfter) != len(replicaBefore) {
		t.Fatalf("Close of a DB that never opened wrote files: local L0 %d -> %d, replica L0 %v -> %v", len(localBefore), len(localAfter), replicaBefore, replicaAfter)
	}
	mustInsert(t, app, 5)
	if err := first.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, MustRestore(t, first.Replica, 0)), MustDump(t, app); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
}
