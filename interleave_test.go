// The seeded interleaving test: one goroutine, driven by a seed, mixes app
// operations (commits of one page to hundreds, VACUUM, checkpoints of every
// mode, long readers, writes while the library is closed) with library
// operations (syncs and checkpoints under contexts that end, Close and
// reopen, uploads to a failing backend, compaction, snapshots), and checks
// every TXID the replica holds against a model of what the app committed.
package litestream_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/internal/faultclient"
	"github.com/superfly/ltx"
)

// seedRange is the seeds a seeded hunt runs, from the environment under
// prefix: one seed with <prefix>_SEED, else <prefix>_SEEDS of them
// (default 20, 5 with -short) from <prefix>_FIRST (default 1); and its
// steps per seed, <prefix>_STEPS (default steps).
func seedRange(prefix string, steps int) (first, n int64, stepN int) {
	stepN = steps
	if s := os.Getenv(prefix + "_STEPS"); s != "" {
		stepN, _ = strconv.Atoi(s)
	}
	if s := os.Getenv(prefix + "_SEED"); s != "" {
		seed, _ := strconv.ParseInt(s, 10, 64)
		return seed, 1, stepN
	}
	first, n = 1, 20
	if testing.Short() {
		n = 5
	}
	if s := os.Getenv(prefix + "_FIRST"); s != "" {
		first, _ = strconv.ParseInt(s, 10, 64)
	}
	if s := os.Getenv(prefix + "_SEEDS"); s != "" {
		n, _ = strconv.ParseInt(s, 10, 64)
	}
	return first, n, stepN
}

func TestDB_Interleavings(t *testing.T) {
	first, n, steps := seedRange("LITESTREAM_INTERLEAVE", 30)
	for seed := first; seed < first+n; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			h := newInterleaving(t, seed)
			defer h.cleanup()
			for i := 0; i < steps && !t.Failed(); i++ {
				h.step(i)
				if h.db != nil && !litestream.ReadLockHeld(h.db) {
					h.fatalf("after step %d the DB no longer holds its read lock", i)
				}
			}
			if !t.Failed() {
				h.finish()
			}
		})
	}
}

// interleaving is the state of one seeded run.
type interleaving struct {
	t    *testing.T
	seed int64
	rng  *rand.Rand
	dir  string
	path string
	ctx  context.Context

	app    *sql.DB
	reader *sql.Tx // a long-lived app read transaction, or nil
	db     *litestream.DB
	fc     *faultclient.Client
	client *file.ReplicaClient

	states  []string          // the app's dump after each commit, in order
	synced  map[ltx.TXID]span // TXID -> the states a completed sync may have captured
	checked map[ltx.TXID]int  // TXID -> state index its restore matched
	trace   []string          // what each step did, printed on failure
	inHook  bool              // an app operation runs inside a library step
}

