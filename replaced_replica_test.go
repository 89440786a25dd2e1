// replaced_replica_test.go: a replica wiped and replicated to by another
// database under the same file names. Readers of the old one (a follower,
// the VFS) must not mix the two databases' pages.
package litestream_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
	stop, ended := startFollowEnding(follower, out)
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
		stop, ended = startFollowEnding(follower, out) // the follower of A resumes
	}
	// Refused for good: the restore ends with the error, not only a log.
	waitFollowRefused(t, ended)
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

// A follower of A; the replica is wiped and replicated to by B, which goes
// past A's TXID, compacts into L1 and lets L0 retention remove its L0
// files, so no L0 file is left at A's TXID to compare the output with. The
// L1 file that spans A's TXID starts after TXID 1: it holds only the pages
// B changed in its range, and applied over A's output it would leave a mix
// of the two. The follower, resumed (Resumed) or kept running (Running, it
// first refuses B's L0 file at its TXID), must refuse it.
func TestReplica_Follow_RefusesReplacedReplicaCompactedPastOutput(t *testing.T) {
	for _, name := range []string{"Resumed", "Running"} {
		t.Run(name, func(t *testing.T) { testFollowRefusesReplacedCompacted(t, name == "Running") })
	}
}

func testFollowRefusesReplacedCompacted(t *testing.T, running bool) {
	ctx := context.Background()
	dbA, _, clientA := replicateA(t)
	var logs syncBuffer
	owner := litestream.NewDB(filepath.Join(t.TempDir(), "unused"))
	owner.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	follower := litestream.NewReplicaWithClient(owner, file.NewReplicaClient(clientA.Path()))
	out := filepath.Join(t.TempDir(), "follow.db")
	stop, ended := startFollowEnding(follower, out)
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

	// L1 gets a file of B's first TXIDs, then one from there to past A's
	// TXID.
	dbB, appB := openB(t, dbA, clientA.Path())
	dbB.L0Retention = time.Nanosecond
	if _, err := dbB.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	advanceB(t, dbB, appB, txidA)
	if running {
		// It refuses B's L0 file at its TXID, and stops for good.
		waitFollowRefused(t, ended)
	}
	for round := 0; round < 2; round++ {
		if _, err := dbB.Compact(ctx, 1); err != nil {
			t.Fatal(err)
		}
		advanceB(t, dbB, appB, txidA+3+ltx.TXID(round*3))
	}
	clientB := file.NewReplicaClient(clientA.Path())
	if l0 := L0TXIDs(t, clientB); len(l0) == 0 || l0[0] <= txidA {
		t.Fatalf("precondition: B's L0 holds %v; want no L0 file at A's TXID %s", l0, txidA)
	}
	bridged := false
	for _, info := range levelFiles(t, clientB, 1) {
		bridged = bridged || (info.MinTXID > 1 && info.MinTXID <= txidA && info.MaxTXID > txidA)
	}
	if !bridged {
		t.Fatalf("precondition: no L1 file of B starts after TXID 1 and spans A's TXID %s", txidA)
	}

	if !running {
		stop, ended = startFollowEnding(follower, out) // the follower of A resumes
		waitFollowRefused(t, ended)
	}
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

// sameShapeDB builds a database at dir/name replicating to replica: tables
// t and u, then txns transactions that each add one row of a 1500-byte
// random blob to both tables, each synced as its own TXID. Two calls with
// different seeds write replicas whose files have the same names, sizes and
// page offsets but other page contents.
func sameShapeDB(t *testing.T, dir, name, replica string, seed int64, txns int) (*litestream.DB, *sql.DB) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(dir, name)
	app := MustOpenApp(t, path, 4096)
	if _, err := app.Exec(`CREATE TABLE u (id INTEGER PRIMARY KEY, v INTEGER, pad BLOB)`); err != nil {
		t.Fatal(err)
	}
	client := file.NewReplicaClient(replica)
	db := litestream.NewDB(path)
	db.Replica = litestream.NewReplicaWithClient(db, client)
	db.ShutdownSyncTimeout = 0
	db.MonitorInterval = 0
	db.Replica.MonitorEnabled = false
	client.Replica = db.Replica
	t.Cleanup(func() {
		if db.IsOpen() {
			_ = db.Close(context.Background())
		}
	})
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(seed))
	for i := 0; i < txns; i++ {
		a, b := make([]byte, 1500), make([]byte, 1500)
		rng.Read(a)
		rng.Read(b)
		tx, err := app.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO t (v, pad) VALUES (?, ?)`, i, a); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO u (v, pad) VALUES (?, ?)`, i, b); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	return db, app
}

