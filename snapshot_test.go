// Tests of snapshots of large databases.
package litestream_test

import (
	"context"
	"os"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
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