func newInterleaving(t *testing.T, seed int64) *interleaving {
	dir := t.TempDir()
	h := &interleaving{
		t: t, seed: seed, rng: rand.New(rand.NewSource(seed)), dir: dir,
		path: filepath.Join(dir, "db"), ctx: context.Background(),
		synced: map[ltx.TXID]span{}, checked: map[ltx.TXID]int{},
	}
	pageSize := []int{512, 1024, 4096}[h.rng.Intn(3)]
	autockpt := []int{0, 10, 100, 1000}[h.rng.Intn(4)]
	app, err := sql.Open("sqlite", fmt.Sprintf("file:%s?_pragma=busy_timeout(40)&_pragma=page_size(%d)&_pragma=journal_mode(wal)&_pragma=wal_autocheckpoint(%d)", h.path, pageSize, autockpt))
	if err != nil {
		t.Fatal(err)
	}
	h.app = app
	h.mustExec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER, pad BLOB)`)
	h.mustExec(`CREATE TABLE aside (id INTEGER PRIMARY KEY, v INTEGER, pad BLOB)`)
	h.mustExec(`CREATE INDEX t_v ON t (v)`)
	h.record()
	h.tracef("seed %d: page size %d, app autocheckpoint %d", seed, pageSize, autockpt)

	// App operations also land inside library operations, at the named
	// steps where a checkpoint or sync is most exposed.
	litestream.SetCrashPoint(h.inside)
	t.Cleanup(func() { litestream.SetCrashPoint(func(string) {}) })

	h.client = file.NewReplicaClient(filepath.Join(dir, "replica"))
	h.fc = faultclient.New(h.client, faultclient.Config{Seed: seed, ErrorRate: 0.2, LostAckRate: 0.1})
	h.fc.SetEnabled(false)
	h.open()
	return h
}

func (h *interleaving) tracef(format string, args ...any) {
	h.trace = append(h.trace, fmt.Sprintf(format, args...))
}

// fatalf fails the run with the seed that replays it and the steps so far.
func (h *interleaving) fatalf(format string, args ...any) {
	h.t.Helper()
	h.t.Fatalf("seed %d (replay: LITESTREAM_INTERLEAVE_SEED=%d go test -run 'TestDB_Interleavings' .): %s\nsteps:\n  %s",
		h.seed, h.seed, fmt.Sprintf(format, args...), strings.Join(h.trace, "\n  "))
}

func (h *interleaving) mustExec(query string, args ...any) {
	h.t.Helper()
	if _, err := h.app.Exec(query, args...); err != nil {
		h.fatalf("%s: %v", query, err)
	}
}

// record appends the app's committed state to the model.
func (h *interleaving) record() {
	h.states = append(h.states, MustDump(h.t, h.app))
}

// open opens a DB on the app's database; at cleanup its replica is checked.
func (h *interleaving) open() {
	db := newVerifiedDB(h.t, h.path, h.fc, h.client)
	db.MonitorInterval = 0
	db.ShutdownSyncTimeout = 0
	db.BusyTimeout = 20 * time.Millisecond
	db.MinCheckpointPageN = []int{10, 50, 1000}[h.rng.Intn(3)]
	db.TruncatePageN = []int{-1, 100, 400}[h.rng.Intn(3)]
	db.MaxSyncWALBytes = []int64{0, 8 << 10, 64 << 20}[h.rng.Intn(3)]
	db.L0Retention = time.Hour // every L0 TXID stays restorable
	db.Replica.MonitorEnabled = false
	if err := db.Open(); err != nil {
		h.fatalf("open: %v", err)
	}
	h.db = db
	h.tracef("open DB: MinCheckpointPageN=%d TruncatePageN=%d MaxSyncWALBytes=%d", db.MinCheckpointPageN, db.TruncatePageN, db.MaxSyncWALBytes)
}

func (h *interleaving) cleanup() {
	if h.reader != nil {
		_ = h.reader.Rollback()
	}
	if h.db != nil {
		_ = h.db.Close(context.Background())
	}
	_ = h.app.Close()
}

// libCtx returns a context for a library call that ends in one of several
// ways: never, right after the call, or during it.
func (h *interleaving) libCtx() (context.Context, func(), string) {
	switch h.rng.Intn(4) {
	case 0:
		ctx, cancel := context.WithCancel(h.ctx)
		return ctx, cancel, "ctx canceled after"
	case 1:
		ctx, cancel := context.WithTimeout(h.ctx, time.Duration(h.rng.Intn(3000))*time.Microsecond)
		return ctx, cancel, "ctx with a short deadline"
	default:
		return h.ctx, func() {}, "ctx"
	}
}

// step runs one randomly chosen operation.
func (h *interleaving) step(i int) {
	switch op := h.rng.Intn(100); {
	case op < 35:
		h.commit()
	case op < 40:
		h.exec("VACUUM")
	case op < 50:
		mode := []string{"PASSIVE", "FULL", "RESTART", "TRUNCATE"}[h.rng.Intn(4)]
		var busy, log, done int
		err := h.app.QueryRow(`PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &log, &done)
		h.tracef("%d: app checkpoint %s: busy=%d log=%d done=%d err=%v", i, mode, busy, log, done, err)
	case op < 56:
		h.toggleReader(i)
	case op < 72:
		h.sync(i)
	case op < 78:
		h.libCheckpoint(i)
	case op < 82:
		h.closeAndReopen(i)
	case op < 90:
		h.upload(i)
	case op < 93:
		if h.db != nil {
			_, err := h.db.Compact(h.ctx, 1)
			h.tracef("%d: compact L1: %v", i, err)
		}
	case op < 95:
		if h.db != nil {
			_, err := h.db.Snapshot(h.ctx)
			h.tracef("%d: snapshot L9: %v", i, err)
		}
	default:
		h.check(i)
	}
}

