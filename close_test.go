// Tests of DB.Close replicating what was written before the first tick.
package litestream_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// A program that creates its database, writes and closes before the first
// monitor tick must still find its rows on the replica.
func TestDB_Close_ReplicatesBeforeFirstTick(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db := MustNewDB(t, path, client)
	db.MonitorInterval = time.Hour
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}

	app := MustOpenApp(t, path, 4096)
	for i := range 10 {
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
	}
	want := MustDump(t, app)
	if err := db.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}

	if got := MustCheckRestored(t, MustRestore(t, db.Replica, 0)); got != want {
		t.Fatalf("restored database differs from the source")
	}
	MustVerifyReplica(t, client)
}

// The replica lost its newest L0 files, local retention removed the older
// ones, and Close's final upload is the first to notice: it re-seeds the
// replica with a snapshot and uploads it, rather than report success with
// the commits after the replica's newest file only in the local database.
func TestDB_Close_ReseedsReplicaBehindLocalFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	app := MustOpenApp(t, path, 4096)
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	newDB := func() *litestream.DB {
		db := manual(MustNewDB(t, path, client))
		db.ShutdownSyncTimeout, db.ShutdownSyncInterval = 2*time.Second, 50*time.Millisecond
		return db
	}
	db := newDB()
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 0, 6)
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	pos, err := db.Pos()
	if err != nil {
		t.Fatal(err)
	}
	lost := []*ltx.FileInfo{{Level: 0, MinTXID: pos.TXID - 1, MaxTXID: pos.TXID - 1}, {Level: 0, MinTXID: pos.TXID, MaxTXID: pos.TXID}}
	if err := client.DeleteLTXFiles(ctx, lost); err != nil {
		t.Fatal(err)
	}
	for txid := ltx.TXID(1); txid < pos.TXID; txid++ {
		_ = os.Remove(db.LTXPath(0, txid, txid))
	}

	db2 := newDB()
	if err := db2.Open(); err != nil {
		t.Fatal(err)
	}
	mustInsert(t, app, 99)
	if err := db2.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got, want := MustCheckRestored(t, MustRestore(t, db2.Replica, 0)), MustDump(t, app); got != want {
		t.Fatalf("Close returned nil, but the latest restore is %s, want %s", got, want)
	}
}

// A DB closed, its meta directory removed (local state lost meanwhile),
// and opened again in the same process syncs and uploads again, instead of
// failing every sync on the position it knew before.
func TestDB_Open_AfterMetaDirRemovedWhileClosed(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	mustInsertReplicated(t, db, app, 0, 3)
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(db.MetaPath()); err != nil {
		t.Fatal(err)
	}
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	mustInsert(t, app, 99)
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatalf("sync after reopening with the meta directory removed: %v", err)
	}
	mustRestoreEquals(t, client, MustDump(t, app), "after reopening")
}

// Methods called after Close return ErrDatabaseNotOpen, as the README says;
// none acts on the replica, which may be another writer's by now.
func TestDB_MethodsAfterCloseReturnErrDatabaseNotOpen(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	mustInsertReplicated(t, db, app, 1, 2)
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"Sync", func() error { return db.Sync(short) }},
		{"SyncAndWait", func() error { return db.SyncAndWait(short) }},
		{"WaitReplicated", func() error { return db.WaitReplicated(short) }},
		{"SyncStatus", func() error { _, err := db.SyncStatus(short); return err }},
		{"Checkpoint", func() error { return db.Checkpoint(short, litestream.CheckpointModePassive) }},
		{"Snapshot", func() error { _, err := db.Snapshot(short); return err }},
		{"Compact", func() error { _, err := db.Compact(short, 1); return err }},
		{"EnforceRetentionByTXID", func() error { return db.EnforceRetentionByTXID(short, 0, 100) }},
		{"EnforceL0RetentionByTime", func() error { return db.EnforceL0RetentionByTime(short) }},
		{"EnforceSnapshotRetention", func() error { _, err := db.EnforceSnapshotRetention(short, time.Now()); return err }},
		{"SnapshotReader", func() error {
			_, rc, err := db.SnapshotReader(short)
			if rc != nil {
				_ = rc.Close()
			}
			return err
		}},
		{"CRC64", func() error { _, _, err := db.CRC64(short); return err }},
	}
	l0 := L0TXIDs(t, client)
	for _, c := range calls {
		name := c.name
		if err := c.call(); !errors.Is(err, litestream.ErrDatabaseNotOpen) {
			t.Errorf("%s after Close: %v, want ErrDatabaseNotOpen", name, err)
		}
	}
	if l1 := levelFiles(t, client, 1); len(l1) > 0 {
		t.Errorf("a DB closed before wrote %d L1 files to the replica", len(l1))
	}
	if after := L0TXIDs(t, client); len(after) != len(l0) {
		t.Errorf("a DB closed before deleted replica L0 files: %v, then %v", l0, after)
	}
}
