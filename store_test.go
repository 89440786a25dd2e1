// Tests of Store: compaction, restore, reopening.
package litestream_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// newStoreDB builds the documented pattern: DB, file client, replica, store.
func newStoreDB(t testing.TB, dir string, levels litestream.CompactionLevels) (*litestream.DB, *file.ReplicaClient, *litestream.Store) {
	t.Helper()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db := MustNewDB(t, filepath.Join(dir, "db"), client)
	db.MonitorInterval = 50 * time.Millisecond
	replica := db.Replica
	replica.SyncInterval = 50 * time.Millisecond
	client.Replica = replica
	store := litestream.NewStore([]*litestream.DB{db}, levels)
	return db, client, store
}

// mustOpenStore opens store and closes it at cleanup unless the returned
// closeStore ran first.
func mustOpenStore(t testing.TB, store *litestream.Store) (closeStore func() error) {
	t.Helper()
	if err := store.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var err error
	closeStore = func() error {
		once.Do(func() { err = store.Close(context.Background()) })
		return err
	}
	t.Cleanup(func() { _ = closeStore() })
	return closeStore
}

// waitFor polls cond every 20ms until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func levelFiles(t testing.TB, client litestream.ReplicaClient, level int) []*ltx.FileInfo {
	t.Helper()
	itr, err := client.LTXFiles(context.Background(), level, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	infos, err := ltx.SliceFileIterator(itr)
	if err != nil {
		t.Fatal(err)
	}
	return infos
}

