// restore_stale_test.go: restores into a path whose old database left its
// -wal (or -journal, -shm, -txid) behind.
package litestream_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/benbjohnson/litestream"
)

// A follower crashes (simulated: its -wal, full of committed follow
// transactions, is left next to the output, as SIGKILL or a power loss
// leaves it). Later its resume is refused ("replica history has been
// pruned ... delete <output> to restore from scratch"), or the operator
// just wants a fresh copy, and deletes the output as the message says.
// The new follow-mode restore writes the output, and SQLite, opening it,
// recovers the old -wal into it: the old follower's pages overwrite the
// fresh restore's, and the follower goes on from the fresh TXID on top of
// that mix.
func TestReplica_Restore_FollowIgnoresStaleWALBesideOutput(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	insert := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(300))`, i); err != nil {
				t.Fatal(err)
			} else if _, err := app.Exec(`UPDATE t SET v = v + 1 WHERE id % 3 = ?`, i%3); err != nil {
				t.Fatal(err)
			}
			if err := db.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	insert(5)
	follower := litestream.NewReplicaWithClient(nil, client)
	out := filepath.Join(t.TempDir(), "follow.db")
	stop := startFollow(follower, out)
	waitFollowed(t, db, out)
	insert(10)
	waitFollowed(t, db, out)
	// The follower is idle between polls: its WAL holds what it committed.
	wal, err := os.ReadFile(out + "-wal")
	if err != nil {
		t.Fatal(err)
	} else if len(wal) <= 32 {
		t.Fatalf("follower WAL is %d bytes", len(wal))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// What a crash leaves instead of the clean stop's checkpoint.
	if err := os.WriteFile(out+"-wal", wal, 0o644); err != nil {
		t.Fatal(err)
	}

	// Delete the output, as the resume error says, and follow again.
	if err := os.Remove(out); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := app.Exec(`DELETE FROM t WHERE id % 2 = 0`); err != nil {
			t.Fatal(err)
		}
		insert(5)
	}
	stop = startFollow(follower, out)
	waitFollowed(t, db, out)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, out), MustDump(t, app); got != want {
		t.Fatalf("fresh follow-mode restore next to a stale -wal: output %s, source %s", got, want)
	}
}

// The same for a plain restore: an application's database is lost or
// damaged, the operator removes the database file and restores it from the
// replica; the application's old -wal is still there and SQLite recovers
// it into the restored database at the first open (here: the restore's own
// integrity check).
func TestReplica_Restore_IgnoresStaleWALBesideOutput(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	for i := 0; i < 10; i++ {
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(300))`, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	// An old copy of the database with its WAL (e.g. what a crashed
	// process left): restore it, open it in WAL mode, write, keep the WAL.
	old := MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)
	oldApp := MustOpenApp(t, old, 4096)
	if _, err := oldApp.Exec(`PRAGMA wal_autocheckpoint = 0; DELETE FROM t; INSERT INTO t (v) VALUES (-1)`); err != nil {
		t.Fatal(err)
	}
	wal, err := os.ReadFile(old + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	_ = oldApp.Close()

	out := filepath.Join(t.TempDir(), "app.db")
	if err := os.WriteFile(out+"-wal", wal, 0o644); err != nil {
		t.Fatal(err)
	}
	opt := litestream.NewRestoreOptions()
	opt.OutputPath, opt.IntegrityCheck = out, litestream.IntegrityCheckQuick
	if err := litestream.NewReplicaWithClient(nil, client).Restore(ctx, opt); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, out), MustDump(t, app); got != want {
		t.Fatalf("restore next to a stale -wal: output %s, replica %s", got, want)
	}
}
