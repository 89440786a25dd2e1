// Tests of what a DB knows of its replica: a DB opened again lists the
// replica again, a pending comparison with it is never lost, taking the
// replica's position wakes the DB monitor, files lost from a running replica
// leave it restorable, and Close does not wait for init's listing.

package litestream_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

func fastMonitored(db *litestream.DB) *litestream.DB {
	db.MonitorInterval = 20 * time.Millisecond
	db.Replica.SyncInterval = 10 * time.Millisecond
	db.ShutdownSyncTimeout = 0
	return db
}

// openTwoRuns opens a monitored DB on a new database and replica, commits
// rows 1-3, closes it, opens it again, commits row 4 and closes it: the
// second run lists the (then non-empty) replica's L0 at init, so that the
// Replica's in-memory listing of L0 is loaded, as it is in any process that
// opens a DB whose replica already has files.
func openTwoRuns(t *testing.T) (db *litestream.DB, app *sql.DB, client *file.ReplicaClient, dir string) {
	t.Helper()
	ctx := context.Background()
	dir = t.TempDir()
	path := filepath.Join(dir, "a.db")
	app = MustOpenApp(t, path, 4096)
	client = file.NewReplicaClient(filepath.Join(dir, "replica"))
	db = litestream.NewDB(path)
	db.Replica = litestream.NewReplicaWithClient(db, client)
	fastMonitored(db)
	for run, rows := range [][]int{{1, 2, 3}, {4}} {
		if err := db.Open(); err != nil {
			t.Fatal(err)
		}
		for _, v := range rows {
			if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(3000))`, v); err != nil {
				t.Fatal(err)
			}
			if _, err := waitReplicatedTXID(db); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Close(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("run %d closed: replica L0 %v", run+1, L0TXIDs(t, client))
	}
	return db, app, client, dir
}

func mustRestoreLatestState(t *testing.T, client litestream.ReplicaClient, want, what string) {
	t.Helper()
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
	if err := litestream.NewReplicaWithClient(nil, client).Restore(context.Background(), opt); err != nil {
		t.Fatalf("%s returned nil, but the replica cannot be restored: %v", what, err)
	}
	if got := MustCheckRestored(t, opt.OutputPath); got != want {
		t.Fatalf("%s returned nil, but the latest restore is %s, not the committed %s", what, got, want)
	}
}

// The replica is wiped while the DB is closed (a new bucket, a lifecycle
// rule, an operator's cleanup). Opened again, the DB must list the empty
// replica and upload every local L0 file from TXID 1, as a new process
// does, not take its old listing for the replica's and upload its next
// TXID alone.
func TestDB_Reopen_AfterReplicaWipedWhileClosed(t *testing.T) {
	ctx := context.Background()
	db, app, client, _ := openTwoRuns(t)

	if err := client.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}

	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close(ctx) }()
	if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (5, randomblob(3000))`); err != nil {
		t.Fatal(err)
	}
	if _, err := waitReplicatedTXID(db); err != nil {
		t.Fatal(err)
	}
	want := MustDump(t, app)
	t.Logf("after WaitReplicated: replica L0 %v (replica pos %v)", L0TXIDs(t, client), db.Replica.Pos())
	mustRestoreLatestState(t, client, want, "WaitReplicated")
}

