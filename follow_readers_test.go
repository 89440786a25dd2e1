// Follow-mode tests with readers: readers in the follower's process and in
// another one check a bank invariant while the follower applies files, is
// killed in the middle of a large file, and hits a lasting write error;
// long-lived readers see each file, and the output is whole on exit.
package litestream_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// The bank: balances that always sum to bankAccounts*bankBalance, an index
// over them, and one blob and one meta count per transaction.
const (
	bankAccounts = 2000
	bankBalance  = 100
)

func setupBank(t testing.TB, app *sql.DB) {
	t.Helper()
	for _, stmt := range []string{
		`CREATE TABLE accounts (id INTEGER PRIMARY KEY, grp INTEGER, bal INTEGER)`,
		`CREATE INDEX accounts_grp_bal ON accounts (grp, bal)`,
		`CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)`,
		`CREATE TABLE meta (n INTEGER)`,
		`INSERT INTO meta VALUES (0)`,
		fmt.Sprintf(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < %d)
			INSERT INTO accounts SELECT i, i %% 37, %d FROM s`, bankAccounts, bankBalance),
	} {
		if _, err := app.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
}

// bankTx moves money between random accounts across the table and adds a
// blob of blobSize bytes, in one transaction. A zero blob compresses to
// almost nothing in LTX files but takes its full size in the database.
func bankTx(app *sql.DB, rng *rand.Rand, blobSize int, zero bool) error {
	tx, err := app.Begin()
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for i := 0; i < 30; i++ {
		from, to, amt := 1+rng.Intn(bankAccounts), 1+rng.Intn(bankAccounts), rng.Intn(50)
		if _, err := tx.Exec(`UPDATE accounts SET bal = bal - ? WHERE id = ?`, amt, from); err != nil {
			return err
		} else if _, err := tx.Exec(`UPDATE accounts SET bal = bal + ? WHERE id = ?`, amt, to); err != nil {
			return err
		}
	}
	blob := `randomblob(?)`
	if zero {
		blob = `zeroblob(?)`
	}
	if _, err := tx.Exec(`INSERT INTO blobs (data) VALUES (`+blob+`)`, blobSize); err != nil {
		return err
	} else if _, err := tx.Exec(`UPDATE meta SET n = n + 1`); err != nil {
		return err
	}
	return tx.Commit()
}

// bankQuerier is a pool or a single connection.
type bankQuerier interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// checkBank checks the bank's invariants and quick_check in one read
// transaction and returns the transaction count it saw.
func checkBank(ctx context.Context, q bankQuerier) (int64, error) {
	tx, err := q.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	var sum, count, idxSum, n, blobs int64
	if err := tx.QueryRow(`SELECT sum(bal), count(*) FROM accounts`).Scan(&sum, &count); err != nil {
		return 0, fmt.Errorf("sum accounts: %w", err)
	} else if err := tx.QueryRow(`SELECT sum(bal) FROM accounts INDEXED BY accounts_grp_bal WHERE grp >= 0`).Scan(&idxSum); err != nil {
		return 0, fmt.Errorf("sum index: %w", err)
	} else if err := tx.QueryRow(`SELECT n FROM meta`).Scan(&n); err != nil {
		return 0, fmt.Errorf("read meta: %w", err)
	} else if err := tx.QueryRow(`SELECT count(*) FROM blobs`).Scan(&blobs); err != nil {
		return 0, fmt.Errorf("count blobs: %w", err)
	}
	switch want := int64(bankAccounts * bankBalance); {
	case count != bankAccounts || sum != want:
		return n, fmt.Errorf("torn: %d accounts sum to %d, want %d summing to %d", count, sum, bankAccounts, want)
	case idxSum != sum:
		return n, fmt.Errorf("torn: index sums to %d, table to %d", idxSum, sum)
	case blobs != n:
		return n, fmt.Errorf("torn: %d blobs after %d transactions", blobs, n)
	}
	var result string
	if err := tx.QueryRow(`PRAGMA quick_check`).Scan(&result); err != nil {
		return n, fmt.Errorf("quick_check: %w", err)
	} else if result != "ok" {
		return n, fmt.Errorf("quick_check: %s", result)
	}
	return n, tx.Commit()
}

// bankReaders runs readers on a followed database until stopped: some of
// a pool, a connection per check, and a long-lived connection with a large
// cache. Each also checks that n never goes backwards.
type bankReaders struct {
	path       string
	stop       chan struct{}
	wg         sync.WaitGroup
	checks     atomic.Int64
	mu         sync.Mutex
	violations []string
	nviolation int
	last       atomic.Int64 // the newest n any reader saw
}

func bankDSN(path string) string { return "file:" + path + "?_pragma=busy_timeout(30000)" }

// Reader kinds for startBankReaders.
const (
	readPool  = "pool"
	readFresh = "fresh"
	readLong  = "long-lived"
)

func startBankReaders(path string, kinds ...string) (*bankReaders, error) {
	r := &bankReaders{path: path, stop: make(chan struct{})}
	pool, err := sql.Open("sqlite", bankDSN(path))
	if err != nil {
		return nil, err
	}
	pool.SetMaxOpenConns(2)
	long, err := sql.Open("sqlite", bankDSN(path)+"&_pragma=cache_size(-65536)")
	if err != nil {
		return nil, err
	}
	long.SetMaxOpenConns(1)
	for _, kind := range kinds {
		switch kind {
		case readPool:
			r.run(kind, func(ctx context.Context) (int64, error) { return checkBank(ctx, pool) })
		case readLong:
			r.run(kind, func(ctx context.Context) (int64, error) { return checkBank(ctx, long) })
		case readFresh:
			r.run(kind, func(ctx context.Context) (int64, error) {
				db, err := sql.Open("sqlite", bankDSN(path))
				if err != nil {
					return 0, err
				}
				defer func() { _ = db.Close() }()
				return checkBank(ctx, db)
			})
		default:
			return nil, fmt.Errorf("unknown reader kind %q", kind)
		}
	}
	go func() {
		r.wg.Wait()
		_ = pool.Close()
		_ = long.Close()
	}()
	return r, nil
}

func (r *bankReaders) run(kind string, check func(context.Context) (int64, error)) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		var prev int64
		for {
			select {
			case <-r.stop:
				return
			default:
			}
			n, err := check(context.Background())
			if err == nil && n < prev {
				err = fmt.Errorf("went back from %d to %d transactions", prev, n)
			}
			if err != nil {
				r.violate(fmt.Sprintf("%s: %v", kind, err))
				continue
			}
			prev = n
			r.checks.Add(1)
			for {
				last := r.last.Load()
				if n <= last || r.last.CompareAndSwap(last, n) {
					break
				}
			}
		}
	}()
}

func (r *bankReaders) violate(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nviolation++
	if len(r.violations) < 10 {
		r.violations = append(r.violations, msg)
	}
}

// waitChecks waits until the readers have made n more checks.
func (r *bankReaders) waitChecks(t testing.TB, n int64) {
	t.Helper()
	want := r.checks.Load() + n
	waitFor(t, 2*time.Minute, fmt.Sprintf("readers to check %d times (at %d)", n, r.checks.Load()), func() bool { return r.checks.Load() >= want })
}

// close stops the readers and returns their checks and violations.
func (r *bankReaders) close() (int64, int, []string) {
	close(r.stop)
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checks.Load(), r.nviolation, r.violations
}

// followChecker is the reader process: it runs a pool reader and a fresh
// one on the database at path until the file path+".stop" appears, then
// reports.
func followChecker(path string) error {
	r, err := startBankReaders(path, readPool, readFresh)
	if err != nil {
		return err
	}
	for {
		if _, err := os.Stat(path + ".stop"); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	checks, n, violations := r.close()
	fmt.Printf("%d checks, %d violations\n", checks, n)
	for _, v := range violations {
		fmt.Println(v)
	}
	if n > 0 || checks == 0 {
		return fmt.Errorf("%d violations in %d checks", n, checks)
	}
	return nil
}

// followerChild is a follower process: it follows the file replica at
// LITESTREAM_TEST_REPLICA into path. LITESTREAM_TEST_KILL_AT_PAGE kills it
// with SIGKILL after writing that many pages of one file,
// LITESTREAM_TEST_KILL_AT_STEP at that crash point;
// LITESTREAM_TEST_FSIZE limits the size of any file it writes.
func followerChild(path string) error {
	if n, _ := strconv.Atoi(os.Getenv("LITESTREAM_TEST_KILL_AT_PAGE")); n > 0 {
		litestream.SetFollowPageHook(func(written int) error {
			if written == n {
				_ = os.WriteFile(path+".killed", nil, 0o600)
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
			return nil
		})
	}
	if step := os.Getenv("LITESTREAM_TEST_KILL_AT_STEP"); step != "" {
		litestream.SetCrashPoint(func(name string) {
			if name == step {
				_ = os.WriteFile(path+".killed", nil, 0o600)
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
		})
	}
	if n, _ := strconv.ParseUint(os.Getenv("LITESTREAM_TEST_FSIZE"), 10, 64); n > 0 {
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
			return err
		}
	}
	r := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(os.Getenv("LITESTREAM_TEST_REPLICA")))
	opt := litestream.NewRestoreOptions()
	opt.OutputPath, opt.Follow, opt.FollowInterval = path, true, 20*time.Millisecond
	return r.Restore(context.Background(), opt)
}

// startChild re-runs the test binary as the named child with extra env.
func startChild(t testing.TB, name, path string, env ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), append([]string{"LITESTREAM_TEST_CHILD=" + name, "LITESTREAM_TEST_DIR=" + path}, env...)...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, out
}

// readMetaN reads the follower output's transaction count.
func readMetaN(t testing.TB, path string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", bankDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	n, err := checkBank(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitCaughtUp waits, polling, until the follower's sidecar reaches the
// writer's TXID, and reports how far it got if it does not.
func waitCaughtUp(t testing.TB, db *litestream.DB, out string, readers *bankReaders) {
	t.Helper()
	pos, err := db.Pos()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for deadline := start.Add(2 * time.Minute); ; {
		txid, err := litestream.ReadTXIDFile(out)
		if err == nil && txid >= pos.TXID {
			t.Logf("follower reached txid %s in %s", pos.TXID, time.Since(start).Round(time.Millisecond))
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("follower at txid %s (err %v), writer at %s after %s; readers made %d checks, newest n %d",
				txid, err, pos.TXID, time.Since(start).Round(time.Second), readers.checks.Load(), readers.last.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Readers in the follower's process and in another, with pooled, fresh
// and long-lived connections, only ever see whole transactions: while the
// follower applies dozens of multi-page files, after it is killed in the
// middle of a large file, and while a lasting write error fails every
// apply. A restarted follower then catches up to the source.
func TestReplica_Restore_FollowReaders(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	setupBank(t, app)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	commit := func(blobSize int, zero bool) {
		t.Helper()
		if err := bankTx(app, rng, blobSize, zero); err != nil {
			t.Fatal(err)
		} else if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	commit(1000, false)

	follower := litestream.NewReplicaWithClient(nil, client)
	out := filepath.Join(t.TempDir(), "follow.db")
	// A reader that opens the output as soon as it appears finds it in
	// the mode the follower keeps it in.
	modec := make(chan string, 1)
	go func() {
		for {
			if _, err := os.Stat(out); err == nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		c, err := sql.Open("sqlite", bankDSN(out))
		if err != nil {
			modec <- err.Error()
			return
		}
		defer func() { _ = c.Close() }()
		var mode string
		if err := c.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
			mode = err.Error()
		}
		modec <- mode
	}()
	stop := startFollow(follower, out)
	waitFollowed(t, db, out)
	if mode := <-modec; mode != "wal" {
		t.Errorf("a reader found the new output in journal mode %q", mode)
	}

	readers, err := startBankReaders(out, readPool, readFresh, readLong)
	if err != nil {
		t.Fatal(err)
	}
	checker, checkerOut := startChild(t, "follow-checker", out)
	defer func() {
		if checker.ProcessState == nil {
			_ = os.WriteFile(out+".stop", nil, 0o600)
			_ = checker.Wait()
		}
	}()

	// Dozens of multi-page transactions, one file each.
	for i := 0; i < 60; i++ {
		commit(1000+rng.Intn(12000), false)
	}
	waitCaughtUp(t, db, out, readers)
	readers.waitChecks(t, 5)
	if err := stop(); err != nil {
		t.Fatalf("follow returned %v", err)
	}
	before := readMetaN(t, out)

	// A follower process killed in the middle of a large file, past its
	// cache size so that pages have reached the WAL, leaves readers at the
	// file before.
	commit(3<<20, true)
	killed, killedOut := startChild(t, "follower", out, "LITESTREAM_TEST_REPLICA="+client.Path(), "LITESTREAM_TEST_KILL_AT_PAGE=640")
	if err := killed.Wait(); err == nil {
		t.Fatalf("follower was not killed:\n%s", killedOut.String())
	}
	if _, err := os.Stat(out + ".killed"); err != nil {
		t.Fatalf("follower did not reach the kill point:\n%s", killedOut.String())
	}
	if fi, err := os.Stat(out + "-wal"); err == nil {
		t.Logf("follower killed with a %d-byte WAL", fi.Size())
	}
	readers.waitChecks(t, 5)
	if n := readMetaN(t, out); n != before {
		t.Fatalf("after the kill readers see %d transactions, want %d", n, before)
	}

	// A lasting write error: no file of the follower may pass 1 MiB, so
	// the large file's WAL frames fail to write on every tick (its LTX
	// file is small: the blob is zeros).
	failing, failingOut := startChild(t, "follower", out, "LITESTREAM_TEST_REPLICA="+client.Path(), "LITESTREAM_TEST_FSIZE="+strconv.Itoa(1<<20))
	waitFor(t, 2*time.Minute, "follower to fail", func() bool { return strings.Contains(failingOut.String(), "follow failed") })
	readers.waitChecks(t, 5)
	if n := readMetaN(t, out); n != before {
		t.Fatalf("with a write error readers see %d transactions, want %d", n, before)
	}
	_ = failing.Process.Kill()
	_ = failing.Wait()
	t.Logf("failing follower: %s", firstLine(failingOut.String(), "follow failed"))

	// A restarted follower repairs and continues while the writer goes on.
	stop = startFollow(follower, out)
	for i := 0; i < 15; i++ {
		commit(1000+rng.Intn(12000), false)
	}
	waitCaughtUp(t, db, out, readers)
	readers.waitChecks(t, 5)
	if err := stop(); err != nil {
		t.Fatalf("follow returned %v", err)
	}

	checks, n, violations := readers.close()
	t.Logf("in-process readers: %d checks, %d violations", checks, n)
	if n > 0 {
		t.Errorf("in-process readers: %d violations in %d checks:\n%s", n, checks, strings.Join(violations, "\n"))
	}
	if err := os.WriteFile(out+".stop", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checker.Wait(); err != nil {
		t.Errorf("reader process: %v\n%s", err, checkerOut.String())
	} else {
		t.Logf("reader process: %s", strings.TrimSpace(checkerOut.String()))
	}
	if got, want := MustCheckRestored(t, out), MustDump(t, app); got != want {
		t.Fatalf("follower %s, source %s", got, want)
	}
}

// firstLine returns the first line of s containing sub.
func firstLine(s, sub string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			return line
		}
	}
	return ""
}

// A follower kept out by a write transaction in another process neither
// writes under it nor ignores its context ending.
func TestReplica_Restore_FollowHonoursContext(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	setupBank(t, app)
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	follower := litestream.NewReplicaWithClient(nil, client)
	out := filepath.Join(t.TempDir(), "follow.db")
	stop := startFollow(follower, out)
	waitFollowed(t, db, out)

	holder, holderOut := startChild(t, "follow-holder", out)
	waitFor(t, 10*time.Second, "reader to hold the output", func() bool { return strings.Contains(holderOut.String(), "holding") })
	if err := bankTx(app, rand.New(rand.NewSource(1)), 1000, false); err != nil {
		t.Fatal(err)
	} else if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	// Give the follower a few ticks to start waiting on the reader.
	pos, err := db.Pos()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		if txid, _ := litestream.ReadTXIDFile(out); txid >= pos.TXID {
			t.Fatal("follower applied a file under another write transaction")
		}
		time.Sleep(10 * time.Millisecond)
	}

	errc := make(chan error, 1)
	go func() { errc <- stop() }()
	select {
	case err := <-errc:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("follow returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not return within 5s of its context ending")
	}
	_ = holder.Process.Kill()
	_ = holder.Wait()
}

// followHolder holds a write transaction on the database at path until
// killed.
func followHolder(path string) error {
	db, err := sql.Open("sqlite", bankDSN(path))
	if err != nil {
		return err
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		return err
	}
	if _, err := conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`); err != nil {
		return err
	}
	var n int64
	if err := conn.QueryRowContext(context.Background(), `SELECT n FROM meta`).Scan(&n); err != nil {
		return err
	}
	fmt.Println("holding")
	select {}
}

