// A replica whose newest L0 files are gone (removed by a tool, a partial
// bucket copy) while L1 or a snapshot still holds their TXIDs: the DB
// continues after them, uploads lost files again where it has them, and
// compaction goes on past a hole a snapshot covers.
package litestream_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// The replica's newest L0 files are gone (outside tool, partial bucket
// copy) while L1 lags behind the snapshot, the normal state between L1
// compactions: L1 ends at 5, the snapshot at 8, L0 6..8 removed. A new host
// continues after the snapshot's TXID 8, and compaction into L1 crosses the
// hole the snapshot covers instead of waiting for L0 6..8, which can never
// come (that stalled L1, every level above it and L0 retention for good).
func TestReplica_NewHostOverSnapshotPastL1_CompactionGoesOn(t *testing.T) {
	ctx, _, client, db, app := openL0Gone(t, mustOpenManualDB)
	mustInsertReplicated(t, db, app, 1, 5)
	mustCompact(t, db, 1)
	mustInsertReplicated(t, db, app, 10, 3) // L0 past L1: not compacted yet
	mustSnapshot(t, db)
	mustClose(t, db)
	l1 := levelFiles(t, client, 1)
	snaps := levelFiles(t, client, litestream.SnapshotLevel)
	t.Logf("L1 ends at %s, snapshot at %s", l1[len(l1)-1].MaxTXID, snaps[len(snaps)-1].MaxTXID)
	mustDropLevel(t, client, 0)

	db2, app2 := openNewHost(t, client)
	mustInsertReplicated(t, db2, app2, 100, 3)
	t.Logf("new host's L0 TXIDs: %v", L0TXIDs(t, client))
	mustRestoreEquals(t, client, MustDump(t, app2), "after the new host's commits")

	for i := 0; i < 3; i++ {
		if _, err := db2.Compact(ctx, 1); err != nil {
			if errors.Is(err, litestream.ErrCompactionGap) {
				t.Fatalf("compaction into L1 after adopting the snapshot's position (pass %d): %v", i, err)
			}
			t.Fatal(err)
		}
		mustInsertReplicated(t, db2, app2, 200+i, 1)
	}
}

// TestDB_Open_ReplicaUnreachable_LocalPassesReplica over a replica whose
// newest L0 files are gone (its newest file is L1's or the snapshot's
// [1-M]). The new host captures locally from TXID 1 while the replica does
// not answer. When it answers, no local file has the range [1-M], which
// must not count as the same history: its files M+1.. would go on top of
// the replica's [1-M], without its commits 2..M, and the latest restore
// would be a state the app never committed.
func TestReplica_UnreachableStart_LocalPassesCompactedNewest(t *testing.T) {
	for _, snapshot := range []bool{false, true} {
		t.Run(map[bool]string{false: "L1", true: "snapshot"}[snapshot], func(t *testing.T) {
			ctx := context.Background()
			db, app, client := MustOpenDB(t, 4096)
			for i := 0; i < 3; i++ { // rows over several pages
				if _, err := app.Exec(`INSERT INTO t (v, pad) WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM s WHERE x < 20) SELECT x, randomblob(1000) FROM s`); err != nil {
					t.Fatal(err)
				}
				if err := db.SyncAndWait(ctx); err != nil {
					t.Fatal(err)
				}
			}
			mustCompact(t, db, 1)
			if snapshot {
				if _, err := db.Snapshot(ctx); err != nil {
					t.Fatal(err)
				}
				if err := client.DeleteLTXFiles(ctx, levelFiles(t, client, 1)); err != nil {
					t.Fatal(err)
				}
			}
			mustClose(t, db)
			mustDropLevel(t, client, 0)
			var max ltx.TXID
			for level := 1; level <= litestream.SnapshotLevel; level++ {
				for _, info := range levelFiles(t, client, level) {
					max = info.MaxTXID
				}
			}
			t.Logf("replica's newest TXID %s, no L0 files", max)

			path := MustRestore(t, db.Replica, 0) // on a new host
			tc, fail := failingLists(client)
			fail.Store(true)
			db2 := newVerifiedDB(t, path, tc, client)
			db2.MonitorInterval = 0
			db2.Replica.MonitorEnabled = false
			if err := db2.Open(); err != nil {
				t.Fatal(err)
			}
			app2 := MustOpenApp(t, path, 4096)
			for i := 0; ; i++ {
				pos, err := db2.Pos()
				if err != nil {
					t.Fatal(err)
				}
				if pos.TXID >= max+3 {
					break
				}
				q := `INSERT INTO t (v, pad) VALUES (?, randomblob(100))`
				if pos.TXID < max {
					q = `UPDATE t SET v = ? WHERE id = 1` // commits the replica never gets
				}
				if _, err := app2.Exec(q, 1000+i); err != nil {
					t.Fatal(err)
				}
				if err := db2.Sync(ctx); err != nil {
					t.Fatal(err)
				}
			}
			fail.Store(false)
			if err := db2.SyncAndWait(ctx); err != nil {
				t.Fatal(err)
			}
			t.Logf("replica L0 after the upload: %v", L0TXIDs(t, client))
			mustRestoreEquals(t, client, MustDump(t, app2), "after the replica answered")
		})
	}
}

