// Tests of snapshots: large databases, failing uploads, and their place
// against the replica's L0 files.
package litestream_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// A snapshot of a database many read-ahead runs long, with some pages newer
// in the WAL than in the database file, restores on its own to the same
// rows.
func TestDB_Snapshot_ManyPages(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 1024)
	for i := 0; i < 400; i++ {
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(1500))`, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Checkpoint(ctx, litestream.CheckpointModeTruncate); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Exec(`UPDATE t SET pad = randomblob(1500) WHERE v % 7 = 0`); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (1000, randomblob(5000))`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Only the snapshot, in a replica of its own.
	dir := t.TempDir()
	only := file.NewReplicaClient(dir)
	if err := os.MkdirAll(only.LTXLevelDir(info.Level), 0o755); err != nil {
		t.Fatal(err)
	}
	b := mustReadFile(t, client.LTXFilePath(info.Level, info.MinTXID, info.MaxTXID))
	if len(b) < 256<<10 {
		t.Fatalf("snapshot of %d bytes is shorter than one read-ahead run", len(b))
	}
	if err := os.WriteFile(only.LTXFilePath(info.Level, info.MinTXID, info.MaxTXID), b, 0o644); err != nil {
		t.Fatal(err)
	}
	path := MustRestore(t, litestream.NewReplicaWithClient(nil, only), 0)
	if got, want := MustCheckRestored(t, path), MustDump(t, app); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
}

// A snapshot whose upload fails before reading it leaves no writer behind
// reading the database: closing the DB right after does not race with it
// (go test -race reports the race this guards against).
func TestDB_Snapshot_UploadFailsEarly(t *testing.T) {
	ctx := context.Background()
	db, app, _ := MustOpenDBWrapped(t, 1024, func(c litestream.ReplicaClient) litestream.ReplicaClient {
		return &noSnapshotClient{c}
	})
	for i := 0; i < 400; i++ {
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(1500))`, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Snapshot(ctx); err == nil {
		t.Fatal("snapshot to a client refusing it: err = nil")
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// A snapshot is never ahead of the replica's L0 files. If it were, a
// process that restores the replica and replicates on would continue from
// the newest L0 file and reuse TXIDs the snapshot holds: restoring the
// latest state would then drop its commits.
func TestDB_Snapshot_NeverAheadOfReplicaL0(t *testing.T) {
	ctx := context.Background()
	dbA, appA, client := MustOpenDB(t, 4096) // uploads only when told
	mustInsert(t, appA, 1)
	if err := dbA.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	for v := 2; v <= 6; v++ { // written to local L0 files, not uploaded
		mustInsert(t, appA, v)
		if err := dbA.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := dbA.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l0 := L0TXIDs(t, client); len(l0) == 0 || l0[len(l0)-1] < snap.MaxTXID {
		t.Fatalf("snapshot 1-%s written while the replica's L0 files end at %v", snap.MaxTXID, l0)
	}

	// A stops here without closing, as a crash would. B restores the
	// replica and replicates on from the restored file.
	litestream.ForgetClaims(dbA)
	pathB := filepath.Join(t.TempDir(), "db")
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = pathB
	if err := litestream.NewReplicaWithClient(nil, client).Restore(ctx, opt); err != nil {
		t.Fatal(err)
	}
	dbB := MustNewDB(t, pathB, client)
	dbB.MonitorInterval = 0
	dbB.Replica.MonitorEnabled = false
	if err := dbB.Open(); err != nil {
		t.Fatal(err)
	}
	appB := MustOpenApp(t, pathB, 4096)
	mustInsertReplicated(t, dbB, appB, 100, 3)
	if got, want := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)), MustDump(t, appB); got != want {
		t.Fatalf("restore of the latest state after B's replicated commits: %s, want %s", got, want)
	}
	if err := dbB.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// When the L0 files before it cannot be uploaded, a snapshot fails rather
// than get ahead of them, and writes nothing.
func TestDB_Snapshot_FailsWhenL0UploadsFail(t *testing.T) {
	ctx := context.Background()
	var failL0 atomic.Bool
	db, app, client := MustOpenDBWrapped(t, 4096, func(c litestream.ReplicaClient) litestream.ReplicaClient {
		return &testClient{ReplicaClient: c, onWrite: func(level int, r io.Reader, write func(io.Reader) (*ltx.FileInfo, error)) (*ltx.FileInfo, error) {
			if level == 0 && failL0.Load() {
				return nil, errors.New("injected L0 upload failure")
			}
			return write(r)
		}}
	})
	mustInsert(t, app, 1)
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	failL0.Store(true)
	mustInsert(t, app, 2)
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Snapshot(ctx); err == nil {
		t.Fatal("snapshot succeeded although the L0 file before it could not be uploaded")
	}
	if snaps := levelFiles(t, client, litestream.SnapshotLevel); len(snaps) != 0 {
		t.Fatalf("snapshots written: %v", snaps)
	}
	failL0.Store(false) // the replica check at cleanup uploads what is left
}
