// Tests that kill the process at named points of syncs and checkpoints and
// check that no committed transaction is lost.
package litestream_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// Crash phases. The child kills itself when the phase's step is reached for
// the n-th time; "random" is a kill by the parent after a random delay.
var crashPhases = []struct {
	name string
	maxN int // n is drawn from 1..maxN
}{
	{"random", 0},
	{"txn", 40},                 // between two inserts of a transaction
	{"sync-staged", 30},         // L0 .tmp written and fsynced, not renamed
	{"sync-renamed", 30},        // L0 renamed, position not yet published
	{"upload", 30},              // L0 upload half-read by the backend
	{"checkpoint", 3},           // WAL checkpointed, not yet restarted
	{"checkpoint-restarted", 3}, // WAL restarted, new header not yet synced
	{"compact", 4},              // L1/L2 merge half-written
	{"snapshot", 2},             // L9 snapshot half-written
}

// envInt returns the integer in env var name, or def.
func envInt(t testing.TB, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return n
}

// crashTxnParts is the number of rows of transaction seq.
func crashTxnParts(seq int) int { return 1 + seq%4 }

// crashTxnRolledBack reports whether transaction seq is rolled back.
func crashTxnRolledBack(seq int) bool { return seq%9 == 4 }

// A child process replicating with fast checkpoints, compactions and
// snapshots is SIGKILLed again and again, at random moments and inside each
// step of replication. After every kill the replica restores to a database
// that passes the integrity check, holds every transaction the child saw
// WaitReplicated confirm, whole, and nothing rolled back or never attempted.
// LITESTREAM_CRASH_CYCLES sets the number of kills (default 30).
func TestStore_CrashCycles(t *testing.T) {
	cycles := envInt(t, "LITESTREAM_CRASH_CYCLES", 30)
	seed := time.Now().UnixNano()
	if s := envInt(t, "LITESTREAM_CRASH_SEED", 0); s != 0 {
		seed = int64(s)
	}
	t.Logf("seed %d, %d cycles", seed, cycles)
	rng := rand.New(rand.NewSource(seed))
	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	start := time.Now()

	kills := map[string]int{}
	for cycle := 0; cycle < cycles; cycle++ {
		phase := crashPhases[cycle%len(crashPhases)]
		var killAt string
		delay := 6 * time.Second // fallback if the step is not reached
		if phase.maxN == 0 {
			delay = time.Duration(100+rng.Intn(1900)) * time.Millisecond
		} else {
			killAt = fmt.Sprintf("%s:%d", phase.name, 1+rng.Intn(phase.maxN))
		}
		killedBy := runCrashChild(t, dir, killAt, delay, rng.Int63())
		kills[killedBy]++
		restored := MustCheckCrashReplica(t, dir, client, 0)
		if (cycle+1)%25 == 0 { // progress for long runs
			t.Logf("after %d kills: %d transactions restored, all checks passed, %s", cycle+1, len(restored), time.Since(start).Round(time.Second))
		}
	}

	// Restores at every retained L0 TXID and L1 boundary: each is
	// consistent and holds no transaction that a later TXID lacks.
	// Retention keeps history only from the oldest snapshot on.
	var oldest ltx.TXID
	if snapshots := levelFiles(t, client, litestream.SnapshotLevel); len(snapshots) > 0 {
		oldest = snapshots[0].MaxTXID
	}
	txids := L0TXIDs(t, client)
	for _, info := range levelFiles(t, client, 1) {
		txids = append(txids, info.MaxTXID)
	}
	txids = slices.DeleteFunc(txids, func(txid ltx.TXID) bool { return txid < oldest })
	slices.Sort(txids)
	txids = slices.Compact(txids)
	var prev map[int]bool
	for _, txid := range txids {
		got := MustCheckCrashReplica(t, dir, client, txid)
		for seq := range prev {
			if !got[seq] {
				t.Fatalf("transaction %d restored at an earlier TXID is missing at %s", seq, txid)
			}
		}
		prev = got
	}

	// A last clean run closes the store: the replica then equals the source.
	if killedBy := runCrashChild(t, dir, "clean", time.Minute, rng.Int63()); killedBy != "exit" {
		t.Fatalf("clean run ended by %s", killedBy)
	}
	restored := MustCheckCrashReplica(t, dir, client, 0)
	src, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	r := litestream.NewReplicaWithClient(nil, client)
	if got, want := MustCheckRestored(t, MustRestore(t, r, 0)), MustDump(t, src); got != want {
		t.Fatalf("after a clean close the replica holds %s, the source %s", got, want)
	}
	MustVerifyReplica(t, client)

	attempted, replicated := readSeqLog(t, dir, "attempts.log"), readSeqLog(t, dir, "replicated.log")
	var phases []string
	for name, n := range kills {
		phases = append(phases, fmt.Sprintf("%s=%d", name, n))
	}
	sort.Strings(phases)
	t.Logf("crash cycles: %d kills, %d transactions attempted, %d confirmed replicated, %d restored, lost=0 extra=0, %s; kills by phase: %s",
		cycles, len(attempted), len(replicated), len(restored), time.Since(start).Round(time.Second), strings.Join(phases, " "))
}

