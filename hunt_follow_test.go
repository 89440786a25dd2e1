// A seeded hunt for follow mode: one primary DB (file backend, manual sync)
// and one follower of its replica. Steps drawn from a seed mix app commits
// of random sizes (inserts, updates, deletes, a table growing then
// shrinking, VACUUM) with library syncs and uploads, app and library
// checkpoints, compaction into L1 and L2, snapshots, L0 retention by time,
// snapshot retention and retention by TXID, Close and Open of the primary,
// ResetLocalState, and the follower stopped and restarted (resuming from its
// -txid file), cancelled at a random moment, or killed (SIGKILL, in a child
// process) in the middle of applying a file.
//
// Model: after every sync that captured the whole WAL (Sync, SyncAndWait,
// Checkpoint, Snapshot, Close returning nil) the primary's TXID (db.Pos) is recorded with
// the app's committed state. Checks: whenever the follower is stopped and
// its -txid file says N, its output passes integrity_check and holds the
// state recorded at N (after a kill, any state recorded from N to the TXID
// in -txid.next, as documented); the follower never ends with an error;
// after the last step it catches up to the primary's final TXID and holds
// its final state.
//
// Replica damage (4% of steps, and the primary lists its replica on every
// upload in half the seeds): the replica directory is removed or put back
// from a copy of itself taken at an earlier step, while the primary runs
// or while it is closed, sometimes after the primary's local L0 files were
// pruned (L0Retention 1ns and a compaction) so that it re-seeds the replica
// from an earlier TXID instead of uploading the lost files again. A re-seed
// numbers TXIDs again with other states: every state recorded at a TXID,
// in any numbering, counts as committed there (see observe). After damage
// the follower may wait for the replica to reach its output ("follow
// waiting"), may end with the documented refusal (ErrLTXCorrupted,
// "replaced by another database" / "numbered again"), after which the
// output is checked and a new output started, and a resume may end with
// "replica history has been pruned" (the output stays; a later follower
// resumes). A refusal at a TXID no damage touched fails. At the end, a
// follower whose output is past a renumbered primary has the primary commit
// until it passes it. Damage seeds 1-500 found five bugs, since fixed
// (follow_damage_test.go): 23, 229, 252
// (TestReplica_CloseAfterNoticedLostFiles_NextOpenSnapshots); 428, 490, 497
// (TestReplica_NewDBRestoresHoleFromOldCopy); 308, 474
// (TestReplica_LostFilesNotUploadedOverAnotherNumbering); 8
// (TestReplica_Follow_ResumeAfterKillRefusesReseededReplica); 1, 2, 3, 6
// (TestReplica_Follow_RefusesRenumberedAtOutputTXID; the extra commit at
// the end, which worked around it, stays). Still failing: seed 474 (and
// 472 at times): an older copy put back while the primary runs, after two
// ResetLocalState renumberings, gets the primary's later L0 files on top
// of its TXID 1 (the primary takes the copy's file for the one it compared
// last); not yet traced further.
//
// Environment: LITESTREAM_FOLLOW_HUNT_SEED (one seed),
// LITESTREAM_FOLLOW_HUNT_FIRST and LITESTREAM_FOLLOW_HUNT_SEEDS (a range,
// default 1 and 20), LITESTREAM_FOLLOW_HUNT_STEPS (default 40),
// LITESTREAM_FOLLOW_HUNT_DAMAGE=0 (no damage steps: the hunt before them),
// LITESTREAM_FOLLOW_HUNT_TRACE=1 (log the steps of passing seeds too). The
// follower polls on its own goroutine (or process), so a replay is the same
// sequence of steps, not always the same timing.
package litestream_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/internal"
	"github.com/superfly/ltx"
	"modernc.org/sqlite"
)

func TestReplica_FollowInterleavings(t *testing.T) {
	first, n, steps := seedRange("LITESTREAM_FOLLOW_HUNT", 40)
	for seed := first; seed < first+n; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			h := newFollowHunt(t, seed)
			defer h.cleanup()
			for i := 0; i < steps && !t.Failed(); i++ {
				h.step(i)
			}
			if !t.Failed() {
				h.finish()
			}
		})
	}
}

type followHunt struct {
	t    *testing.T
	seed int64
	rng  *rand.Rand
	dir  string
	ctx  context.Context

	path       string // the primary's database
	replicaDir string
	client     *file.ReplicaClient
	out        string // the follower's output
	pageSize   int
	l0Ret      time.Duration

	app  *sql.DB
	db   *litestream.DB
	open bool
	dump string // the app's committed state now

	states map[ltx.TXID]map[string]bool // TXID -> states recorded for it

	follower *litestream.Replica
	stop     func() error // the in-process follower runs while non-nil
	ended    <-chan error
	started  time.Time
	resumed  bool // the output existed when the follower started

	// killedAt is the -txid a killed follower left, until a later
	// follower moves it: one stopped cleanly before its first commit
	// leaves the output as the kill did, anywhere up to -txid.next.
	killedAt ltx.TXID

	logs             *syncBuffer // the in-process follower's log
	checked, unknown int
	derived          int // checks against a restore at an unrecorded TXID
	trace            []string

	// Replica damage (see damageReplica). A re-seed numbers TXIDs again
	// with other states: states keeps every state recorded at a TXID in
	// any numbering (a follower stopped before the re-seed holds the old
	// one), curRec the TXIDs recorded in the current numbering, top its
	// highest TXID. A TXID a damage or re-seed may have given another
	// state is touched; one left unrecorded in some numbering is a gap: an
	// output there that matches no state known is not a failure.
	damage          bool // damage steps on (LITESTREAM_FOLLOW_HUNT_DAMAGE != "0")
	damaged         bool // this seed damaged the replica
	drng            *rand.Rand
	refresh         time.Duration // the primary's IndexRefreshInterval
	plogs           *syncBuffer   // the primary's log
	reseeds         int           // re-seeds seen in plogs
	adopted         int           // replica files adopted, seen in plogs
	copies          []string      // copies of the replica directory
	top             ltx.TXID
	curRec          map[ltx.TXID]bool
	touched, gaps   map[ltx.TXID]bool
	outs, refusals  int
	waits, notAvail int
	pruned          int // resumes ended with "replica history has been pruned"
	sameTXID        int // finishes where the output sat at the primary's TXID with another state
	runLog          int // where the running follower's log starts in logs
	damages         int // damage steps so far
	runDamages      int // damages when the running follower started
}

