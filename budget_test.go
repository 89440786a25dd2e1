// budget_test.go checks the request budget of a replicating DB: compaction
// and retention decide from the in-memory index instead of listing the
// backend, and files changed behind the library's back are noticed and
// repaired at the next listing.
package litestream_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
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

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// count returns how many lines hold every one of words.
func (b *lockedBuffer) count(words ...string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, line := range strings.Split(b.b.String(), "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			n++
		}
	}
	return n
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// budgetStore opens a store replicating one DB through a counting client,
// with fast compaction and L0 retention passes so that a few seconds hold
// many of them.
func budgetStore(t *testing.T, configure func(*litestream.Replica)) (*litestream.DB, *testClient, *file.ReplicaClient, *lockedBuffer) {
	t.Helper()
	return newBudgetStore(t, configure, true)
}

// newBudgetStore is budgetStore, checking the replica's invariants at
// cleanup only with verify: a test that takes files away from the replica
// leaves a gap in its history no library can fill.
func newBudgetStore(t *testing.T, configure func(*litestream.Replica), verify bool) (*litestream.DB, *testClient, *file.ReplicaClient, *lockedBuffer) {
	t.Helper()
	dir := t.TempDir()
	backend := file.NewReplicaClient(filepath.Join(dir, "replica"))
	counter := &testClient{ReplicaClient: backend, recordOpens: true}
	var db *litestream.DB
	if verify {
		db = newVerifiedDB(t, filepath.Join(dir, "db"), counter, backend)
	} else {
		db = litestream.NewDB(filepath.Join(dir, "db"))
		db.Replica = litestream.NewReplicaWithClient(db, counter)
	}
	db.MonitorInterval = 20 * time.Millisecond
	db.Replica.SyncInterval = 20 * time.Millisecond
	if configure != nil {
		configure(db.Replica)
	}
	store := litestream.NewStore([]*litestream.DB{db}, litestream.CompactionLevels{
		{Level: 0}, {Level: 1, Interval: 200 * time.Millisecond}, {Level: 2, Interval: time.Second},
	})
	store.L0Retention = 300 * time.Millisecond
	store.L0RetentionCheckInterval = 100 * time.Millisecond
	logs := &lockedBuffer{}
	store.Logger = slog.New(slog.NewTextHandler(logs, nil))
	if err := store.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	return db, counter, backend, logs
}