// inside runs at a library step: now and then an app commit, reader or
// checkpoint there, as another goroutine of the app could.
func (h *interleaving) inside(name string) {
	if h.inHook || h.rng.Intn(4) != 0 {
		return
	}
	h.inHook = true
	defer func() { h.inHook = false }()
	switch h.rng.Intn(3) {
	case 0:
		h.tracef("   inside %s:", name)
		h.commit()
	case 1:
		h.tracef("   inside %s:", name)
		h.toggleReader(-1)
	default:
		var busy, log, done int
		err := h.app.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &done)
		h.tracef("   inside %s: app checkpoint PASSIVE busy=%d err=%v", name, busy, err)
	}
}

// commit writes one transaction of one to hundreds of pages.
func (h *interleaving) commit() {
	table, what, err := randomCommit(h.app, h.rng, 8000)
	if errors.Is(err, errBegin) {
		h.fatalf("%v", err)
	} else if err != nil {
		h.tracef("commit %s %s failed: %v", table, what, err)
		return
	}
	h.record()
	h.tracef("commit %s %s -> state %d", table, what, len(h.states)-1)
}

func (h *interleaving) exec(query string) {
	if _, err := h.app.Exec(query); err != nil {
		h.tracef("%s: %v", query, err)
		return
	}
	h.record()
	h.tracef("%s -> state %d", query, len(h.states)-1)
}

func (h *interleaving) toggleReader(i int) {
	if h.reader != nil {
		_ = h.reader.Rollback()
		h.reader = nil
		h.tracef("%d: app reader ends", i)
		return
	}
	tx, err := h.app.Begin()
	if err != nil {
		h.fatalf("begin reader: %v", err)
	}
	var n int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM t`).Scan(&n); err != nil {
		h.fatalf("reader: %v", err)
	}
	h.reader = tx
	h.tracef("%d: app reader begins", i)
}

// sync runs a library sync; one that completes captured every commit so far.
func (h *interleaving) sync(i int) {
	if h.db == nil {
		return
	}
	ctx, cancel, how := h.libCtx()
	from := len(h.states) - 1
	err := h.db.Sync(ctx)
	cancel()
	pos, _ := h.db.Pos()
	h.tracef("%d: sync (%s): txid %s err=%v", i, how, pos.TXID, err)
	if err == nil {
		h.synced[pos.TXID] = span{from, len(h.states) - 1}
	}
}

func (h *interleaving) libCheckpoint(i int) {
	if h.db == nil {
		return
	}
	mode := []string{"PASSIVE", "FULL", "RESTART", "TRUNCATE"}[h.rng.Intn(4)]
	ctx, cancel, how := h.libCtx()
	from := len(h.states) - 1
	err := h.db.Checkpoint(ctx, mode)
	cancel()
	pos, _ := h.db.Pos()
	h.tracef("%d: library checkpoint %s (%s): txid %s err=%v", i, mode, how, pos.TXID, err)
	if err == nil {
		h.synced[pos.TXID] = span{from, len(h.states) - 1}
	}
}

// closeAndReopen closes the DB, lets the app work while nothing captures,
// and opens a new DB on the same files.
func (h *interleaving) closeAndReopen(i int) {
	if h.db == nil {
		return
	}
	from := len(h.states) - 1
	err := h.db.Close(h.ctx)
	pos, _ := h.db.Pos()
	h.tracef("%d: close: txid %s err=%v", i, pos.TXID, err)
	if err == nil {
		h.synced[pos.TXID] = span{from, len(h.states) - 1}
	}
	h.db = nil
	for n := h.rng.Intn(6); n > 0; n-- {
		switch h.rng.Intn(4) {
		case 0:
			var busy, log, done int
			mode := []string{"PASSIVE", "RESTART", "TRUNCATE"}[h.rng.Intn(3)]
			err := h.app.QueryRow(`PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &log, &done)
			h.tracef("   closed: app checkpoint %s busy=%d err=%v", mode, busy, err)
		case 1:
			h.exec("VACUUM")
		default:
			h.commit()
		}
	}
	h.open()
}

// upload sends L0 files to the replica, through faults half of the time.
func (h *interleaving) upload(i int) {
	if h.db == nil {
		return
	}
	faulty := h.rng.Intn(2) == 0
	h.fc.SetEnabled(faulty)
	err := h.db.Replica.Sync(h.ctx)
	h.fc.SetEnabled(false)
	h.tracef("%d: upload (faults %v): replica txid %s err=%v", i, faulty, h.db.Replica.Pos().TXID, err)
}

// check uploads everything and restores each TXID not checked yet.
func (h *interleaving) check(i int) {
	if h.db == nil {
		return
	}
	if err := h.db.Replica.Sync(h.ctx); err != nil {
		h.tracef("%d: check: upload: %v", i, err)
		return
	}
	h.tracef("%d: check up to txid %s", i, h.db.Replica.Pos().TXID)
	h.verifyTXIDs(false)
}