func newFollowHunt(t *testing.T, seed int64) *followHunt {
	dir := t.TempDir()
	h := &followHunt{
		t: t, seed: seed, rng: rand.New(rand.NewSource(seed)), dir: dir, ctx: context.Background(),
		path: filepath.Join(dir, "primary.db"), replicaDir: filepath.Join(dir, "replica"),
		out: filepath.Join(dir, "follow", "out.db"), states: map[ltx.TXID]map[string]bool{},
		damage: os.Getenv("LITESTREAM_FOLLOW_HUNT_DAMAGE") != "0", drng: rand.New(rand.NewSource(seed*7919 + 1)),
		curRec: map[ltx.TXID]bool{}, touched: map[ltx.TXID]bool{}, gaps: map[ltx.TXID]bool{}, plogs: &syncBuffer{},
	}
	if h.damage {
		h.refresh = []time.Duration{0, -1}[h.drng.Intn(2)]
	}
	if err := os.MkdirAll(filepath.Dir(h.out), 0o755); err != nil {
		t.Fatal(err)
	}
	h.client = file.NewReplicaClient(h.replicaDir)
	h.logs = &syncBuffer{}
	owner := litestream.NewDB(filepath.Join(dir, "follow", "unused"))
	owner.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.follower = litestream.NewReplicaWithClient(owner, h.client)
	h.pageSize = []int{512, 1024, 4096}[h.rng.Intn(3)]
	h.l0Ret = []time.Duration{time.Nanosecond, time.Hour}[h.rng.Intn(2)]
	autockpt := []int{0, 100, 1000}[h.rng.Intn(3)]
	h.tracef("seed %d: page size %d, L0Retention %s, wal_autocheckpoint %d, damage %v, IndexRefreshInterval %s", seed, h.pageSize, h.l0Ret, autockpt, h.damage, h.refresh)

	app, err := sql.Open("sqlite", fmt.Sprintf("%s?_pragma=busy_timeout(5000)&_pragma=page_size(%d)&_pragma=journal_mode(wal)&_pragma=wal_autocheckpoint(%d)",
		testFileURI(h.path), h.pageSize, autockpt))
	if err != nil {
		t.Fatal(err)
	}
	h.app = app
	for _, q := range []string{
		`CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER, pad BLOB)`,
		`CREATE TABLE aside (id INTEGER PRIMARY KEY, v INTEGER, pad BLOB)`,
		`CREATE TABLE big (id INTEGER PRIMARY KEY, pad BLOB)`,
	} {
		h.exec(q)
	}
	h.newDB()
	h.openDB(-1)
	h.syncAndWait(-1)
	return h
}

func (h *followHunt) tracef(format string, args ...any) {
	h.trace = append(h.trace, fmt.Sprintf(format, args...))
}

func (h *followHunt) fatalf(format string, args ...any) {
	h.t.Helper()
	plog := ""
	if h.damaged {
		plog = "\nprimary log:\n" + h.plogs.String()
	}
	h.t.Fatalf("seed %d (replay: LITESTREAM_FOLLOW_HUNT_SEED=%d go test -count=1 -run 'TestReplica_FollowInterleavings' .): %s\nsteps:\n  %s%s",
		h.seed, h.seed, fmt.Sprintf(format, args...), strings.Join(h.trace, "\n  "), plog)
}

