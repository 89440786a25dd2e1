// Lease cases the replica hunt found.

package litestream_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

// Found by the replica hunt (seed 1): writer B, restored from the replica
// while writer A still held the lease, syncs locally (its first sync
// compares its position with the replica's, without the lease), then waits
// for the lease. A commits more, uploads and closes. B takes the lease; its
// SyncAndWait must return nil only once the replica's latest state is B's,
// not skip B's commits as replicated and upload B's next TXIDs on top of
// A's files.
func TestReplica_Lease_WriterInitializedBeforeLeaseSeesReplicaAdvanced(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	replicaPath := filepath.Join(dir, "replica")
	client := file.NewReplicaClient(replicaPath)
	newDB := func(path, owner string) *litestream.DB {
		db := MustNewDB(t, path, file.NewReplicaClient(replicaPath))
		db.MonitorInterval, db.ShutdownSyncTimeout = 0, 0
		db.Replica.MonitorEnabled = false
		leaser := db.Replica.Client.(*file.ReplicaClient).NewLeaser()
		leaser.Owner, leaser.TTL = owner, 300*time.Millisecond
		db.Replica.Leaser = leaser
		db.Replica.LeaseWait = true
		return db
	}
	pathA := filepath.Join(dir, "a.db")
	appA := MustOpenApp(t, pathA, 4096)
	a := newDB(pathA, "a")
	if err := a.Open(); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, a, appA, 0, 2)

	// B starts from a restore of the replica while A still runs.
	pathB := filepath.Join(dir, "b.db")
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = pathB
	if err := litestream.NewReplicaWithClient(nil, client).Restore(ctx, opt); err != nil {
		t.Fatal(err)
	}
	appB := MustOpenApp(t, pathB, 4096)
	b := newDB(pathB, "b")
	if err := b.Open(); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err != nil { // local only: no lease needed yet
		t.Fatal(err)
	}

	// A commits more, uploads them, and shuts down, releasing the lease.
	mustInsertReplicated(t, a, appA, 100, 5)
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// B commits, and replicates under the lease A released.
	for i := 0; i < 8; i++ {
		mustInsert(t, appB, 1000+i)
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := b.SyncAndWait(wctx)
		cancel()
		if err != nil {
			t.Logf("B SyncAndWait %d: %v", i, err)
			continue
		}
		pos, _ := b.Pos()
		got, want := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)), MustDump(t, appB)
		if got != want {
			t.Errorf("after B's commit %d and SyncAndWait returned nil (B at txid %s): latest restore holds %s, want B's %s", i, pos.TXID, got, want)
		}
	}
}

// Found by the replica hunt (seed 15): a DB whose lease was lost (here the
// replica, lease record included, was emptied) is closed and opened again.
// A fenced process is told to restart to wait for the lease again, and a
// DB closed and opened again behaves as a new process: it must not stay
// fenced.
func TestReplica_Lease_FencedDBReopened(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	replicaPath := filepath.Join(dir, "replica")
	path := filepath.Join(dir, "db")
	app := MustOpenApp(t, path, 4096)
	db := MustNewDB(t, path, file.NewReplicaClient(replicaPath))
	db.MonitorInterval, db.ShutdownSyncTimeout = 0, 0
	db.Replica.MonitorEnabled = false
	db.Replica.Leaser = db.Replica.Client.(*file.ReplicaClient).NewLeaser()
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 0, 2)
	if err := os.RemoveAll(replicaPath); err != nil {
		t.Fatal(err)
	}
	mustInsert(t, app, 10)
	if err := db.SyncAndWait(ctx); err == nil {
		t.Fatal("SyncAndWait after the lease record vanished: nil, want a lease error")
	} else {
		t.Logf("fenced: %v", err)
	}
	_ = db.Close(ctx) // the lease is free: nobody holds one
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Errorf("SyncAndWait after Close and Open of the same DB, no lease held by anyone: %v", err)
	}
}
