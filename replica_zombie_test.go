// A writer whose local L0 files start at a file fetched from the replica
// (its anchor) never had the TXIDs below it: when the replica, wiped and
// written again by another writer, ends right below that anchor, the
// writer's missing local file of the replica's newest TXID proves nothing,
// and its own files must not go on top of the other writer's.
package litestream_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// Found by the replica hunt (OPEN_DAMAGE, seed 3045): A replicates TXIDs
// 1-2; B, a database of its own, starts on that replica, fetches A's 2 as
// its newest L0 file and writes a full snapshot at 3. The replica is
// wiped while B is closed, and C replicates its own TXID 1. B, opened
// again at TXID 3, took C's 1 for its own (its local 1 is not there, as if
// retained away) and uploaded A's 2, then its 3 and 4, on top of it: TXID
// 2 no longer restored ("does not continue"). B must fetch C's 1 and write
// a full snapshot after it instead.
func TestReplica_OtherHistoryEndsBelowFetchedNewestL0(t *testing.T) {
	for _, restart := range []bool{false, true} {
		name := "Reopen"
		if restart {
			name = "Restart"
		}
		t.Run(name, func(t *testing.T) { testOtherHistoryBelowAnchor(t, restart) })
	}
}

func testOtherHistoryBelowAnchor(t *testing.T, restart bool) {
	ctx := context.Background()
	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))

	dbA := mustOpenManualDB(t, filepath.Join(dir, "a.db"), client)
	appA := MustOpenApp(t, dbA.Path(), 4096)
	if err := dbA.SyncAndWait(ctx); err != nil { // TXID 1: the table
		t.Fatal(err)
	}
	mustInsertReplicated(t, dbA, appA, 1, 1) // TXID 2
	mustClose(t, dbA)

	pathB := filepath.Join(dir, "b.db")
	appB := MustOpenApp(t, pathB, 4096)
	for v := 100; v < 110; v++ {
		mustInsert(t, appB, v)
	}
	dbB := mustOpenManualDB(t, pathB, client)
	if err := dbB.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := L0TXIDs(t, client), []ltx.TXID{1, 2, 3}; !slices.Equal(got, want) {
		t.Fatalf("L0 TXIDs after B's first sync: %v, want %v (B's snapshot after A's 2)", got, want)
	}
	mustClose(t, dbB)

	// Wiped, as a tool would; C replicates TXID 1 of its own.
	if err := os.RemoveAll(filepath.Join(dir, "replica", "ltx")); err != nil {
		t.Fatal(err)
	}
	dbC := mustOpenManualDB(t, filepath.Join(dir, "c.db"), client)
	appC := MustOpenApp(t, dbC.Path(), 4096)
	mustInsert(t, appC, 7)
	if err := dbC.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := L0TXIDs(t, client), []ltx.TXID{1}; !slices.Equal(got, want) {
		t.Fatalf("L0 TXIDs after C's sync: %v, want %v", got, want)
	}
	mustClose(t, dbC)

	if restart {
		dbB = mustOpenManualDB(t, pathB, client)
	} else if err := dbB.Open(); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, dbB, appB, 200, 1)

	for _, txid := range L0TXIDs(t, client) {
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
		opt.TXID = txid
		err := litestream.NewReplicaWithClient(nil, client).Restore(ctx, opt)
		if errors.Is(err, litestream.ErrLTXCorrupted) {
			t.Fatalf("L0 TXIDs %v: restore of TXID %s: %v", L0TXIDs(t, client), txid, err)
		} else if err != nil {
			t.Fatal(err)
		}
	}
	mustRestoreEquals(t, client, MustDump(t, appB), "after B's commit")
}

// The case the rule above now also covers: the replica's newest L0 file is
// this DB's own, compacted and retained away locally, and the DB wrote a
// newer L0 file it had not uploaded when it stopped. Reopened, it cannot
// prove the replica's newest file is its history, so it writes a full
// snapshot after it: nothing committed may be lost, and every TXID on the
// replica must still restore.
func TestReplica_ReopenAfterNewestReplicaL0RetainedLocally(t *testing.T) {
	ctx := context.Background()
	path, app, client := mustAppWithReplica(t)
	db := manual(MustNewDB(t, path, client))
	db.L0Retention = time.Nanosecond
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 1, 3)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	pos, err := db.Pos()
	if err != nil {
		t.Fatal(err)
	}
	newest := pos.TXID
	mustInsert(t, app, 4)
	if err := db.Sync(ctx); err != nil { // local L0 only: not uploaded
		t.Fatal(err)
	}
	if err := os.Remove(db.LTXPath(0, newest, newest)); err != nil {
		t.Fatalf("the replica's newest L0 file is not the local one before last: %v", err)
	}
	mustClose(t, db)

	db = mustOpenManualDB(t, path, client)
	mustInsertReplicated(t, db, app, 5, 1)
	for _, txid := range L0TXIDs(t, client) {
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
		opt.TXID = txid
		if err := litestream.NewReplicaWithClient(nil, client).Restore(ctx, opt); err != nil {
			t.Fatalf("L0 TXIDs %v: restore of TXID %s: %v", L0TXIDs(t, client), txid, err)
		}
	}
	mustRestoreEquals(t, client, MustDump(t, app), "after the reopened DB's commit")
}