// A crash between writing the L0 file after a fetched compacted file and
// removing that copy leaves the copy [1-M] in the local L0 directory. It
// must not count as a local file holding TXIDs 1..M: when the replica is
// later wiped and the uploader must start over from TXID 1, the missing
// local L0 1 is then "replica behind the local files", and the replica is
// re-seeded, not stalled on a hole.
func TestReplica_FetchedCopyLeftByCrash_ReseedAfterWipe(t *testing.T) {
	for _, leftover := range []bool{false, true} {
		t.Run(map[bool]string{false: "removed", true: "leftover"}[leftover], func(t *testing.T) {
			ctx, _, client, db, app := openL0Gone(t, mustOpenManualDB)
			mustInsertReplicated(t, db, app, 1, 5)
			mustCompact(t, db, 1)
			mustClose(t, db)
			l1 := levelFiles(t, client, 1)
			mustDropLevel(t, client, 0)

			path2 := MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)
			app2 := MustOpenApp(t, path2, 4096)
			db2 := mustOpenManualDB(t, path2, client)
			db2.Replica.IndexRefreshInterval = -1 // notice the wipe below at once
			newest := l1[len(l1)-1]
			fetched := db2.LTXPath(0, newest.MinTXID, newest.MaxTXID)
			rc, err := client.OpenLTXFile(ctx, 1, newest.MinTXID, newest.MaxTXID, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(rc)
			_ = rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			mustInsertReplicated(t, db2, app2, 100, 3)
			if _, err := os.Stat(fetched); !os.IsNotExist(err) {
				t.Fatalf("fetched copy still there after the sync: %v", err)
			}
			if leftover { // the process was killed before removing it
				if err := os.WriteFile(fetched, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}

			// The replica is wiped (all levels).
			for level := 0; level <= litestream.SnapshotLevel; level++ {
				if err := client.DeleteLTXFiles(ctx, levelFiles(t, client, level)); err != nil {
					t.Fatal(err)
				}
			}
			mustInsert(t, app2, 200)
			if err := db2.SyncAndWait(ctx); err != nil {
				t.Fatalf("sync after the replica was wiped: %v", err)
			}
			mustRestoreEquals(t, client, MustDump(t, app2), "after the replica was wiped")
		})
	}
}

// A batch of L0 uploads stops when the lease is lost under way: another
// process takes it over while the batch runs, the background renewal is
// refused and fences the replica, and no upload begins after that (the
// one under way lands). Replica.Sync, Close's final upload and
// uploadThrough have no batch limit, so a backlog would otherwise go up
// whole on one renewal.
func TestReplica_Lease_FencedMidBatchStopsUploading(t *testing.T) {
	ctx := context.Background()
	var db *litestream.DB
	var client *file.ReplicaClient
	var tc *testClient
	var afterFence atomic.Int64
	db, client = mustOpenLeasedDB(t, func(c litestream.ReplicaClient) litestream.ReplicaClient {
		tc = &testClient{ReplicaClient: c}
		return tc
	})
	app := MustOpenApp(t, db.Path(), 4096)
	if err := db.Close(ctx); err != nil { // Open took the lease: reopen with a short renew interval
		t.Fatal(err)
	}
	db.Replica.LeaseRenewInterval = 10 * time.Millisecond
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 1, 1)
	for i := 0; i < 6; i++ { // a backlog of L0 files, not uploaded yet
		mustInsert(t, app, 10+i)
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	tc.onWrite = func(level int, r io.Reader, write func(io.Reader) (*ltx.FileInfo, error)) (*ltx.FileInfo, error) {
		if level != 0 {
			return write(r)
		}
		if st, _ := db.SyncStatus(ctx); st.LeaseLost != nil {
			afterFence.Add(1) // an upload begun after the fence
		}
		n++
		if n == 2 {
			mustTakeOverFileLease(t, client.Path(), `{"generation":99,"expires_at":"2999-01-01T00:00:00Z","owner":"b"}`)
			deadline := time.Now().Add(5 * time.Second)
			for {
				st, _ := db.SyncStatus(ctx)
				if st.LeaseLost != nil {
					break
				} else if time.Now().After(deadline) {
					t.Fatal("the background renewal never noticed the takeover")
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		return write(r) // the upload under way when the fence came lands
	}
	err := db.Replica.Sync(ctx)
	t.Logf("batch: %v", err)
	if n := afterFence.Load(); n > 0 {
		t.Errorf("%d L0 files uploaded after the replica was fenced (lease taken over by b)", n)
	}
}

// A snapshot's header carries its WAL range, so on the host that wrote it,
// with the WAL still that generation, the sync after fetching it continues
// from it without writing anything new; a TRUNCATE checkpoint then writes
// the next L0 file through its boundary snapshot. That write too removes
// the fetched copy, which is as large as the database.
func TestDB_FetchedSnapshotCopyRemovedByBoundarySnapshot(t *testing.T) {
	ctx, _, client, db, app := openL0Gone(t, mustOpenManualDB)
	mustInsertReplicated(t, db, app, 1, 5)
	info, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, db)
	mustDropLevel(t, client, 0)
	if err := os.RemoveAll(db.LTXDir()); err != nil {
		t.Fatal(err)
	}
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	if err := db.Sync(ctx); err != nil { // init: adopts the snapshot's position
		t.Fatal(err)
	}
	fetched := db.LTXPath(0, info.MinTXID, info.MaxTXID)
	if _, err := os.Stat(fetched); err != nil {
		t.Skipf("the snapshot copy was already replaced by a new L0 file: %v", err)
	}
	if err := db.Checkpoint(ctx, litestream.CheckpointModeTruncate); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 100, 2)
	pos, _ := db.Pos()
	if _, err := os.Stat(fetched); err == nil {
		t.Errorf("copy of the fetched snapshot %s-%s still in the local L0 directory at position %s", info.MinTXID, info.MaxTXID, pos.TXID)
	}
	mustRestoreEquals(t, client, MustDump(t, app), "after the checkpoint")
}

// The running process itself, with its local L0 copies, when the replica
// loses its newest L0 files (6..8) while a snapshot [1-8] and a lagging L1
// [1-5] stay. The snapshot is the one this process uploaded, known by its
// header: the DB continues it and uploads its local copies of 6..8 again,
// so compaction goes on from 6 and every TXID restores.
func TestReplica_NewestL0LostWhileRunning_ContinuesAfterSnapshot(t *testing.T) {
	testNewestL0Lost(t, false, false)
}

// As above, noticed at a restart with default settings: the DB recorded
// the snapshot's header in its LTX directory (own-snapshot), so the
// restarted DB knows it too and puts its local copies back.
func TestReplica_NewestL0LostWhileClosed_ContinuesAfterSnapshot(t *testing.T) {
	testNewestL0Lost(t, true, false)
}

// Without that record (an older version's directory, a crash before it was
// written), whether the snapshot holds the DB's history cannot be proven
// from the local files: it fetches the snapshot and goes on after it with a
// full snapshot of its own (its local copies of 6..8 are given up). The
// hole they leave, which the snapshot covers and nothing can fill, is
// crossed by compaction; the latest restore is the app's.
func TestReplica_NewestL0LostWhileClosed_UnrecordedSnapshotIsFetched(t *testing.T) {
	testNewestL0Lost(t, true, true)
}

func testNewestL0Lost(t *testing.T, restart, unrecorded bool) {
	ctx := context.Background()
	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db := mustOpenDamagedDB(t, filepath.Join(dir, "db"), client)
	if !restart {
		db.Replica.IndexRefreshInterval = -1 // notice the loss at the next upload
	}
	app := MustOpenApp(t, db.Path(), 4096)
	mustInsertReplicated(t, db, app, 1, 5)
	l1, err := db.Compact(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 10, 3)
	snap, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var lost []*ltx.FileInfo
	for _, info := range levelFiles(t, client, 0) {
		if info.MinTXID > l1.MaxTXID {
			lost = append(lost, info)
		}
	}
	if err := client.DeleteLTXFiles(ctx, lost); err != nil {
		t.Fatal(err)
	}
	if restart {
		if err := db.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if unrecorded {
			if err := os.Remove(filepath.Join(db.LTXDir(), "own-snapshot")); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Open(); err != nil {
			t.Fatal(err)
		}
	}

	mustInsertReplicated(t, db, app, 100, 2)
	if got := L0TXIDs(t, client); len(got) == 0 || got[len(got)-2] != snap.MaxTXID+1 {
		t.Errorf("replica L0 %v: want the new files to continue right after the snapshot's TXID %s", got, snap.MaxTXID)
	}
	from := l1.MaxTXID + 1 // the lost files went back
	if unrecorded {
		from = snap.MaxTXID + 1 // after the hole, which nothing fills
	}
	next, err := db.Compact(ctx, 1)
	if err != nil {
		t.Fatalf("compaction into L1 after the replica lost its newest L0 files: %v", err)
	} else if next.MinTXID != from {
		t.Errorf("L1 compacted %s-%s: want it to start at %s", next.MinTXID, next.MaxTXID, from)
	}
	mustRestoreEquals(t, client, MustDump(t, app), "after the loss")
	if got := MustRestore(t, litestream.NewReplicaWithClient(nil, client), snap.MaxTXID); got == "" {
		t.Errorf("restore of the snapshot's TXID %s returned nothing", snap.MaxTXID)
	}
}

// mustOpenDamagedDB opens a manual DB whose replica a test damages: at
// cleanup it closes the DB but does not check the replica's invariants,
// which the damage breaks (L0 is no longer dense).
func mustOpenDamagedDB(t testing.TB, path string, client litestream.ReplicaClient) *litestream.DB {
	t.Helper()
	db := litestream.NewDB(path)
	db.Replica = litestream.NewReplicaWithClient(db, client)
	manual(db)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if db.IsOpen() {
			if err := db.Close(context.Background()); err != nil {
				t.Errorf("close db: %v", err)
			}
		}
	})
	return db
}

// A fetched copy a crash left behind a newer L0 file is removed when the
// DB opens again: it can be as large as the database.
func TestDB_Open_RemovesFetchedCopyLeftByCrash(t *testing.T) {
	_, _, client, db, app := openL0Gone(t, mustOpenManualDB)
	mustInsertReplicated(t, db, app, 1, 3)
	// What a crash right after the L0 file following a fetched [1-2] leaves.
	leftover := db.LTXPath(0, 1, 2)
	if err := os.WriteFile(leftover, []byte("fetched copy"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustClose(t, db)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 10, 1)
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("fetched copy left by a crash still there after Open: %v", err)
	}
	mustRestoreEquals(t, client, MustDump(t, app), "after reopening")
}

// A replica whose L0 files are gone while L1 and the snapshot still hold
// TXIDs 1-5 (removed by an outside tool, or a partial bucket copy): a new
// host restores it and replicates. Its TXIDs must continue after 5, not
// start again at 1 under the compacted files, or the latest restore shows
// the snapshot's state instead of the new commits.
func TestReplica_NewHostOverReplicaWithoutL0(t *testing.T) {
	_, _, client, db, app := openL0Gone(t, mustOpenManualDB)
	mustInsertReplicated(t, db, app, 1, 5)
	mustCompact(t, db, 1)
	mustSnapshot(t, db)
	mustClose(t, db)
	mustDropLevel(t, client, 0)

	db2, app2 := openNewHost(t, client)
	mustInsertReplicated(t, db2, app2, 100, 3)
	if got := L0TXIDs(t, client); len(got) == 0 || got[0] <= 5 {
		t.Errorf("new host's L0 TXIDs %v: want them after the compacted files' TXID 5", got)
	}
	mustRestoreEquals(t, client, MustDump(t, app2), "after the new host's commits")
}

// The same DB closed, its replica's L0 files then removed while L1 holds
// them, and its local L0 files retained away: opened again, it continues
// after L1's TXID instead of writing TXID 1 under it.
func TestReplica_ReopenOverReplicaWithoutL0(t *testing.T) {
	_, _, client, db, app := openL0Gone(t, mustOpenManualDB)
	mustInsertReplicated(t, db, app, 1, 5)
	mustCompact(t, db, 1)
	mustClose(t, db)
	mustDropLevel(t, client, 0)
	if err := os.RemoveAll(db.LTXLevelDir(0)); err != nil {
		t.Fatal(err)
	}

	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 100, 3)
	if got := L0TXIDs(t, client); len(got) == 0 || got[0] <= 5 {
		t.Errorf("L0 TXIDs after reopening %v: want them after L1's TXID 5", got)
	}
	mustRestoreEquals(t, client, MustDump(t, app), "after reopening")
}

