// Tests of follow mode.
package litestream_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func countRows(t testing.TB, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A follower tracks a live writer while another process reads it, resumes
// after being stopped, and refuses a corrupt file without changing anything.
func TestReplica_Restore_Follow(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	insert := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(500))`, i); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	insert(10)

	var logs syncBuffer
	owner := litestream.NewDB(filepath.Join(t.TempDir(), "unused"))
	owner.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	follower := litestream.NewReplicaWithClient(owner, client)
	out := filepath.Join(t.TempDir(), "follow.db")
	stop := startFollow(follower, out)
	waitFor(t, 10*time.Second, "initial restore", func() bool {
		txid, _ := litestream.ReadTXIDFile(out)
		return txid > 0
	})

	// A reader in another process checks integrity while the follower writes.
	reader := exec.Command(os.Args[0])
	reader.Env = append(os.Environ(), "LITESTREAM_TEST_CHILD=follow-reader", "LITESTREAM_TEST_DIR="+out)
	var readerOut bytes.Buffer
	reader.Stdout, reader.Stderr = &readerOut, &readerOut
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait on the sidecar: opening the output in this process while the
	// follower writes would drop the follower's locks (POSIX locks are per
	// process).
	caughtUp := func() { t.Helper(); waitFollowed(t, db, out) }
	for round := 0; round < 10; round++ {
		insert(20)
		caughtUp()
	}
	if err := reader.Wait(); err != nil {
		t.Fatalf("reader process: %v\n%s", err, readerOut.String())
	}
	if err := stop(); err != nil {
		t.Fatalf("follow returned %v", err)
	}
	if got, want := countRows(t, out), countRowsApp(t, app); got != want {
		t.Fatalf("follower has %d rows, writer %d", got, want)
	}

	// Resume from the sidecar after a stop.
	insert(5)
	want := countRowsApp(t, app)
	stop = startFollow(follower, out)
	caughtUp()

	// A corrupt next file is refused: nothing applied, TXID unchanged.
	good, err := litestream.ReadTXIDFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Replica.Stop(false); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (-1)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	next := good + 1
	local := db.LTXPath(0, next, next)
	b, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	b[ltx.HeaderSize+12] ^= 0xff
	corrupt := bytes.NewReader(b)
	if _, err := client.WriteLTXFile(ctx, 0, next, next, corrupt); err != nil {
		t.Fatal(err)
	}
	name := ltx.FormatFilename(next, next)
	waitFor(t, 10*time.Second, "follower to log the corrupt file", func() bool { return strings.Contains(logs.String(), name) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if txid, _ := litestream.ReadTXIDFile(out); txid != good {
		t.Fatalf("follower moved to %s past a corrupt file", txid)
	}
	if n := countRows(t, out); n != want {
		t.Fatalf("follower has %d rows after a corrupt file, want %d", n, want)
	}
	if got := MustCheckRestored(t, out); got == "" {
		t.Fatal("empty dump")
	}

	// Put the good file back so the replica check at cleanup passes.
	f, err := os.Open(local)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if _, err := client.WriteLTXFile(ctx, 0, next, next, f); err != nil {
		t.Fatal(err)
	}
}

// startFollow runs a follow-mode restore into out until stop is called;
// stop returns the restore's error.
func startFollow(follower *litestream.Replica, out string) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		opt := litestream.NewRestoreOptions()
		opt.OutputPath, opt.Follow, opt.FollowInterval = out, true, 20*time.Millisecond
		errc <- follower.Restore(ctx, opt)
	}()
	return func() error { cancel(); return <-errc }
}

// waitFollowed waits until the follower's sidecar reaches the writer's TXID.
func waitFollowed(t testing.TB, db *litestream.DB, out string) {
	t.Helper()
	pos, err := db.Pos()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("follower to reach txid %s", pos.TXID), func() bool {
		txid, _ := litestream.ReadTXIDFile(out)
		return txid >= pos.TXID
	})
}

// A follower stopped while L0 retention removes the L0 files it has not
// applied resumes from its sidecar through L1 and ends equal to the source.
func TestReplica_Restore_FollowBridgesL0Gap(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	db.L0Retention = time.Nanosecond // every L0 file L1 covers is old enough
	insert := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(300))`, i); err != nil {
				t.Fatal(err)
			}
			if err := db.Sync(ctx); err != nil { // one L0 file per row
				t.Fatal(err)
			}
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	insert(5)

	follower := litestream.NewReplicaWithClient(nil, client)
	out := filepath.Join(t.TempDir(), "follow.db")
	stop := startFollow(follower, out)
	waitFollowed(t, db, out)
	if err := stop(); err != nil {
		t.Fatalf("follow returned %v", err)
	}
	applied, err := litestream.ReadTXIDFile(out)
	if err != nil {
		t.Fatal(err)
	}

	// The writer goes on; two compactions into L1 let L0 retention delete
	// every L0 file but the newest.
	for round := 0; round < 2; round++ {
		insert(10)
		if _, err := db.Compact(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	l0 := L0TXIDs(t, client)
	if len(l0) == 0 || l0[0] <= applied+1 {
		t.Fatalf("L0 holds %v; want the files after the follower's txid %s deleted", l0, applied)
	}
	insert(3) // and L0 files after the gap

	stop = startFollow(follower, out)
	waitFollowed(t, db, out)
	if err := stop(); err != nil {
		t.Fatalf("follow returned %v", err)
	}
	if got, want := MustCheckRestored(t, out), MustDump(t, app); got != want {
		t.Fatalf("follower %s, source %s", got, want)
	}
}

// A follower that crashed after committing files but before recording
// their TXID resumes from its older sidecar: when L0 retention removed the
// files after that TXID, the first file it applies again is an L1 file
// that overlaps what the output already holds, and the output still ends
// equal to the source.
func TestReplica_Restore_FollowResumesBehindItsOutputThroughL1(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	db.L0Retention = time.Nanosecond // every L0 file L1 covers is old enough
	insert := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(300))`, i); err != nil {
				t.Fatal(err)
			} else if _, err := app.Exec(`UPDATE t SET v = v + 1 WHERE id % 3 = ?`, i%3); err != nil {
				t.Fatal(err)
			}
			if err := db.Sync(ctx); err != nil { // one L0 file per row
				t.Fatal(err)
			}
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	insert(5)

	follower := litestream.NewReplicaWithClient(nil, client)
	out := filepath.Join(t.TempDir(), "follow.db")
	stop := startFollow(follower, out)
	waitFollowed(t, db, out)
	if err := stop(); err != nil {
		t.Fatalf("follow returned %v", err)
	}
	recorded, err := litestream.ReadTXIDFile(out)
	if err != nil {
		t.Fatal(err)
	}

	// The follower applies more, and "crashes" before recording it: its
	// sidecar goes back to the TXID recorded before.
	insert(6)
	stop = startFollow(follower, out)
	waitFollowed(t, db, out)
	if err := stop(); err != nil {
		t.Fatalf("follow returned %v", err)
	}
	held, err := litestream.ReadTXIDFile(out)
	if err != nil {
		t.Fatal(err)
	} else if held <= recorded {
		t.Fatalf("follower at %s did not move past %s", held, recorded)
	}
	if err := litestream.WriteTXIDFile(out, recorded); err != nil {
		t.Fatal(err)
	}

	// Compaction into L1 and L0 retention remove the L0 files after the
	// recorded TXID, so the resume starts with L1 files that overlap it.
	for round := 0; round < 2; round++ {
		insert(4)
		if _, err := db.Compact(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	if l0 := L0TXIDs(t, client); len(l0) == 0 || l0[0] <= recorded+1 {
		t.Fatalf("L0 holds %v; want the files after the recorded txid %s deleted", l0, recorded)
	}
	overlapping := false
	for _, info := range levelFiles(t, client, 1) {
		overlapping = overlapping || (info.MinTXID <= recorded+1 && info.MaxTXID > held)
	}
	if !overlapping {
		t.Fatalf("no L1 file spans from the recorded txid %s past the output's %s", recorded, held)
	}
	insert(3)

	stop = startFollow(follower, out)
	waitFollowed(t, db, out)
	if err := stop(); err != nil {
		t.Fatalf("follow returned %v", err)
	}
	if got, want := MustCheckRestored(t, out), MustDump(t, app); got != want {
		t.Fatalf("follower resumed behind its output: %s, source %s", got, want)
	}
}

func countRowsApp(t testing.TB, app *sql.DB) int {
	t.Helper()
	var n int
	if err := app.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// followReader runs integrity checks on a followed database for a few
// seconds from its own process, so that SQLite's file locks apply.
func followReader(path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	deadline := time.Now().Add(3 * time.Second)
	var checks int
	for time.Now().Before(deadline) {
		var result string
		if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&result); err != nil {
			return fmt.Errorf("check %d: %w", checks, err)
		} else if result != "ok" {
			return fmt.Errorf("check %d: %s", checks, result)
		}
		checks++
	}
	if checks == 0 {
		return fmt.Errorf("no checks ran")
	}
	fmt.Printf("%d integrity checks ok\n", checks)
	return nil
}