// Commits keep compaction and L0 retention busy for seconds, and the number
// of listings stays what opening the replica took: with the index it does
// not grow with the passes (without it each retention pass lists L0 and L1
// and each compaction its source level). No file is downloaded either:
// compaction reads local copies of the files it merges again.
func TestReplicaIndex_RequestsDoNotGrowWithPasses(t *testing.T) {
	db, counter, backend, _ := budgetStore(t, nil)
	app := MustOpenApp(t, db.Path(), 4096)
	ctx := context.Background()
	commit := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(64))`, i); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond) // commits spread over the passes
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	commit(50) // warm up: every level listed once, files compacted
	waitFor(t, 10*time.Second, "L2 files", func() bool { return len(levelFiles(t, backend, 2)) > 0 })
	listsBefore := counter.lists.Load()
	getsBefore := counter.opens.Load()
	putsBefore := counter.writes.Load()
	deletesBefore := counter.deletes.Load()

	commit(200) // about 2s: ~20 retention passes, ~10 L1 and 2 L2 compactions
	waitFor(t, 10*time.Second, "retention to delete L0 files", func() bool { return counter.deletes.Load() > deletesBefore })

	lists := counter.lists.Load() - listsBefore
	gets := counter.opens.Load() - getsBefore
	puts := counter.writes.Load() - putsBefore
	t.Logf("during the busy phase: %d LIST, %d GET, %d PUT, %d DELETE", lists, gets, puts, counter.deletes.Load()-deletesBefore)
	if puts < 50 {
		t.Fatalf("only %d uploads: the busy phase did not replicate", puts)
	}
	if lists > 2 {
		t.Fatalf("%d LIST requests while compaction and retention ran on a replica only this process writes; want at most 2", lists)
	}
	if gets != 0 {
		t.Fatalf("%d GET requests outside restore: compaction must read its inputs from local copies; the first: %s", gets, counter.openCalls(int(gets))[0])
	}
	verifyRestoreLatest(t, backend, app)
}

// verifyRestoreLatest restores the replica's latest state and compares it
// with the app's. The replica's chain is checked at cleanup, once the store
// is closed: its retention may still delete files now.
func verifyRestoreLatest(t *testing.T, client litestream.ReplicaClient, app *sql.DB) {
	t.Helper()
	r := litestream.NewReplicaWithClient(nil, client)
	if got, want := MustCheckRestored(t, MustRestore(t, r, 0)), MustDump(t, app); got != want {
		t.Fatalf("restored %s, app has %s", got, want)
	}
}

// An L0 file removed from the replica behind the library's back is noticed
// at the next listing after the index's refresh interval, logged once (or
// found first by compaction, which has it uploaded again before a listing
// can miss it), and uploaded again from its local copy, so the replica has
// no gap; a snapshot added by someone else is noticed and logged too.
func TestReplicaIndex_NoticesFilesChangedBehindItsBack(t *testing.T) {
	db, counter, backend, logs := budgetStore(t, func(r *litestream.Replica) { r.IndexRefreshInterval = 300 * time.Millisecond })
	app := MustOpenApp(t, db.Path(), 4096)
	ctx := context.Background()
	events := db.Subscribe(0)
	defer events.Close()
	insert := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(64))`, i); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	insert(1)
	// Stop compaction from covering new L0 files: pick the newest, remove it
	// behind the library's back, and keep committing.
	l0 := levelFiles(t, backend, 0)
	victim := l0[len(l0)-1]
	if err := os.Remove(backend.LTXFilePath(0, victim.MinTXID, victim.MaxTXID)); err != nil {
		t.Fatal(err)
	}
	const warning = "replica files changed outside this process"
	// The next listing of L0 after the refresh interval notices: the
	// library lists while it works, so keep committing.
	waitFor(t, 30*time.Second, "the removal to be noticed", func() bool {
		insert(1)
		return logs.count(warning) > 0 || logs.count("compaction waiting for a missing file") > 0
	})
	waitFor(t, 30*time.Second, "the lost file to be uploaded again or covered by L1", func() bool {
		if _, err := os.Stat(backend.LTXFilePath(0, victim.MinTXID, victim.MaxTXID)); err == nil {
			return true
		}
		for _, info := range levelFiles(t, backend, 1) {
			if info.MinTXID <= victim.MinTXID && victim.MaxTXID <= info.MaxTXID {
				return true
			}
		}
		return false
	})
	// Later listings, made once each level's index expires, find nothing
	// new to report.
	lists := counter.lists.Load()
	waitFor(t, 20*time.Second, "later listings", func() bool {
		insert(5)
		return counter.lists.Load() >= lists+4
	})
	if n := logs.count(warning, "level=0"); n > 1 {
		t.Fatalf("the removal was logged %d times, want once:\n%s", n, logs.String())
	}

	// Someone else writes a snapshot: the next snapshot listing after the
	// refresh interval reports it.
	other := file.NewReplicaClient(backend.Path())
	pos, rc, err := db.SnapshotReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.WriteLTXFile(ctx, litestream.SnapshotLevel, 1, pos.TXID, rc)
	_ = rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	before := logs.count(warning, "level=9")
	waitFor(t, 30*time.Second, "the added snapshot to be noticed", func() bool {
		if _, err := db.EnforceSnapshotRetention(ctx, time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		return logs.count(warning, "level=9") > before
	})
	var sawChange bool
	for len(events.C) > 0 {
		if e := <-events.C; e.Type == litestream.EventReplicaChanged {
			sawChange = true
		}
	}
	if !sawChange {
		t.Fatal("no EventReplicaChanged was published")
	}
	// No TXID from the oldest snapshot on is missing, and the latest
	// restore equals the app's database.
	errs, err := litestream.NewReplicaWithClient(nil, backend).ValidateChain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Errorf("replica chain: %s", e.Message)
	}
	r := litestream.NewReplicaWithClient(nil, backend)
	if got, want := MustCheckRestored(t, MustRestore(t, r, 0)), MustDump(t, app); got != want {
		t.Fatalf("restored %s, app has %s", got, want)
	}

}

