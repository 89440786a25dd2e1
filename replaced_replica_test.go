// replaced_replica_test.go: a replica wiped and replicated to by another
// database under the same file names. Readers of the old one (a follower,
// the VFS) must not mix the two databases' pages.
package litestream_test

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// replicateA commits twelve multi-page transactions to a new database A
// and replicates them.
func replicateA(t *testing.T) (*litestream.DB, *sql.DB, *file.ReplicaClient) {
	t.Helper()
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	for i := 0; i < 12; i++ {
		if _, err := app.Exec(`INSERT INTO t (v, pad) WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value+1 FROM s WHERE value < 5) SELECT value, randomblob(2000) FROM s`); err != nil {
			t.Fatal(err)
		}
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	return db, app, client
}

// replaceReplicaWithB closes A, wipes its replica and replicates a new
// database B there, from TXID 1 to past txid. It returns B's app.
func replaceReplicaWithB(t *testing.T, dbA *litestream.DB, replicaPath string, past ltx.TXID) *sql.DB {
	t.Helper()
	dbB, appB := openB(t, dbA, replicaPath)
	advanceB(t, dbB, appB, past)
	return appB
}

// openB closes A, wipes its replica and replicates a new database B there,
// up to a TXID of 1 or 2.
func openB(t *testing.T, dbA *litestream.DB, replicaPath string) (*litestream.DB, *sql.DB) {
	t.Helper()
	ctx := context.Background()
	if err := dbA.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(replicaPath); err != nil {
		t.Fatal(err)
	}
	pathB := filepath.Join(t.TempDir(), "b.db")
	appB := MustOpenApp(t, pathB, 4096)
	clientB := file.NewReplicaClient(replicaPath)
	dbB := MustNewDB(t, pathB, clientB)
	dbB.ShutdownSyncTimeout = 0
	dbB.MonitorInterval = 0
	dbB.Replica.MonitorEnabled = false
	clientB.Replica = dbB.Replica
	if err := dbB.Open(); err != nil {
		t.Fatal(err)
	}
	if _, err := appB.Exec(`CREATE TABLE u (v INTEGER); INSERT INTO t (v, pad) WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value+1 FROM s WHERE value < 8) SELECT value, randomblob(2000) FROM s`); err != nil {
		t.Fatal(err)
	}
	if err := dbB.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	return dbB, appB
}

// advanceB replicates transactions of B until its TXID is past txid.
func advanceB(t *testing.T, dbB *litestream.DB, appB *sql.DB, past ltx.TXID) {
	t.Helper()
	ctx := context.Background()
	for i := 0; ; i++ {
		if _, err := appB.Exec(`INSERT INTO u (v) VALUES (?)`, 1000+i); err != nil {
			t.Fatal(err)
		}
		if err := dbB.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if pos, err := dbB.Pos(); err != nil {
			t.Fatal(err)
		} else if pos.TXID > past+2 {
			break
		}
	}
	if err := dbB.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
}

// A follower of A must refuse B's files, whether it kept running (B's L0
// file at its TXID is not the one it applied) or resumed from its sidecar
// (B's L0 file there does not hold the output's pages).
func TestReplica_Follow_RefusesReplacedReplica(t *testing.T) {
	for _, name := range []string{"Resumed", "Running"} {
		t.Run(name, func(t *testing.T) { testFollowRefusesReplacedReplica(t, name == "Running") })
	}
}

func testFollowRefusesReplacedReplica(t *testing.T, running bool) {
	dbA, _, clientA := replicateA(t)
	var logs syncBuffer
	owner := litestream.NewDB(filepath.Join(t.TempDir(), "unused"))
	owner.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	follower := litestream.NewReplicaWithClient(owner, file.NewReplicaClient(clientA.Path()))
	out := filepath.Join(t.TempDir(), "follow.db")
	stop := startFollow(follower, out)
	waitFollowed(t, dbA, out)
	if !running {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	wantA := MustCheckRestored(t, out)
	txidA, err := litestream.ReadTXIDFile(out)
	if err != nil {
		t.Fatal(err)
	}

	replaceReplicaWithB(t, dbA, clientA.Path(), txidA)
	if !running {
		stop = startFollow(follower, out) // the follower of A resumes
	}
	waitFor(t, 10*time.Second, "the follower to refuse the replaced replica", func() bool {
		return strings.Contains(logs.String(), "replaced by another database")
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if txid, err := litestream.ReadTXIDFile(out); err != nil {
		t.Fatal(err)
	} else if txid != txidA {
		t.Fatalf("the follower of A moved from %s to %s on B's files", txidA, txid)
	}
	if got := MustCheckRestored(t, out); got != wantA {
		t.Fatalf("the output changed from A's %s to %s", wantA, got)
	}
}

// The VFS refuses the latest TXID going back (ErrConflict); once B passes
// the TXID it served for A, it must serve B's pages, not page indexes or
// pages it cached for A's files of the same names.
func TestVFS_ReplacedReplicaServesNoOldPages(t *testing.T) {
	dbA, appA, clientA := replicateA(t)
	v, pool := openVFSOnA(t, file.NewReplicaClient(clientA.Path()), 20*time.Millisecond, false, appA)
	pos, err := dbA.Pos()
	if err != nil {
		t.Fatal(err)
	}

	appB := replaceReplicaWithB(t, dbA, clientA.Path(), pos.TXID+10)
	want := MustDump(t, appB)
	// Control: a new VFS over the same replica serves B.
	fresh := mustVFS(t, file.NewReplicaClient(clientA.Path()))
	if got := MustDump(t, mustOpenVFSDB(t, fresh, "app.db")); got != want {
		t.Fatalf("fresh vfs %s, B %s", got, want)
	}
	waitFor(t, 10*time.Second, "the VFS to serve B's latest state", func() bool {
		var res string
		if err := pool.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil {
			t.Fatalf("integrity check through the VFS: %v (VFS error: %v)", err, v.LastError())
		} else if res != "ok" {
			t.Fatalf("the VFS serves B's TXIDs with A's pages: integrity_check: %s (VFS error: %v)", res, v.LastError())
		}
		return MustDump(t, pool) == want
	})
}

// A VFS that polls rarely: the poll that finds A's files replaced comes
// before the next read transaction, which must then serve B although no
// poll saw B past A (Conflict: the poll saw B below A's TXID) or the poll
// that saw it is still indexing B's files (Indexing).
func TestVFS_ReplacedReplicaBetweenPolls(t *testing.T) {
	for _, name := range []string{"Conflict", "Indexing"} {
		t.Run(name, func(t *testing.T) { testVFSReplacedBetweenPolls(t, name == "Indexing") })
	}
}

func testVFSReplacedBetweenPolls(t *testing.T, indexing bool) {
	dbA, appA, clientA := replicateA(t)
	var gated atomic.Pointer[chan struct{}] // closed when the gated open may go on
	var gateLast atomic.Uint64              // the file opens wait for
	reached := make(chan struct{}, 1)
	tc := &testClient{ReplicaClient: file.NewReplicaClient(clientA.Path()), onOpenFile: func(level int, _, maxTXID ltx.TXID) error {
		if g := gated.Load(); g != nil && level == 0 && uint64(maxTXID) == gateLast.Load() {
			select {
			case reached <- struct{}{}:
			default:
			}
			<-*g
		}
		return nil
	}}
	v, pool := openVFSOnA(t, tc, time.Hour, false, appA) // polls only when the test says
	pos, err := dbA.Pos()
	if err != nil {
		t.Fatal(err)
	}

	dbB, appB := openB(t, dbA, clientA.Path())
	if !indexing {
		v.PollOnce() // sees B behind A: ErrConflict
	}
	advanceB(t, dbB, appB, pos.TXID)
	want := MustDump(t, appB)

	if indexing {
		posB, err := dbB.Pos()
		if err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		gateLast.Store(uint64(posB.TXID))
		gated.Store(&release)
		polled := make(chan struct{})
		go func() { defer close(polled); v.PollOnce() }()
		<-reached // the poll lists B and reads the header of B's last file
		t.Cleanup(func() { <-polled })
		// A transaction that waits for the poll returns once it is released;
		// one that does not returns before.
		time.AfterFunc(200*time.Millisecond, func() { close(release) })
	}

	var res string
	if err := pool.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil {
		t.Fatalf("integrity check through the VFS: %v (VFS error: %v)", err, v.LastError())
	} else if res != "ok" {
		t.Fatalf("the VFS serves A's TXID from B's files: integrity_check: %s (VFS error: %v)", res, v.LastError())
	}
	if got := MustDump(t, pool); got != want {
		t.Fatalf("vfs %s, B %s", got, want)
	}
}

// A hydrated file of A serves no page of B, though B's files holding them
// end before the hydrated TXID.
func TestVFS_ReplacedReplicaServesNoHydratedPages(t *testing.T) {
	dbA, appA, clientA := replicateA(t)
	v, pool := openVFSOnA(t, file.NewReplicaClient(clientA.Path()), time.Hour, true, appA) // polls only when the test says
	h := v.Hydrator()
	<-h.Done()
	if err := h.Err(); err != nil {
		t.Fatal(err)
	}
	pos, err := dbA.Pos()
	if err != nil {
		t.Fatal(err)
	}

	appB := replaceReplicaWithB(t, dbA, clientA.Path(), pos.TXID)
	want := MustDump(t, appB)
	v.PollOnce() // sees B past A
	var res string
	if err := pool.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil {
		t.Fatalf("integrity check through the VFS: %v (VFS error: %v)", err, v.LastError())
	} else if res != "ok" {
		t.Fatalf("the VFS serves B's TXIDs with A's hydrated pages: integrity_check: %s (VFS error: %v)", res, v.LastError())
	}
	if got := MustDump(t, pool); got != want {
		t.Fatalf("vfs %s, B %s", got, want)
	}
}

// openVFSOnA registers a VFS over client polling every poll (with
// hydration if asked) and opens a one-connection pool on it, which must
// serve A's state.
func openVFSOnA(t *testing.T, client litestream.ReplicaClient, poll time.Duration, hydrate bool, appA *sql.DB) (*litestream.VFS, *sql.DB) {
	t.Helper()
	v := litestream.NewVFS(client, nil)
	v.PollInterval = poll
	v.HydrationEnabled = hydrate
	if err := v.Register(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	pool, err := sql.Open("sqlite", v.DSN("app.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	pool.SetMaxOpenConns(1)
	if got, want := MustDump(t, pool), MustDump(t, appA); got != want {
		t.Fatalf("vfs %s, A %s", got, want)
	}
	return v, pool
}