// Only the snapshot is left (L0 and L1 removed): a new host continues after
// the snapshot's TXID, and compaction into L1 then goes on from there
// without waiting on the TXIDs only the snapshot holds.
func TestReplica_NewHostOverSnapshotOnly(t *testing.T) {
	ctx, _, client, db, app := openL0Gone(t, mustOpenManualDB)
	mustInsertReplicated(t, db, app, 1, 5)
	mustCompact(t, db, 1)
	mustSnapshot(t, db)
	mustClose(t, db)
	for _, level := range []int{0, 1} {
		if err := client.DeleteLTXFiles(ctx, levelFiles(t, client, level)); err != nil {
			t.Fatal(err)
		}
	}

	db2, app2 := openNewHost(t, client)
	mustInsertReplicated(t, db2, app2, 100, 3)
	if _, err := db2.Compact(ctx, 1); err != nil {
		t.Fatalf("compact L1 after the snapshot: %v", err)
	}
	l1 := levelFiles(t, client, 1)
	if len(l1) != 1 || l1[0].MinTXID <= 5 {
		t.Errorf("L1 after compaction: %v, want one file starting after the snapshot's TXID 5", l1)
	}
	mustInsertReplicated(t, db2, app2, 200, 1)
	mustRestoreEquals(t, client, MustDump(t, app2), "after the new host's commits")

	// The snapshot fetched to continue its TXIDs is not kept locally once
	// newer L0 files follow it: it can be as large as the database.
	if _, err := os.Stat(db2.LTXPath(0, 1, 5)); !os.IsNotExist(err) {
		t.Errorf("local copy of the fetched snapshot 1-5 still there: %v", err)
	}
}

