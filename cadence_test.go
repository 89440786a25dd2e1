// Tests of the sync and upload cadence: one batch per SyncInterval, no
// listings while idle.
package litestream_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

// Under sustained writes the replica uploads one batch, then waits out
// SyncInterval while the DB keeps writing L0 files; Close uploads the rest.
func TestReplica_Monitor_OneBatchPerSyncInterval(t *testing.T) {
	dir := t.TempDir()
	client := &testClient{ReplicaClient: file.NewReplicaClient(filepath.Join(dir, "replica"))}
	db := MustNewDB(t, filepath.Join(dir, "db"), client)
	db.MonitorInterval = 10 * time.Millisecond
	db.Replica.SyncInterval = time.Hour
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	app := MustOpenApp(t, db.Path(), 4096)

	// The first batch starts at once: the replica was idle.
	waitFor(t, 30*time.Second, "the first upload", func() bool { return db.Replica.Pos().TXID > 0 })
	first, uploads := db.Replica.Pos(), client.l0Writes.Load()

	for i := 0; ; i++ {
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
		if pos, err := db.Pos(); err != nil {
			t.Fatal(err)
		} else if pos.TXID >= first.TXID+3 {
			break
		}
		time.Sleep(5 * time.Millisecond) // pace the writer
	}
	if got := db.Replica.Pos(); got != first {
		t.Fatalf("replica pos %s while SyncInterval has not passed, want %s", got.TXID, first.TXID)
	}
	if got := client.l0Writes.Load(); got != uploads {
		t.Fatalf("%d L0 uploads, want %d", got, uploads)
	}

	if err := db.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := MustCheckRestored(t, MustRestore(t, db.Replica, 0)); got != MustDump(t, app) {
		t.Fatalf("restored after close: %s, want %s", got, MustDump(t, app))
	}
}

// With nothing new since the last pass, background L0 retention and
// compaction answer from what the DB already knows and do not list the
// replica. (A direct EnforceL0RetentionByTime call always looks.)
func TestDB_IdleMaintenance_NoListings(t *testing.T) {
	dir := t.TempDir()
	client := &testClient{ReplicaClient: file.NewReplicaClient(filepath.Join(dir, "replica"))}
	db := MustNewDB(t, filepath.Join(dir, "db"), client)
	db.MonitorInterval = 0
	db.Replica.MonitorEnabled = false
	store := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
	store.CompactionMonitorEnabled = false
	store.L0RetentionCheckInterval = 0
	ctx := context.Background()
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close(ctx) }()
	app := MustOpenApp(t, db.Path(), 4096)
	lvl := &litestream.CompactionLevel{Level: 1, Interval: time.Nanosecond}

	write := func(v int) {
		t.Helper()
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, v); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := store.CompactDB(ctx, db, lvl); err != nil {
			t.Fatal(err)
		}
		if err := litestream.EnforceL0RetentionIfDue(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	write(1)

	lists := client.lists.Load()
	if err := litestream.EnforceL0RetentionIfDue(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CompactDB(ctx, db, lvl); !errors.Is(err, litestream.ErrNoCompaction) {
		t.Fatalf("compact with nothing new: err = %v, want ErrNoCompaction", err)
	}
	if got := client.lists.Load() - lists; got != 0 {
		t.Fatalf("%d listings with nothing changed, want 0", got)
	}

	// A new L1 file makes retention look again.
	write(2)
	lists = client.lists.Load()
	info, err := db.MaxLTXFileInfo(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	pos, err := db.Pos()
	if err != nil {
		t.Fatal(err)
	}
	if info.MaxTXID != pos.TXID {
		t.Fatalf("L1 max txid %s, want %s", info.MaxTXID, pos.TXID)
	}
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (3)`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := litestream.EnforceL0RetentionIfDue(ctx, db); err != nil {
		t.Fatal(err)
	}
	if client.lists.Load() == lists {
		t.Fatal("retention did not list the replica after a new L0 file")
	}
}