// runCrashChild runs one child until it exits or is killed, and returns how
// it ended: "exit", "random" (killed by us after delay), "fallback" (the
// step was not reached before delay) or the step where it killed itself.
func runCrashChild(t *testing.T, dir, killAt string, delay time.Duration, seed int64) string {
	t.Helper()
	killedFile := filepath.Join(dir, "killed")
	_ = os.Remove(killedFile)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(),
		"LITESTREAM_TEST_CHILD=crash-writer",
		"LITESTREAM_TEST_DIR="+dir,
		"LITESTREAM_TEST_KILL_AT="+killAt,
		fmt.Sprintf("LITESTREAM_TEST_SEED=%d", seed),
	)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var err error
	timedOut := false
	select {
	case err = <-done:
	case <-time.After(delay):
		timedOut = true
		_ = cmd.Process.Signal(syscall.SIGKILL)
		err = <-done
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return "exit"
	case !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL:
		t.Fatalf("child (kill at %q): %v\n%s", killAt, err, out.String())
	}
	if b, err := os.ReadFile(killedFile); err == nil {
		return string(b)
	} else if killAt == "" && timedOut {
		return "random"
	}
	return "fallback"
}

// readSeqLog reads the sequence numbers in a child's log, ignoring a torn
// last line.
func readSeqLog(t testing.TB, dir, name string) map[int]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return map[int]bool{}
	} else if err != nil {
		t.Fatal(err)
	}
	m := map[int]bool{}
	lines := strings.SplitAfter(string(b), "\n")
	for _, line := range lines {
		if !strings.HasSuffix(line, "\n") {
			continue
		}
		seq, err := strconv.Atoi(strings.TrimSpace(line))
		if err != nil {
			t.Fatalf("%s: bad line %q", name, line)
		}
		m[seq] = true
	}
	return m
}

// MustCheckCrashReplica restores the replica at txid (0 = latest) and checks
// it against the child's logs: integrity ok, every confirmed transaction
// present, each transaction whole, none rolled back or never attempted. It
// returns the restored transactions.
func MustCheckCrashReplica(t testing.TB, dir string, client litestream.ReplicaClient, txid ltx.TXID) map[int]bool {
	t.Helper()
	attempted, replicated := readSeqLog(t, dir, "attempts.log"), readSeqLog(t, dir, "replicated.log")
	MustVerifyReplica(t, client)

	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
	opt.TXID = txid
	r := litestream.NewReplicaWithClient(nil, client)
	if err := r.Restore(context.Background(), opt); errors.Is(err, litestream.ErrTxNotAvailable) && txid == 0 && len(replicated) == 0 {
		return map[int]bool{} // killed before the first upload
	} else if err != nil {
		t.Fatalf("restore txid %s: %v", txid, err)
	}
	MustCheckRestored(t, opt.OutputPath)

	db, err := sql.Open("sqlite", "file:"+opt.OutputPath)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	var hasTable int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'crash'`).Scan(&hasTable); err != nil {
		t.Fatal(err)
	}
	got := map[int]bool{}
	if hasTable == 0 {
		if txid == 0 && len(replicated) > 0 {
			t.Fatalf("restore has no table but %d transactions were confirmed", len(replicated))
		}
		return got
	}
	rows, err := db.Query(`SELECT seq, count(*), count(DISTINCT part), sum(rolled), sum(v != seq * 1000 + part) FROM crash GROUP BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var seq, n, parts, rolled, badV int
		if err := rows.Scan(&seq, &n, &parts, &rolled, &badV); err != nil {
			t.Fatal(err)
		}
		switch {
		case !attempted[seq]:
			t.Fatalf("restore at txid %s holds transaction %d, never attempted", txid, seq)
		case crashTxnRolledBack(seq) || rolled != 0:
			t.Fatalf("restore at txid %s holds rolled-back transaction %d", txid, seq)
		case n != crashTxnParts(seq) || parts != n || badV != 0:
			t.Fatalf("restore at txid %s holds transaction %d partially: %d rows, %d parts, %d bad values; want %d rows", txid, seq, n, parts, badV, crashTxnParts(seq))
		}
		got[seq] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if txid == 0 {
		var lost []int
		for seq := range replicated {
			if !got[seq] {
				lost = append(lost, seq)
			}
		}
		if len(lost) > 0 {
			slices.Sort(lost)
			t.Fatalf("%d transactions confirmed replicated are missing from the restore: %v", len(lost), lost)
		}
	}
	return got
}

