// Tests of EnsureExists, the restore-on-startup pattern.
package litestream_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

// After losing the database and its meta directory, EnsureExists restores
// it, replication continues the replica's TXIDs with one full snapshot, and
// a later restore holds the old and the new rows.
func TestDB_EnsureExists_ContinuesReplica(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "data", "db")
	replicaDir := filepath.Join(dir, "replica")

	open := func(logs *bytes.Buffer) (*litestream.DB, *litestream.Store) {
		db := MustNewDB(t, path, file.NewReplicaClient(replicaDir))
		db.MonitorInterval = 0
		db.Replica.MonitorEnabled = false
		store := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
		store.CompactionMonitorEnabled = false
		if logs != nil {
			db.SetLogger(slog.New(slog.NewTextHandler(logs, nil)))
		}
		if err := db.EnsureExists(ctx); err != nil {
			t.Fatal(err)
		}
		if err := store.Open(ctx); err != nil {
			t.Fatal(err)
		}
		return db, store
	}

	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	db, store := open(nil)
	app := MustOpenApp(t, path, 4096)
	for i := 0; i < 5; i++ {
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_ = app.Close()
	remoteBefore := L0TXIDs(t, file.NewReplicaClient(replicaDir))

	// Lose everything local.
	if err := os.RemoveAll(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	db, store = open(&logs)
	app = MustOpenApp(t, path, 4096)
	for i := 0; i < 3; i++ {
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, 100+i); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want := MustDump(t, app)
	if err := store.Close(ctx); err != nil {
		t.Fatal(err)
	}

	client := file.NewReplicaClient(replicaDir)
	MustVerifyReplica(t, client)
	txids := L0TXIDs(t, client)
	if txids[len(remoteBefore)-1] != remoteBefore[len(remoteBefore)-1] || len(txids) < len(remoteBefore)+3 {
		t.Fatalf("L0 TXIDs %v do not continue %v", txids, remoteBefore)
	}
	if n := strings.Count(logs.String(), "writing full snapshot"); n != 1 {
		t.Fatalf("%d full snapshots after the restore, want 1:\n%s", n, logs.String())
	}
	restored := MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)
	if got := MustCheckRestored(t, restored); got != want {
		t.Fatalf("restore after continuing: %s, want %s", got, want)
	}
}