// replicaShape lists every file of a replica as level, TXID range and size.
func replicaShape(t *testing.T, client litestream.ReplicaClient) string {
	t.Helper()
	var s string
	for level := 0; level <= litestream.SnapshotLevel; level++ {
		for _, info := range levelFiles(t, client, level) {
			s += fmt.Sprintf("L%d %s-%s %d\n", level, info.MinTXID, info.MaxTXID, info.Size)
		}
	}
	return s
}

// The replica is wiped and replicated to by another database B that
// reaches exactly the TXID the VFS serves for A, with files of the same
// names, sizes and page offsets: a poll at the same TXID must still see
// the replacement, or a connection keeps A's pages in its cache and reads
// the others from B's files at A's offsets, a state neither database
// committed. With listed times (Times) an unchanged replica costs a poll no
// read; without them (NoTimes, as on a backend that keeps none) the poll
// reads the newest file's header.
func TestVFS_ReplacedReplicaAtSameTXID(t *testing.T) {
	for _, name := range []string{"Times", "NoTimes"} {
		t.Run(name, func(t *testing.T) { testVFSReplacedAtSameTXID(t, name == "NoTimes") })
	}
}

func testVFSReplacedAtSameTXID(t *testing.T, noTimes bool) {
	dir := t.TempDir()
	replica := filepath.Join(dir, "replica")
	dbA, appA := sameShapeDB(t, dir, "a.db", replica, 1, 6)
	wantA := MustDump(t, appA)
	shapeA := replicaShape(t, file.NewReplicaClient(replica))

	var opens atomic.Int64
	var client litestream.ReplicaClient = &testClient{ReplicaClient: file.NewReplicaClient(replica), onOpen: func(int) error {
		opens.Add(1)
		return nil
	}}
	if noTimes {
		client = timelessClient{client}
	}
	v := litestream.NewVFS(client, nil)
	v.PollInterval = time.Hour // polls only when the test says
	v.ReadAheadSize = 0        // a read of t's pages fetches none of u's
	if err := v.Register(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	pool := mustOpenVFSDB(t, v, "app.db")
	pool.SetMaxOpenConns(1)
	// The reader has read table t (and the schema) of A's latest TXID.
	var n, size int
	if err := pool.QueryRow(`SELECT count(*), sum(length(pad)) FROM t`).Scan(&n, &size); err != nil {
		t.Fatal(err)
	}
	before := opens.Load()
	v.PollOnce() // nothing changed
	if got := opens.Load() - before; !noTimes && got != 0 {
		t.Fatalf("a poll of an unchanged replica opened %d files", got)
	}

	// A goes away; B replicates the same number of transactions there.
	if err := dbA.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(replica); err != nil {
		t.Fatal(err)
	}
	_, appB := sameShapeDB(t, dir, "b.db", replica, 2, 6)
	wantB := MustDump(t, appB)
	if shapeB := replicaShape(t, file.NewReplicaClient(replica)); shapeB != shapeA {
		t.Fatalf("precondition: replicas differ in shape:\nA:\n%sB:\n%s", shapeA, shapeB)
	}
	v.PollOnce() // the poll that finds the replacement

	if got := MustDump(t, pool); got != wantB {
		var res string
		_ = pool.QueryRow(`PRAGMA integrity_check`).Scan(&res)
		t.Fatalf("after the replacement the VFS serves %s, not B's %s (A %s); integrity_check: %s; VFS error: %v", got, wantB, wantA, res, v.LastError())
	}
}

// timelessClient lists files without their times, as a backend that keeps
// none does.
type timelessClient struct{ litestream.ReplicaClient }

func (c timelessClient) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	itr, err := c.ReplicaClient.LTXFiles(ctx, level, seek, false)
	if err != nil {
		return nil, err
	}
	defer func() { _ = itr.Close() }()
	var infos []*ltx.FileInfo
	for itr.Next() {
		info := *itr.Item()
		info.CreatedAt = time.Time{}
		infos = append(infos, &info)
	}
	if err := itr.Err(); err != nil {
		return nil, err
	}
	return ltx.NewFileInfoSliceIterator(infos), nil
}

