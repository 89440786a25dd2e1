// Tests of EnsureExists, the restore-on-startup pattern.
package litestream_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
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

// A replica whose files restore nothing (a bucket lifecycle rule expired the
// older ones) is a backup in trouble, not no backup: EnsureExists must fail
// and create nothing, or the app's empty database would be replicated over
// it as its latest state. An empty replica still means a fresh start.
func TestDB_EnsureExists_UnrestorableFilesAreNotNoBackup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	app := MustOpenApp(t, filepath.Join(dir, "db"), 4096)
	db := newManualDB(filepath.Join(dir, "db"), client) // not verified: its chain is broken below
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(ctx) })
	for i := 0; i < 6; i++ {
		mustInsertReplicated(t, db, app, i, 1)
	}
	for _, info := range levelFiles(t, client, 0)[:3] { // the oldest expire
		if err := client.DeleteLTXFiles(ctx, []*ltx.FileInfo{info}); err != nil {
			t.Fatal(err)
		}
	}

	path := filepath.Join(t.TempDir(), "app.db")
	restored := litestream.NewDB(path)
	restored.Replica = litestream.NewReplicaWithClient(restored, client)
	err := restored.EnsureExists(ctx)
	if err == nil || !errors.Is(err, litestream.ErrTxNotAvailable) || !strings.Contains(err.Error(), "restore no database") {
		t.Fatalf("EnsureExists over a replica whose files restore nothing: %v", err)
	}
	if _, serr := os.Stat(path); !errors.Is(serr, os.ErrNotExist) {
		t.Fatalf("EnsureExists created %s: %v", path, serr)
	}

	empty := litestream.NewDB(filepath.Join(t.TempDir(), "fresh.db"))
	empty.Replica = litestream.NewReplicaWithClient(empty, file.NewReplicaClient(filepath.Join(t.TempDir(), "replica")))
	if err := empty.EnsureExists(ctx); err != nil {
		t.Fatalf("EnsureExists over an empty replica: %v", err)
	}
}
