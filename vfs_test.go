// vfs_test.go: the VFS against restores of the same replica (every TXID of
// a randomized workload; s3/vfs_test.go does it on MinIO), its damage
// handling, files removed under a pinned TXID, hydration and read-only use.
package litestream_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// mustVFS registers a VFS over client and closes it when the test ends.
func mustVFS(t testing.TB, client litestream.ReplicaClient) *litestream.VFS {
	t.Helper()
	v := litestream.NewVFS(client, nil)
	if err := v.Register(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Errorf("close vfs: %v", err)
		}
	})
	return v
}

// mustOpenVFSDB opens db through v; the pool is closed before v.
func mustOpenVFSDB(t testing.TB, v *litestream.VFS, db string) *sql.DB {
	t.Helper()
	pool, err := sql.Open("sqlite", v.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	return pool
}

// vfsQueries digests what a reader would ask: every row of every table,
// aggregates, a point lookup, a range through the index and the schema.
func vfsQueries(t testing.TB, db *sql.DB) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(MustDump(t, db))
	for _, q := range []string{
		`SELECT count(*), coalesce(sum(v), 0), coalesce(sum(length(pad)), 0) FROM t`,
		`SELECT coalesce(max(id), 0), coalesce(min(id), 0) FROM t`,
		`SELECT count(*), coalesce(sum(v), 0) FROM t WHERE v BETWEEN 100 AND 500`,
		`SELECT coalesce(hex(substr(pad, 1, 8)), '') FROM t WHERE id = (SELECT max(id) / 2 FROM t)`,
		`SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master ORDER BY name)`,
		`PRAGMA integrity_check`,
	} {
		var cols []any
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		names, _ := rows.Columns()
		for rows.Next() {
			cols = make([]any, len(names))
			ptrs := make([]any, len(names))
			for i := range cols {
				ptrs[i] = &cols[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			fmt.Fprintf(&b, "|%v", cols)
		}
		if err := rows.Close(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return b.String()
}

// vfsWorkload runs seeded random transactions against app, syncing each to
// the replica, with compactions and a snapshot on the way so that restore
// plans mix levels. It returns the replicated TXIDs.
func vfsWorkload(t testing.TB, db *litestream.DB, app *sql.DB, rng *rand.Rand, steps int) []ltx.TXID {
	t.Helper()
	ctx := context.Background()
	mustExec := func(q string, args ...any) {
		t.Helper()
		if _, err := app.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustExec(`CREATE INDEX IF NOT EXISTS t_v ON t (v)`)
	for step := 0; step < steps; step++ {
		switch op := rng.Intn(10); {
		case op < 4:
			n := 1 + rng.Intn(40)
			for i := 0; i < n; i++ {
				mustExec(`INSERT INTO t (v, pad) VALUES (?, randomblob(?))`, rng.Intn(1000), rng.Intn(3000))
			}
		case op < 6:
			mustExec(`UPDATE t SET v = v + ?, pad = randomblob(?) WHERE id % ? = 0`, 1+rng.Intn(5), rng.Intn(200), 2+rng.Intn(5))
		case op < 8:
			mustExec(`DELETE FROM t WHERE id % ? = ?`, 3+rng.Intn(4), rng.Intn(3))
		case op < 9:
			mustExec(`INSERT INTO t (v, pad) VALUES (?, randomblob(?))`, rng.Intn(1000), 20000+rng.Intn(100000)) // overflow pages
		default:
			mustExec(`VACUUM`)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
		switch step {
		case steps / 3, 2 * steps / 3:
			if _, err := db.Compact(ctx, 1); err != nil && !errors.Is(err, litestream.ErrNoCompaction) {
				t.Fatal(err)
			}
		case steps / 2:
			if _, err := db.Snapshot(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	return L0TXIDs(t, db.Replica.Client)
}

// Every TXID read through the VFS answers the queries exactly as a
// restore of that TXID does, for three page sizes, on the file backend.
func TestVFS_MatchesRestore(t *testing.T) {
	for _, pageSize := range []int{512, 4096, 65536} {
		t.Run(fmt.Sprint(pageSize), func(t *testing.T) {
			seed := int64(pageSize) * 7919
			t.Logf("seed %d", seed)
			db, app, client := MustOpenDB(t, pageSize)
			txids := vfsWorkload(t, db, app, rand.New(rand.NewSource(seed)), 24)
			checkVFSAgainstRestore(t, db.Replica, client, txids)
		})
	}
}

// checkVFSAgainstRestore compares, for each TXID, the VFS pinned to it with
// a restore of it, then the latest-following name with the newest TXID.
func checkVFSAgainstRestore(t *testing.T, source *litestream.Replica, client litestream.ReplicaClient, txids []ltx.TXID) {
	t.Helper()
	v := mustVFS(t, client)
	for _, txid := range txids {
		want := vfsQueries(t, openRestored(t, MustRestore(t, source, txid)))
		pool := mustOpenVFSDB(t, v, "db@"+txid.String())
		if got := vfsQueries(t, pool); got != want {
			t.Fatalf("TXID %s through the VFS:\n%s\nrestored:\n%s", txid, got, want)
		}
		_ = pool.Close()
	}
	last := txids[len(txids)-1]
	want := vfsQueries(t, openRestored(t, MustRestore(t, source, last)))
	if got := vfsQueries(t, mustOpenVFSDB(t, v, "db")); got != want {
		t.Fatalf("latest (%s) through the VFS:\n%s\nrestored:\n%s", last, got, want)
	}
}

func openRestored(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// vfsDamageReplica writes a small replica whose latest TXID is served by a
// single L1 file, and returns a copy of it for damaging.
func vfsDamageReplica(t *testing.T) (*file.ReplicaClient, *ltx.FileInfo) {
	t.Helper()
	ctx := context.Background()
	db, app, _ := MustOpenDB(t, 4096)
	for i := 0; i < 5; i++ {
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(3000))`, i); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	info, err := db.Compact(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := copyDir(t, db.Replica.Client.(*file.ReplicaClient).Path())
	return file.NewReplicaClient(dir), info
}

// damageFile rewrites stored bytes of one file in place.
func damageFile(t *testing.T, c *file.ReplicaClient, info *ltx.FileInfo, damage func(b []byte, index map[uint32]ltx.PageIndexElem)) {
	t.Helper()
	index, err := litestream.FetchPageIndex(context.Background(), c, info)
	if err != nil {
		t.Fatal(err)
	}
	path := c.LTXFilePath(info.Level, info.MinTXID, info.MaxTXID)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	damage(b, index)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A damaged frame or index fails the query with an error naming the file
// and page; no row is ever returned from it.
func TestVFS_Damage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(b []byte, index map[uint32]ltx.PageIndexElem)
		want   string
	}{
		{"WrongPageNumber", func(b []byte, index map[uint32]ltx.PageIndexElem) {
			e := index[2]
			binary.BigEndian.PutUint32(b[e.Offset:], 3)
		}, "frame holds page 3, index says 2"},
		{"SizeField", func(b []byte, index map[uint32]ltx.PageIndexElem) {
			e := index[2]
			n := binary.BigEndian.Uint32(b[e.Offset+ltx.PageHeaderSize:])
			binary.BigEndian.PutUint32(b[e.Offset+ltx.PageHeaderSize:], n+1)
		}, "compressed bytes"},
		{"CompressedBlock", func(b []byte, index map[uint32]ltx.PageIndexElem) {
			e := index[2]
			for i := e.Offset + ltx.PageHeaderSize + 4; i < e.Offset+e.Size; i++ {
				b[i] = 0xff
			}
		}, "decompress page"},
		{"IndexEntryOffset", func(b []byte, index map[uint32]ltx.PageIndexElem) {
			// The index ends with its 8-byte size before the trailer; its
			// first entry is the varints pgno 1, offset, size. Move the
			// offset onto another frame's bytes.
			end := len(b) - ltx.TrailerSize - 8
			start := end - int(binary.BigEndian.Uint64(b[end:]))
			_, n1 := binary.Uvarint(b[start:])
			if _, n2 := binary.Uvarint(b[start+n1:]); n2 != 1 {
				panic("first frame offset is not a one-byte varint")
			}
			b[start+n1] = 0x7f
		}, "index says 1"},
		{"IndexSize", func(b []byte, index map[uint32]ltx.PageIndexElem) {
			binary.BigEndian.PutUint64(b[len(b)-ltx.TrailerSize-8:], 1<<40)
		}, "invalid page index size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, info := vfsDamageReplica(t)
			damageFile(t, client, info, tc.damage)
			v := mustVFS(t, client)
			pool := mustOpenVFSDB(t, v, "db")
			rows, err := pool.Query(`SELECT id, v, pad FROM t ORDER BY id`)
			var n int
			if err == nil {
				for rows.Next() {
					n++
				}
				err = rows.Err()
				_ = rows.Close()
			}
			if err == nil {
				t.Fatalf("query of a damaged replica succeeded with %d rows", n)
			}
			last := v.LastError()
			if last == nil || !strings.Contains(last.Error(), tc.want) || !strings.Contains(last.Error(), info.MaxTXID.String()) {
				t.Fatalf("LastError = %v, want it to contain %q and TXID %s (query error: %v)", last, tc.want, info.MaxTXID, err)
			}
		})
	}
}

// A pinned TXID whose files are removed mid-transaction fails the
// transaction with an error naming the TXID, never pages of another TXID;
// the next transaction of a follower reads the latest TXID again.
func TestVFS_PinnedTXIDRemoved(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	for i := 0; i < 40; i++ {
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(6000))`, i); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	pinned := L0TXIDs(t, client)
	txid := pinned[len(pinned)-1]

	v := litestream.NewVFS(client, nil)
	v.CacheSize, v.ReadAheadSize = 1, 0 // every page read reaches the replica
	if err := v.Register(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	pool := mustOpenVFSDB(t, v, "db")
	pool.SetMaxOpenConns(1)

	tx, err := pool.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(`SELECT id, length(pad) FROM t ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatalf("no first row: %v", rows.Err())
	}

	// Compaction into L1 (reaching past the pinned TXID once a new TXID
	// lands), then retention removes every L0 file the pin was planned on.
	if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (-1, randomblob(10))`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := client.DeleteLTXFiles(ctx, levelFiles(t, client, 0)); err != nil {
		t.Fatal(err)
	}

	n := 1
	for rows.Next() {
		n++
	}
	if rows.Err() == nil {
		t.Fatalf("read %d rows of TXID %s after its files were removed, want an error", n, txid)
	}
	_ = rows.Close()
	_ = tx.Rollback()
	last := v.LastError()
	if !errors.Is(last, litestream.ErrTxNotAvailable) || !strings.Contains(last.Error(), "TXID "+txid.String()) {
		t.Fatalf("LastError = %v, want ErrTxNotAvailable naming TXID %s", last, txid)
	}

	// Once the poller has moved on, the next transaction reads the newest
	// TXID, whole.
	want := dumpOrEmpty(app)
	if want == "" {
		t.Fatal("cannot read the application database")
	}
	waitFor(t, 10*time.Second, "follower to read the latest TXID", func() bool {
		return dumpOrEmpty(pool) == want
	})
}

// dumpOrEmpty is MustDump that returns "" instead of failing.
func dumpOrEmpty(db *sql.DB) string {
	var n, sum int64
	if err := db.QueryRow(`SELECT count(*), coalesce(sum(v), 0) FROM t`).Scan(&n, &sum); err != nil {
		return ""
	}
	return fmt.Sprintf("%d/%d", n, sum)
}

// With hydration, pages come from the local copy once it is complete, and
// pages written after its TXID still come from the replica.
func TestVFS_Hydration(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	vfsWorkload(t, db, app, rand.New(rand.NewSource(7)), 12)
	counting := &testClient{ReplicaClient: client}

	v := litestream.NewVFS(counting, nil)
	v.HydrationEnabled = true
	v.CacheSize = 1 // nothing served from the page cache
	v.PollInterval = 20 * time.Millisecond
	if err := v.Register(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	pool := mustOpenVFSDB(t, v, "db")
	want := vfsQueries(t, openRestored(t, MustRestore(t, db.Replica, 0)))
	if got := vfsQueries(t, pool); got != want {
		t.Fatalf("before hydration:\n%s\nwant:\n%s", got, want)
	}
	h := v.Hydrator()
	if h == nil {
		t.Fatal("no hydrator started")
	}
	<-h.Done()
	if err := h.Err(); err != nil {
		t.Fatal(err)
	}
	_ = pool.Close()
	pool = mustOpenVFSDB(t, v, "db")
	before := counting.opens.Load()
	if got := vfsQueries(t, pool); got != want {
		t.Fatalf("hydrated:\n%s\nwant:\n%s", got, want)
	}
	if n := counting.opens.Load() - before; n != 0 {
		t.Fatalf("%d reads of the replica while every page is hydrated", n)
	}

	// A newer TXID: changed pages from the replica, the rest locally.
	if _, err := app.Exec(`UPDATE t SET v = v + 1 WHERE id % 3 = 0`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	want = vfsQueries(t, openRestored(t, MustRestore(t, db.Replica, 0)))
	waitFor(t, 10*time.Second, "follower to read the new TXID", func() bool {
		return dumpOrEmpty(pool) == dumpOrEmpty(app)
	})
	if got := vfsQueries(t, pool); got != want {
		t.Fatalf("past the hydrated TXID:\n%s\nwant:\n%s", got, want)
	}
}

// Writes through the VFS fail and leave the replica untouched.
func TestVFS_ReadOnly(t *testing.T) {
	db, app, client := MustOpenDB(t, 4096)
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := levelFiles(t, client, 0)
	pool := mustOpenVFSDB(t, mustVFS(t, client), "db")
	for _, q := range []string{`INSERT INTO t (v) VALUES (2)`, `CREATE TABLE u (x)`, `PRAGMA journal_mode = wal`} {
		_, err := pool.Exec(q)
		if err == nil && !strings.HasPrefix(q, "PRAGMA") {
			t.Fatalf("%s through the VFS succeeded", q)
		}
		t.Logf("%s: %v", q, err)
	}
	if got := dumpOrEmpty(pool); got != "1/1" {
		t.Fatalf("after refused writes the VFS reads %q, want 1/1", got)
	}
	if after := levelFiles(t, client, 0); len(after) != len(before) {
		t.Fatalf("replica went from %d to %d L0 files", len(before), len(after))
	}
}

// When the files of a pinned TXID are removed but a snapshot of that same
// TXID remains, the transaction goes on from the snapshot, unchanged.
func TestVFS_PinnedTXIDReplanned(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	for i := 0; i < 40; i++ {
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(6000))`, i); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	l0 := levelFiles(t, client, 0)
	txid := l0[len(l0)-1].MaxTXID
	want := vfsQueries(t, openRestored(t, MustRestore(t, db.Replica, txid)))

	v := litestream.NewVFS(client, nil)
	v.CacheSize, v.ReadAheadSize = 1, 0
	if err := v.Register(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	pool := mustOpenVFSDB(t, v, "db@"+txid.String())
	pool.SetMaxOpenConns(1)
	tx, err := pool.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(`SELECT id, length(pad) FROM t ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatalf("no first row: %v", rows.Err())
	}
	if snap, err := db.Snapshot(ctx); err != nil {
		t.Fatal(err)
	} else if snap.MaxTXID != txid {
		t.Fatalf("snapshot at %s, want %s", snap.MaxTXID, txid)
	}
	if err := client.DeleteLTXFiles(ctx, l0); err != nil {
		t.Fatal(err)
	}
	n := 1
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("after re-planning TXID %s from its snapshot: %v (cause: %v)", txid, err, v.LastError())
	}
	_ = rows.Close()
	_ = tx.Rollback()
	if n != 40 {
		t.Fatalf("read %d rows, want 40", n)
	}
	if got := vfsQueries(t, pool); got != want {
		t.Fatalf("TXID %s from the snapshot:\n%s\nrestored:\n%s", txid, got, want)
	}
}
