// Tests of local L0 files that carry the replica's TXIDs with other content:
// written while the replica was out of reach, after a reset whose replica
// check failed or raced an upload, or by a lease holder another process
// took over from. The replica's history must win, and restores stay exact.
package litestream_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

var errListingDown = errors.New("listing refused (test)")

// failingLists returns a testClient over c whose listings fail while the
// returned flag is set.
func failingLists(c litestream.ReplicaClient) (*testClient, *atomic.Bool) {
	var fail atomic.Bool
	return &testClient{ReplicaClient: c, onList: func(int) error {
		if fail.Load() {
			return errListingDown
		}
		return nil
	}}, &fail
}

// mustRestoreEquals restores the latest state through client and fails
// unless it is want.
func mustRestoreEquals(t *testing.T, client litestream.ReplicaClient, want, what string) {
	t.Helper()
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
	if err := litestream.NewReplicaWithClient(nil, client).Restore(context.Background(), opt); err != nil {
		t.Fatalf("%s: restore latest: %v", what, err)
	} else if got := MustCheckRestored(t, opt.OutputPath); got != want {
		t.Fatalf("%s: restore latest: %s, want %s", what, got, want)
	}
}

// ResetLocalState has removed the local files when its comparison with the
// replica fails. The next sync starts TXIDs over at 1; once they pass the
// replica's, the uploader must not put them on top of the replica's files.
func TestDB_ResetLocalState_FailedReplicaCheck(t *testing.T) {
	ctx := context.Background()
	var fail *atomic.Bool
	db, app, client := MustOpenDBWrapped(t, 4096, func(c litestream.ReplicaClient) litestream.ReplicaClient {
		tc, f := failingLists(c)
		fail = f
		return tc
	})
	for i := 0; i < 3; i++ { // rows over several pages
		if _, err := app.Exec(`INSERT INTO t (v, pad) WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM s WHERE x < 20) SELECT x, randomblob(1000) FROM s`); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}

	fail.Store(true)
	err := db.ResetLocalState(ctx)
	fail.Store(false)
	if !errors.Is(err, errListingDown) {
		t.Fatalf("ResetLocalState with the listing down: %v, want the listing's error", err)
	}
	for i := 0; i < 8; i++ { // the first three rewrite a page of the first row
		q := `INSERT INTO t (v, pad) VALUES (?, randomblob(100))`
		if i < 3 {
			q = `UPDATE t SET v = ? WHERE id = 1`
		}
		if _, err := app.Exec(q, 100+i); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatalf("sync %d: %v", i, err)
		}
	}
	want := MustDump(t, app)
	mustRestoreEquals(t, client, want, "from L0")
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	mustRestoreEquals(t, client, want, "after compaction into L1")
}

// A database restored from its replica starts while the replica does not
// answer, and captures locally from TXID 1. When the replica answers, the
// local TXIDs have passed its newest: the local files are another history
// and must not be uploaded on top of the replica's.
func TestDB_Open_ReplicaUnreachable_LocalPassesReplica(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	mustInsertReplicated(t, db, app, 0, 3)
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}

	path := MustRestore(t, db.Replica, 0) // on a new host
	tc, fail := failingLists(client)
	fail.Store(true)
	db2 := newVerifiedDB(t, path, tc, client)
	db2.MonitorInterval = 0
	db2.Replica.MonitorEnabled = false
	if err := db2.Open(); err != nil {
		t.Fatal(err)
	}
	app2 := MustOpenApp(t, path, 4096)
	for i := 0; i < 4; i++ {
		mustInsert(t, app2, 100+i)
		if err := db2.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	fail.Store(false)
	if err := db2.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	mustRestoreEquals(t, client, MustDump(t, app2), "after the replica answered")
}