// lastModifiedClient lists files with the time they were last written, as
// S3 and most object stores do (LastModified), rather than the LTX header's
// time the file backend gives. Each write gets a later time than the one
// before, however fast they come.
type lastModifiedClient struct {
	litestream.ReplicaClient
	mu      sync.Mutex
	last    time.Time
	written map[[3]uint64]time.Time
}

func newLastModifiedClient(c litestream.ReplicaClient) *lastModifiedClient {
	return &lastModifiedClient{ReplicaClient: c, written: map[[3]uint64]time.Time{}}
}

func (c *lastModifiedClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	info, err := c.ReplicaClient.WriteLTXFile(ctx, level, minTXID, maxTXID, r)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	now := time.Now()
	if !now.After(c.last) {
		now = c.last.Add(time.Microsecond)
	}
	c.last = now
	c.written[[3]uint64{uint64(level), uint64(minTXID), uint64(maxTXID)}] = now
	c.mu.Unlock()
	cp := *info
	cp.CreatedAt = now
	return &cp, nil
}

func (c *lastModifiedClient) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	itr, err := c.ReplicaClient.LTXFiles(ctx, level, seek, useMetadata)
	if err != nil || useMetadata {
		return itr, err
	}
	infos, err := ltx.SliceFileIterator(itr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, info := range infos {
		if t, ok := c.written[[3]uint64{uint64(level), uint64(info.MinTXID), uint64(info.MaxTXID)}]; ok {
			cp := *info
			cp.CreatedAt = t
			infos[i] = &cp
		}
	}
	return ltx.NewFileInfoSliceIterator(infos), nil
}