// A new host (replica unreachable at start, its newest file the compacted
// [1-M]) captures another history locally: it updates row 1 in TXIDs
// 2..M-2, changes row 50 in M-1 and back in M. Its file M-M then holds only
// row 50's page, equal to the replica's [1-M] version, so comparing the
// pages the last transaction wrote would call it the same history and put
// its files M+1.. on top of the replica's [1-M]: the latest restore would
// have row 1 as the replica had it, a state the app never committed. Only
// a fetched copy proves a compacted newest file; otherwise it is fetched
// and a full snapshot follows.
func TestReplica_UnreachableStart_OtherHistoryAgreeingOnLastPages(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	for i := 0; i < 5; i++ {
		if _, err := app.Exec(`INSERT INTO t (v, pad) WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM s WHERE x < 20) SELECT x, randomblob(1000) FROM s`); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mustCompact(t, db, 1)
	mustClose(t, db)
	mustDropLevel(t, client, 0)
	var max ltx.TXID
	for _, info := range levelFiles(t, client, 1) {
		max = info.MaxTXID
	}
	t.Logf("replica's newest TXID %s (L1), no L0 files", max)
	if max < 4 {
		t.Skipf("need M >= 4, have %s", max)
	}

	path := MustRestore(t, db.Replica, 0) // on a new host
	tc, fail := failingLists(client)
	fail.Store(true)
	db2 := newVerifiedDB(t, path, tc, client)
	db2.MonitorInterval = 0
	db2.Replica.MonitorEnabled = false
	if err := db2.Open(); err != nil {
		t.Fatal(err)
	}
	app2 := MustOpenApp(t, path, 4096)
	var orig int
	if err := app2.QueryRow(`SELECT v FROM t WHERE id = 50`).Scan(&orig); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		pos, err := db2.Pos()
		if err != nil {
			t.Fatal(err)
		}
		if pos.TXID >= max+3 {
			break
		}
		var q string
		var arg int
		switch {
		case pos.TXID < max-2:
			q, arg = `UPDATE t SET v = ? WHERE id = 1`, 1000+i // commits the replica never gets
		case pos.TXID == max-2:
			q, arg = `UPDATE t SET v = ? WHERE id = 50`, orig+1
		case pos.TXID == max-1:
			q, arg = `UPDATE t SET v = ? WHERE id = 50`, orig // back: page p as the replica has it
		default:
			q, arg = `INSERT INTO t (v, pad) VALUES (?, randomblob(100))`, 2000+i
		}
		if _, err := app2.Exec(q, arg); err != nil {
			t.Fatal(err)
		}
		if err := db2.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	fail.Store(false)
	if err := db2.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("replica L0 after the upload: %v", L0TXIDs(t, client))
	var v1 int
	_ = app2.QueryRow(`SELECT v FROM t WHERE id = 1`).Scan(&v1)
	t.Logf("row 1 on the new host: v=%d", v1)
	restored := MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)
	rapp := MustOpenApp(t, restored, 4096)
	var rv1 int
	if err := rapp.QueryRow(`SELECT v FROM t WHERE id = 1`).Scan(&rv1); err != nil {
		t.Fatal(err)
	}
	if rv1 != v1 {
		t.Errorf("restore latest: row 1 v=%d, the new host committed v=%d (its commits before TXID %s are not in the replica)", rv1, v1, max)
	}
	mustRestoreEquals(t, client, MustDump(t, app2), "after the replica answered")
}

// Compaction crosses a hole a snapshot covers only when nothing can fill
// it. An L0 file lost between files the replica still has is uploaded again
// by repairLost from its local copy; compaction must wait for that, even
// with a snapshot past the hole: had L1 gone on past it, repairLost would
// skip the file for good, and restores to the lost TXID (or to a time
// between it and the snapshot) would fail although the host has the data.
func TestReplica_CompactionWaitsForLostL0TheHostHas(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db := mustOpenManualDB(t, filepath.Join(dir, "db"), client)
	db.Replica.IndexRefreshInterval = -1 // notice the loss at the next upload
	app := MustOpenApp(t, db.Path(), 4096)
	mustInsertReplicated(t, db, app, 1, 5)
	l1, err := db.Compact(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 10, 3)
	mustSnapshot(t, db)
	mustInsertReplicated(t, db, app, 20, 2)
	lostTXID := l1.MaxTXID + 1
	var lost []*ltx.FileInfo
	for _, info := range levelFiles(t, client, 0) {
		if info.MinTXID == lostTXID {
			lost = append(lost, info)
		}
	}
	if err := client.DeleteLTXFiles(ctx, lost); err != nil { // lost by the backend, or removed by mistake
		t.Fatal(err)
	}
	if _, err := os.Stat(db.LTXPath(0, lostTXID, lostTXID)); err != nil {
		t.Fatalf("local copy of L0 %s: %v", lostTXID, err)
	}
	t.Logf("L1 ends at %s; L0 %s lost, local copy present; replica L0 %v", l1.MaxTXID, lostTXID, L0TXIDs(t, client))

	// Compaction runs before the uploader notices the loss.
	if info, err := db.Compact(ctx, 1); err != nil {
		t.Logf("compaction waits: %v", err)
	} else {
		t.Logf("compaction crossed the hole: L1 %s-%s", info.MinTXID, info.MaxTXID)
	}
	// The uploader notices and repairs what it still can.
	for i := 0; i < 3; i++ {
		mustInsertReplicated(t, db, app, 30+i, 1)
	}
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Logf("compaction: %v", err)
	}
	t.Logf("replica L0 after the repair: %v", L0TXIDs(t, client))
	found := false
	for _, info := range levelFiles(t, client, 0) {
		found = found || info.MinTXID == lostTXID
	}
	if !found {
		t.Errorf("L0 %s was never uploaded again from its local copy", lostTXID)
	}
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
	opt.TXID = lostTXID
	if err := litestream.NewReplicaWithClient(nil, client).Restore(ctx, opt); err != nil {
		t.Errorf("restore to TXID %s, whose L0 file the host still has: %v", lostTXID, err)
	}
}