// crashWriter is the child of TestStore_CrashCycles. It replicates dir/db to
// dir/replica with fast checkpoints, compactions and snapshots, and commits
// numbered transactions forever, recording them in a seqLog. It kills itself
// at the step named in LITESTREAM_TEST_KILL_AT ("name:n"); "clean" writes a
// few transactions and closes the store instead.
func crashWriter(dir string) error {
	ctx := context.Background()
	seed, _ := strconv.ParseInt(os.Getenv("LITESTREAM_TEST_SEED"), 10, 64)
	rng := rand.New(rand.NewSource(seed))
	killAt := os.Getenv("LITESTREAM_TEST_KILL_AT")
	clean := killAt == "clean"
	var hits atomic.Int64
	reached := func(step string) bool {
		name, n, _ := strings.Cut(killAt, ":")
		want, _ := strconv.ParseInt(n, 10, 64)
		return name == step && hits.Add(1) == want
	}
	die := func(step string) {
		_ = os.WriteFile(filepath.Join(dir, "killed"), []byte(step), 0o600)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	litestream.SetCrashPoint(func(step string) {
		if reached(step) {
			die(step)
		}
	})

	app, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)&_pragma=synchronous(normal)")
	if err != nil {
		return err
	}
	defer func() { _ = app.Close() }()
	if _, err := app.Exec(crashSchema); err != nil {
		return err
	}
	log, err := openSeqLog(dir)
	if err != nil {
		return err
	}
	defer func() { _ = log.Close() }()

	// Half of the runs, the app works before the library starts: commits,
	// and a checkpoint that may restart the WAL over frames never captured.
	if !clean && rng.Intn(2) == 0 {
		for n := 1 + rng.Intn(5); n > 0; n-- {
			seq, err := log.Next()
			if err != nil {
				return err
			}
			if err := crashTxn(app, seq, rng, reached, die); err != nil {
				return fmt.Errorf("transaction %d with the library down: %w", seq, err)
			}
			log.Committed(seq)
		}
		if _, err := app.Exec(`PRAGMA wal_checkpoint(` + crashCheckpointModes[rng.Intn(len(crashCheckpointModes))] + `)`); err != nil {
			return fmt.Errorf("app checkpoint with the library down: %w", err)
		}
	}

	db, store, err := openCrashStore(ctx, dir, newCrashClient(file.NewReplicaClient(filepath.Join(dir, "replica")), reached, die))
	if err != nil {
		return err
	}

	for i := 0; !clean || i < 20; i++ {
		seq, err := log.Next()
		if err != nil {
			return err
		}
		if err := crashTxn(app, seq, rng, reached, die); err != nil {
			return fmt.Errorf("transaction %d: %w", seq, err)
		}
		log.Committed(seq)
		switch {
		case rng.Intn(3) == 0:
			err = log.Confirm(ctx, db)
		case i%100 == 99: // rare: each TRUNCATE writes a full-database L0 file
			err = db.Checkpoint(ctx, litestream.CheckpointModeTruncate)
		case i%15 == 14: // app checkpoints of every mode
			_, err = app.Exec(`PRAGMA wal_checkpoint(` + crashCheckpointModes[rng.Intn(len(crashCheckpointModes))] + `)`)
		}
		if err != nil {
			return fmt.Errorf("after transaction %d: %w", seq, err)
		}
	}
	if err := log.Confirm(ctx, db); err != nil {
		return err
	}
	return store.Close(ctx)
}

// crashCheckpointModes are the app's checkpoint modes.
var crashCheckpointModes = []string{"PASSIVE", "FULL", "RESTART", "TRUNCATE"}

// crashSchema holds the numbered transactions' rows.
const crashSchema = `CREATE TABLE IF NOT EXISTS crash (id INTEGER PRIMARY KEY, seq INTEGER, part INTEGER, v INTEGER, rolled INTEGER, pad BLOB)`

