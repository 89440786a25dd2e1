// Tests of checkpoints alongside the application's own.
package litestream_test

import (
	"context"
	"testing"

	"github.com/benbjohnson/litestream"
)

// After a library checkpoint the application's own checkpoints can still
// copy frames: the library's read transaction must not sit on read mark 0,
// which blocks them all (and makes every app commit past wal_autocheckpoint
// build a checkpoint iterator over the whole WAL, in vain).
func TestDB_Checkpoint_LeavesAppCheckpointsWorking(t *testing.T) {
	db, app, _ := MustOpenDB(t, 4096)
	ctx := context.Background()
	insert := func(n int) {
		t.Helper()
		for range n {
			if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
				t.Fatal(err)
			}
		}
	}
	insert(20)
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Checkpoint(ctx, litestream.CheckpointModePassive); err != nil {
		t.Fatal(err)
	}

	insert(50)
	var busy, frames, checkpointed int
	if err := app.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &checkpointed); err != nil {
		t.Fatal(err)
	}
	if checkpointed == 0 {
		t.Fatalf("app checkpoint copied no frames of %d: the library blocks it", frames)
	}
	if checkpointed >= frames {
		t.Fatalf("app checkpoint copied all %d frames past the library's read mark", frames)
	}

	// Nothing the app checkpointed is missing from the replica.
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, MustRestore(t, db.Replica, 0)), MustDump(t, app); got != want {
		t.Fatal("restored database differs from the source")
	}
}