// An L0 file between files the replica still has is lost while the DB is
// closed (a tool, a partial bucket copy); a snapshot covers it and the
// host still has its local copy. After the restart the replica index lists
// the level for the first time, so no listing reports the file lost:
// compaction into L1, finding the hole, has the local copy uploaded again
// and goes on. (Waiting on the copy without uploading it stalled L1, every
// level above it and L0 retention for good.)
func TestReplica_LostL0WhileClosed_CompactionGoesOn(t *testing.T) {
	testLostL0WhileClosed(t, 1)
}

// testLostL0WhileClosed loses, while the DB is closed, the L0 file of TXID
// L1's newest + after, which the host still has a local copy of and a
// snapshot covers; after the restart compaction into L1 must have it
// uploaded again and go on, and the latest and the lost TXID restore.
func testLostL0WhileClosed(t *testing.T, after ltx.TXID) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	path := filepath.Join(dir, "db")
	db := mustOpenDamagedDB(t, path, client)
	app := MustOpenApp(t, path, 4096)
	mustInsertReplicated(t, db, app, 1, 5)
	l1 := mustCompact(t, db, 1)
	mustInsertReplicated(t, db, app, 10, 3)
	mustSnapshot(t, db)
	mustInsertReplicated(t, db, app, 20, 2)
	mustClose(t, db)
	lostTXID := l1.MaxTXID + after
	mustDropL0File(t, client, lostTXID)

	// Restart: a new DB on the same path and local LTX files.
	db2 := mustOpenDamagedDB(t, path, client)
	db2.Replica.IndexRefreshInterval = -1
	if _, err := os.Stat(db2.LTXPath(0, lostTXID, lostTXID)); err != nil {
		t.Fatalf("local copy of L0 %s: %v", lostTXID, err)
	}
	t.Logf("L1 ends at %s; L0 %s lost while closed, local copy present; replica L0 %v", l1.MaxTXID, lostTXID, L0TXIDs(t, client))

	var lastErr error
	compacted := false
	for i := 0; i < 10 && !compacted; i++ {
		mustInsertReplicated(t, db2, app, 100+i, 1)
		if _, err := db2.Compact(ctx, 1); err == nil {
			compacted = true
		} else {
			lastErr = err
		}
	}
	reuploaded := false
	for _, info := range levelFiles(t, client, 0) {
		reuploaded = reuploaded || info.MinTXID == lostTXID
	}
	t.Logf("replica L0 after 10 syncs: %v; L0 %s uploaded again: %v", L0TXIDs(t, client), lostTXID, reuploaded)
	if !compacted {
		t.Errorf("compaction into L1 never went on after 10 syncs and compactions (gap: %v); last error: %v",
			errors.Is(lastErr, litestream.ErrCompactionGap), lastErr)
	}
	if !reuploaded {
		t.Errorf("L0 %s, whose local copy the host has, was not uploaded again", lostTXID)
	}
	mustRestoreEquals(t, client, MustDump(t, app), "after the repair")
	if got := MustRestore(t, litestream.NewReplicaWithClient(nil, client), lostTXID); got == "" {
		t.Errorf("restore of TXID %s returned nothing", lostTXID)
	}
}

// mustDropL0File removes the replica's L0 file of txid, as an outside tool.
func mustDropL0File(t testing.TB, client litestream.ReplicaClient, txid ltx.TXID) {
	t.Helper()
	var lost []*ltx.FileInfo
	for _, info := range levelFiles(t, client, 0) {
		if info.MinTXID == txid {
			lost = append(lost, info)
		}
	}
	if len(lost) != 1 {
		t.Fatalf("L0 file %s: %d found", txid, len(lost))
	}
	if err := client.DeleteLTXFiles(context.Background(), lost); err != nil {
		t.Fatal(err)
	}
}

// Only an L0 hole can be filled again (local L0 copies uploaded again; L1
// compaction only goes forward). An L1 file lost right after L2's newest
// file, with a snapshot covering it, is crossed by L2 even though local L0
// copies of its TXIDs exist: waiting on them stalled L2 and every level
// above for good, and L1 retention kept every L1 file L2 did not cover.
func TestCompactor_L2CrossesLostL1FileSnapshotCovers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db := mustOpenDamagedDB(t, filepath.Join(dir, "db"), client)
	app := MustOpenApp(t, db.Path(), 4096)
	mustInsertReplicated(t, db, app, 1, 5)
	mustCompact(t, db, 1)
	if _, err := db.Compact(ctx, 2); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 10, 5)
	lostL1, err := db.Compact(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 20, 3)
	mustCompact(t, db, 1)
	mustSnapshot(t, db)
	// The L1 file right after L2's newest is lost (a tool, a partial copy).
	if err := client.DeleteLTXFiles(ctx, []*ltx.FileInfo{lostL1}); err != nil {
		t.Fatal(err)
	}
	t.Logf("lost L1 %s-%s; snapshot covers it", lostL1.MinTXID, lostL1.MaxTXID)

	mustCompactL2PastLostL1(t, db, app)
}

// mustCompactL2PastLostL1 commits and compacts, with L0 retention at once,
// until compaction into L2 goes past the lost L1 file, and fails after 5
// rounds.
func mustCompactL2PastLostL1(t *testing.T, db *litestream.DB, app *sql.DB) {
	t.Helper()
	ctx := context.Background()
	db.L0Retention = time.Nanosecond // local copies may go as soon as L1 covers them
	var lastErr error
	ok := false
	for i := 0; i < 5 && !ok; i++ {
		mustInsertReplicated(t, db, app, 100+i, 1)
		if _, err := db.Compact(ctx, 1); err != nil && !errors.Is(err, litestream.ErrNoCompaction) {
			t.Logf("compact L1: %v", err)
		}
		if err := db.EnforceL0RetentionByTime(ctx); err != nil {
			t.Logf("L0 retention: %v", err)
		}
		if _, err := db.Compact(ctx, 2); err == nil {
			ok = true
		} else {
			lastErr = err
		}
	}
	if !ok {
		t.Fatalf("L2 never went past the lost L1 file the snapshot covers (gap: %v): %v", errors.Is(lastErr, litestream.ErrCompactionGap), lastErr)
	}
}