// With fast levels the replica gains L1, L2 and L9 files, and restores by
// latest, TXID and timestamp are exact from whatever mix of files exists.
func TestStore_CompactionAndRestore(t *testing.T) {
	dir := t.TempDir()
	db, client, store := newStoreDB(t, dir, litestream.CompactionLevels{
		{Level: 0}, {Level: 1, Interval: time.Second}, {Level: 2, Interval: 3 * time.Second},
	})
	store.SnapshotInterval = 2 * time.Second
	ctx := context.Background()
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	app := MustOpenApp(t, db.Path(), 4096)

	// Record the content after each write once its TXID is known.
	type point struct {
		txid ltx.TXID
		dump string
	}
	var points []point
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; time.Now().Before(deadline) || len(levelFiles(t, client, 2)) == 0 || len(levelFiles(t, client, 9)) == 0; i++ {
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(300))`, i); err != nil {
			t.Fatal(err)
		}
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		pos, err := db.Pos()
		if err != nil {
			t.Fatal(err)
		}
		points = append(points, point{pos.TXID, MustDump(t, app)})
		time.Sleep(30 * time.Millisecond) // pace the writer, not a synchronisation
		if time.Since(deadline) > 10*time.Second {
			t.Fatal("no L2 or L9 files after 15s")
		}
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	for _, level := range []int{1, 2, 9} {
		if n := len(levelFiles(t, client, level)); n == 0 {
			t.Fatalf("no L%d files", level)
		}
	}

	last := points[len(points)-1]
	if got := MustCheckRestored(t, MustRestore(t, db.Replica, 0)); got != last.dump {
		t.Fatalf("restore latest: %s, want %s", got, last.dump)
	}

	// By TXID: every recorded point (several writes can share a TXID).
	byTXID := map[ltx.TXID]string{}
	for _, p := range points {
		byTXID[p.txid] = p.dump
	}
	for txid, want := range byTXID {
		if got := MustCheckRestored(t, MustRestore(t, db.Replica, txid)); got != want {
			t.Fatalf("restore txid %s: %s, want %s", txid, got, want)
		}
	}

	// By timestamp: just after some L0 files' creation times.
	l0 := levelFiles(t, client, 0)
	for _, i := range []int{0, len(l0) / 3, len(l0) / 2, len(l0) - 1} {
		ts := l0[i].CreatedAt.Add(time.Millisecond)
		var wantTXID ltx.TXID
		for _, info := range l0 {
			if info.CreatedAt.Before(ts) {
				wantTXID = info.MaxTXID
			}
		}
		if _, ok := byTXID[wantTXID]; !ok {
			continue // written by the monitor before the first recorded point
		}
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = filepath.Join(t.TempDir(), "db")
		opt.Timestamp = ts
		if err := db.Replica.Restore(ctx, opt); err != nil {
			t.Fatalf("restore at %s: %v", ts, err)
		}
		if got := MustCheckRestored(t, opt.OutputPath); got != byTXID[wantTXID] {
			t.Fatalf("restore at %s (txid %s): %s, want %s", ts, wantTXID, got, byTXID[wantTXID])
		}
	}

	if err := store.Close(ctx); err != nil {
		t.Fatal(err)
	}
	MustVerifyReplica(t, client)
}

// Reopening the store, in the same process or a new one, continues at the
// next TXID with no duplicate and no gap.
func TestStore_ReopenContinuesTXIDs(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	levels := litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: time.Hour}}
	var want string
	for round := 0; round < 3; round++ {
		db, client, store := newStoreDB(t, dir, levels)
		if err := store.Open(ctx); err != nil {
			t.Fatal(err)
		}
		app, err := sql.Open("sqlite", "file:"+db.Path()+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := app.Exec(`CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v INTEGER, pad BLOB)`); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 5; i++ {
			if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, i); err != nil {
				t.Fatal(err)
			}
			if err := db.SyncAndWait(ctx); err != nil {
				t.Fatal(err)
			}
		}
		want = MustDump(t, app)
		if err := store.Close(ctx); err != nil {
			t.Fatal(err)
		}
		_ = app.Close()
		MustVerifyReplica(t, client)
	}

	// A fresh process on the same files.
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "LITESTREAM_TEST_CHILD=reopen", "LITESTREAM_TEST_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child process: %v\n%s", err, out)
	}

	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	txids := L0TXIDs(t, client)
	for i, txid := range txids {
		if txid != ltx.TXID(i+1) {
			t.Fatalf("L0 TXIDs not dense from 1: %v", txids)
		}
	}
	if len(txids) < 16 {
		t.Fatalf("L0 TXIDs %v: expected four rounds of writes", txids)
	}
	r := litestream.NewReplicaWithClient(nil, client)
	got := MustCheckRestored(t, MustRestore(t, r, 0))
	if got == want {
		t.Fatal("the child's writes are missing from the restore")
	}
	if !slices.IsSorted(txids) {
		t.Fatalf("unsorted TXIDs %v", txids)
	}
}

// reopenChild is the fresh process of TestStore_ReopenContinuesTXIDs: it
// reopens the store on the same files and writes three more TXIDs.
func reopenChild(dir string) error {
	ctx := context.Background()
	db := litestream.NewDB(filepath.Join(dir, "db"))
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db.Replica = litestream.NewReplicaWithClient(db, client)
	store := litestream.NewStore([]*litestream.DB{db}, litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: time.Hour}})
	if err := store.Open(ctx); err != nil {
		return err
	}
	app, err := sql.Open("sqlite", "file:"+db.Path()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	defer func() { _ = app.Close() }()
	for i := 0; i < 3; i++ {
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, 100+i); err != nil {
			return err
		}
		if err := db.SyncAndWait(ctx); err != nil {
			return err
		}
	}
	return store.Close(ctx)
}

// Store's setters change compaction settings while compactions run; under
// -race this fails if the compactor reads them unguarded.
func TestStore_SettersDuringCompaction(t *testing.T) {
	ctx := context.Background()
	db, client, store := newStoreDB(t, t.TempDir(), litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: 20 * time.Millisecond}})
	store.L0Retention = time.Millisecond
	store.L0RetentionCheckInterval = 20 * time.Millisecond
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close(ctx) }()
	app := MustOpenApp(t, db.Path(), 4096)

	start := len(levelFiles(t, client, 1))
	on := false
	waitFor(t, 30*time.Second, "L1 compactions while settings change", func() bool {
		on = !on
		store.SetVerifyCompaction(on)
		store.SetRetentionEnabled(on)
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (1, randomblob(100))`); err != nil {
			t.Fatal(err)
		}
		return len(levelFiles(t, client, 1)) >= start+10
	})
}