// finish closes the DB, uploads everything and checks every TXID.
func (h *interleaving) finish() {
	if h.db == nil {
		h.open()
	}
	if h.reader != nil {
		_ = h.reader.Rollback()
		h.reader = nil
	}
	litestream.SetCrashPoint(func(string) {})
	if err := h.db.Sync(h.ctx); err != nil {
		h.fatalf("final sync: %v", err)
	}
	pos, _ := h.db.Pos()
	h.synced[pos.TXID] = span{len(h.states) - 1, len(h.states) - 1}
	if err := h.db.Replica.Sync(h.ctx); err != nil {
		h.fatalf("final upload: %v", err)
	}
	h.tracef("finish at txid %s", pos.TXID)
	h.verifyTXIDs(true)
	if err := h.db.Close(h.ctx); err != nil {
		h.fatalf("close: %v", err)
	}
	h.db = nil
}

// verifyTXIDs restores L0 TXIDs (all of them, or the unchecked ones) and
// checks each against the model: the state a completed sync captured, or
// else some committed state no older than the TXID before it.
func (h *interleaving) verifyTXIDs(all bool) {
	h.t.Helper()
	txids := L0TXIDs(h.t, h.client)
	floor := 0
	for _, txid := range txids {
		if idx, ok := h.checked[txid]; ok && !all {
			floor = idx
			continue
		}
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = filepath.Join(h.t.TempDir(), "restore.db")
		opt.TXID = txid
		if err := h.db.Replica.Restore(h.ctx, opt); err != nil {
			h.fatalf("restore txid %s: %v", txid, err)
		}
		got := h.restoredDump(opt.OutputPath, txid)
		lo, hi := floor, len(h.states)-1
		if sp, ok := h.synced[txid]; ok {
			lo, hi = max(lo, sp.from), sp.to
		}
		idx := -1
		for j := lo; j <= hi; j++ {
			if h.states[j] == got {
				idx = j
				break
			}
		}
		if idx < 0 {
			want := "some state"
			if lo <= hi {
				want = h.states[lo]
			}
			h.fatalf("txid %s: restore holds %s, which is no state the app committed in states %d..%d (%s at %d)", txid, got, lo, hi, want, lo)
		}
		floor = idx
		h.checked[txid] = floor
	}
}

// span is a range of model states, both ends included.
type span struct{ from, to int }

// restoredDump checks a restored database's integrity and dumps it.
func (h *interleaving) restoredDump(path string, txid ltx.TXID) string {
	h.t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		h.fatalf("open restore: %v", err)
	}
	defer func() { _ = db.Close() }()
	var result string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&result); err != nil || result != "ok" {
		h.fatalf("restore of txid %s fails integrity_check: %s %v", txid, result, err)
	}
	return MustDump(h.t, db)
}

// errBegin marks a randomCommit that could not begin its transaction.
var errBegin = errors.New("begin")

// randomCommit commits one transaction on app for a seeded hunt: an update
// or delete of every few rows, or one to four (now and then twenty to a
// hundred) inserts padded with up to maxPad random bytes, into t or aside.
// It returns the table and what it did.
func randomCommit(app *sql.DB, rng *rand.Rand, maxPad int) (table, what string, err error) {
	tx, err := app.Begin()
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", errBegin, err)
	}
	table = []string{"t", "aside"}[rng.Intn(2)]
	n := 1 + rng.Intn(4)
	if rng.Intn(5) == 0 {
		n = 20 + rng.Intn(80)
	}
	switch rng.Intn(6) {
	case 0:
		_, err = tx.Exec(`UPDATE `+table+` SET v = v + 1 WHERE id % ? = 0`, 2+rng.Intn(5))
		what = "update"
	case 1:
		_, err = tx.Exec(`DELETE FROM `+table+` WHERE id % ? = 0`, 3+rng.Intn(7))
		what = "delete"
	default:
		for j := 0; j < n && err == nil; j++ {
			_, err = tx.Exec(`INSERT INTO `+table+` (v, pad) VALUES (?, randomblob(?))`, rng.Int63(), rng.Intn(maxPad))
		}
		what = fmt.Sprintf("insert %d", n)
	}
	if err == nil {
		err = tx.Commit()
	} else {
		_ = tx.Rollback()
	}
	return table, what, err
}
