// Tests of the control operations: resetting local state, store control.
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

// ResetLocalState continues TXIDs after the replica's highest instead of
// restarting at 1.
func TestDB_ResetLocalState_ContinuesTXIDs(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	for i := 0; i < 3; i++ {
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	before := L0TXIDs(t, client)
	if err := db.ResetLocalState(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (99)`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	after := L0TXIDs(t, client)
	if len(after) != len(before)+1 || after[len(after)-1] != before[len(before)-1]+1 {
		t.Fatalf("L0 TXIDs %v after reset, want %v plus the next", after, before)
	}
	if got, want := MustCheckRestored(t, MustRestore(t, db.Replica, 0)), MustDump(t, app); got != want {
		t.Fatalf("restore after reset: %s, want %s", got, want)
	}
}

func TestStore_Control(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, _, store := newStoreDB(t, dir, litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: time.Hour}})
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	app := MustOpenApp(t, db.Path(), 4096)
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
		t.Fatal(err)
	}

	res, err := store.SyncDB(ctx, db.Path(), true)
	if err != nil {
		t.Fatal(err)
	} else if res.TXID == 0 || res.ReplicatedTXID != res.TXID {
		t.Fatalf("SyncDB = %+v, want local == replicated > 0", res)
	}
	if _, err := store.SyncDB(ctx, "/nope", false); !errors.Is(err, litestream.ErrDatabaseNotFound) {
		t.Fatalf("unknown path: %v", err)
	}
	if status, err := db.SyncStatus(ctx); err != nil || !status.InSync {
		t.Fatalf("SyncStatus = %+v, %v", status, err)
	}

	if err := store.DisableDB(ctx, db.Path()); err != nil {
		t.Fatal(err)
	}
	if _, err := store.SyncDB(ctx, db.Path(), false); !errors.Is(err, litestream.ErrDatabaseNotOpen) {
		t.Fatalf("disabled db: %v", err)
	}
	if err := store.DisableDB(ctx, db.Path()); err == nil {
		t.Fatal("disabling twice succeeded")
	}
	if err := store.EnableDB(ctx, db.Path()); err != nil {
		t.Fatal(err)
	}

	other := MustNewDB(t, filepath.Join(dir, "other.db"), file.NewReplicaClient(filepath.Join(dir, "other-replica")))
	if err := store.RegisterDB(other); err != nil {
		t.Fatal(err)
	}
	if store.FindDB(other.Path()) != other || len(store.DBs()) != 2 {
		t.Fatal("registered db not found")
	}
	if err := store.UnregisterDB(ctx, other.Path()); err != nil {
		t.Fatal(err)
	}
	if store.FindDB(other.Path()) != nil {
		t.Fatal("unregistered db still found")
	}

	result, err := store.Validate(ctx)
	if err != nil || !result.Valid {
		t.Fatalf("Validate = %+v, %v", result, err)
	}
	if err := store.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