// openL0Gone opens a DB with open (mustOpenManualDB, or mustOpenDamagedDB
// when the test breaks the replica's invariants), its file replica in a
// temp dir and an app pool.
func openL0Gone(t *testing.T, open func(testing.TB, string, litestream.ReplicaClient) *litestream.DB) (context.Context, string, *file.ReplicaClient, *litestream.DB, *sql.DB) {
	t.Helper()
	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db := open(t, filepath.Join(dir, "db"), client)
	return context.Background(), dir, client, db, MustOpenApp(t, db.Path(), 4096)
}

// openNewHost restores the replica's latest state on a new host and opens
// a manual DB on it, replicating to the same replica.
func openNewHost(t *testing.T, client litestream.ReplicaClient) (*litestream.DB, *sql.DB) {
	t.Helper()
	path := MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)
	app := MustOpenApp(t, path, 4096)
	return mustOpenManualDB(t, path, client), app
}

func mustCompact(t testing.TB, db *litestream.DB, level int) *ltx.FileInfo {
	t.Helper()
	info, err := db.Compact(context.Background(), level)
	if err != nil {
		t.Fatalf("compact L%d: %v", level, err)
	}
	return info
}

func mustSnapshot(t testing.TB, db *litestream.DB) *ltx.FileInfo {
	t.Helper()
	info, err := db.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return info
}

func mustClose(t testing.TB, db *litestream.DB) {
	t.Helper()
	if err := db.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// mustDropLevel removes every replica file at level, as an outside tool.
func mustDropLevel(t testing.TB, client litestream.ReplicaClient, level int) {
	t.Helper()
	if err := client.DeleteLTXFiles(context.Background(), levelFiles(t, client, level)); err != nil {
		t.Fatal(err)
	}
}

// The replica's newest L0 file is replaced, under the same name, by
// another database's file of the same TXID (a copy of the wrong bucket put
// back, a second host misconfigured onto the same path) while the DB is
// open and already at that TXID. With IndexRefreshInterval < 0 the DB
// lists the replica on every upload; it must notice that the file it
// uploaded is gone and not put its next TXIDs on top of the other's. Before
// the fix only the TXIDs were compared: the listing named the same file,
// the next upload went on, and the latest state no longer restored.
func TestReplica_NewestL0ReplacedUnderSameName(t *testing.T) {
	db, app, client := openWithNewestL0Replaced(t, nil)
	mustInsertReplicated(t, db, app, 10, 2)
	mustRestoreEquals(t, client, MustDump(t, app), "after the newest L0 file was replaced")
}

// The same, but the snapshot the DB owes the replica (its own files lie
// below the other's, so no restore crosses from one to the other) cannot
// be uploaded before the DB closes. The next Open must still upload it:
// before the record of the debt, the reopened DB found its own full
// snapshot on top, saw nothing to do, and restore latest failed for good.
func TestReplica_SnapshotOwedForReplacedL0SurvivesReopen(t *testing.T) {
	ctx := context.Background()
	db, app, client := openWithNewestL0Replaced(t, func(c litestream.ReplicaClient) litestream.ReplicaClient {
		return &noSnapshotClient{c}
	})
	mustInsert(t, app, 10)
	if err := db.SyncAndWait(ctx); err == nil {
		t.Fatal("SyncAndWait succeeded although snapshots are refused")
	} else {
		t.Logf("sync with snapshots refused: %v", err)
	}
	if err := db.Close(ctx); err != nil {
		t.Logf("close: %v", err)
	}
	mustReopenSyncRestore(t, db.Path(), client, app, nil)
}

// Found by the follow hunt with damage (seed 4489): the replica's newest L0
// file was replaced by another history's of the same TXID while the DB
// trusted its listing (IndexRefreshInterval not yet passed), so its next
// file went on top, unaware. A restart then compared only the replica's
// newest file, its own, and went on: the chain broke below it and restore
// latest failed for good. At the first sync after Open, a replica L0 file
// whose local copy has another size is another history's.
func TestReplica_ReplacedL0BelowOwnNewestFoundAfterRestart(t *testing.T) {
	ctx := context.Background()
	db, app, client := openWithNewestL0Replaced(t, nil)
	db.Replica.IndexRefreshInterval = time.Hour // the replacement goes unnoticed
	mustInsertReplicated(t, db, app, 10, 1)
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mustReopenSyncRestore(t, db.Path(), client, app, nil)
}

// The same for a compacted file: the replica's L1 file was replaced, while
// the DB was closed, by another database's L1 file of the same TXIDs. The
// restarted DB holds a local copy of its own L1 file (L2 merges L1 again)
// of another size, so the replica holds another history's file below its
// own L0 files and owes a snapshot past it.
func TestReplica_ReplacedL1FileFoundAfterRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db := mustOpenManualDB(t, filepath.Join(dir, "db"), client)
	litestream.SetTopCompactionLevel(db, 2) // L2 merges L1: L1 outputs are kept locally
	app := MustOpenApp(t, db.Path(), 4096)
	mustInsertReplicated(t, db, app, 1, 3)
	l1, err := db.Compact(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}

	// Another database, compacted over the same TXIDs with other content.
	otherClient := file.NewReplicaClient(filepath.Join(dir, "other-replica"))
	other := mustOpenManualDB(t, filepath.Join(dir, "other"), otherClient)
	litestream.SetTopCompactionLevel(other, 2)
	otherApp := MustOpenApp(t, other.Path(), 4096)
	for v := 100; other.Replica.Pos().TXID < l1.MaxTXID; v++ {
		mustInsertPadded(t, otherApp, v, 3000)
		if err := other.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if otherL1, err := other.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	} else if otherL1.MinTXID != l1.MinTXID || otherL1.MaxTXID != l1.MaxTXID || otherL1.Size == l1.Size {
		t.Fatalf("other L1 file %s-%s of %d bytes, want %s-%s of another size than %d", otherL1.MinTXID, otherL1.MaxTXID, otherL1.Size, l1.MinTXID, l1.MaxTXID, l1.Size)
	}

	mustInsertReplicated(t, db, app, 10, 2)
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(otherClient.LTXFilePath(1, l1.MinTXID, l1.MaxTXID))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(client.LTXFilePath(1, l1.MinTXID, l1.MaxTXID), b, 0o600); err != nil {
		t.Fatal(err)
	}

	mustReopenSyncRestore(t, db.Path(), client, app, func(db2 *litestream.DB) { litestream.SetTopCompactionLevel(db2, 2) })
}

