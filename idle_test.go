// Tests of the monitor while the database is idle.
package litestream_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

// openIdleDB opens a DB with a short MonitorInterval and the given
// SyncInterval, replicating to a file client, and the app's connection. It
// returns a function that commits one row of about a page.
func openIdleDB(t *testing.T, syncInterval time.Duration, configure ...func(*litestream.DB)) (*litestream.DB, *testClient, func(v int)) {
	t.Helper()
	dir := t.TempDir()
	client := &testClient{ReplicaClient: file.NewReplicaClient(filepath.Join(dir, "replica"))}
	db := MustNewDB(t, filepath.Join(dir, "db"), client)
	db.MonitorInterval = 20 * time.Millisecond
	db.Replica.SyncInterval = syncInterval
	for _, fn := range configure {
		fn(db)
	}
	app := MustOpenApp(t, db.Path(), 4096)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(t.Context()) })
	insert := func(v int) {
		t.Helper()
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(3000))`, v); err != nil {
			t.Fatal(err)
		}
	}
	return db, client, insert
}

func noTimeCheckpoint(db *litestream.DB) { db.CheckpointInterval = 0 }

// waitTXID waits until the DB has written an L0 file past txid and returns
// the new position's TXID.
func waitTXID(t *testing.T, db *litestream.DB, after uint64, what string) uint64 {
	t.Helper()
	var got uint64
	waitFor(t, 30*time.Second, what, func() bool {
		pos, err := db.Pos()
		got = uint64(pos.TXID)
		return err == nil && got > after
	})
	return got
}

// Without WAL change events the monitor keeps polling after the DB is
// initialized, so every commit still reaches an L0 file. (No time-based
// checkpoint: its rechecks would also find the commits.)
func TestDB_Monitor_PollsWithoutWatcher(t *testing.T) {
	litestream.DisableWALWatcher(t)
	mustSyncEachCommit(t)
}

// Without change events a poll compares the WAL's size and mtime, which a
// commit can leave as they were: after a WAL restart commits overwrite the
// file in place, and a coarse timestamp (1-2 s on HFS+ or FAT, a jiffy on
// older Linux) may not move within one tick. The monitor must still sync
// it. The coarse tick is simulated by putting the mtime back.
func TestDB_Monitor_PollsCommitLeavingWALSizeAndMtime(t *testing.T) {
	litestream.DisableWALWatcher(t)
	ctx := context.Background()
	db, app, _ := MustOpenMonitoredDB(t, io.Discard, nil, noTimeCheckpoint)
	for i := 0; i < 20; i++ {
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(3000))`, i); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "first sync", func() bool { p, _ := db.Pos(); return p.TXID > 0 })
	if err := db.Checkpoint(ctx, litestream.CheckpointModePassive); err != nil {
		t.Fatal(err)
	}
	checkpointed, _ := db.Pos()
	// The next commit restarts the WAL; small commits then overwrite it
	// without growing it.
	if _, err := app.Exec(`UPDATE t SET v = 1000 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	txid := waitTXID(t, db, uint64(checkpointed.TXID), "the commit restarting the WAL")
	// Let the monitor take its stat of this WAL: no event says it did, so
	// give it a few intervals.
	time.Sleep(10 * db.MonitorInterval)
	fi, err := os.Stat(db.WALPath())
	if err != nil {
		t.Fatal(err)
	}

	if _, err := app.Exec(`UPDATE t SET v = 2000 WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	if fi2, err := os.Stat(db.WALPath()); err != nil {
		t.Fatal(err)
	} else if fi2.Size() != fi.Size() {
		t.Fatalf("the WAL grew from %d to %d bytes: the setup did not restart it", fi.Size(), fi2.Size())
	}
	if err := os.Chtimes(db.WALPath(), fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	waitTXID(t, db, txid, "the commit leaving the WAL's size and mtime unchanged")
}

// mustSyncEachCommit commits four times to an idle DB and waits for an L0
// file after each commit.
func mustSyncEachCommit(t *testing.T) {
	t.Helper()
	db, _, insert := openIdleDB(t, time.Second, noTimeCheckpoint)
	var txid uint64
	for i := 1; i <= 4; i++ {
		insert(i)
		txid = waitTXID(t, db, txid, fmt.Sprintf("an L0 file for commit %d", i))
	}
}

// An idle replica monitor sleeps until the DB writes an L0 file: a commit
// long after the last upload is uploaded, and sync health stays current
// while nothing is pending.
func TestReplica_Monitor_WakesOnNewL0(t *testing.T) {
	db, client, insert := openIdleDB(t, 50*time.Millisecond)
	insert(1)
	txid := waitTXID(t, db, 0, "the first L0 file")
	waitFor(t, 30*time.Second, "the first upload", func() bool { return uint64(db.Replica.Pos().TXID) >= txid })

	caughtUp := time.Now()
	waitFor(t, 30*time.Second, "sync health newer than the catch-up", func() bool {
		return db.LastSuccessfulSyncAt().After(caughtUp)
	})
	uploads := client.l0Writes.Load()

	insert(2)
	txid = waitTXID(t, db, txid, "an L0 file for the second commit")
	waitFor(t, 30*time.Second, "the upload of the second commit", func() bool { return uint64(db.Replica.Pos().TXID) >= txid })
	if got := client.l0Writes.Load() - uploads; got < 1 {
		t.Fatalf("%d uploads after the second commit, want at least 1", got)
	}
}

// The time-based checkpoint still runs on an idle database: with no commit
// after the first ones, the database file receives their pages.
func TestDB_Monitor_TimeCheckpointWhileIdle(t *testing.T) {
	db, _, insert := openIdleDB(t, time.Second, func(db *litestream.DB) { db.CheckpointInterval = 200 * time.Millisecond })
	for i := 0; i < 20; i++ {
		insert(i)
	}
	waitTXID(t, db, 0, "an L0 file")
	waitFor(t, 30*time.Second, "a checkpoint into the database file", func() bool {
		fi, err := os.Stat(db.Path())
		return err == nil && fi.Size() >= 20*4096
	})
}

// Store maintenance that sleeps while nothing can be due still acts on its
// own: L0 retention deletes compacted L0 files once they age, and a commit
// after a quiet spell is compacted into L1 at the next boundary.
func TestStore_Monitor_MaintenanceAfterIdle(t *testing.T) {
	dir := t.TempDir()
	levels := litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: 100 * time.Millisecond}}
	db, client, store := newStoreDB(t, dir, levels)
	// Longer than the first commits take, so the compactions that follow
	// them find nothing old enough: only the retention monitor deletes.
	store.SetL0Retention(time.Second)
	store.L0RetentionCheckInterval = 50 * time.Millisecond
	ctx := t.Context()
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close(context.Background()) }()
	app := MustOpenApp(t, db.Path(), 4096)

	var txid uint64
	commit := func(v int) {
		t.Helper()
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, v); err != nil {
			t.Fatal(err)
		}
		if err := db.WaitReplicated(ctx); err != nil {
			t.Fatal(err)
		}
		pos, err := db.Pos()
		if err != nil {
			t.Fatal(err)
		}
		txid = uint64(pos.TXID)
	}
	compacted := func(what string) {
		t.Helper()
		waitFor(t, 30*time.Second, what, func() bool {
			files := levelFiles(t, client, 1)
			return len(files) > 0 && uint64(files[len(files)-1].MaxTXID) >= txid
		})
	}
	commit(0)
	compacted("L1 to cover the first commit")
	commit(1)
	commit(2)
	compacted("L1 to cover the next commits")
	waitFor(t, 30*time.Second, "L0 retention to leave only the newest L0 file", func() bool {
		return len(L0TXIDs(t, client)) == 1
	})

	commit(3)
	compacted("L1 to cover a commit after the quiet spell")
	if got, want := MustCheckRestored(t, MustRestore(t, db.Replica, 0)), MustDump(t, app); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
}

// commitChild is the other process of TestDB_Monitor_SeesOtherProcessCommits:
// it commits one row to the database at path.
func commitChild(path string) error {
	app, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	defer func() { _ = app.Close() }()
	_, err = app.Exec(`INSERT INTO t (v) VALUES (42)`)
	return err
}