func (h *followHunt) newDB() {
	db := litestream.NewDB(h.path)
	db.Logger = slog.New(slog.NewTextHandler(h.plogs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	db.Replica = litestream.NewReplicaWithClient(db, h.client)
	db.Replica.IndexRefreshInterval = h.refresh
	manual(db)
	db.BusyTimeout = 20 * time.Millisecond
	db.L0Retention = h.l0Ret
	db.MinCheckpointPageN = []int{10, 50, 1000}[h.rng.Intn(3)]
	h.db = db
}

func (h *followHunt) openDB(i int) {
	if err := h.db.Open(); err != nil {
		h.tracef("%d: primary open: %v", i, err)
		return
	}
	h.open = true
	h.tracef("%d: primary open", i)
}

func (h *followHunt) cleanup() {
	if h.stop != nil {
		_ = h.stop()
		h.stop = nil
	}
	if h.open {
		_ = h.db.Close(context.Background())
	}
	_ = h.app.Close()
}

func (h *followHunt) exec(query string, args ...any) error {
	_, err := h.app.Exec(query, args...)
	if err == nil {
		h.dump = MustDump(h.t, h.app)
	}
	return err
}

// record notes the app's state as the one at the primary's TXID, after a
// sync that captured the whole WAL.
func (h *followHunt) record(what string) {
	pos, err := h.db.Pos()
	if err != nil || pos.TXID == 0 {
		h.tracef("   %s: pos %s err=%v (not recorded)", what, pos.TXID, err)
		return
	}
	h.observe()
	h.curRec[pos.TXID] = true
	if h.states[pos.TXID] == nil {
		h.states[pos.TXID] = map[string]bool{}
	}
	if len(h.states[pos.TXID]) > 0 && !h.states[pos.TXID][h.dump] {
		h.tracef("   txid %s recorded again with another state", pos.TXID)
	}
	h.states[pos.TXID][h.dump] = true
	h.tracef("   %s: txid %s = %s", what, pos.TXID, h.dump)
}

func (h *followHunt) step(i int) {
	h.checkNotEnded(i)
	switch op := h.rng.Intn(100); {
	case op < 26:
		h.commit(i)
	case op < 30:
		h.grow(i)
	case op < 33:
		h.shrink(i)
	case op < 35:
		err := h.exec(`VACUUM`)
		h.tracef("%d: VACUUM err=%v", i, err)
	case op < 40:
		if !h.open {
			return
		}
		err := h.db.Sync(h.ctx)
		h.tracef("%d: sync err=%v", i, err)
		if err == nil {
			h.record("sync")
		}
	case op < 52:
		h.syncAndWait(i)
	case op < 56:
		mode := []string{"PASSIVE", "TRUNCATE"}[h.rng.Intn(2)]
		res, err := h.appCheckpoint(mode)
		h.tracef("%d: app checkpoint %s: %s err=%v", i, mode, res, err)
	case op < 59:
		if !h.open {
			return
		}
		mode := []string{"PASSIVE", "TRUNCATE", "RESTART"}[h.rng.Intn(3)]
		err := h.db.Checkpoint(h.ctx, mode)
		h.tracef("%d: db.Checkpoint %s err=%v", i, mode, err)
		if err == nil {
			h.record("checkpoint")
		}
	case op < 64:
		if !h.open {
			return
		}
		lvl := 1 + h.rng.Intn(2)
		info, err := h.db.Compact(h.ctx, lvl)
		h.tracef("%d: compact L%d: %s err=%v", i, lvl, fileName(info), err)
	case op < 67:
		if !h.open {
			return
		}
		info, err := h.db.Snapshot(h.ctx)
		h.tracef("%d: snapshot: %s err=%v", i, fileName(info), err)
		if err == nil {
			h.record("snapshot") // a snapshot syncs first
		}
	case op < 70:
		if !h.open {
			return
		}
		err := h.db.EnforceL0RetentionByTime(h.ctx)
		h.tracef("%d: L0 retention by time: err=%v", i, err)
	case op < 73:
		h.retention(i)
	case op < 77:
		h.closeAndReopen(i)
	case op < 80:
		if !h.open {
			return
		}
		err := h.db.ResetLocalState(h.ctx)
		h.tracef("%d: ResetLocalState: err=%v", i, err)
		h.forgetAboveReplica()
	case op < 88:
		h.toggleFollower(i)
	case op < 93:
		h.followBriefly(i)
	case op < 96:
		h.killFollower(i)
	default:
		if h.damage {
			h.damageReplica(i)
		} else {
			h.commit(i)
		}
	}
	h.observe()
	if h.damage && h.drng.Intn(4) == 0 {
		h.saveCopy(i)
	}
}

// appCheckpoint runs a checkpoint on an app connection, waiting at most
// 10ms for locks, and returns its (busy, log, checkpointed) row.
func (h *followHunt) appCheckpoint(mode string) (string, error) {
	conn, err := h.app.Conn(h.ctx)
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.ExecContext(h.ctx, `PRAGMA busy_timeout = 10`); err != nil {
		return "", err
	}
	defer func() { _, _ = conn.ExecContext(h.ctx, `PRAGMA busy_timeout = 5000`) }()
	var b, log, done int
	err = conn.QueryRowContext(h.ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&b, &log, &done)
	return fmt.Sprintf("busy=%d log=%d done=%d", b, log, done), err
}

func (h *followHunt) commit(i int) {
	table, what, err := randomCommit(h.app, h.rng, 2000)
	if errors.Is(err, errBegin) {
		h.fatalf("%v", err)
	} else if err != nil {
		h.tracef("%d: commit %s %s failed: %v", i, table, what, err)
		return
	}
	h.dump = MustDump(h.t, h.app)
	h.tracef("%d: commit %s %s -> %s", i, table, what, h.dump)
}

// grow adds many large rows to big: the database grows by many pages.
func (h *followHunt) grow(i int) {
	n := 20 + h.rng.Intn(150)
	err := h.exec(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < ?) INSERT INTO big (pad) SELECT randomblob(?) FROM c`, n, 200+h.rng.Intn(1500))
	h.tracef("%d: grow big by %d rows err=%v -> %s", i, n, err, h.dump)
}

// shrink empties big, and often vacuums: the database shrinks.
func (h *followHunt) shrink(i int) {
	err := h.exec(`DELETE FROM big`)
	h.tracef("%d: empty big err=%v -> %s", i, err, h.dump)
	if h.rng.Intn(3) != 0 {
		err := h.exec(`VACUUM`)
		h.tracef("   VACUUM err=%v", err)
	}
}

func (h *followHunt) syncAndWait(i int) {
	if !h.open {
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
	defer cancel()
	err := h.db.SyncAndWait(ctx)
	h.tracef("%d: SyncAndWait err=%v", i, err)
	if err == nil {
		h.record("SyncAndWait")
	}
}

// forgetAboveReplica drops the states recorded for TXIDs the replica does
// not hold: after ResetLocalState the primary writes them again, with
// other states (they were never uploaded, so no follower saw them).
func (h *followHunt) forgetAboveReplica() {
	if h.damaged {
		return // a follower may hold them: observe marks them instead
	}
	var top ltx.TXID
	for lvl := 0; lvl <= litestream.SnapshotLevel; lvl++ {
		if infos := levelFiles(h.t, h.client, lvl); len(infos) > 0 {
			top = max(top, infos[len(infos)-1].MaxTXID)
		}
	}
	for n := range h.states {
		if n > top {
			delete(h.states, n)
			h.tracef("   forget txid %s (above the replica's %s)", n, top)
		}
	}
}

// stateAt returns the states recorded for txid or, if none was (a sync
// may write several TXIDs: a snapshot, then the WAL), the replica's
// restore at txid, if it still has one; derived says which.
func (h *followHunt) stateAt(txid ltx.TXID) (states map[string]bool, derived bool) {
	if s := h.states[txid]; s != nil {
		return s, false
	}
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(h.t.TempDir(), "at.db")
	opt.TXID = txid
	if err := litestream.NewReplicaWithClient(nil, h.client).Restore(h.ctx, opt); err != nil {
		return nil, false
	}
	dump, err := followDump(opt.OutputPath)
	if err != nil {
		h.fatalf("restore at txid %s: %v", txid, err)
	}
	return map[string]bool{dump: true}, true
}

// replicaStateAt returns the replica's restore at txid, if it has one.
func (h *followHunt) replicaStateAt(txid ltx.TXID) (string, bool) {
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(h.t.TempDir(), "at.db")
	opt.TXID = txid
	if err := litestream.NewReplicaWithClient(nil, h.client).Restore(h.ctx, opt); err != nil {
		return "", false
	}
	dump, err := followDump(opt.OutputPath)
	if err != nil {
		h.fatalf("restore at txid %s: %v", txid, err)
	}
	return dump, true
}

// retention deletes old snapshots as snapshot retention does, then the
// lower levels' files below the snapshot before the first one kept, or
// (by TXID) a level's files below the newest snapshot.
func (h *followHunt) retention(i int) {
	if !h.open {
		return
	}
	if h.rng.Intn(2) == 0 {
		min, err := h.db.EnforceSnapshotRetention(h.ctx, time.Now())
		h.tracef("%d: snapshot retention: min %s err=%v", i, min, err)
		if err != nil || min == 0 {
			return
		}
		for lvl := 0; lvl <= 2; lvl++ {
			err := h.db.EnforceRetentionByTXID(h.ctx, lvl, min)
			h.tracef("   retention L%d below %s: err=%v", lvl, min, err)
		}
		return
	}
	snaps := levelFiles(h.t, h.client, litestream.SnapshotLevel)
	if len(snaps) == 0 {
		return
	}
	floor := snaps[len(snaps)-1].MaxTXID
	lvl := []int{0, 1, 2, litestream.SnapshotLevel}[h.rng.Intn(4)]
	err := h.db.EnforceRetentionByTXID(h.ctx, lvl, floor)
	h.tracef("%d: retention L%d below %s: err=%v", i, lvl, floor, err)
}

// closeAndReopen closes the primary, lets the app commit while nothing
// captures, and opens it again (the same DB object or a new one).
func (h *followHunt) closeAndReopen(i int) {
	if !h.open {
		h.openDB(i)
		return
	}
	err := h.db.Close(h.ctx)
	h.tracef("%d: primary close: err=%v", i, err)
	h.open = false
	if err == nil {
		h.record("close") // Close's final sync captures the whole WAL
	}
	for n := h.rng.Intn(3); n > 0; n-- {
		h.commit(i)
	}
	if h.rng.Intn(2) == 0 {
		h.newDB()
		h.tracef("   new DB object")
	}
	h.openDB(i)
}

// startFollower starts the in-process follower.
func (h *followHunt) startFollower(i int) {
	_, err := os.Stat(h.out)
	h.resumed = err == nil
	h.runLog, h.runDamages = len(h.logs.String()), h.damages
	h.stop, h.ended = startFollowEnding(h.follower, h.out)
	h.started = time.Now()
	h.tracef("%d: follower starts (resume %v)", i, h.resumed)
}

// stopFollower stops the in-process follower and checks its output.
func (h *followHunt) stopFollower(i int) {
	h.t.Helper()
	err := h.stop()
	h.stop = nil
	h.tracef("%d: follower stops after %s: err=%v", i, time.Since(h.started).Round(time.Millisecond), err)
	if err != nil && !(errors.Is(err, context.Canceled) && !h.resumed) {
		if h.damaged {
			// It ended by itself just as it was stopped.
			h.endedWith(i, err)
			return
		}
		h.fatalf("follower stopped with %v", err)
	}
	select {
	case err := <-h.ended:
		h.endedWith(i, err)
		return
	default:
	}
	h.checkRunLog()
	h.checkOutput(false)
}

// checkRunLog checks the log of the follower run that just stopped: without
// damage nothing takes files away from the replica's newest TXID, so it
// never waits for the replica to reach its output.
func (h *followHunt) checkRunLog() {
	h.t.Helper()
	all := h.logs.String()
	run := all[min(h.runLog, len(all)):]
	if n := strings.Count(run, "follow waiting"); n > 0 {
		if !h.damaged {
			h.fatalf("the follower took the replica for behind its output:\n%s", all)
		}
		h.waits++
		h.tracef("   the follower logged %d times that it waits for the replica", n)
		// Once per time the replica falls behind the output: at most
		// once per damage during the run, and once for one before.
		if n > 1+h.damages-h.runDamages {
			h.fatalf("the follower logged %d times that it waits, with %d damages during its run:\n%s", n, h.damages-h.runDamages, run)
		}
	}
}

func (h *followHunt) checkNotEnded(i int) {
	h.t.Helper()
	if h.stop == nil {
		return
	}
	select {
	case err := <-h.ended:
		_ = h.stop()
		h.stop = nil
		h.endedWith(i, err)
	default:
	}
}

// endedWith fails the hunt: the in-process follower ended by itself with
// err (it has stopped). Snapshot retention used to end a resume with
// "replica history has been pruned"
// (TestReplica_Follow_ResumeAfterSnapshotRetention); the follower now
// bridges through the snapshot.
//
// After damage it may end with the documented refusal of a replica whose
// history is no longer the output's (the output is checked and a new one
// started, as a user would), or, with no output yet, because the replica
// holds nothing to restore, or holds two histories' files in one chain
// (an older copy put back while the primary ran at the default
// IndexRefreshInterval: it uploads on top until its next listing).
func (h *followHunt) endedWith(i int, err error) {
	h.t.Helper()
	h.checkRunLog()
	switch {
	case h.damaged && isRefusal(err):
		h.refused(i, err.Error())
	case h.damaged && !h.resumed && (errors.Is(err, litestream.ErrTxNotAvailable) || errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "non-contiguous ltx files") || h.refresh == 0 && chainBroken(err)):
		// No output yet: the replica holds nothing to restore, or was
		// being removed while the restore listed or read it.
		h.notAvail++
		h.tracef("%d: follower ended: %v", i, err)
	case h.damaged && h.resumed && strings.Contains(err.Error(), "replica history has been pruned"):
		// As documented when no file continues the output's TXID: the
		// primary uploads past a replica put back while it ran, until
		// it lists it again. The output stays; a later follower resumes.
		h.pruned++
		h.tracef("%d: follower ended: %v", i, err)
		h.checkOutput(false)
	default:
		h.fatalf("before step %d: follower ended by itself: %v\nfollower log:\n%s", i, err, h.logs.String())
	}
}

// chainBroken reports whether err is a restore's refusal of two files
// that do not continue one another.
func chainBroken(err error) bool {
	return errors.Is(err, litestream.ErrLTXCorrupted) && strings.Contains(err.Error(), "does not continue")
}

// isRefusal reports whether err is follow mode's refusal of a replica whose
// history is no longer the output's, as documented.
func isRefusal(err error) bool {
	return errors.Is(err, litestream.ErrLTXCorrupted) && refusalText(err.Error())
}

func refusalText(msg string) bool {
	return strings.Contains(msg, "replaced by another database") || strings.Contains(msg, "numbered again")
}

// refused checks the output a follower refused to go on with: it must hold
// a state committed at its -txid, at a TXID damage or a re-seed touched;
// the next follower starts a new output.
func (h *followHunt) refused(i int, msg string) {
	h.t.Helper()
	h.refusals++
	txid, _ := litestream.ReadTXIDFile(h.out)
	h.tracef("%d: follower refused the replica at -txid %s: %s", i, txid, msg)
	if txid != 0 && !h.touched[txid] && !h.touched[txid+1] {
		h.fatalf("the follower refused the replica at -txid %s, a TXID no damage or re-seed touched: %s\nfollower log:\n%s", txid, msg, h.logs.String())
	}
	h.checkOutput(false)
	h.outs++
	h.out = filepath.Join(h.dir, "follow", fmt.Sprintf("out%d.db", h.outs))
	h.killedAt = 0
	h.tracef("   next output: %s", filepath.Base(h.out))
}

func (h *followHunt) toggleFollower(i int) {
	if h.stop == nil {
		h.startFollower(i)
		return
	}
	h.stopFollower(i)
}

// followBriefly runs the follower for a random moment and stops it, most
// likely in the middle of a restore or of applying files.
func (h *followHunt) followBriefly(i int) {
	if h.stop != nil {
		h.stopFollower(i)
	}
	h.startFollower(i)
	time.Sleep(time.Duration(h.rng.Intn(40)) * time.Millisecond)
	h.stopFollower(i)
}

// killFollower runs the follower in a child process that kills itself
// (SIGKILL) after writing some page, or is killed after a random moment.
func (h *followHunt) killFollower(i int) {
	if h.stop != nil {
		h.stopFollower(i)
	}
	_ = os.Remove(h.out + ".killed")
	page := 1 + h.rng.Intn(40)
	wait := time.Duration(30+h.rng.Intn(150)) * time.Millisecond
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "LITESTREAM_TEST_CHILD=follower", "LITESTREAM_TEST_DIR="+h.out,
		"LITESTREAM_TEST_REPLICA="+h.replicaDir, fmt.Sprintf("LITESTREAM_TEST_KILL_AT_PAGE=%d", page))
	var output syncBuffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		h.fatalf("start child follower: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	how := "killed by the test"
	select {
	case err := <-done:
		if _, serr := os.Stat(h.out + ".killed"); serr != nil {
			msg := output.String()
			_, oerr := os.Stat(h.out)
			switch {
			case h.damaged && refusalText(msg):
				h.refused(i, "child: "+msg)
				return
			case h.damaged && oerr != nil && (strings.Contains(msg, litestream.ErrTxNotAvailable.Error()) || strings.Contains(msg, "no such file or directory") || strings.Contains(msg, "non-contiguous ltx files")):
				h.notAvail++
				h.tracef("%d: child follower ended: %s", i, strings.TrimSpace(msg))
				return
			case h.damaged && oerr == nil && strings.Contains(msg, "replica history has been pruned"):
				h.pruned++
				h.tracef("%d: child follower ended: %s", i, strings.TrimSpace(msg))
				h.checkOutput(false)
				return
			}
			h.fatalf("child follower ended by itself: %v\n%s", err, msg)
		}
		how = fmt.Sprintf("killed itself at page %d", page)
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
	}
	h.tracef("%d: child follower %s (after at most %s)", i, how, wait)
	h.checkOutput(true)
}

// checkOutput checks the stopped follower's output against the model.
func (h *followHunt) checkOutput(killed bool) {
	h.t.Helper()
	if _, err := os.Stat(h.out); os.IsNotExist(err) {
		h.tracef("   no output yet")
		return
	}
	txid, err := litestream.ReadTXIDFile(h.out)
	if err != nil {
		h.fatalf("read -txid: %v", err)
	}
	next := ltx.TXID(0)
	if b, err := os.ReadFile(litestream.NextTXIDPath(h.out)); err == nil {
		next, _ = ltx.ParseTXID(strings.TrimSpace(string(b)))
	}
	// A follower killed between placing its initial restore and writing
	// -txid leaves -txid.next only (TestReplica_Follow_KilledAfterPlacingOutputResumes);
	// otherwise an output never stands without -txid
	// (TestReplica_Follow_StopAfterInitialRestoreLeavesResumableOutput).
	if txid == 0 && killed && next > 0 {
		txid = next
	} else if txid == 0 {
		h.fatalf("output exists without a -txid file (killed %v)", killed)
	}
	hi := txid
	// After a kill the output may hold any state up to -txid.next, as
	// documented, until a follower commits; after a clean stop it holds
	// the state at -txid (TestReplica_Follow_StopDuringCommitKeepsTXIDFile).
	if killed {
		h.killedAt = txid
	} else if txid != h.killedAt {
		h.killedAt = 0
	}
	if next > hi && (killed || h.killedAt != 0) {
		hi = next
	}
	got, err := followDump(h.out)
	if err != nil {
		h.fatalf("output at -txid %s: %v", txid, err)
	}
	known, ambiguous := false, false
	var want []string
	for n := txid; n <= hi; n++ {
		// A TXID damage or a re-seed touched may hold a state of each
		// numbering: all recorded, and the replica's now.
		if h.touched[n] && (h.gaps[n] || !h.curRec[n]) {
			ambiguous = true
		}
		states, derived := h.stateAt(n)
		if h.touched[n] && !derived && !states[got] {
			if now, ok := h.replicaStateAt(n); ok && !states[now] {
				states = maps.Clone(states)
				states[now] = true
			}
		}
		if states == nil {
			continue
		}
		known = true
		for st := range states {
			want = append(want, fmt.Sprintf("%s: %s (derived %v)", n, st, derived))
		}
		if states[got] {
			h.checked++
			if derived {
				h.derived++
			}
			h.tracef("   output at -txid %s (next %s) holds %s, the state at %s", txid, hi, got, n)
			return
		}
	}
	if !known || ambiguous {
		h.unknown++
		h.tracef("   output at -txid %s (next %s) holds %s: no state recorded for those TXIDs in every numbering (known %v)", txid, hi, got, known)
		return
	}
	sort.Strings(want)
	var at []string
	for n, set := range h.states {
		if set[got] {
			at = append(at, n.String())
		}
	}
	sort.Strings(at)
	h.fatalf("output at -txid %s (-txid.next %s, killed %v) holds %s (the state recorded at %v), want %v\nfollower log:\n%s", txid, next, killed, got, at, want, h.logs.String())
}

// followDump checks a stopped follower's output and returns its dump.
func followDump(path string) (string, error) {
	db, err := sql.Open("sqlite", testFileURI(path)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return "", err
	}
	defer func() { _ = db.Close() }()
	var result string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&result); err != nil {
		return "", fmt.Errorf("integrity_check: %w", err)
	} else if result != "ok" {
		return "", fmt.Errorf("integrity_check: %s", result)
	}
	return dumpNoFatal(db)
}

// dumpNoFatal is MustDump returning errors.
func dumpNoFatal(db *sql.DB) (dump string, err error) {
	ft := &fatalCatcher{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = recover() }()
		dump = MustDump(ft, db)
	}()
	<-done
	if ft.msg != "" {
		return "", errors.New(ft.msg)
	}
	return dump, nil
}

// fatalCatcher is a testing.TB whose Fatal ends the goroutine.
type fatalCatcher struct {
	testing.TB
	msg string
}

func (f *fatalCatcher) Helper() {}
func (f *fatalCatcher) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	panic(f)
}
func (f *fatalCatcher) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

// finish: the primary replicates everything, the follower catches up to
// its final TXID and holds its final state.
func (h *followHunt) finish() {
	if !h.open {
		h.openDB(-1)
	}
	if !h.open {
		h.fatalf("final open failed")
	}
	if h.damaged && h.stop != nil {
		// A follower that ends before the final SyncAndWait is judged
		// as during the steps; after it, the replica must restore.
		h.stopFollower(-1)
		if h.t.Failed() {
			return
		}
	}
	if h.damaged && h.refresh == 0 {
		// A primary that has not listed the replica since the damage
		// would notice it only after IndexRefreshInterval (6 h): Close
		// and Open, as a restarted process, lists it.
		err := h.db.Close(h.ctx)
		h.tracef("final: primary close: err=%v", err)
		h.open = false
		h.openDB(-1)
		if !h.open {
			h.fatalf("final open failed")
		}
	}
	h.syncAndWait(-1)
	h.observe()
	pos, err := h.db.Pos()
	if err != nil {
		h.fatalf("final pos: %v", err)
	}
	if !h.states[pos.TXID][h.dump] {
		h.fatalf("final SyncAndWait did not record txid %s", pos.TXID)
	}
	if h.stop == nil {
		h.startFollower(-1)
	}
	deadline := time.Now().Add(20 * time.Second)
	extra := 0
	for {
		txid, _ := litestream.ReadTXIDFile(h.out)
		next := txid
		if b, err := os.ReadFile(litestream.NextTXIDPath(h.out)); err == nil {
			if n, err := ltx.ParseTXID(strings.TrimSpace(string(b))); err == nil {
				next = max(next, n)
			}
		}
		if next > pos.TXID && h.damaged && time.Now().Before(deadline) {
			// The replica was numbered again below the output's TXID (or
			// the TXID its -txid.next says it may hold): the follower
			// waits until the primary writes past it, and
			// must then refuse it or, if the files rewrite every page,
			// hold the primary's state.
			h.push(-1)
			if pos, err = h.db.Pos(); err != nil {
				h.fatalf("final pos: %v", err)
			}
			continue
		}
		if txid == pos.TXID && h.damaged && h.touched[txid] && extra < 3 {
			// Numbered again up to the output's TXID exactly, the
			// replica has nothing to apply, and the follower does not
			// look at the file at its TXID (TestReplica_Follow_RefusesRenumberedAtOutputTXID):
			// one more TXID makes it refuse or go on.
			if got, err := followDump(h.out); err == nil && got != h.dump {
				extra++
				h.sameTXID++
				h.tracef("final: output at the primary's txid %s holds %s, not its %s: one more commit", txid, got, h.dump)
				h.push(-1)
				if pos, err = h.db.Pos(); err != nil {
					h.fatalf("final pos: %v", err)
				}
				continue
			}
		}
		if txid >= pos.TXID {
			break
		}
		select {
		case err := <-h.ended:
			_ = h.stop()
			h.stop = nil
			if !isRefusal(err) {
				// After the final SyncAndWait the replica restores its
				// newest TXID from any TXID the output is at.
				h.fatalf("after the final SyncAndWait (txid %s) the follower of %s ended with %v (replica: %s)\nfollower log:\n%s",
					pos.TXID, filepath.Base(h.out), err, h.replicaFiles(), h.logs.String())
			}
			h.endedWith(-1, err)
			if h.t.Failed() {
				return
			}
			h.startFollower(-1)
		default:
		}
		if time.Now().After(deadline) {
			h.fatalf("follower at txid %s did not reach the primary's %s within 20s\nfollower log:\n%s", txid, pos.TXID, h.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.stopFollower(-1)
	txid, _ := litestream.ReadTXIDFile(h.out)
	if txid != pos.TXID {
		h.fatalf("follower at txid %s, past the primary's %s", txid, pos.TXID)
	}
	got, err := followDump(h.out)
	if err != nil {
		h.fatal(err)
	}
	if got != h.dump {
		h.fatalf("follower at txid %s holds %s, the primary %s (touched %v, states recorded there %v)\nfollower log:\n%s", txid, got, h.dump, h.touched[txid], h.states[txid], h.logs.String())
	}
	if os.Getenv("LITESTREAM_FOLLOW_HUNT_TRACE") != "" {
		h.t.Logf("steps:\n  %s", strings.Join(h.trace, "\n  "))
	}
	h.t.Logf("seed %d: %d outputs checked (%d against a restore at an unrecorded TXID), %d unrecorded and no longer restorable; damaged %v: %d refusals, %d runs that waited, %d fresh followers with nothing to restore, %d outputs at the final TXID in another numbering",
		h.seed, h.checked, h.derived, h.unknown, h.damaged, h.refusals, h.waits, h.notAvail, h.sameTXID)
}

// replicaFiles lists the replica's files, level by level.
func (h *followHunt) replicaFiles() string {
	var b strings.Builder
	for lvl := 0; lvl <= litestream.SnapshotLevel; lvl++ {
		for _, info := range levelFiles(h.t, h.client, lvl) {
			fmt.Fprintf(&b, " L%d:%d-%d", lvl, info.MinTXID, info.MaxTXID)
		}
	}
	return b.String()
}

// push commits a row and uploads it: the primary's TXID moves on.
func (h *followHunt) push(i int) {
	err := h.exec(`INSERT INTO aside (v, pad) VALUES (?, randomblob(100))`, h.rng.Intn(1000))
	h.tracef("%d: insert into aside err=%v -> %s", i, err, h.dump)
	h.syncAndWait(i)
}

func (h *followHunt) fatal(err error) { h.t.Helper(); h.fatalf("%v", err) }

// followCommitStall, when set, is called by a commit hook on every SQLite
// connection whose DSN contains followCommitStallPath, while the commit is
// in progress.
var (
	followCommitStallOnce sync.Once
	followCommitStallMu   sync.Mutex
	followCommitStallPath string
	followCommitStall     func()
)

// stallFollowCommits runs fn inside the next commit of a connection on
// path (registered once per test binary; set per test).
func stallFollowCommits(t *testing.T, path string, fn func()) {
	followCommitStallOnce.Do(func() {
		sqlite.RegisterConnectionHook(func(conn sqlite.ExecQuerierContext, dsn string) error {
			followCommitStallMu.Lock()
			p := followCommitStallPath
			followCommitStallMu.Unlock()
			hr, ok := conn.(sqlite.HookRegisterer)
			if p == "" || !strings.Contains(dsn, p) || !ok {
				return nil
			}
			hr.RegisterCommitHook(func() int32 {
				followCommitStallMu.Lock()
				fn := followCommitStall
				followCommitStall = nil
				followCommitStallMu.Unlock()
				if fn != nil {
					fn()
				}
				return 0
			})
			return nil
		})
	})
	followCommitStallMu.Lock()
	followCommitStallPath, followCommitStall = path, fn
	followCommitStallMu.Unlock()
	t.Cleanup(func() {
		followCommitStallMu.Lock()
		followCommitStallPath, followCommitStall = "", nil
		followCommitStallMu.Unlock()
	})
}

// Found by TestReplica_FollowInterleavings (seed 10, timing-dependent): a
// follower stopped (its context cancelled) while its COMMIT runs has the
// commit land in the output, but the driver reports the cancellation as
// the COMMIT's error (modernc.org/sqlite returns ctx.Err() whenever it
// interrupted a statement, even one that completed), so the follower
// never writes -txid: after a clean stop, Restore returning nil, the
// output holds TXID N+1 while -txid still says N (-txid.next says N+1).
func TestReplica_Follow_StopDuringCommitKeepsTXIDFile(t *testing.T) {
	ctx := context.Background()
	path, app, client := mustAppWithReplica(t)
	db := mustOpenManualDB(t, path, client)
	mustInsertReplicated(t, db, app, 1, 1)
	out := filepath.Join(t.TempDir(), "out.db")
	follower := litestream.NewReplicaWithClient(nil, client)
	stop := startFollow(follower, out)
	waitFollowed(t, db, out)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	before, _ := litestream.ReadTXIDFile(out)

	mustInsertReplicated(t, db, app, 2, 1)
	pos, err := db.Pos()
	if err != nil {
		t.Fatal(err)
	}
	want := MustDump(t, app)

	// Stop the follower while its next COMMIT is in progress, as a
	// shutdown at that moment would.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stallFollowCommits(t, out, func() {
		cancel()
		time.Sleep(100 * time.Millisecond) // the driver interrupts meanwhile
	})
	opt := litestream.NewRestoreOptions()
	opt.OutputPath, opt.Follow, opt.FollowInterval = out, true, 20*time.Millisecond
	if err := follower.Restore(fctx, opt); err != nil {
		t.Fatalf("follow stopped with %v", err)
	}

	txid, err := litestream.ReadTXIDFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := MustCheckRestored(t, out)
	switch {
	case got == want && txid != pos.TXID:
		next, _ := os.ReadFile(litestream.NextTXIDPath(out))
		t.Fatalf("after a clean stop the output holds TXID %s's state, but -txid says %s (-txid.next %s)", pos.TXID, txid, strings.TrimSpace(string(next)))
	case got != want && txid != before:
		t.Fatalf("after a clean stop the output holds TXID %s's state, but -txid says %s", before, txid)
	}
	t.Logf("output at txid %s, committed: %v", txid, got == want)
}

// Found by TestReplica_FollowInterleavings (seed 13): a follower killed
// just after its initial restore placed the output, before it wrote -txid,
// left an output no follower resumes ("database exists but no -txid file
// found"). So did a stop during the post-restore integrity check, which
// ran on the placed output. The check now runs before the output is
// placed, and -txid.next is written just before (-txid just after): an
// output never stands without either. Here the follower is stopped when the check opens its
// connection; the restarted follower must resume or start over.
func TestReplica_Follow_StopAfterInitialRestoreLeavesResumableOutput(t *testing.T) {
	ctx := context.Background()
	db, app, client, out := mustPrimaryToFollow(t)
	follower := litestream.NewReplicaWithClient(nil, client)

	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stallFollowConnects(t, out, cancel) // the check's connection is the first

	opt := litestream.NewRestoreOptions()
	opt.OutputPath, opt.Follow, opt.FollowInterval = out, true, 20*time.Millisecond
	opt.IntegrityCheck = litestream.IntegrityCheckQuick
	err := follower.Restore(fctx, opt)
	t.Logf("first follower stopped: %v", err)
	stallFollowConnects(t, "", nil)

	if _, serr := os.Stat(out); serr == nil {
		txid, _ := litestream.ReadTXIDFile(out)
		t.Logf("left: output, -txid %s", txid)
	}
	// The follower restarts: it must resume (or start over), not refuse.
	stop, ended := startFollowEnding(follower, out)
	defer func() { _ = stop() }()
	deadline := time.After(10 * time.Second)
	for {
		if txid, _ := litestream.ReadTXIDFile(out); txid > 0 {
			break
		}
		select {
		case err := <-ended:
			t.Fatalf("the restarted follower ended with %v", err)
		case <-deadline:
			t.Fatal("the restarted follower did not record a TXID")
		case <-time.After(20 * time.Millisecond):
		}
	}
	waitFollowed(t, db, out)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, out), MustDump(t, app); got != want {
		t.Fatalf("follower holds %s, primary %s", got, want)
	}
}

// Found by CI: a test that waited for -txid and then read the output found
// no output. Code written for upstream polls -txid the same way: -txid must
// never name a TXID while the output is not there. The check runs just
// before the initial restore renames the output into place.
func TestReplica_Follow_TXIDFileNeverBeforeOutput(t *testing.T) {
	db, _, client, out := mustPrimaryToFollow(t)

	var checked, early atomic.Int32
	litestream.SetCrashPoint(func(step string) {
		if step != "restore-placing" {
			return
		}
		checked.Add(1)
		if txid, _ := litestream.ReadTXIDFile(out); txid > 0 {
			if _, err := os.Stat(out); err != nil {
				early.Add(1)
			}
		}
	})
	t.Cleanup(func() { litestream.SetCrashPoint(func(string) {}) })

	stop, ended := startFollowEnding(litestream.NewReplicaWithClient(nil, client), out)
	defer func() { _ = stop() }()
	waitFollowedOrEnded(t, db, out, ended)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if checked.Load() == 0 {
		t.Fatal("the initial restore never reached the step before placing the output")
	}
	if early.Load() > 0 {
		t.Fatal("-txid named a TXID while the output did not exist yet")
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
}

// A follower killed right after its initial restore renamed the output
// into place, before -txid was written, must be resumed by the next one.
func TestReplica_Follow_KilledAfterPlacingOutputResumes(t *testing.T) {
	db, app, client, out := mustPrimaryToFollow(t)

	child, output := startChild(t, "follower", out, "LITESTREAM_TEST_REPLICA="+client.Path(), "LITESTREAM_TEST_KILL_AT_STEP=restore-placed")
	err := child.Wait()
	if _, serr := os.Stat(out + ".killed"); serr != nil {
		t.Fatalf("child follower was not killed after placing the output: %v\n%s", err, output.String())
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatalf("no output after the kill: %v", err)
	}

	mustResumeFollowToPrimary(t, db, app, client, out)
}

// mustPrimaryToFollow opens a manual primary with rows 1-3 replicated, and
// returns it with its app, its replica and a path for a follower's output.
func mustPrimaryToFollow(t *testing.T) (*litestream.DB, *sql.DB, *file.ReplicaClient, string) {
	t.Helper()
	path, app, client := mustAppWithReplica(t)
	db := mustOpenManualDB(t, path, client)
	mustInsertReplicated(t, db, app, 1, 3)
	return db, app, client, filepath.Join(t.TempDir(), "out.db")
}

// mustResumeFollowToPrimary commits two more rows, runs a follower of
// client into the existing output until it reaches the primary, and checks
// that it holds the primary's state.
func mustResumeFollowToPrimary(t *testing.T, db *litestream.DB, app *sql.DB, client *file.ReplicaClient, out string) {
	t.Helper()
	mustInsertReplicated(t, db, app, 4, 2)
	stop, ended := startFollowEnding(litestream.NewReplicaWithClient(nil, client), out)
	defer func() { _ = stop() }()
	waitFollowedOrEnded(t, db, out, ended)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, out), MustDump(t, app); got != want {
		t.Fatalf("follower holds %s, primary %s", got, want)
	}
}

// A follower whose initial restore was renamed into place but whose
// directory sync then failed returns the error; the output stands, and the
// next follower must resume it, not refuse it for a missing -txid.
func TestReplica_Follow_DirSyncFailedAfterPlacingResumes(t *testing.T) {
	db, app, client, out := mustPrimaryToFollow(t)

	litestream.SetRestoreSyncDir(t, func(string) error { return errors.New("injected directory sync failure") })
	opt := litestream.NewRestoreOptions()
	opt.OutputPath, opt.Follow, opt.FollowInterval = out, true, 20*time.Millisecond
	err := litestream.NewReplicaWithClient(nil, client).Restore(context.Background(), opt)
	if err == nil || !strings.Contains(err.Error(), "injected directory sync failure") {
		t.Fatalf("follow restore returned %v, want the directory sync failure", err)
	}
	litestream.SetRestoreSyncDir(t, internal.SyncDir)
	if _, err := os.Stat(out); err != nil {
		t.Fatalf("the renamed output is gone: %v", err)
	}

	mustResumeFollowToPrimary(t, db, app, client, out)
}

// Found by TestReplica_FollowInterleavings (seeds 29 and 67 of 200): a
// follower stopped at TXID N while snapshot retention runs as documented
// (EnforceSnapshotRetention, then each lower level's files below the
// returned TXID removed with EnforceRetentionByTXID) could not restart: the
// replica still holds a snapshot spanning 1..M > N, which holds every
// page, and the L0 files after M, but resumeFollow looked for a file
// continuing N at levels 0-8 only and the follow-mode Restore ended with
// "cannot resume follow mode from txid N: replica history has been
// pruned". The resumed follower must apply the snapshot and go on.
func TestReplica_Follow_ResumeAfterSnapshotRetention(t *testing.T) {
	path, app, client := mustAppWithReplica(t)
	db := mustOpenManualDB(t, path, client)
	mustInsertReplicated(t, db, app, 1, 2)
	out := filepath.Join(t.TempDir(), "out.db")
	follower := litestream.NewReplicaWithClient(nil, client)
	stop := startFollow(follower, out)
	waitFollowed(t, db, out)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	at, _ := litestream.ReadTXIDFile(out)

	retainSnapshotsPast(t, db, app, client, at)
	stop, ended := startFollowEnding(follower, out)
	defer func() { _ = stop() }()
	waitFollowedOrEnded(t, db, out, ended)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, out), MustDump(t, app); got != want {
		t.Fatalf("follower holds %s, primary %s", got, want)
	}
}

// stallFollowConnects runs fn whenever a SQLite connection whose DSN
// contains path opens (until the test ends or it is called with "").
func stallFollowConnects(t *testing.T, path string, fn func()) {
	followConnectOnce.Do(func() {
		sqlite.RegisterConnectionHook(func(conn sqlite.ExecQuerierContext, dsn string) error {
			followCommitStallMu.Lock()
			p, fn := followConnectPath, followConnect
			followCommitStallMu.Unlock()
			if p != "" && fn != nil && strings.Contains(dsn, p) {
				fn()
			}
			return nil
		})
	})
	followCommitStallMu.Lock()
	followConnectPath, followConnect = path, fn
	followCommitStallMu.Unlock()
	t.Cleanup(func() {
		followCommitStallMu.Lock()
		followConnectPath, followConnect = "", nil
		followCommitStallMu.Unlock()
	})
}

var (
	followConnectOnce sync.Once
	followConnectPath string
	followConnect     func()
)

// The running follower's side of the bug above: bridge skipped the
// snapshot level, so a follower left behind the same way between two
// ticks retried the hole after its TXID forever ("non-contiguous ltx
// files"). To leave it behind deterministically, the test holds the
// output's write lock, as another writer would: the follower keeps running
// and polling, but none of its commits can land until the lock is
// released, after retention removed the files after its TXID.
func TestReplica_Follow_RunningAfterSnapshotRetention(t *testing.T) {
	ctx := context.Background()
	path, app, client := mustAppWithReplica(t)
	db := mustOpenManualDB(t, path, client)
	mustInsertReplicated(t, db, app, 1, 2)
	out := filepath.Join(t.TempDir(), "out.db")
	follower := litestream.NewReplicaWithClient(nil, client)
	stop, ended := startFollowEnding(follower, out)
	defer func() { _ = stop() }()
	waitFollowed(t, db, out)
	at, _ := litestream.ReadTXIDFile(out)

	holder, err := sql.Open("sqlite", testFileURI(out))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Close() }()
	lock, err := holder.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	retainSnapshotsPast(t, db, app, client, at)
	if txid, _ := litestream.ReadTXIDFile(out); txid != at {
		t.Fatalf("the follower moved from %s to %s while the output was locked", at, txid)
	}
	if _, err := lock.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	_ = lock.Close()

	waitFollowedOrEnded(t, db, out, ended)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, out), MustDump(t, app); got != want {
		t.Fatalf("follower holds %s, primary %s", got, want)
	}
}

// retainSnapshotsPast commits and takes two snapshots past a follower at
// TXID at, then runs snapshot retention as documented, which removes every
// L0-L2 file continuing at: only the newest snapshot and the L0 files
// after it are left to follow from.
func retainSnapshotsPast(t *testing.T, db *litestream.DB, app *sql.DB, client litestream.ReplicaClient, at ltx.TXID) {
	t.Helper()
	ctx := context.Background()
	for round := 0; round < 2; round++ {
		mustInsertReplicated(t, db, app, 10*round+10, 3)
		if _, err := db.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mustInsertReplicated(t, db, app, 100, 2)
	min, err := db.EnforceSnapshotRetention(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	} else if min <= at+1 {
		t.Fatalf("snapshot retention floor %s, want above the follower's %s", min, at)
	}
	for lvl := 0; lvl <= 2; lvl++ {
		if err := db.EnforceRetentionByTXID(ctx, lvl, min); err != nil {
			t.Fatal(err)
		}
	}
	for lvl := 0; lvl < litestream.SnapshotLevel; lvl++ {
		for _, info := range levelFiles(t, client, lvl) {
			if info.MinTXID <= at+1 && info.MaxTXID > at {
				t.Fatalf("precondition: L%d %s-%s still continues the follower's TXID %s", lvl, info.MinTXID, info.MaxTXID, at)
			}
		}
	}
	snaps := levelFiles(t, client, litestream.SnapshotLevel)
	t.Logf("follower at %s; snapshots %s..%s; L0 %v", at, snaps[0].MinTXID, snaps[len(snaps)-1].MaxTXID, L0TXIDs(t, client))
}

// waitFollowedOrEnded is waitFollowed that fails at once if the follower
// ends by itself.
func waitFollowedOrEnded(t *testing.T, db *litestream.DB, out string, ended <-chan error) {
	t.Helper()
	pos, err := db.Pos()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		if txid, _ := litestream.ReadTXIDFile(out); txid >= pos.TXID {
			return
		}
		select {
		case err := <-ended:
			t.Fatalf("the follower ended with %v", err)
		case <-deadline:
			t.Fatalf("the follower did not reach txid %s", pos.TXID)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// observe follows the primary's TXID: one below the highest of its current
// numbering, or a re-seed in its log, starts a new numbering from there.
// After damage every TXID from there up is touched and, if left unrecorded
// in the numbering that ends, a gap.
func (h *followHunt) observe() {
	if !h.open {
		return
	}
	pos, err := h.db.Pos()
	if err != nil || pos.TXID == 0 {
		return
	}
	logs := h.plogs.String()
	reseeds := strings.Count(logs, "re-seeding")
	adopted := strings.Count(logs, "behind its replica") + strings.Count(logs, "another history than the replica")
	forget := func(n ltx.TXID) {
		if h.damaged {
			h.touched[n] = true
			if !h.curRec[n] {
				h.gaps[n] = true
			}
		}
		delete(h.curRec, n)
	}
	if pos.TXID < h.top || reseeds > h.reseeds {
		for n := pos.TXID; n <= h.top; n++ {
			forget(n)
		}
		h.tracef("   primary numbered again from txid %s (was up to %s, re-seeds %d)", pos.TXID, h.top, reseeds)
	}
	if adopted > h.adopted {
		// The primary took the replica's newest file (an older copy's)
		// for its own: the replica's TXIDs below it are that copy's
		// numbering now.
		for n := ltx.TXID(1); n <= max(h.top, pos.TXID); n++ {
			if h.touched[n] {
				forget(n)
			}
		}
		h.tracef("   primary adopted the replica's newest file: txid %s (was up to %s)", pos.TXID, h.top)
	}
	h.reseeds, h.adopted = reseeds, adopted
	h.top = pos.TXID
}

// replicaTop returns the newest TXID of the replica in dir at any level.
func (h *followHunt) replicaTop(dir string) (top ltx.TXID) {
	client := file.NewReplicaClient(dir)
	for lvl := 0; lvl <= litestream.SnapshotLevel; lvl++ {
		if infos := levelFiles(h.t, client, lvl); len(infos) > 0 {
			top = max(top, infos[len(infos)-1].MaxTXID)
		}
	}
	return top
}

// saveCopy keeps a copy of the replica directory as it is now.
func (h *followHunt) saveCopy(i int) {
	if _, err := os.Stat(h.replicaDir); err != nil {
		return
	}
	dst := filepath.Join(h.dir, fmt.Sprintf("copy%d", i))
	if err := copyTree(h.replicaDir, dst); err != nil {
		h.fatalf("copy replica: %v", err)
	}
	h.copies = append(h.copies, dst)
	h.tracef("   replica saved as %s (top %s)", filepath.Base(dst), h.replicaTop(dst))
}

// damageReplica removes the replica directory or puts an older copy of it
// back, while the primary runs (it notices when it lists the replica: every
// upload with IndexRefreshInterval -1, else at Open or a retention call) or
// while it is closed; sometimes the primary's local L0 files are pruned
// first (L0Retention 1ns and a compaction), so that it cannot upload the
// lost files again and re-seeds the replica from an earlier TXID instead.
func (h *followHunt) damageReplica(i int) {
	if h.open && h.drng.Intn(2) == 0 {
		h.db.L0Retention = time.Nanosecond
		info, err := h.db.Compact(h.ctx, 1)
		h.db.L0Retention = h.l0Ret
		h.tracef("%d: prune local L0: compact L1: %s err=%v", i, fileName(info), err)
	}
	closed := false
	if h.open && h.drng.Intn(3) == 0 {
		err := h.db.Close(h.ctx)
		h.tracef("%d: primary close: err=%v", i, err)
		h.open, closed = false, true
		if err == nil {
			h.record("close")
		}
	}
	what, from := "wiped", ltx.TXID(0)
	if len(h.copies) > 0 && h.drng.Intn(3) != 0 {
		src := h.copies[h.drng.Intn(len(h.copies))]
		tmp := filepath.Join(h.dir, fmt.Sprintf("next%d", i))
		if err := copyTree(src, tmp); err != nil {
			h.fatalf("copy: %v", err)
		}
		if err := os.RemoveAll(h.replicaDir); err != nil {
			h.fatal(err)
		} else if err := os.Rename(tmp, h.replicaDir); err != nil {
			h.fatal(err)
		}
		from = h.replicaTop(h.replicaDir)
		what = "put back from " + filepath.Base(src)
	} else if err := os.RemoveAll(h.replicaDir); err != nil {
		h.fatal(err)
	}
	h.damaged = true
	h.damages++
	// The TXIDs past what the replica holds now may be written again with
	// other states; those it holds past the primary's are an older
	// numbering's.
	var hi ltx.TXID = h.top
	for n := range h.states {
		hi = max(hi, n)
	}
	for n := from + 1; n <= hi; n++ {
		h.touched[n] = true
	}
	h.tracef("%d: replica %s (replica top %s, primary %s, open %v)", i, what, from, h.top, h.open)
	if closed {
		for n := h.drng.Intn(3); n > 0; n-- {
			h.commit(i)
		}
		h.openDB(i)
	}
}