// Store.Open fails at once on a file that is not a SQLite database (rather
// than opening and logging the problem at every sync), and opens a missing
// or empty file, which SQLite turns into a database.
func TestStore_Open_ErrNotSQLite(t *testing.T) {
	newStore := func(t *testing.T, path string) *litestream.Store {
		db := litestream.NewDB(path)
		db.MonitorInterval = 0
		db.Replica = litestream.NewReplicaWithClient(db, file.NewReplicaClient(filepath.Join(t.TempDir(), "replica")))
		db.Replica.MonitorEnabled = false
		s := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
		s.CompactionMonitorEnabled = false
		return s
	}
	ctx := context.Background()

	t.Run("ErrNotSQLite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "notes.txt")
		if err := os.WriteFile(path, []byte("hello, this is not a database\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		s := newStore(t, path)
		err := s.Open(ctx)
		if err == nil {
			_ = s.Close(ctx)
			t.Fatal("Open succeeded on a text file")
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a SQLite database") {
			t.Fatalf("err = %q, want it to name %s as not a SQLite database", err, path)
		}
	})

	for name, content := range map[string][]byte{"Missing": nil, "Empty": {}} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db")
			if content != nil {
				if err := os.WriteFile(path, content, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s := newStore(t, path)
			if err := s.Open(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// UnregisterDB waits for the Store's compaction of the DB under way: a DB
// registered on the same file next must be the only one compacting its
// replica, or L1 gets overlapping files and L2 stalls on them for good.
func TestStore_UnregisterDB_WaitsForCompactionUnderWay(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	app := MustOpenApp(t, path, 4096)
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))

	var block atomic.Bool
	started, release := make(chan struct{}), make(chan struct{})
	tc := &testClient{ReplicaClient: client}
	tc.onWrite = func(level int, r io.Reader, write func(io.Reader) (*ltx.FileInfo, error)) (*ltx.FileInfo, error) {
		if level == 1 && block.CompareAndSwap(true, false) {
			close(started)
			<-release // a slow upload of the old DB's L1 file
		}
		return write(r)
	}
	levels := litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: time.Millisecond}, {Level: 2, Interval: time.Millisecond}}
	db1 := newManualDB(path, tc)
	store := litestream.NewStore([]*litestream.DB{db1}, levels)
	store.CompactionMonitorEnabled = false // the test plays the monitor
	store.L0RetentionCheckInterval = 0
	mustOpenStore(t, store)
	mustInsertReplicated(t, db1, app, 1, 3)

	block.Store(true)
	compacted := make(chan error, 1)
	go func() { _, err := store.CompactDB(ctx, db1, levels[1]); compacted <- err }()
	<-started
	unregistered := make(chan error, 1)
	go func() { unregistered <- store.UnregisterDB(ctx, path) }()
	select {
	case err := <-unregistered:
		close(release)
		t.Fatalf("UnregisterDB returned (%v) while the Store's L1 compaction of the DB was uploading", err)
	case <-time.After(500 * time.Millisecond): // a window in which it must not return
	}
	close(release)
	if err := <-compacted; err != nil {
		t.Fatalf("L1 compaction of the DB being unregistered: %v", err)
	} else if err := <-unregistered; err != nil {
		t.Fatal(err)
	}

	db2 := newManualDB(path, tc)
	if err := store.RegisterDB(db2); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db2, app, 10, 2)
	for _, lvl := range levels[1:] {
		waitFor(t, 5*time.Second, "the next compaction boundary", func() bool {
			_, err := store.CompactDB(ctx, db2, lvl)
			if err != nil && !errors.Is(err, litestream.ErrCompactionTooEarly) {
				t.Fatalf("L%d compaction of the new DB: %v", lvl.Level, err)
			}
			return err == nil
		})
	}
	if got, want := MustCheckRestored(t, MustRestore(t, db2.Replica, 0)), MustDump(t, app); got != want {
		t.Fatalf("restore: %s, want %s", got, want)
	}
}

// slowSnapshotClient takes its time to store a snapshot, as a slow backend
// does with a large one, giving up when its context ends.
type slowSnapshotClient struct {
	litestream.ReplicaClient
	started chan struct{}
}

func (c slowSnapshotClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	if level == litestream.SnapshotLevel {
		select {
		case c.started <- struct{}{}:
		default:
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Minute):
		}
	}
	return c.ReplicaClient.WriteLTXFile(ctx, level, minTXID, maxTXID, r)
}

// Store.Close abandons the snapshot its monitor is uploading rather than
// wait for it past its deadline: the DBs' final uploads are what count.
func TestStore_Close_AbandonsSnapshotUnderWay(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	app := MustOpenApp(t, path, 4096)
	for v := 1; v <= 20; v++ {
		mustInsert(t, app, v)
	}
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	sc := slowSnapshotClient{ReplicaClient: client, started: make(chan struct{}, 1)}
	db := litestream.NewDB(path)
	db.Replica = litestream.NewReplicaWithClient(db, sc)
	db.MonitorInterval = 20 * time.Millisecond
	db.Replica.SyncInterval = 10 * time.Millisecond
	store := litestream.NewStore([]*litestream.DB{db}, litestream.CompactionLevels{{Level: 0}})
	store.SnapshotInterval = time.Hour
	closeStore := mustOpenStore(t, store)
	select {
	case <-sc.started:
	case <-time.After(10 * time.Second):
		t.Fatal("no snapshot started")
	}
	start := time.Now()
	if err := closeStore(); err != nil {
		t.Fatalf("close: %v", err)
	} else if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("Store.Close took %s: it waited for the snapshot upload", took.Round(time.Millisecond))
	}
	if got, want := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)), MustDump(t, app); got != want {
		t.Fatalf("restore after Close: %s, want %s", got, want)
	}
}
