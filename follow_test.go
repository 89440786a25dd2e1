// Tests of follow mode.
package litestream_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
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
	db, err := sql.Open("sqlite", testFileURI(path)+"?mode=ro&_pragma=busy_timeout(5000)")
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
	stop, _ = startFollowEnding(follower, out)
	return stop
}

// startFollowEnding is startFollow that also returns a channel receiving the
// restore's error if it ends by itself (stop then returns nil). stop may be
// called again, e.g. deferred after a test's own call.
func startFollowEnding(follower *litestream.Replica, out string) (stop func() error, ended <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc, endc := make(chan error, 1), make(chan error, 1)
	go func() {
		opt := litestream.NewRestoreOptions()
		opt.OutputPath, opt.Follow, opt.FollowInterval = out, true, 20*time.Millisecond
		err := follower.Restore(ctx, opt)
		if ctx.Err() == nil {
			endc <- err
			err = nil
		}
		errc <- err
	}()
	return sync.OnceValue(func() error { cancel(); return <-errc }), endc
}

// waitFollowRefused waits up to 30 s for a follow-mode restore to end by
// itself with the refusal of a replica another database replaced.
func waitFollowRefused(t testing.TB, ended <-chan error) {
	t.Helper()
	select {
	case err := <-ended:
		if !errors.Is(err, litestream.ErrLTXCorrupted) || !strings.Contains(err.Error(), "replaced by another database") {
			t.Fatalf("follow ended with %v, want the refusal of a replaced replica (ErrLTXCorrupted)", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("follow did not end with the refusal of the replaced replica")
	}
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

// followGap is a source database whose L0 retention removes every L0 file
// that L1 covers, and a follower of its replica.
type followGap struct {
	t        *testing.T
	ctx      context.Context
	db       *litestream.DB
	app      *sql.DB
	client   litestream.ReplicaClient
	follower *litestream.Replica
	out      string
}

func newFollowGap(t *testing.T) *followGap {
	db, app, client := MustOpenDB(t, 4096)
	db.L0Retention = time.Nanosecond // every L0 file L1 covers is old enough
	g := &followGap{t: t, ctx: context.Background(), db: db, app: app, client: client,
		follower: litestream.NewReplicaWithClient(nil, client), out: filepath.Join(t.TempDir(), "follow.db")}
	g.insert(5)
	return g
}

// insert commits n rows, each with an update of older rows, one L0 file each.
func (g *followGap) insert(n int) {
	g.t.Helper()
	for i := 0; i < n; i++ {
		if _, err := g.app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(300))`, i); err != nil {
			g.t.Fatal(err)
		} else if _, err := g.app.Exec(`UPDATE t SET v = v + 1 WHERE id % 3 = ?`, i%3); err != nil {
			g.t.Fatal(err)
		}
		if err := g.db.Sync(g.ctx); err != nil {
			g.t.Fatal(err)
		}
	}
	if err := g.db.SyncAndWait(g.ctx); err != nil {
		g.t.Fatal(err)
	}
}

// follow runs the follower until it reaches the source, and returns the
// TXID its sidecar then records.
func (g *followGap) follow() ltx.TXID {
	g.t.Helper()
	stop := startFollow(g.follower, g.out)
	waitFollowed(g.t, g.db, g.out)
	if err := stop(); err != nil {
		g.t.Fatalf("follow returned %v", err)
	}
	txid, err := litestream.ReadTXIDFile(g.out)
	if err != nil {
		g.t.Fatal(err)
	}
	return txid
}

// compactPast has the writer go on through two compactions into L1, which
// let L0 retention delete every L0 file but the newest, and checks that the
// L0 files after txid are gone.
func (g *followGap) compactPast(txid ltx.TXID, rows int) {
	g.t.Helper()
	for round := 0; round < 2; round++ {
		g.insert(rows)
		if _, err := g.db.Compact(g.ctx, 1); err != nil {
			g.t.Fatal(err)
		}
	}
	if l0 := L0TXIDs(g.t, g.client); len(l0) == 0 || l0[0] <= txid+1 {
		g.t.Fatalf("L0 holds %v; want the files after txid %s deleted", l0, txid)
	}
}

// checkEqual fails unless the follower's output equals the source.
func (g *followGap) checkEqual() {
	g.t.Helper()
	if got, want := MustCheckRestored(g.t, g.out), MustDump(g.t, g.app); got != want {
		g.t.Fatalf("follower %s, source %s", got, want)
	}
}

// A follower stopped while L0 retention removes the L0 files it has not
// applied resumes from its sidecar through L1 and ends equal to the source.
func TestReplica_Restore_FollowBridgesL0Gap(t *testing.T) {
	g := newFollowGap(t)
	applied := g.follow()
	g.compactPast(applied, 10)
	g.insert(3) // and L0 files after the gap
	g.follow()
	g.checkEqual()
}

// A follower that crashed after committing files but before recording
// their TXID resumes from its older sidecar: when L0 retention removed the
// files after that TXID, the first file it applies again is an L1 file
// that overlaps what the output already holds, and the output still ends
// equal to the source.
func TestReplica_Restore_FollowResumesBehindItsOutputThroughL1(t *testing.T) {
	g := newFollowGap(t)
	recorded := g.follow()

	// The follower applies more, and "crashes" before recording it: its
	// sidecar goes back to the TXID recorded before.
	g.insert(6)
	held := g.follow()
	if held <= recorded {
		t.Fatalf("follower at %s did not move past %s", held, recorded)
	}
	if err := litestream.WriteTXIDFile(g.out, recorded); err != nil {
		t.Fatal(err)
	}

	// The L0 files after the recorded TXID go, so the resume starts with an
	// L1 file that overlaps what the output holds.
	g.compactPast(recorded, 4)
	overlapping := false
	for _, info := range levelFiles(t, g.client, 1) {
		overlapping = overlapping || (info.MinTXID <= recorded+1 && info.MaxTXID > held)
	}
	if !overlapping {
		t.Fatalf("no L1 file spans from the recorded txid %s past the output's %s", recorded, held)
	}
	g.insert(3)
	g.follow()
	g.checkEqual()
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

// A follower that died while checking its output against a restore left
// the check's directory, a whole database, beside the output: the next
// follower of that output removes it, and leaves other outputs' alone.
func TestReplica_Restore_FollowRemovesCheckLeftByCrash(t *testing.T) {
	db, app, client := MustOpenDB(t, 4096)
	mustInsertReplicated(t, db, app, 1, 2)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.db")
	stale := filepath.Join(dir, ".out.db-litestream-follow-check-123")
	other := filepath.Join(dir, ".other.db-litestream-follow-check-456")
	for _, d := range []string{stale, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "db"), []byte("copy"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stop := startFollow(litestream.NewReplicaWithClient(nil, client), out)
	waitFollowed(t, db, out)
	if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("check directory left by a crashed follower still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another output's check directory was removed: %v", err)
	}
}

// headerVersion returns the SQLITE_VERSION_NUMBER at offset 96 of page 1:
// the library whose commit last wrote page 1.
func headerVersion(t testing.TB, page1 []byte) uint32 {
	t.Helper()
	if len(page1) < 100 {
		t.Fatalf("page 1 of %d bytes", len(page1))
	}
	return binary.BigEndian.Uint32(page1[96:100])
}

// fileHeader returns the first 100 bytes of the file at path.
func fileHeader(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	b := make([]byte, 100)
	if _, err := io.ReadFull(f, b); err != nil {
		t.Fatalf("read header of %s: %v", path, err)
	}
	return b
}

// ltxPage1 returns page 1 as the LTX file at path holds it, nil if it
// holds none.
func ltxPage1(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	dec := ltx.NewDecoder(f)
	if err := dec.DecodeHeader(); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, dec.Header().PageSize)
	for {
		var hdr ltx.PageHeader
		if err := dec.DecodePage(&hdr, data); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			t.Fatal(err)
		} else if hdr.Pgno == 1 {
			return data
		}
	}
}

// setHeaderVersion writes version at offset 96 of the database file at
// path, as an app's SQLite of that version leaves it after a commit that
// wrote page 1. Nothing may have the database open.
func setHeaderVersion(t testing.TB, path string, version uint32) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], version)
	if _, err := f.WriteAt(b[:], 96); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// A follower's commits write page 1 (bumpCounter), and its SQLite then
// stamps its own SQLITE_VERSION_NUMBER at page 1 offset 96; the replica's
// page 1 holds the version of the app's SQLite. A follower of the same
// database must go on where an app links another SQLite version than the
// follower's, whichever way it checks its output against the replica on
// resuming:
//   - Resumed: against the replica's L0 file at the sidecar's TXID, which
//     holds page 1 (here a full snapshot);
//   - Proved: that file is gone (retention), so against a full restore.
//
// The app's other version is written into the database file while nothing
// has it open; replication then starts again with a full snapshot.
func TestReplica_Restore_FollowAppOfOtherSQLiteVersion(t *testing.T) {
	for _, name := range []string{"Resumed", "Proved"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			path := filepath.Join(dir, "db")
			client := file.NewReplicaClient(filepath.Join(dir, "replica"))
			app := MustOpenApp(t, path, 4096)
			db := mustOpenManualDB(t, path, client)
			mustInsertReplicated(t, db, app, 1, 3)

			var logs syncBuffer
			owner := litestream.NewDB(filepath.Join(t.TempDir(), "unused"))
			owner.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			follower := litestream.NewReplicaWithClient(owner, file.NewReplicaClient(client.Path()))
			out := filepath.Join(t.TempDir(), "follow.db")
			stop := startFollow(follower, out)
			defer func() { _ = stop() }()
			waitFollowed(t, db, out)

			// The app's page 1 now carries another SQLite's version.
			if err := db.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if err := app.Close(); err != nil { // the last connection: WAL checkpointed and removed
				t.Fatal(err)
			}
			other := uint32(3040001)
			if headerVersion(t, fileHeader(t, path)) == other {
				other++
			}
			setHeaderVersion(t, path, other)
			app = MustOpenApp(t, path, 4096)
			db = mustOpenManualDB(t, path, client)
			update := func(q string) { // in place: page 1 not written again
				t.Helper()
				if _, err := app.Exec(q); err != nil {
					t.Fatal(err)
				}
				if err := db.SyncAndWait(ctx); err != nil {
					t.Fatal(err)
				}
			}
			update(`UPDATE t SET v = 6 WHERE id = 1`)
			waitFollowed(t, db, out) // a follow commit, not the restore, brings it there
			err := stop()
			stop = func() error { return nil }
			if err != nil {
				t.Fatal(err)
			}
			txid, err := litestream.ReadTXIDFile(out)
			if err != nil {
				t.Fatal(err)
			}
			page1 := ltxPage1(t, client.LTXFilePath(0, txid, txid))
			if page1 == nil || headerVersion(t, page1) != other {
				t.Fatalf("precondition: the replica's L0 file at the follower's TXID %s holds no page 1 of version %d", txid, other)
			}
			if v := headerVersion(t, fileHeader(t, out)); v == other {
				t.Fatalf("precondition: the follower's output has version %d on page 1 too", v)
			}

			if name == "Proved" {
				db.L0Retention = time.Nanosecond
				if _, err := db.Compact(ctx, 1); err != nil { // L1 ends at the follower's TXID
					t.Fatal(err)
				}
				update(`UPDATE t SET v = 7 WHERE id = 1`)
				update(`UPDATE t SET v = 8 WHERE id = 2`)
				if err := db.EnforceL0RetentionByTime(ctx); err != nil {
					t.Fatal(err)
				}
				if l0 := L0TXIDs(t, client); len(l0) == 0 || l0[0] <= txid {
					t.Fatalf("precondition: the L0 file at the follower's TXID %s is still there: L0 %v", txid, l0)
				}
			}
			update(`UPDATE t SET v = 9 WHERE id = 3`)
			stop = startFollow(follower, out) // the follower resumes
			pos, err := db.Pos()
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, fmt.Sprintf("follower to reach txid %s", pos.TXID), func() bool {
				if line := firstLine(logs.String(), "replaced by another database"); line != "" {
					t.Fatalf("the follower of the same database was refused: %s", line)
				}
				got, _ := litestream.ReadTXIDFile(out)
				return got >= pos.TXID
			})
			if got, want := MustCheckRestored(t, out), MustDump(t, app); got != want {
				t.Fatalf("follower %s, source %s", got, want)
			}
		})
	}
}
