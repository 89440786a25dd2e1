// unreachable_start_test.go: a run that starts with its local LTX files
// behind the replica (a new machine, a wiped tmpfs) while the replica is
// out of reach. It captures new commits under TXIDs the replica already
// holds; once the replica answers, the replica's history wins and the
// commits are uploaded on top of it, by a snapshot, a Close or a Store.
package litestream_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

// replicatedThenUnreachable replicates rows 1..5 in a first run, removes
// that run's local files and returns a client that fails every listing and
// open while down is set (set on return), for the next run.
func replicatedThenUnreachable(t *testing.T) (path string, app *sql.DB, client *file.ReplicaClient, tc *testClient, down *atomic.Bool) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	path = filepath.Join(dir, "db")
	app = MustOpenApp(t, path, 4096)
	client = file.NewReplicaClient(filepath.Join(dir, "replica"))
	db1 := newManualDB(path, client)
	if err := db1.Open(); err != nil {
		t.Fatal(err)
	}
	for v := 1; v <= 5; v++ { // a page per row, so that states mixed from two histories show
		mustExecReplicated(t, db1, app, fmt.Sprintf(`INSERT INTO t (id, v, pad) VALUES (%d, %d, randomblob(3000))`, v, v))
	}
	if err := db1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(db1.MetaPath()); err != nil {
		t.Fatal(err)
	}
	down = new(atomic.Bool)
	down.Store(true)
	unreachable := func(int) error {
		if down.Load() {
			return errors.New("replica unreachable")
		}
		return nil
	}
	tc = &testClient{ReplicaClient: client, onList: unreachable, onOpen: unreachable}
	return path, app, client, tc, down
}

// newManualDB is a DB without monitors replicating through client.
func newManualDB(path string, client litestream.ReplicaClient) *litestream.DB {
	db := litestream.NewDB(path)
	db.Replica = litestream.NewReplicaWithClient(db, client)
	return manual(db)
}

// A snapshot taken when the replica answers again must not label the local
// history with the replica's TXIDs: restores must give committed states.
func TestDB_Snapshot_AfterUnreachableStart(t *testing.T) {
	ctx := context.Background()
	path, app, client, tc, down := replicatedThenUnreachable(t)
	committed := map[string]bool{MustDump(t, app): true}
	db := newManualDB(path, tc)
	store := litestream.NewStore([]*litestream.DB{db}, litestream.CompactionLevels{{Level: 0}})
	store.CompactionMonitorEnabled = false // the test runs the snapshot pass
	closeStore := mustOpenStore(t, store)
	// One transaction changes row 1 and adds row 100.
	if _, err := app.Exec(`UPDATE t SET v = -1 WHERE id = 1; INSERT INTO t (id, v, pad) VALUES (100, 100, randomblob(3000))`); err != nil {
		t.Fatal(err)
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	committed[MustDump(t, app)] = true
	if _, err := app.Exec(`INSERT INTO t (id, v, pad) VALUES (101, 101, randomblob(3000))`); err != nil {
		t.Fatal(err)
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	committed[MustDump(t, app)] = true

	// The replica answers; the snapshot pass comes before any upload.
	down.Store(false)
	if _, err := store.CompactDB(ctx, db, store.SnapshotLevel()); err != nil {
		t.Logf("snapshot pass: %v", err)
	}
	if got := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)); !committed[got] {
		t.Fatalf("latest restore after the snapshot pass is a state the app never committed: %s", got)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	// From the first run's last TXID (its earlier states are not in the
	// model) to the newest.
	for _, txid := range L0TXIDs(t, client) {
		if txid < 5 {
			continue
		}
		if got := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, client), txid)); !committed[got] {
			t.Fatalf("restore to TXID %s is a state the app never committed: %s", txid, got)
		}
	}
	if err := closeStore(); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)), MustDump(t, app); got != want {
		t.Fatalf("latest restore %s, app %s", got, want)
	}
}

// Close's final upload is the first to reach the replica: it takes the
// replica's position, and Close must still upload the commits before it
// returns nil.
func TestDB_Close_AfterUnreachableStart(t *testing.T) {
	ctx := context.Background()
	path, app, client, tc, down := replicatedThenUnreachable(t)
	db := newManualDB(path, tc)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{100, 101} {
		mustInsert(t, app, v)
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want := MustDump(t, app)
	down.Store(false)
	if err := db.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)); got != want {
		t.Fatalf("Close returned nil, but the replica restores %s, not what was committed before Close: %s", got, want)
	}
}

// The same through a Store with its monitors running: the replica is out
// of reach at start and comes back while the replica monitor backs off.
func TestStore_Close_AfterUnreachableStart(t *testing.T) {
	path, app, client, tc, down := replicatedThenUnreachable(t)
	db := litestream.NewDB(path)
	db.Replica = litestream.NewReplicaWithClient(db, tc)
	db.MonitorInterval = 20 * time.Millisecond
	db.Replica.SyncInterval = 5 * time.Second // the monitor backs off at least this long
	closeStore := mustOpenStore(t, litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels))
	mustInsert(t, app, 100)
	waitFor(t, 10*time.Second, "local capture of row 100 and a failed upload", func() bool {
		pos, _ := db.Pos()
		return pos.TXID >= 1 && tc.l0Lists.Load() >= 1
	})
	first, _ := db.Pos()
	mustInsert(t, app, 101)
	waitFor(t, 10*time.Second, "local capture of row 101", func() bool {
		pos, _ := db.Pos()
		return pos.TXID > first.TXID
	})
	want := MustDump(t, app)
	down.Store(false)
	if err := closeStore(); err != nil {
		t.Fatalf("store close: %v", err)
	}
	if got := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)); got != want {
		t.Fatalf("Store.Close returned nil, but the replica restores %s, not what was committed before Close: %s", got, want)
	}
}