// Another writer continues the replica while this DB is closed (a
// handover: B restores the replica, writes, closes). This DB's database
// file is now behind the replica. Opened again, the DB must find the
// replica ahead, fetch its newest L0 file and write a full snapshot after
// it, as a new process does, not upload its next TXID over B's file of
// that TXID.
func TestDB_Reopen_AfterAnotherWriterWhileClosed(t *testing.T) {
	ctx := context.Background()
	dbA, appA, client, _ := openTwoRuns(t)

	// B takes over from the replica, writes and hands back.
	pathB := MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)
	appB := MustOpenApp(t, pathB, 4096)
	dbB := litestream.NewDB(pathB)
	dbB.Replica = litestream.NewReplicaWithClient(dbB, client)
	fastMonitored(dbB)
	if err := dbB.Open(); err != nil {
		t.Fatal(err)
	}
	for v := 100; v <= 103; v++ {
		if _, err := appB.Exec(fmt.Sprintf(`INSERT INTO t (v, pad) VALUES (%d, randomblob(3000))`, v)); err != nil {
			t.Fatal(err)
		}
		if _, err := waitReplicatedTXID(dbB); err != nil {
			t.Fatal(err)
		}
	}
	if err := dbB.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_ = appB.Close()
	t.Logf("B closed: replica L0 %v", L0TXIDs(t, client))

	// A opens again on its own (older) file and commits.
	if err := dbA.Open(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = dbA.Close(ctx) }()
	if _, err := appA.Exec(`INSERT INTO t (v, pad) VALUES (5, randomblob(3000))`); err != nil {
		t.Fatal(err)
	}
	if _, err := waitReplicatedTXID(dbA); err != nil {
		t.Fatal(err)
	}
	want := MustDump(t, appA)
	t.Logf("A reopened and replicated: replica L0 %v, A's replica pos %v", L0TXIDs(t, client), dbA.Replica.Pos())
	mustRestoreLatestState(t, client, want, "WaitReplicated")
}