// openCrashStore opens dir/db in a store with fast checkpoints,
// compactions, snapshots and retention, replicating through client.
func openCrashStore(ctx context.Context, dir string, client litestream.ReplicaClient) (*litestream.DB, *litestream.Store, error) {
	db := litestream.NewDB(filepath.Join(dir, "db"))
	db.MonitorInterval = 20 * time.Millisecond
	db.MinCheckpointPageN = 32
	db.TruncatePageN = 600
	db.CheckpointInterval = 300 * time.Millisecond
	db.Replica = litestream.NewReplicaWithClient(db, client)
	db.Replica.SyncInterval = 20 * time.Millisecond
	store := litestream.NewStore([]*litestream.DB{db}, litestream.CompactionLevels{
		{Level: 0}, {Level: 1, Interval: 100 * time.Millisecond}, {Level: 2, Interval: 300 * time.Millisecond},
	})
	store.SnapshotInterval = 500 * time.Millisecond
	store.SnapshotRetention = 2 * time.Second
	store.L0Retention = time.Second
	store.L0RetentionCheckInterval = 200 * time.Millisecond
	store.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := store.Open(ctx); err != nil {
		return nil, nil, fmt.Errorf("open store: %w", err)
	}
	return db, store, nil
}

// seqLog records a writer's numbered transactions in dir: attempts.log
// before each begins, replicated.log (fsynced) once WaitReplicated has
// confirmed it. Numbers continue after the highest attempted so far.
type seqLog struct {
	attempts, replicated *os.File
	last                 int   // highest number attempted
	pending              []int // committed, not yet confirmed
}

func openSeqLog(dir string) (*seqLog, error) {
	attempts, err := os.OpenFile(filepath.Join(dir, "attempts.log"), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	l := &seqLog{attempts: attempts}
	for sc := bufio.NewScanner(attempts); sc.Scan(); {
		if n, err := strconv.Atoi(sc.Text()); err == nil {
			l.last = max(l.last, n)
		}
	}
	if l.replicated, err = os.OpenFile(filepath.Join(dir, "replicated.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
		_ = attempts.Close()
		return nil, err
	}
	return l, nil
}

// Next logs and returns the next transaction number.
func (l *seqLog) Next() (int, error) {
	l.last++
	_, err := fmt.Fprintf(l.attempts, "%d\n", l.last)
	return l.last, err
}

// Committed notes that seq committed; rolled-back numbers are ignored.
func (l *seqLog) Committed(seq int) {
	if !crashTxnRolledBack(seq) {
		l.pending = append(l.pending, seq)
	}
}

// Confirm waits until db reports everything replicated, then durably logs
// the transactions committed before the wait.
func (l *seqLog) Confirm(ctx context.Context, db *litestream.DB) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := db.WaitReplicated(ctx); err != nil {
		return fmt.Errorf("wait replicated: %w", err)
	}
	var b strings.Builder
	for _, seq := range l.pending {
		fmt.Fprintf(&b, "%d\n", seq)
	}
	l.pending = l.pending[:0]
	if _, err := io.WriteString(l.replicated, b.String()); err != nil {
		return err
	}
	return l.replicated.Sync()
}

// Close closes the log files.
func (l *seqLog) Close() error {
	return errors.Join(l.attempts.Close(), l.replicated.Close())
}

// crashTxn writes transaction seq, committing or rolling it back.
func crashTxn(app *sql.DB, seq int, rng *rand.Rand, reached func(string) bool, die func(string)) error {
	tx, err := app.Begin()
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	rolled := 0
	if crashTxnRolledBack(seq) {
		rolled = 1
	}
	for part := 0; part < crashTxnParts(seq); part++ {
		if part > 0 && reached("txn") {
			die("txn")
		}
		if _, err := tx.Exec(`INSERT INTO crash (seq, part, v, rolled, pad) VALUES (?, ?, ?, ?, randomblob(?))`, seq, part, seq*1000+part, rolled, 20+rng.Intn(600)); err != nil {
			return err
		}
	}
	if rolled == 1 {
		return tx.Rollback()
	}
	return tx.Commit()
}

// newCrashClient kills the child half-way through reading an upload, a
// compaction or a snapshot when that step is the one to kill at.
func newCrashClient(inner litestream.ReplicaClient, reached func(string) bool, die func(string)) *testClient {
	return &testClient{ReplicaClient: inner, onWrite: func(level int, r io.Reader, write func(io.Reader) (*ltx.FileInfo, error)) (*ltx.FileInfo, error) {
		step := "compact"
		switch level {
		case 0:
			step = "upload"
		case litestream.SnapshotLevel:
			step = "snapshot"
		}
		if reached(step) {
			r = &dyingReader{r: r, after: 150, die: func() { die(step) }}
		}
		return write(r)
	}}
}

// dyingReader calls die once more than after bytes were read, or at the
// end of the stream, whichever comes first.
type dyingReader struct {
	r     io.Reader
	n     int
	after int
	die   func()
}

func (r *dyingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if r.n += n; r.n > r.after || err != nil {
		r.die()
	}
	return n, err
}