// mustReopenSyncRestore opens a new DB at path, as a restarted process
// would (set up by setup, when given), syncs it, and checks that the
// replica restores what app holds.
func mustReopenSyncRestore(t *testing.T, path string, client litestream.ReplicaClient, app *sql.DB, setup func(*litestream.DB)) {
	t.Helper()
	db := mustOpenManualDB(t, path, client)
	if setup != nil {
		setup(db)
	}
	if err := db.SyncAndWait(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustRestoreEquals(t, client, MustDump(t, app), "after the reopened DB synced")
}

// A backend that lists files with another time than the one its write
// returned (S3's LastModified against the header's time) replaces nothing:
// the DB must not take its own uploads for another writer's and snapshot.
func TestReplica_ListedTimeOtherThanWrittenIsNotReplaced(t *testing.T) {
	path, app, client := mustAppWithReplica(t)
	db := manual(MustNewDB(t, path, timelessClient{client}))
	db.Replica.IndexRefreshInterval = -1
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	events := db.Subscribe(64)
	defer events.Close()
	mustInsertReplicated(t, db, app, 1, 5)
	for len(events.C) > 0 {
		if e := <-events.C; e.Type == litestream.EventReplicaChanged {
			t.Fatalf("the DB took its own uploads, listed with other times, for another writer's: %v", e.Err)
		}
	}
	if snaps := levelFiles(t, client, litestream.SnapshotLevel); len(snaps) != 0 {
		t.Fatalf("snapshots %v uploaded: the DB took its own uploads for another writer's", snaps)
	}
	mustRestoreEquals(t, client, MustDump(t, app), "after the uploads")
}

// openWithNewestL0Replaced opens a DB listing its replica on every upload
// (through wrap, when given), replicates a few commits, and replaces the
// replica's newest L0 file with another database's file of the same TXID.
func openWithNewestL0Replaced(t *testing.T, wrap func(litestream.ReplicaClient) litestream.ReplicaClient) (*litestream.DB, *sql.DB, *file.ReplicaClient) {
	t.Helper()
	return openWithNewestL0ReplacedBy(t, wrap, func(other *litestream.DB, otherApp *sql.DB, txid ltx.TXID) {
		for v := 100; other.Replica.Pos().TXID < txid; v++ {
			mustInsertPadded(t, otherApp, v, 3000)
			if err := other.SyncAndWait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// openWithNewestL0ReplacedBy is openWithNewestL0Replaced with the other
// database's commits up to txid made by commit.
func openWithNewestL0ReplacedBy(t *testing.T, wrap func(litestream.ReplicaClient) litestream.ReplicaClient, commit func(other *litestream.DB, otherApp *sql.DB, txid ltx.TXID)) (*litestream.DB, *sql.DB, *file.ReplicaClient) {
	t.Helper()
	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	var replicaClient litestream.ReplicaClient = client
	if wrap != nil {
		replicaClient = wrap(client)
	}
	db := mustOpenManualDB(t, filepath.Join(dir, "db"), replicaClient)
	db.Replica.IndexRefreshInterval = -1
	app := MustOpenApp(t, db.Path(), 4096)
	mustInsertReplicated(t, db, app, 1, 3)
	txid := db.Replica.Pos().TXID

	// Another database, driven to the same TXID with other content.
	otherClient := file.NewReplicaClient(filepath.Join(dir, "other-replica"))
	other := mustOpenManualDB(t, filepath.Join(dir, "other"), otherClient)
	commit(other, MustOpenApp(t, other.Path(), 4096), txid)
	if got := other.Replica.Pos().TXID; got != txid {
		t.Fatalf("other database at TXID %s, want %s", got, txid)
	}
	b, err := os.ReadFile(otherClient.LTXFilePath(0, txid, txid))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(client.LTXFilePath(0, txid, txid), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return db, app, client
}

// Found by the follow hunt with damage (seed 596): the replica lost an L1
// file, so local L0 retention kept the L0 files it had covered while
// removing later ones a newer L1 covers. An older copy of the replica, put
// back while the DB was closed, then ends at TXID top: the DB holds top
// and the files after top+1, but not top+1 itself, which retention
// removed. No file anywhere holds top+1, so the replica cannot be
// continued: the DB must re-seed it, as it does when every local file lies
// past the replica. Before the fix the local file right before the missing
// one made it look like a local file lost before its upload, left to
// AutoRecoverEnabled: every sync failed with "no such file" for good.
// Pruning L0 by TXID (EnforceRetentionByTXID at level 0) removes local
// files as well and must leave the same record: before it did, the same
// replica stalled the same way.
func TestReplica_OldCopyPutBackBelowRetainedLocalFileReseeds(t *testing.T) {
	for _, tc := range []struct {
		name        string
		l0Retention time.Duration // 0: Compact leaves L0 alone
		prune       func(ctx context.Context, db *litestream.DB, below ltx.TXID) error
	}{
		{"ByTime", time.Nanosecond, func(ctx context.Context, db *litestream.DB, _ ltx.TXID) error {
			return db.EnforceL0RetentionByTime(ctx)
		}},
		{"ByTXID", 0, func(ctx context.Context, db *litestream.DB, below ltx.TXID) error {
			return db.EnforceRetentionByTXID(ctx, 0, below)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path, app, client := mustAppWithReplica(t)
			db := manual(MustNewDB(t, path, client))
			db.Replica.IndexRefreshInterval = -1
			db.L0Retention = tc.l0Retention
			if err := db.Open(); err != nil {
				t.Fatal(err)
			}
			mustInsertReplicated(t, db, app, 1, 2)
			l1, err := db.Compact(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			top := l1.MaxTXID
			old := saveReplicaCopy(t, client)
			// The replica loses that L1 file; retention keeps the L0 files it
			// covered, and removes the next ones once a newer L1 covers them.
			if err := client.DeleteLTXFiles(ctx, []*ltx.FileInfo{l1}); err != nil {
				t.Fatal(err)
			}
			mustInsertReplicated(t, db, app, 10, 3)
			if _, err := db.Compact(ctx, 1); err != nil {
				t.Fatal(err)
			}
			if err := tc.prune(ctx, db, db.Replica.Pos().TXID); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(db.LTXPath(0, top, top)); err != nil {
				t.Fatalf("local L0 %s: %v", top, err)
			} else if _, err := os.Stat(db.LTXPath(0, top+1, top+1)); !os.IsNotExist(err) {
				t.Fatalf("local L0 %s not removed by retention: %v", top+1, err)
			}
			if err := db.Close(ctx); err != nil {
				t.Fatal(err)
			}
			putBackReplicaCopy(t, client, old)

			db2 := mustOpenManualDB(t, path, client)
			mustInsertReplicated(t, db2, app, 20, 1)
			mustRestoreLatest(t, client, MustDump(t, app), "SyncAndWait succeeded")
		})
	}
}

// Found by the follow hunt with damage (seeds 606 and 747): a copy of the
// replica from before a re-seed is put back while the DB runs at a long
// IndexRefreshInterval. It ends at the DB's own TXID, so the DB uploads its
// next file on top of the other numbering's, unaware. Its next listing
// finds its files replaced under the same names. Before the fix it only
// asked for the restorability check, which plans from names: they still
// formed a chain (through the copy's L1, when it had one), no snapshot
// came, and restore latest failed on the break between the numberings.
// Files another writer added or replaced now owe a snapshot.
func TestReplica_ReplacedByOtherNumberingBelowOwnFileOwesSnapshot(t *testing.T) {
	for _, withL1 := range []bool{false, true} {
		t.Run(fmt.Sprintf("CopyWithL1=%v", withL1), func(t *testing.T) {
			db, app, client := openReseedingPrimary(t, 4)
			if withL1 {
				if _, err := db.Compact(context.Background(), 1); err != nil && !errors.Is(err, litestream.ErrNoCompaction) {
					t.Fatal(err)
				}
				if len(levelFiles(t, client, 1)) == 0 {
					t.Fatal("precondition: the copy has no L1 file")
				}
			}
			putBackPreReseedCopy(t, db, app, client, db.Replica.Pos().TXID)
			mustInsertReplicated(t, db, app, 201, 1)
			mustRestoreLatest(t, client, MustDump(t, app), "SyncAndWait succeeded")
		})
	}
}

// mustInsertPadded commits one row with a pad of n random bytes.
func mustInsertPadded(t testing.TB, app *sql.DB, v, n int) {
	t.Helper()
	if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(?))`, v, n); err != nil {
		t.Fatal(err)
	}
}

// Found by the replica hunt with damage at open (seed 7697): an older copy
// put back unnoticed, then a snapshot, left the DB's own snapshot as the
// replica's newest file, with no local L0 file of its range to prove it
// this database's. The DB adopted it and owed a snapshot; paying that
// rewrote the snapshot under the same name, which the next sync found
// replaced and adopted again, owing another: SyncAndWait failed for good
// with "local state was reset during the upload". A snapshot this DB
// uploaded is now known by its header as its own history, so it is not
// adopted, and the lost L0 files are uploaded again from their local
// copies.
func TestReplica_OwnSnapshotAboveLostL0FilesIsContinued(t *testing.T) {
	path, app, client := mustAppWithReplica(t)
	db := mustOpenManualDB(t, path, client)
	mustInsertReplicated(t, db, app, 1, 2)
	old := saveReplicaCopy(t, client)
	mustInsertReplicated(t, db, app, 10, 2)
	db.Replica.IndexRefreshInterval = time.Hour // the copy put back goes unnoticed at first
	putBackReplicaCopy(t, client, old)
	mustSnapshot(t, db)
	db.Replica.IndexRefreshInterval = -1
	for i := 0; i < 2; i++ {
		if err := db.SyncAndWait(context.Background()); err != nil {
			t.Fatalf("SyncAndWait %d: %v", i+1, err)
		}
	}
	mustInsertReplicated(t, db, app, 20, 1)
	mustRestoreLatest(t, client, MustDump(t, app), "SyncAndWait succeeded")
	if got := L0TXIDs(t, client); len(got) == 0 || got[0] != 1 || int(got[len(got)-1]) != len(got) {
		t.Fatalf("replica L0 TXIDs %v, want 1 on without a hole: the lost files' local copies uploaded again", got)
	}
}

// Found through TestReplicaIndex_NoticesFilesChangedBehindItsBack, which
// failed now and then: the replica lost its first L0 file while a snapshot
// past it appeared (here written by another client; there, the one the DB
// uploads when the replica no longer restores). L1 was still empty, and
// compaction into it started past the hole because the snapshot reaches
// it, although the local copy of the lost file was being uploaded again:
// L1 then went past that TXID, the copy was never uploaded, and TXID 1 no
// longer restored. Into an empty L1, as after any L1 file, compaction now
// waits for local copies that can fill the hole.
func TestCompaction_EmptyL1WaitsForLocalCopyOfLostFirstL0(t *testing.T) {
	ctx := context.Background()
	path, app, client := mustAppWithReplica(t)
	db := mustOpenManualDB(t, path, client)
	db.Replica.IndexRefreshInterval = -1
	mustInsertReplicated(t, db, app, 1, 2)
	first := levelFiles(t, client, 0)[0]
	if err := client.DeleteLTXFiles(ctx, []*ltx.FileInfo{first}); err != nil {
		t.Fatal(err)
	}
	pos, rc, err := db.SnapshotReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = file.NewReplicaClient(client.Path()).WriteLTXFile(ctx, litestream.SnapshotLevel, 1, pos.TXID, rc)
	_ = rc.Close()
	if err != nil {
		t.Fatal(err)
	}

	if info, err := db.Compact(ctx, 1); err == nil {
		t.Fatalf("compacted L1 %s-%s past the lost L0 file %s, whose local copy can fill it", info.MinTXID, info.MaxTXID, first.MinTXID)
	} else if !errors.Is(err, litestream.ErrCompactionGap) {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil { // uploads the copy again
		t.Fatal(err)
	}
	if info, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	} else if info.MinTXID != 1 {
		t.Fatalf("L1 compacted %s-%s, want it from TXID 1", info.MinTXID, info.MaxTXID)
	}
	if got := MustRestore(t, litestream.NewReplicaWithClient(nil, client), first.MaxTXID); got == "" {
		t.Fatalf("restore of TXID %s returned nothing", first.MaxTXID)
	}
}