// A subscriber sees every L0 TXID written and uploaded, in order, and a
// stall and its recovery; a subscriber that never reads does not hold
// replication back and is told how many events it missed.
func TestEvents_OrderStallRecoverAndSlowSubscriber(t *testing.T) {
	dir := t.TempDir()
	backend := file.NewReplicaClient(filepath.Join(dir, "replica"))
	var failWrites atomic.Bool
	failing := &testClient{ReplicaClient: backend, onWrite: func(level int, r io.Reader, write func(io.Reader) (*ltx.FileInfo, error)) (*ltx.FileInfo, error) {
		if failWrites.Load() {
			return nil, fmt.Errorf("injected write failure for L%d", level)
		}
		return write(r)
	}}
	db := newVerifiedDB(t, filepath.Join(dir, "db"), failing, backend)
	db.MonitorInterval = 20 * time.Millisecond
	db.Replica.SyncInterval = 20 * time.Millisecond
	store := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
	all := store.Subscribe(0)
	defer all.Close()
	slow := db.Subscribe(1) // never read until the end
	defer slow.Close()
	ctx := context.Background()
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close(ctx) }()
	app := MustOpenApp(t, db.Path(), 4096)

	for i := 0; i < 30; i++ {
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	failWrites.Store(true)
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (-1)`); err != nil {
		t.Fatal(err)
	}
	var written, uploaded []ltx.TXID
	var stalled, recovered bool
	deadline := time.After(30 * time.Second)
	for !recovered {
		select {
		case e := <-all.C:
			if e.DB != db.Path() {
				t.Fatalf("event for %q, want %q", e.DB, db.Path())
			}
			switch e.Type {
			case litestream.EventL0Written:
				written = append(written, e.MaxTXID)
			case litestream.EventUploaded:
				uploaded = append(uploaded, e.MaxTXID)
			case litestream.EventStalled:
				if e.Err == nil {
					t.Fatal("stall event without its error")
				}
				stalled = true
				failWrites.Store(false)
			case litestream.EventRecovered:
				if !stalled {
					t.Fatal("recovered before a stall was reported")
				}
				recovered = true
			}
			if e.Missed != 0 {
				t.Fatalf("the store subscriber missed %d events", e.Missed)
			}
		case <-deadline:
			t.Fatalf("no stall and recovery within 30s (written %v, uploaded %v, stalled %v)", written, uploaded, stalled)
		}
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	pos, err := db.Pos()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the last upload event", func() bool {
		for len(all.C) > 0 {
			if e := <-all.C; e.Type == litestream.EventUploaded {
				uploaded = append(uploaded, e.MaxTXID)
			} else if e.Type == litestream.EventL0Written {
				written = append(written, e.MaxTXID)
			}
		}
		return len(uploaded) > 0 && uploaded[len(uploaded)-1] == pos.TXID
	})
	for _, seq := range [][]ltx.TXID{written, uploaded} {
		for i := 1; i < len(seq); i++ {
			if seq[i] != seq[i-1]+1 {
				t.Fatalf("TXIDs not dense and in order: %v", seq)
			}
		}
	}
	if written[len(written)-1] != pos.TXID {
		t.Fatalf("last written event TXID %s, DB at %s", written[len(written)-1], pos.TXID)
	}

	// The slow subscriber holds its one buffered event; the next event tells
	// it how many it missed.
	first := <-slow.C
	if first.Type == 0 {
		t.Fatal("slow subscriber got no event")
	}
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (-2)`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case next := <-slow.C:
		if next.Missed == 0 {
			t.Fatal("the slow subscriber was not told it missed events")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the slow subscriber got no event after reading again")
	}
}