// An upload in flight when ResetLocalState runs lands after the reset
// adopted the file below it. The local file the reset makes next reuses
// the uploaded file's TXID with other content: the uploader must compare
// again instead of taking the upload as its position.
func TestDB_ResetLocalState_DuringUpload(t *testing.T) {
	ctx := context.Background()
	release, blocked := make(chan struct{}), make(chan struct{}, 1)
	var block atomic.Bool
	db, app, client := MustOpenDBWrapped(t, 4096, func(c litestream.ReplicaClient) litestream.ReplicaClient {
		return &testClient{ReplicaClient: c, onWrite: func(level int, r io.Reader, write func(io.Reader) (*ltx.FileInfo, error)) (*ltx.FileInfo, error) {
			if level == 0 && block.CompareAndSwap(true, false) {
				blocked <- struct{}{}
				<-release
			}
			return write(r)
		}}
	})
	mustInsertReplicated(t, db, app, 0, 3)
	mustInsert(t, app, 3)
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	block.Store(true)
	uploaded := make(chan error, 1)
	go func() { uploaded <- db.Replica.Sync(ctx) }()
	<-blocked
	if err := db.ResetLocalState(ctx); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-uploaded // it may fail: the reset overtook it

	mustInsertReplicated(t, db, app, 100, 3)
	mustRestoreEquals(t, client, MustDump(t, app), "after a reset during an upload")
}

// Host A is paused past its lease's TTL and host B takes over, restores,
// commits and closes. A wakes, commits locally, is fenced, and is
// restarted to wait for the lease again. Its local TXIDs are above the
// replica's but are not the replica's history: the restored latest state
// must be one writer's whole state, never a mix.
func TestReplica_Lease_OldHolderRestartedAfterTakeover(t *testing.T) {
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
		db.Replica.LeaseRenewInterval = time.Hour // renewed only before each batch
		return db
	}
	pathA := filepath.Join(dir, "a.db")
	appA := MustOpenApp(t, pathA, 4096)
	a := newDB(pathA, "a")
	if err := a.Open(); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, a, appA, 0, 3)

	// A is paused past its TTL; B takes over once it has expired.
	pathB := filepath.Join(dir, "b.db")
	b := newDB(pathB, "b")
	waitFor(t, 10*time.Second, "B to take the lease A no longer renews", func() bool {
		var held *litestream.LeaseExistsError
		err := b.EnsureExists(ctx)
		if err != nil && !errors.As(err, &held) {
			t.Fatalf("B ensure exists: %v", err)
		}
		return err == nil
	})
	if err := b.Open(); err != nil {
		t.Fatal(err)
	}
	appB := MustOpenApp(t, pathB, 4096)
	for i := 0; i < 2; i++ {
		mustInsert(t, appB, 200+i)
		if err := b.SyncAndWait(ctx); err != nil {
			t.Fatalf("B sync: %v", err)
		}
	}
	wantB := MustDump(t, appB)
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// A wakes: its app commits, its DB writes L0 files, its replica is fenced.
	for i := 0; i < 4; i++ {
		mustInsert(t, appA, 100+i)
		if err := a.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Replica.Sync(ctx); !errors.Is(err, litestream.ErrLeaseNotHeld) {
		t.Fatalf("A's upload after the takeover: %v, want ErrLeaseNotHeld", err)
	}
	_ = a.Close(ctx)
	wantA := MustDump(t, appA)

	// A restarted, the lease free again.
	a2 := newDB(pathA, "a2")
	if err := a2.Open(); err != nil {
		t.Fatalf("A restarted: open: %v", err)
	}
	if err := a2.SyncAndWait(ctx); err != nil {
		t.Fatalf("A restarted: sync: %v", err)
	}
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
	if err := litestream.NewReplicaWithClient(nil, client).Restore(ctx, opt); err != nil {
		t.Fatalf("restore latest after the old holder's restart: %v", err)
	}
	if got := MustCheckRestored(t, opt.OutputPath); got != wantA && got != wantB {
		t.Fatalf("restore latest: %s, neither A's state %s nor B's %s", got, wantA, wantB)
	}
	if err := a2.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
