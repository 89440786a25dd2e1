// Holes a damaged replica leaves between files past a level's newest
// file, and snapshots bridging what retention removed: compaction and
// follow mode go on across them.
package litestream_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// mustFollowThenShrink grows a primary's table by doublings, follows it to
// TXID at and stops the follower (the output then has size bytes), then
// shrinks the database (DELETE + VACUUM) and has snapshot retention remove
// every file continuing at.
func mustFollowThenShrink(t *testing.T, doublings int) (db *litestream.DB, app *sql.DB, follower *litestream.Replica, out string, at ltx.TXID, size int64) {
	t.Helper()
	path, app, client := mustAppWithReplica(t)
	db = mustOpenManualDB(t, path, client)
	mustInsertReplicated(t, db, app, 1, 2)
	for i := 0; i < doublings; i++ {
		mustExecReplicated(t, db, app, `INSERT INTO t (v, pad) SELECT v+1000, randomblob(3000) FROM t`)
	}
	out = filepath.Join(t.TempDir(), "out.db")
	follower = litestream.NewReplicaWithClient(nil, client)
	stop := startFollow(follower, out)
	waitFollowed(t, db, out)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	at, _ = litestream.ReadTXIDFile(out)
	if fi, err := os.Stat(out); err == nil {
		size = fi.Size()
	}
	mustExecReplicated(t, db, app, `DELETE FROM t WHERE v >= 1000`)
	mustExecReplicated(t, db, app, `VACUUM`)
	retainSnapshotsPast(t, db, app, client, at)
	return db, app, follower, out, at, size
}

// A follower stopped at N while the primary shrinks the
// database (DELETE + VACUUM) and snapshot retention then removes every file
// continuing N: the resumed follower bridges through a snapshot smaller
// than its output.
func TestReplica_Follow_SnapshotBridgeShrinks(t *testing.T) {
	db, app, follower, out, at, before := mustFollowThenShrink(t, 5)
	stop, ended := startFollowEnding(follower, out)
	defer func() { _ = stop() }()
	waitFollowedOrEnded(t, db, out, ended)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(out)
	t.Logf("output %d bytes at %s, %d bytes after", before, at, after.Size())
	if got, want := MustCheckRestored(t, out), MustDump(t, app); got != want {
		t.Fatalf("follower holds %s, primary %s", got, want)
	}
}

// A crash right after the snapshot-bridging commit, before the
// -txid update: -txid still N, -txid.next the TXID reached. The restarted
// follower must reach it again through the snapshot in one transaction.
func TestReplica_Follow_SnapshotBridgeCrashAfterCommit(t *testing.T) {
	db, app, follower, out, at, _ := mustFollowThenShrink(t, 4)
	stop, ended := startFollowEnding(follower, out)
	waitFollowedOrEnded(t, db, out, ended)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	reached, _ := litestream.ReadTXIDFile(out)
	// The crash: the sidecar still says at, the record before the commit says reached.
	if err := litestream.WriteTXIDFile(out, at); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(litestream.TXIDPath(out)+".next", []byte(reached.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// And the primary goes on, takes another snapshot, retention again.
	mustInsertReplicated(t, db, app, 500, 2)
	if _, err := db.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 600, 2)
	stop, ended = startFollowEnding(follower, out)
	defer func() { _ = stop() }()
	waitFollowedOrEnded(t, db, out, ended)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("at %s, reached %s", at, reached)
	if got, want := MustCheckRestored(t, out), MustDump(t, app); got != want {
		t.Fatalf("follower holds %s, primary %s", got, want)
	}
}

// An L0 file lost while the DB was closed BETWEEN two L0 files past L1's
// newest (not the first one after it): the restarted index's first listing
// cannot report it lost, so compaction into L1, finding the hole between
// its inputs, has the local copy uploaded again, as for a hole right after
// L1's newest file, instead of stalling for ever.
func TestReplica_LostL0MidWhileClosed_CompactionGoesOn(t *testing.T) {
	testLostL0WhileClosed(t, 2)
}

// The L2 side: an L1 file lost between two L1 files past L2's newest, with
// a snapshot covering it, is left out as one right after L2's newest is
// (nothing makes a lost L1 file again): L2 compacts up to the hole, then
// goes on after it, instead of waiting for ever.
func TestCompactor_L2CrossesLostMidL1FileSnapshotCovers(t *testing.T) {
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
	mustInsertReplicated(t, db, app, 10, 3)
	mustCompact(t, db, 1) // kept: right after L2's newest
	mustInsertReplicated(t, db, app, 20, 3)
	lostL1, err := db.Compact(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 30, 3)
	mustCompact(t, db, 1)
	mustSnapshot(t, db)
	if err := client.DeleteLTXFiles(ctx, []*ltx.FileInfo{lostL1}); err != nil {
		t.Fatal(err)
	}
	t.Logf("lost L1 %s-%s (not the first after L2's newest); snapshot covers it", lostL1.MinTXID, lostL1.MaxTXID)

	mustCompactL2PastLostL1(t, db, app)
}

// As TestReplica_LostL0MidWhileClosed_CompactionGoesOn, with no snapshot
// past the hole: the latest state must restore again once compaction has
// the host's local copy uploaded.
func TestReplica_LostL0MidWhileClosed_LatestRestores(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	path := filepath.Join(dir, "db")
	db := mustOpenDamagedDB(t, path, client)
	app := MustOpenApp(t, path, 4096)
	mustInsertReplicated(t, db, app, 1, 5)
	l1, err := db.Compact(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 10, 5)
	mustClose(t, db)

	lostTXID := l1.MaxTXID + 2
	mustDropL0File(t, client, lostTXID)

	db2 := mustOpenDamagedDB(t, path, client)
	for i := 0; i < 5; i++ {
		mustInsertReplicated(t, db2, app, 100+i, 1)
		_, _ = db2.Compact(ctx, 1)
	}
	out := filepath.Join(t.TempDir(), "out.db")
	if err := litestream.NewReplicaWithClient(nil, client).Restore(ctx, litestream.RestoreOptions{OutputPath: out}); err != nil {
		t.Fatalf("latest restore fails after 5 syncs and compactions, though the host has L0 %s's local copy: %v", lostTXID, err)
	}
}
