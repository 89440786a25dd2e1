// Tests of a DB opened again after its local state changed while it was
// closed: it compares with the replica again even with an old position,
// compaction reads no local file before that comparison, and taking the
// replica's position drops local copies at every level.

package litestream_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// The meta directory is removed while the library is closed, and the
// replica does not answer when it starts again: the library captures
// locally from TXID 1, local files carrying the replica's TXIDs with other
// content. When the replica answers, compaction into L1 may run before the
// uploader compares positions; it must read the replica's files, not local
// files of those names, or the restore of the replica's TXID returns a
// state nobody committed (half of the app's later transaction).
func TestDB_Compact_BeforeReplicaCheckReadsReplicaFiles(t *testing.T) {
	ctx := context.Background()
	path, app, client := mustAppWithReplica(t)

	// First run: L0 1 (snapshot), 2, then a PASSIVE checkpoint that
	// restarts the WAL (L0 3 resumes the new generation at offset 32),
	// then 4.
	db := mustOpenManualDB(t, path, client)
	for i := 0; i < 30; i++ {
		mustInsert(t, app, i)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Exec(`UPDATE t SET v = 1000 WHERE id = 20`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Checkpoint(ctx, litestream.CheckpointModePassive); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (2000, x'00')`); err != nil { // t's last leaf
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	pos, err := db.Pos()
	if err != nil {
		t.Fatal(err)
	}
	wantAtPos := MustDump(t, app)
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, info := range levelFiles(t, client, 0) {
		hdr := mustRemoteHeader(t, client, info)
		t.Logf("replica L0 %s: wal offset %d size %d salts %08x/%08x commit %d", info.MaxTXID, hdr.WALOffset, hdr.WALSize, hdr.WALSalt1, hdr.WALSalt2, hdr.Commit)
	}
	if got := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, client), pos.TXID)); got != wantAtPos {
		t.Fatalf("setup: restore at %s is %s, want %s", pos.TXID, got, wantAtPos)
	}

	// The meta directory is removed while closed.
	if err := os.RemoveAll(db.MetaPath()); err != nil {
		t.Fatal(err)
	}

	// Second run, the replica out of reach at start.
	tc, fail := failingLists(client)
	fail.Store(true)
	db2 := manual(newVerifiedDB(t, path, tc, client))
	if err := db2.Open(); err != nil {
		t.Fatal(err)
	}
	if err := db2.Sync(ctx); err != nil { // local L0 1: a snapshot
		t.Fatal(err)
	}
	// One transaction: row 1 (first leaf) and a new row (last leaf).
	tx, err := app.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`UPDATE t SET v = -1 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO t (v, pad) VALUES (3000, x'00')`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db2.Sync(ctx); err != nil { // local L0 2
		t.Fatal(err)
	}

	// The replica answers; the L1 compaction runs before the next upload.
	fail.Store(false)
	if info, err := db2.Compact(ctx, 1); err != nil {
		t.Logf("compaction before the upload: %v", err)
	} else {
		t.Logf("compaction before the upload wrote L1 %s-%s", info.MinTXID, info.MaxTXID)
	}
	if err := db2.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	mustRestoreEquals(t, client, MustDump(t, app), "latest")

	// The replica's TXID restores to what the app had committed then.
	restored := MustRestore(t, litestream.NewReplicaWithClient(nil, client), pos.TXID)
	if got := MustCheckRestored(t, restored); got != wantAtPos {
		rdb, err := sql.Open("sqlite", "file:"+restored)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = rdb.Close() }()
		var v1, n3000 int
		_ = rdb.QueryRow(`SELECT v, (SELECT COUNT(*) FROM t WHERE v = 3000) FROM t WHERE id = 1`).Scan(&v1, &n3000)
		t.Fatalf("restore at TXID %s holds %s, the app committed %s then (restored: row 1 v=%d, rows with v=3000: %d; the app's later transaction set both)", pos.TXID, got, wantAtPos, v1, n3000)
	}
}

func mustRemoteHeader(t testing.TB, client litestream.ReplicaClient, info *ltx.FileInfo) ltx.Header {
	t.Helper()
	rc, err := client.OpenLTXFile(context.Background(), info.Level, info.MinTXID, info.MaxTXID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	dec := ltx.NewDecoder(rc)
	if err := dec.DecodeHeader(); err != nil {
		t.Fatal(err)
	}
	return dec.Header()
}

// A DB closed and opened again (Store.DisableDB / EnableDB). The meta
// directory is removed while it is closed, and the replica does not answer
// the listing at the first sync: the library captures locally from TXID 1,
// with the comparison left to the uploader. The uploader must compare once
// the replica answers, whatever position it knew before Close, or it sees
// nothing to upload until the local TXIDs pass that position while
// SyncAndWait reports the commits replicated.
func TestDB_Reopen_PendingReplicaCheckRunsWithOldPosition(t *testing.T) {
	ctx := context.Background()
	path, app, client := mustAppWithReplica(t)
	tc, fail := failingLists(client)
	db := manual(newVerifiedDB(t, path, tc, client))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 0, 5) // replica L0 1..5
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("replica position kept across Close: %s", db.Replica.Pos().TXID)

	if err := os.RemoveAll(db.MetaPath()); err != nil {
		t.Fatal(err)
	}
	fail.Store(true) // the listing at the first sync fails
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	fail.Store(false)

	for v := 100; v < 103; v++ {
		mustInsertAside(t, app, v)
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	local, _ := db.Pos()
	t.Logf("local TXID %s, replica position %s, replica L0 %v", local.TXID, db.Replica.Pos().TXID, L0TXIDs(t, client))
	// SyncAndWait returned: the replica holds every commit.
	want := MustDump(t, app)
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
	if err := litestream.NewReplicaWithClient(nil, client).Restore(ctx, opt); err != nil {
		t.Errorf("after SyncAndWait: restore latest: %v", err)
	} else if got := MustCheckRestored(t, opt.OutputPath); got != want {
		t.Errorf("after SyncAndWait (local TXID %s): restore latest holds %s, the app committed %s", local.TXID, got, want)
	}

	// Once the local TXIDs pass the stale position, the uploader puts the
	// local files, another history, on top of the replica's.
	for v := 103; v < 106; v++ {
		mustInsertAside(t, app, v)
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	local, _ = db.Pos()
	t.Logf("local TXID %s, replica position %s, replica L0 %v", local.TXID, db.Replica.Pos().TXID, L0TXIDs(t, client))
	want = MustDump(t, app)
	opt.OutputPath = filepath.Join(t.TempDir(), "restored2.db")
	if err := litestream.NewReplicaWithClient(nil, client).Restore(ctx, opt); err != nil {
		t.Errorf("later: restore latest: %v", err)
	} else if got := MustCheckRestored(t, opt.OutputPath); got != want {
		t.Errorf("later (local TXID %s): restore latest holds %s, the app committed %s", local.TXID, got, want)
	}
}

// The meta directory is replaced, while the library is closed, by a copy
// of another database's. The first sync finds the newest L0 file differs
// from the replica's and takes the replica's; the local copies of compacted
// files at every level must go with the local L0 files, or the next
// compaction reading a local copy of the same name merges the other
// database's pages into this database's replica.
func TestDB_Adopt_RemovesLocalCopiesOfEveryLevel(t *testing.T) {
	ctx := context.Background()
	build := func(v int) (string, *sql.DB, litestream.ReplicaClient, *litestream.DB) {
		path, app, client := mustAppWithReplica(t)
		db := mustOpenManualDB(t, path, client)
		litestream.SetTopCompactionLevel(db, 2) // L2 merges L1: keep local copies of L1
		for i := 0; i < 3; i++ {
			for j := 0; j < 10; j++ { // rows over several pages
				mustInsert(t, app, v+10*i+j)
			}
			if err := db.SyncAndWait(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.Compact(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(ctx); err != nil {
			t.Fatal(err)
		}
		return path, app, client, db
	}
	pathY, appY, clientY, dbY := build(0)
	_, _, _, dbX := build(1000)
	t.Logf("Y L1 %v", levelFiles(t, clientY, 1))

	if err := os.RemoveAll(dbY.MetaPath()); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dbY.MetaPath(), os.DirFS(dbX.MetaPath())); err != nil {
		t.Fatal(err)
	}
	// Without X's last-frame record (a partial copy, or an older version's
	// directory), which would make Y's first sync a full snapshot.
	if err := os.Remove(filepath.Join(dbY.MetaPath(), "ltx", "last-frame")); err != nil {
		t.Fatal(err)
	}

	logTree := func(what string) {
		_ = filepath.WalkDir(dbY.MetaPath(), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				t.Logf("%s: %s", what, p[len(dbY.MetaPath()):])
			}
			return nil
		})
	}
	logTree("copied")
	db := mustOpenManualDB(t, pathY, clientY)
	litestream.SetTopCompactionLevel(db, 2)
	mustInsert(t, appY, 3)
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	logTree("before L2")
	if _, err := db.Compact(ctx, 2); err != nil {
		t.Fatal(err)
	}
	t.Logf("Y L2 %v", levelFiles(t, clientY, 2))
	for _, lvl := range []int{0, 1, 2} {
		for _, info := range levelFiles(t, clientY, lvl) {
			hdr := mustRemoteHeader(t, clientY, info)
			t.Logf("Y L%d %s-%s: wal offset %d size %d commit %d", lvl, info.MinTXID, info.MaxTXID, hdr.WALOffset, hdr.WALSize, hdr.Commit)
		}
	}
	plan, err := litestream.CalcRestorePlan(ctx, clientY, 0, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range plan {
		t.Logf("plan: L%d %s-%s", info.Level, info.MinTXID, info.MaxTXID)
	}
	mustRestoreEquals(t, clientY, MustDump(t, appY), "after L2 compaction")
}

// As TestDB_Reopen_PendingReplicaCheckRunsWithOldPosition, with a snapshot
// taken while the local TXIDs are below the replica position known before
// Close: the snapshot's upload-first check must not trust that position,
// or the replica gets a level-9 snapshot of the current database under a
// TXID whose L0 files after it are older changes, and the latest restore
// applies them on top of it (half of the app's last transaction).
func TestDB_Reopen_SnapshotAfterLocalStateLost(t *testing.T) {
	ctx := context.Background()
	path, app, client := mustAppWithReplica(t)
	tc, fail := failingLists(client)
	db := manual(newVerifiedDB(t, path, tc, client))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		mustInsert(t, app, i)
	}
	if err := db.SyncAndWait(ctx); err != nil { // L0 1
		t.Fatal(err)
	}
	for i := 2; i <= 5; i++ { // L0 2..5, each rewrites row 1's page
		if _, err := app.Exec(`UPDATE t SET v = ? WHERE id = 1`, i); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}

	if err := os.RemoveAll(db.MetaPath()); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	if err := db.Sync(ctx); err != nil { // local L0 1: a snapshot
		t.Fatal(err)
	}
	fail.Store(false)

	// One transaction: row 1 and a row in a table of its own.
	if _, err := app.Exec(`CREATE TABLE aside (id INTEGER PRIMARY KEY, v INTEGER)`); err != nil {
		t.Fatal(err)
	}
	tx, err := app.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`UPDATE t SET v = 100 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO aside (v) VALUES (100)`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("snapshot L9 %s-%s; replica L0 %v", info.MinTXID, info.MaxTXID, L0TXIDs(t, client))

	restored := MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)
	// Integrity first: the L0 files put older pages over the snapshot.
	if got, want := MustCheckRestored(t, restored), MustDump(t, app); got != want {
		t.Fatalf("latest restore holds %s, the app committed %s", got, want)
	}
}