// MustLTXPages returns the page numbers an LTX file holds.
func MustLTXPages(t testing.TB, path string) []uint32 {
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
	var pgnos []uint32
	data := make([]byte, dec.Header().PageSize)
	for {
		var hdr ltx.PageHeader
		if err := dec.DecodePage(&hdr, data); errors.Is(err, io.EOF) {
			return pgnos
		} else if err != nil {
			t.Fatal(err)
		}
		pgnos = append(pgnos, hdr.Pgno)
	}
}

// readChangeCounter returns the change counter of the database q reads.
func readChangeCounter(t testing.TB, q *sql.DB) uint32 {
	t.Helper()
	var page1 []byte
	if err := q.QueryRow(`SELECT data FROM sqlite_dbpage WHERE pgno = 1`).Scan(&page1); err != nil {
		t.Fatal(err)
	}
	if got, want := binary.BigEndian.Uint32(page1[92:96]), binary.BigEndian.Uint32(page1[24:28]); got != want {
		t.Fatalf("version-valid-for %d, change counter %d", got, want)
	}
	return binary.BigEndian.Uint32(page1[24:28])
}

// Every applied file moves the output's change counter, also when it does
// not hold page 1, and a connection kept open with a large cache sees each
// file's rows. On exit the follower checkpoints, so the database file
// alone, without its WAL, is the source's database.
func TestReplica_Restore_FollowChangeCounter(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	for i := 0; i < 50; i++ {
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (0, randomblob(500))`); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	follower := litestream.NewReplicaWithClient(nil, client)
	out := filepath.Join(t.TempDir(), "follow.db")
	stop := startFollow(follower, out)
	var stopped bool
	defer func() {
		if !stopped {
			_ = stop()
		}
	}()
	waitFollowed(t, db, out)

	long, err := sql.Open("sqlite", "file:"+out+"?_pragma=busy_timeout(5000)&_pragma=cache_size(-65536)")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = long.Close() }()
	long.SetMaxOpenConns(1)
	var sum int
	if err := long.QueryRow(`SELECT sum(v) FROM t`).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	counter := readChangeCounter(t, long)
	for i := 1; i <= 5; i++ {
		// An in-place update: the file holds the row's leaf page only.
		if _, err := app.Exec(`UPDATE t SET v = v + 1 WHERE id = ?`, 10*i); err != nil {
			t.Fatal(err)
		} else if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
		pos, err := db.Pos()
		if err != nil {
			t.Fatal(err)
		}
		if pgnos := MustLTXPages(t, db.LTXPath(0, pos.TXID, pos.TXID)); slices.Contains(pgnos, 1) {
			t.Fatalf("L0 %s holds page 1 (pages %v); want a file without it", pos.TXID, pgnos)
		}
		waitFollowed(t, db, out)
		if err := long.QueryRow(`SELECT sum(v) FROM t`).Scan(&sum); err != nil {
			t.Fatal(err)
		} else if sum != i {
			t.Fatalf("long-lived connection sees sum %d after %d updates", sum, i)
		}
		next := readChangeCounter(t, long)
		if next <= counter {
			t.Fatalf("change counter %d after update %d, was %d", next, i, counter)
		}
		counter = next
	}

	// The reader stays open and idle: the exit checkpoint still empties
	// the WAL into the database file.
	stopped = true
	if err := stop(); err != nil {
		t.Fatalf("follow returned %v", err)
	}
	if fi, err := os.Stat(out + "-wal"); err == nil && fi.Size() > 0 {
		t.Fatalf("WAL holds %d bytes after the follower exited", fi.Size())
	}
	alone := filepath.Join(t.TempDir(), "alone.db")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(alone, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, alone), MustDump(t, app); got != want {
		t.Fatalf("database file alone %s, source %s", got, want)
	}
}