// A lost L0 file that the DB uploads again from its local copy (repairLost)
// has the same bytes but, on a backend that lists LastModified, another
// time. A VFS over the unchanged replica must not take it for a replacement
// by another database (every cached page and fixed view dropped, the
// hydrated copy never used again): the poll that sees it reads the file's
// trailer once and keeps the view, and later polls read nothing.
func TestVFS_ReuploadedFileIsNoReplacement(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	raw := file.NewReplicaClient(filepath.Join(dir, "replica"))
	client := newLastModifiedClient(raw)
	db := manual(newVerifiedDB(t, filepath.Join(dir, "db"), client, raw))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	db.Replica.IndexRefreshInterval = -1 // notice the loss at the next upload
	app := MustOpenApp(t, db.Path(), 4096)
	mustInsertReplicated(t, db, app, 1, 6)

	var logs syncBuffer
	var opens atomic.Int64
	vc := &testClient{ReplicaClient: client, onOpen: func(int) error { opens.Add(1); return nil }}
	v := litestream.NewVFS(vc, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	v.PollInterval = time.Hour // polls only when the test says
	if err := v.Register(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	pool := mustOpenVFSDB(t, v, "app.db")
	pool.SetMaxOpenConns(1)
	want := MustDump(t, app)
	if got := MustDump(t, pool); got != want {
		t.Fatalf("vfs %s, app %s", got, want)
	}

	listed := func() []*ltx.FileInfo { // as the VFS lists them: with LastModified
		t.Helper()
		itr, err := client.LTXFiles(ctx, 0, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		infos, err := ltx.SliceFileIterator(itr)
		if err != nil {
			t.Fatal(err)
		}
		return infos
	}
	l0 := listed()
	lost := l0[len(l0)-3] // between files the replica still has
	if err := client.DeleteLTXFiles(ctx, []*ltx.FileInfo{lost}); err != nil {
		t.Fatal(err)
	}
	if err := db.Replica.Sync(ctx); err != nil { // notices the loss and uploads the file again; no new TXID
		t.Fatal(err)
	}
	var again *ltx.FileInfo
	for _, info := range listed() {
		if info.MinTXID == lost.MinTXID {
			again = info
		}
	}
	if again == nil || again.Size != lost.Size || again.CreatedAt.Equal(lost.CreatedAt) {
		t.Fatalf("precondition: L0 %s not uploaded again with its size and another time: was %+v, now %+v", lost.MinTXID, lost, again)
	}

	before := opens.Load()
	v.PollOnce()
	if got := opens.Load() - before; got != 1 {
		t.Errorf("the poll that saw L0 %s listed again opened %d files, want 1 (its trailer)", lost.MinTXID, got)
	}
	if line := firstLine(logs.String(), "replaced"); line != "" {
		t.Fatalf("a VFS over the same database, at the same TXID, counts a replacement after L0 %s was uploaded again: %s", lost.MinTXID, line)
	}
	before = opens.Load()
	v.PollOnce()
	if got := MustDump(t, pool); got != want {
		t.Fatalf("vfs %s, app %s", got, want)
	}
	if got := opens.Load() - before; got != 0 {
		t.Errorf("a later poll and a read of the cached database opened %d files", got)
	}

	// The TXID moves on: still the same database, still served right.
	mustInsertReplicated(t, db, app, 10, 1)
	want = MustDump(t, app)
	v.PollOnce()
	if got := MustDump(t, pool); got != want {
		t.Fatalf("vfs %s, app %s", got, want)
	}
	if line := firstLine(logs.String(), "replaced"); line != "" {
		t.Fatalf("the VFS counts a replacement once the TXID moves on: %s", line)
	}
}

// A's latest view is built from its L1 file alone (L0 retention removed
// the L0 files it covers); B replaces the replica with L0 files only, past
// A's TXID: no file name is shared with the view, yet the poll must count
// a replacement, or the hydrated file of A serves the pages whose files in
// B's plan end at or before A's TXID (found by review rev-today3).
func TestVFS_ReplacedReplicaNoSharedFileName(t *testing.T) {
	ctx := context.Background()
	dbA, appA, clientA := replicateA(t)
	if _, err := dbA.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	dbA.L0Retention = time.Nanosecond
	if err := dbA.EnforceL0RetentionByTime(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("A: L0 %v, L1 %d files", L0TXIDs(t, clientA), len(levelFiles(t, clientA, 1)))
	v, pool := openVFSOnA(t, file.NewReplicaClient(clientA.Path()), time.Hour, true, appA)
	if h := v.Hydrator(); h != nil {
		select {
		case <-h.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("hydration did not finish")
		}
		t.Logf("hydrated TXID %s, err %v", h.TXID(), h.Err())
	}
	pos, err := dbA.Pos()
	if err != nil {
		t.Fatal(err)
	}
	appB := replaceReplicaWithB(t, dbA, clientA.Path(), pos.TXID)
	want := MustDump(t, appB)
	v.PollOnce()
	var res string
	if err := pool.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil {
		t.Fatalf("integrity check through the VFS: %v (VFS error: %v)", err, v.LastError())
	} else if res != "ok" {
		t.Fatalf("the VFS serves B's TXIDs with A's pages: integrity_check: %s (VFS error: %v)", res, v.LastError())
	}
	if got := MustDump(t, pool); got != want {
		t.Fatalf("vfs %s, B %s", got, want)
	}
}

// The TXID of the same database moving on is no replacement: new L0 files
// after the view's, an L1 file ending at the view's TXID, one spanning it,
// and one ending there after L0 retention removed the view's newest file.
// No poll counts a replacement (which would drop every cached page and the
// hydrated file), and the proof costs at most one header read: none when
// the plan still holds the view's newest file.
func TestVFS_AdvanceOfSameDatabaseIsNoReplacement(t *testing.T) {
	ctx := context.Background()
	dbA, appA, clientA := replicateA(t) // L0 1..12
	var logs syncBuffer
	var mu sync.Mutex
	opened := map[string]int{}
	tc := &testClient{ReplicaClient: file.NewReplicaClient(clientA.Path()), onOpenFile: func(level int, minTXID, maxTXID ltx.TXID) error {
		mu.Lock()
		defer mu.Unlock()
		opened[fmt.Sprintf("L%d %s-%s", level, minTXID, maxTXID)]++
		return nil
	}}
	v := litestream.NewVFS(tc, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	v.PollInterval = time.Hour // polls only when the test says
	v.HydrationEnabled = true
	if err := v.Register(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	pool := mustOpenVFSDB(t, v, "app.db")
	pool.SetMaxOpenConns(1)
	if got, want := MustDump(t, pool), MustDump(t, appA); got != want {
		t.Fatalf("vfs %s, A %s", got, want)
	}
	select {
	case <-v.Hydrator().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("hydration did not finish")
	}

	name := func(level int, minTXID, maxTXID ltx.TXID) string {
		return fmt.Sprintf("L%d %s-%s", level, minTXID, maxTXID)
	}
	commit := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			mustInsert(t, appA, 100+i)
			if err := dbA.SyncAndWait(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	compact := func() {
		t.Helper()
		if _, err := dbA.Compact(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	// poll polls once, checks the VFS serves A without counting a
	// replacement, and that the poll opened the files in want that often
	// and none of the files in none.
	poll := func(step string, want map[string]int, none ...string) {
		t.Helper()
		mu.Lock()
		clear(opened)
		mu.Unlock()
		v.PollOnce()
		mu.Lock()
		got := maps.Clone(opened)
		mu.Unlock()
		if line := firstLine(logs.String(), "replaced"); line != "" {
			t.Fatalf("%s: the VFS counts a replacement: %s", step, line)
		}
		for f, n := range want {
			if got[f] != n {
				t.Errorf("%s: the poll opened %s %d times, want %d (all opens: %v)", step, f, got[f], n, got)
			}
		}
		for _, f := range none {
			if got[f] != 0 {
				t.Errorf("%s: the poll opened %s, a file of the view it moved from, %d times (all opens: %v)", step, f, got[f], got)
			}
		}
		if got, want := MustDump(t, pool), MustDump(t, appA); got != want {
			t.Fatalf("%s: vfs %s, A %s", step, got, want)
		}
	}

	// The plan holds the view's newest file: nothing read but L0 13 (its
	// header and index).
	commit(1)
	poll("new L0 file", map[string]int{name(0, 13, 13): 3}, name(0, 12, 12), name(0, 1, 1))

	// The plan goes through L1 1-13, which ends at the view's TXID: its
	// header (the proof) and index; L0 13 is not read.
	compact()
	commit(1)
	poll("L1 file ending at the view's TXID", map[string]int{name(1, 1, 13): 3, name(0, 14, 14): 3}, name(0, 13, 13))

	// L1 14-16 spans the view's TXID 14: the view's newest file L0 14 is
	// still stored with its header (one read).
	commit(2)
	compact()
	poll("L1 file spanning the view's TXID", map[string]int{name(0, 14, 14): 1, name(1, 14, 16): 3}, name(1, 1, 13))

	// L0 retention removed the view's newest file L0 17 once L1 17-17
	// covered it: the L1 file's header has L0 17's time and commit.
	commit(1)
	poll("new L0 file after compaction", map[string]int{name(0, 17, 17): 3}, name(1, 14, 16))
	compact()
	commit(1)
	dbA.L0Retention = time.Nanosecond
	if err := dbA.EnforceL0RetentionByTime(ctx); err != nil {
		t.Fatal(err)
	}
	if l0 := L0TXIDs(t, clientA); len(l0) != 1 || l0[0] != 18 {
		t.Fatalf("precondition: L0 holds %v, want only 18", l0)
	}
	poll("view's newest file removed by retention", map[string]int{name(1, 17, 17): 3, name(0, 18, 18): 3}, name(1, 14, 16))
}

// A replica wiped while its primary runs is re-seeded from TXID 1 with a
// snapshot; the TXIDs a follower already applied now name other states.
// The follower must refuse once the replica passes its TXID again, and the
// error must say that the replica was numbered again, not only blame
// another database. (The primary notices the wipe at its next listing,
// here every sync; compaction and L0 retention removed the local L0 copies
// it would otherwise upload again.)
func TestReplica_Follow_RefusesReseededReplica(t *testing.T) {
	path, app, client := mustAppWithReplica(t)
	db := manual(MustNewDB(t, path, client))
	db.Replica.IndexRefreshInterval = -1
	db.L0Retention = time.Nanosecond
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 1, 5)
	if _, err := db.Compact(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "follow.db")
	var logs syncBuffer
	owner := litestream.NewDB(filepath.Join(t.TempDir(), "unused"))
	owner.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	stop, ended := startFollowEnding(litestream.NewReplicaWithClient(owner, file.NewReplicaClient(client.Path())), out)
	defer func() { _ = stop() }()
	waitFollowed(t, db, out)
	before, err := litestream.ReadTXIDFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := MustCheckRestored(t, out)

	if err := os.RemoveAll(client.Path()); err != nil {
		t.Fatal(err)
	}
	// Rows that each take pages of their own: the re-seeded replica's
	// files past the follower's TXID do not rewrite the pages its earlier
	// ones changed, so the follower cannot end up at the replica's state.
	commit := func(v int) ltx.TXID {
		t.Helper()
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(10000))`, v); err != nil {
			t.Fatal(err)
		} else if err := db.SyncAndWait(context.Background()); err != nil {
			t.Fatal(err)
		}
		pos, err := db.Pos()
		if err != nil {
			t.Fatal(err)
		}
		return pos.TXID
	}
	// While the replica is behind the output, the follower says so once
	// and waits.
	if txid := commit(100); txid >= before {
		t.Fatalf("the re-seeded replica is at TXID %s, not behind the output's %s", txid, before)
	}
	waitFor(t, 10*time.Second, "the follower to log that the replica is behind", func() bool {
		return strings.Contains(logs.String(), "follow waiting: the replica holds nothing at or past the output's TXID")
	})
	for v := 101; commit(v) <= before+1; v++ {
	}
	if n := strings.Count(logs.String(), "follow waiting"); n != 1 {
		t.Errorf("the follower logged that the replica is behind %d times, want once", n)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, litestream.ErrLTXCorrupted) || !strings.Contains(err.Error(), "numbered again") {
			t.Fatalf("follow ended with %v, want the refusal of a replica numbered again (ErrLTXCorrupted)", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("follow did not end with the refusal of the re-seeded replica")
	}
	if txid, _ := litestream.ReadTXIDFile(out); txid != before {
		t.Fatalf("the follower moved from %s to %s on the re-seeded replica's files", before, txid)
	}
	if got := MustCheckRestored(t, out); got != want {
		t.Fatalf("the output changed from %s to %s", want, got)
	}
}