// The replica is wiped, or put back from an older copy (a bucket snapshot),
// while the DB runs in a Store. The library notices at the next listing
// after IndexRefreshInterval, uploads lost L0 files again from local
// copies, and where those are gone, uploads a snapshot or re-seeds the
// replica: a few seconds (ten refresh intervals) after the change was
// noticed, the replica must restore the app's state again. (TXIDs lost
// with the files stay lost.)
func TestReplica_FilesLostWhileRunning(t *testing.T) {
	for _, tt := range []struct {
		name string
		lose func(t *testing.T, replicaDir, oldCopy string)
	}{
		{"Wiped", func(t *testing.T, replicaDir, _ string) {
			moveAway(t, replicaDir)
		}},
		{"OldCopy", func(t *testing.T, replicaDir, oldCopy string) {
			// The library may create the directory again between the two
			// renames: move that away too.
			waitFor(t, 10*time.Second, "the old copy in place", func() bool {
				moveAway(t, replicaDir)
				return os.Rename(oldCopy, replicaDir) == nil
			})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, _, backend, logs := newBudgetStore(t, func(r *litestream.Replica) { r.IndexRefreshInterval = 300 * time.Millisecond }, false)
			app := MustOpenApp(t, db.Path(), 4096)
			ctx := context.Background()
			insert := func(n int) {
				t.Helper()
				for i := 0; i < n; i++ {
					if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(64))`, i); err != nil {
						t.Fatal(err)
					}
					if err := db.SyncAndWait(ctx); err != nil {
						t.Fatal(err)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			run := func(d time.Duration) {
				t.Helper()
				for deadline := time.Now().Add(d); time.Now().Before(deadline); {
					insert(1)
				}
			}
			run(time.Second)
			oldCopy := filepath.Join(t.TempDir(), "old-replica")
			if err := os.CopyFS(oldCopy, os.DirFS(backend.Path())); err != nil {
				t.Fatal(err)
			}
			// Long enough for L1 compaction and L0 retention (300 ms) to
			// remove L0 files locally that the old copy lacks in L1.
			run(1500 * time.Millisecond)
			t.Logf("before: L0 %v, L1 %d files", L0TXIDs(t, backend), len(levelFiles(t, backend, 1)))
			tt.lose(t, backend.Path(), oldCopy)
			const warning = "replica files changed outside this process"
			waitFor(t, 30*time.Second, "the change to be noticed", func() bool {
				insert(1)
				return logs.count(warning) > 0
			})
			run(3 * time.Second)
			t.Logf("3 s after the change was noticed: L0 %v, L1 %d files, L9 %d files", L0TXIDs(t, backend), len(levelFiles(t, backend, 1)), len(levelFiles(t, backend, litestream.SnapshotLevel)))
			want := MustDump(t, app)
			opt := litestream.NewRestoreOptions()
			opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
			if err := litestream.NewReplicaWithClient(nil, backend).Restore(ctx, opt); err != nil {
				t.Fatalf("every commit was confirmed by SyncAndWait, but the replica cannot be restored: %v\n%s", err, logs.String())
			}
			if got := MustCheckRestored(t, opt.OutputPath); got != want {
				t.Fatalf("latest restore %s, app %s", got, want)
			}
			// A snapshot (L9), or the full L0 snapshot a re-seed writes when
			// the replica is behind every local file, gave it that chain:
			// which one comes first depends on when the sync after the
			// change runs, so only the restore above is asserted.
			t.Logf("snapshots: %d", len(levelFiles(t, backend, litestream.SnapshotLevel)))
		})
	}
}

// hookHandler is a slog handler that runs hook (once) when a record with
// message msg is logged, in the logging goroutine, before passing it on.
type hookHandler struct {
	slog.Handler
	msg  string
	hook *atomic.Pointer[func()]
}

func (h hookHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		if fn := h.hook.Swap(nil); fn != nil {
			(*fn)()
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h hookHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return hookHandler{Handler: h.Handler.WithAttrs(attrs), msg: h.msg, hook: h.hook}
}

func (h hookHandler) WithGroup(name string) slog.Handler {
	return hookHandler{Handler: h.Handler.WithGroup(name), msg: h.msg, hook: h.hook}
}

// ResetLocalState runs while an upload batch is between its check of the
// reset counter and its SetPos (here: while it logs "replica sync
// recovered", which sits between them), and its comparison with the
// replica fails. The batch must not put its position back over the reset's,
// and the pending comparison must run: otherwise local TXIDs restart at 1
// with another history, SyncAndWait returns nil while nothing is uploaded,
// and once the local TXIDs pass the replica's they are uploaded on top of
// the replica's history.
func TestReplica_ResetLocalStateDuringUploadKeepsCheckPending(t *testing.T) {
	ctx := context.Background()
	var failWrite, failList atomic.Bool
	var hook atomic.Pointer[func()]
	db, app, client := mustOpenDB(t, 4096, func(c litestream.ReplicaClient) litestream.ReplicaClient {
		return &testClient{ReplicaClient: c,
			onWrite: func(level int, r io.Reader, write func(io.Reader) (*ltx.FileInfo, error)) (*ltx.FileInfo, error) {
				if failWrite.Load() {
					return nil, errors.New("injected write failure")
				}
				return write(r)
			},
			onList: func(int) error {
				if failList.Load() {
					return errListingDown
				}
				return nil
			}}
	}, func(db *litestream.DB) {
		manual(db)
		db.Logger = slog.New(hookHandler{Handler: slog.NewTextHandler(io.Discard, nil), msg: "replica sync recovered", hook: &hook})
	})
	insert := func(v int) {
		t.Helper()
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(3000))`, v); err != nil {
			t.Fatal(err)
		}
	}
	for v := 1; v <= 3; v++ {
		insert(v)
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	insert(4)
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	failWrite.Store(true) // a failed upload: the next success logs the recovery
	if err := db.Replica.Sync(ctx); err == nil {
		t.Fatal("upload did not fail")
	}
	failWrite.Store(false)

	var resetErr error
	fn := func() {
		failList.Store(true)
		resetErr = db.ResetLocalState(ctx)
		failList.Store(false)
	}
	hook.Store(&fn)
	if err := db.Replica.Sync(ctx); err != nil {
		t.Logf("upload across the reset: %v", err)
	}
	if hook.Load() != nil {
		t.Fatal("the hook did not run")
	}
	t.Logf("reset: %v; replica pos %v; replica L0 %v", resetErr, db.Replica.Pos(), L0TXIDs(t, client))

	for v := 100; v < 110; v++ {
		insert(v)
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("after 10 more commits: local pos %v, replica pos %v, replica L0 %v", posOf(db.Pos()), db.Replica.Pos(), L0TXIDs(t, client))
	mustRestoreEquals(t, client, MustDump(t, app), "SyncAndWait returned nil for every commit")
}

// A database restored from its replica starts while the replica is out of
// reach, and the app commits rows 100 and 101, captured locally. When the
// replica answers, the uploader's comparison takes the replica's position:
// the local L0 files holding the two commits are removed, and a sync must
// write a snapshot after the replica's newest file. It must run without the
// app writing again: with WAL change events the DB monitor would otherwise
// sleep, and an idle app's commits would never be replicated.
func TestReplica_AdoptWakesDBMonitor(t *testing.T) {
	path, app, client, tc, down := replicatedThenUnreachable(t)
	var logs syncBuffer
	db := litestream.NewDB(path)
	db.Replica = litestream.NewReplicaWithClient(db, tc)
	db.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	db.MonitorInterval = 20 * time.Millisecond
	db.Replica.SyncInterval = 10 * time.Millisecond
	db.ShutdownSyncTimeout = 0
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close(context.Background()) }()
	for _, v := range []int{100, 101} {
		mustInsert(t, app, v)
		waitFor(t, 10*time.Second, "local capture", func() bool {
			pos, _ := db.Pos()
			return pos.TXID >= ltx.TXID(v-99)
		})
	}
	want := MustDump(t, app)
	down.Store(false)
	waitFor(t, 10*time.Second, "the uploader to reach the replica", func() bool {
		return db.Replica.Pos().TXID >= 5
	})
	// The app is idle now: the library alone must get the replica there.
	var got string
	for deadline := time.Now().Add(10 * time.Second); got != want; time.Sleep(50 * time.Millisecond) {
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
		if err := litestream.NewReplicaWithClient(nil, client).Restore(context.Background(), opt); err != nil {
			t.Fatal(err)
		}
		if got = MustCheckRestored(t, opt.OutputPath); got != want && time.Now().After(deadline) {
			pos, _ := db.Pos()
			t.Fatalf("10 s after the replica answered, with the app idle, the replica restores %s, not the committed %s (local pos %v, replica pos %v, replica L0 %v)\n%s",
				got, want, pos, db.Replica.Pos(), L0TXIDs(t, client), logs.String())
		}
	}
}

// A handover with a lease, as documented: A holds the replica's lease,
// compacts L1 and closes (releasing the lease); B restores the replica,
// takes the lease, commits, compacts L1 and closes; A's program opens the
// same DB again (same *DB, same process). A must list L1 again, not start
// its next L1 compaction after its own cached newest L1 file from before,
// which would write a file overlapping B's.
func TestDB_Reopen_WithLeaseAfterHandoverListsL1Again(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	replicaPath := filepath.Join(dir, "replica")
	client := file.NewReplicaClient(replicaPath)
	newDB := func(path, owner string) *litestream.DB {
		db := manual(MustNewDB(t, path, file.NewReplicaClient(replicaPath)))
		leaser := db.Replica.Client.(*file.ReplicaClient).NewLeaser()
		leaser.Owner, leaser.TTL = owner, 10*time.Second
		db.Replica.Leaser = leaser
		return db
	}
	commit := func(db *litestream.DB, app *sql.DB, v int) {
		t.Helper()
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(3000))`, v); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	pathA := filepath.Join(dir, "a.db")
	appA := MustOpenApp(t, pathA, 4096)
	a := newDB(pathA, "a")
	if err := a.Open(); err != nil {
		t.Fatal(err)
	}
	for v := 1; v <= 3; v++ {
		commit(a, appA, v)
	}
	if _, err := a.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}

	pathB := MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)
	appB := MustOpenApp(t, pathB, 4096)
	b := newDB(pathB, "b")
	if err := b.Open(); err != nil {
		t.Fatal(err)
	}
	for v := 100; v <= 103; v++ {
		commit(b, appB, v)
	}
	if _, err := b.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_ = appB.Close()
	t.Logf("after B: L1 %v", levelFiles(t, client, 1))

	if err := a.Open(); err != nil {
		t.Fatal(err)
	}
	commit(a, appA, 4)
	if _, err := a.Compact(ctx, 1); err != nil {
		t.Logf("A's compaction after reopening: %v", err)
	}
	l1 := levelFiles(t, client, 1)
	t.Logf("after A reopened and compacted: L1 %v", l1)
	for i := 1; i < len(l1); i++ {
		if l1[i].MinTXID <= l1[i-1].MaxTXID {
			t.Errorf("L1 overlap: %s-%s then %s-%s", l1[i-1].MinTXID, l1[i-1].MaxTXID, l1[i].MinTXID, l1[i].MaxTXID)
		}
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mustRestoreEquals(t, client, MustDump(t, appA), "after A's close")
	// L2 compaction has to merge the overlapping L1 files.
	b2 := newDB(MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0), "c")
	if err := b2.Open(); err != nil {
		t.Fatal(err)
	}
	if _, err := b2.Compact(ctx, 2); err != nil {
		t.Errorf("L2 compaction over the overlapping L1 files: %v", err)
	}
}

func newAppAndReplica(t *testing.T) (string, *sql.DB, *file.ReplicaClient) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	return path, MustOpenApp(t, path, 4096), file.NewReplicaClient(filepath.Join(dir, "replica"))
}

// hangingLister is a client whose listings, while hang is set, block until
// their context ends: a backend that stopped answering, as the library's own
// context is what bounds the call.
type hangingLister struct {
	litestream.ReplicaClient
	hang    atomic.Bool
	entered chan struct{}
}

func (c *hangingLister) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	if c.hang.Load() {
		select {
		case c.entered <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return nil, context.Cause(ctx)
	}
	return c.ReplicaClient.LTXFiles(ctx, level, seek, useMetadata)
}

// The DB's first sync initializes it, and init compares with the replica
// while holding the DB's lock. The backend does not answer; the listing runs
// under the DB's context. Close must cancel that context before it waits
// for the lock, or it waits for a call that waits for Close.
func TestDB_Close_DuringInitReplicaListing(t *testing.T) {
	path, app, raw := newAppAndReplica(t)
	mustInsert(t, app, 1)
	client := &hangingLister{ReplicaClient: raw, entered: make(chan struct{}, 1)}
	client.hang.Store(true)
	db := litestream.NewDB(path)
	db.Replica = litestream.NewReplicaWithClient(db, client)
	db.MonitorInterval = 20 * time.Millisecond
	db.ShutdownSyncTimeout = 0
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-client.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("init never listed the replica")
	}
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		closed <- db.Close(ctx)
	}()
	select {
	case err := <-closed:
		t.Logf("Close returned: %v", err)
	case <-time.After(5 * time.Second):
		client.hang.Store(false)
		t.Fatal("Close (with a 1 s context) still blocked after 5 s: init holds db.mu while it waits on the replica under the DB's context, which Close cancels only after taking db.mu")
	}
}

// moveAway takes dir out of its place in one step (the library keeps
// writing into it, so removing it in place could fail).
func moveAway(t *testing.T, dir string) {
	t.Helper()
	if err := os.Rename(dir, filepath.Join(t.TempDir(), "gone")); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

// Found by the replica hunt (seeds 5, 33): the replica directory is emptied
// while the DB is open, with IndexRefreshInterval < 0 ("lists the backend
// on every pass"). SyncAndWait must not return nil after uploading only
// the new L0 file, which restores nothing: the upload lists the replica,
// finds it no longer at its position and re-seeds it.
func TestReplica_WipedWhileOpenListEvery(t *testing.T) {
	ctx := context.Background()
	db, app, client := mustOpenDB(t, 4096, nil, func(db *litestream.DB) {
		db.MonitorInterval = 0
		db.Replica.MonitorEnabled = false
		db.Replica.IndexRefreshInterval = -1
	})
	mustInsert(t, app, 1)
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(client.Path()); err != nil {
		t.Fatal(err)
	}
	mustInsert(t, app, 2)
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
	if err := litestream.NewReplicaWithClient(nil, client).Restore(ctx, opt); err != nil {
		t.Errorf("SyncAndWait returned nil, then restore latest: %v", err)
	} else if got, want := MustCheckRestored(t, opt.OutputPath), MustDump(t, app); got != want {
		t.Errorf("restore latest: %s, want %s", got, want)
	}
}
