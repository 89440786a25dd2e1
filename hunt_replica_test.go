// A second seeded hunt, centred on the replica: one goroutine, driven by a
// seed, mixes app commits with library syncs and uploads, compaction,
// snapshots, retention, Close and Open of the same DB object, a removed
// meta directory, ResetLocalState, a failing backend, a replica directory
// replaced by an older copy of itself or emptied, and a second writer
// restored from the replica after the first "crashed" (ForgetClaims),
// optionally with a file Leaser on both. After every step where the library
// says something is replicated (SyncAndWait or WaitReplicated returned nil)
// it checks: the latest restore is that writer's committed state; every L0
// TXID the replica restores is a state some writer committed (and, where a
// writer's Sync reported that TXID, one of the states reported for it);
// the chain has no gap.
//
// Environment: LITESTREAM_HUNT_SEED (one seed), LITESTREAM_HUNT_FIRST and
// LITESTREAM_HUNT_SEEDS (a range, default 1 and 20), LITESTREAM_HUNT_STEPS
// (default 40). LITESTREAM_HUNT_ENSURE=1 has a new writer take the lease
// with EnsureExists before it restores, and a fenced writer restart with a
// new DB object. The replica directory is replaced or emptied only while no
// DB is open, unless LITESTREAM_HUNT_OPEN_DAMAGE=1 (with IndexRefreshInterval
// -1); seeds 27 and 3045 of that mode found bugs since fixed
// (replica_l0_gone_test.go, replica_zombie_test.go).
package litestream_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/internal/faultclient"
	"github.com/superfly/ltx"
)

func TestDB_ReplicaInterleavings(t *testing.T) {
	first, n, steps := seedRange("LITESTREAM_HUNT", 40)
	for seed := first; seed < first+n; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			h := newReplicaHunt(t, seed)
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

const huntLeaseTTL = 300 * time.Millisecond

// huntWriter is one writer process: an app and a DB on its own file.
type huntWriter struct {
	name    string
	path    string
	app     *sql.DB
	db      *litestream.DB
	fc      *faultclient.Client
	open    bool   // db is open
	crashed bool   // its claims were forgotten: another writer took over
	dump    string // the app's committed state now
}

type replicaHunt struct {
	t    *testing.T
	seed int64
	rng  *rand.Rand
	dir  string
	ctx  context.Context

	replicaDir string
	raw        *file.ReplicaClient // for checks, never faulty
	pageSize   int
	leaser     bool
	l0Ret      time.Duration
	listEvery  bool // IndexRefreshInterval < 0: the index lists the backend every use

	writers   []*huntWriter
	faultN    int                            // steps the backend still fails
	copies    []string                       // older copies of the replica directory
	copyRep   []map[ltx.TXID]map[string]bool // reported, as it was when each copy was made
	copyLost  []ltx.TXID                     // lostBelow, as it was when each copy was made
	lostBelow ltx.TXID                       // TXIDs below it may no longer restore (retention)

	all      map[string]bool              // every state any writer committed
	reported map[ltx.TXID]map[string]bool // TXID -> states a Sync reported for it
	verified map[ltx.TXID]string          // TXID -> signature of the L0 file checked
	trace    []string
}

func newReplicaHunt(t *testing.T, seed int64) *replicaHunt {
	dir := t.TempDir()
	h := &replicaHunt{
		t: t, seed: seed, rng: rand.New(rand.NewSource(seed)), dir: dir, ctx: context.Background(),
		replicaDir: filepath.Join(dir, "replica"),
		all:        map[string]bool{}, reported: map[ltx.TXID]map[string]bool{}, verified: map[ltx.TXID]string{},
	}
	h.raw = file.NewReplicaClient(h.replicaDir)
	h.pageSize = []int{512, 1024, 4096}[h.rng.Intn(3)]
	h.leaser = h.rng.Intn(3) == 0
	h.l0Ret = []time.Duration{time.Nanosecond, time.Hour}[h.rng.Intn(2)]
	h.listEvery = h.rng.Intn(2) == 0
	h.tracef("seed %d: page size %d, leaser %v, L0Retention %s, listEvery %v", seed, h.pageSize, h.leaser, h.l0Ret, h.listEvery)

	w := h.newWriter(filepath.Join(dir, "w0.db"))
	h.exec(w, `CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER, pad BLOB)`)
	h.exec(w, `CREATE TABLE aside (id INTEGER PRIMARY KEY, v INTEGER, pad BLOB)`)
	h.openDB(w)
	return h
}

func (h *replicaHunt) tracef(format string, args ...any) {
	h.trace = append(h.trace, fmt.Sprintf(format, args...))
}

func (h *replicaHunt) fatalf(format string, args ...any) {
	h.t.Helper()
	h.t.Fatalf("seed %d (replay: LITESTREAM_HUNT_SEED=%d go test -count=1 -run 'TestDB_ReplicaInterleavings' .): %s\nsteps:\n  %s",
		h.seed, h.seed, fmt.Sprintf(format, args...), strings.Join(h.trace, "\n  "))
}

// newWriter opens an app on path and builds (unopened) its DB.
func (h *replicaHunt) newWriter(path string) *huntWriter {
	w := h.newWriterUnopened(path)
	h.attachApp(w)
	return w
}

// attachApp opens w's app and records its state.
func (h *replicaHunt) attachApp(w *huntWriter) {
	app, err := sql.Open("sqlite", fmt.Sprintf("%s?_pragma=busy_timeout(5000)&_pragma=page_size(%d)&_pragma=journal_mode(wal)&_pragma=wal_autocheckpoint(%d)",
		testFileURI(w.path), h.pageSize, []int{0, 100, 1000}[h.rng.Intn(3)]))
	if err != nil {
		h.t.Fatal(err)
	}
	w.app = app
	w.dump = MustDump(h.t, app)
	h.all[w.dump] = true
}

// newWriterUnopened builds w's DB, without an app yet.
func (h *replicaHunt) newWriterUnopened(path string) *huntWriter {
	w := &huntWriter{name: fmt.Sprintf("w%d", len(h.writers)), path: path}
	client := file.NewReplicaClient(h.replicaDir)
	w.fc = faultclient.New(client, faultclient.Config{Seed: h.seed + int64(len(h.writers)), ErrorRate: 0.3, LostAckRate: 0.1, HalfWriteRate: 0.1})
	w.fc.SetEnabled(h.faultN > 0)
	db := litestream.NewDB(path)
	db.Replica = litestream.NewReplicaWithClient(db, w.fc)
	db.MonitorInterval = 0
	db.ShutdownSyncTimeout = 0
	db.BusyTimeout = 20 * time.Millisecond
	db.Replica.MonitorEnabled = false
	db.L0Retention = h.l0Ret
	db.MinCheckpointPageN = []int{10, 50, 1000}[h.rng.Intn(3)]
	db.MaxSyncWALBytes = []int64{0, 8 << 10}[h.rng.Intn(2)]
	if h.listEvery {
		db.Replica.IndexRefreshInterval = -1
	}
	if h.leaser {
		l := client.NewLeaser()
		l.Owner, l.TTL = w.name, huntLeaseTTL
		db.Replica.Leaser = l
		db.Replica.LeaseWait = true
		// Renewed before each batch only: a writer not used for a TTL
		// (a crashed or paused process) loses its lease to the next one.
		db.Replica.LeaseRenewInterval = time.Hour
	}
	w.db = db
	h.writers = append(h.writers, w)
	return w
}

func (h *replicaHunt) openDB(w *huntWriter) {
	if err := w.db.Open(); err != nil {
		h.tracef("%s: open: %v", w.name, err)
		return
	}
	w.open = true
	h.tracef("%s: open", w.name)
}

func (h *replicaHunt) cleanup() {
	for _, w := range h.writers {
		if w.open {
			_ = w.db.Close(context.Background())
		}
		if w.app != nil {
			_ = w.app.Close()
		}
	}
}

// active is the newest writer: the one that took over.
func (h *replicaHunt) active() *huntWriter { return h.writers[len(h.writers)-1] }

// zombiesAct reports whether a crashed writer may go on: with a Leaser a
// writer that crashed is fenced, unless it never held the lease or released
// it (TestReplica_Lease_WriterInitializedBeforeLeaseSeesReplicaAdvanced);
// LITESTREAM_HUNT_ENSURE=1 keeps them silent.
func (h *replicaHunt) zombiesAct() bool {
	return h.leaser && os.Getenv("LITESTREAM_HUNT_ENSURE") == ""
}

// pick returns an open writer, most often the active one, or nil.
func (h *replicaHunt) pick() *huntWriter {
	if a := h.active(); a.open && h.rng.Intn(4) != 0 {
		return a
	}
	var open []*huntWriter
	for _, w := range h.writers {
		if w.open && (h.zombiesAct() || !w.crashed) {
			open = append(open, w)
		}
	}
	if len(open) == 0 {
		return nil
	}
	return open[h.rng.Intn(len(open))]
}

func (h *replicaHunt) setFaults(on bool) {
	for _, w := range h.writers {
		w.fc.SetEnabled(on)
	}
}

func (h *replicaHunt) step(i int) {
	if h.faultN > 0 {
		h.faultN--
		if h.faultN == 0 {
			h.setFaults(false)
			h.tracef("%d: backend healthy again", i)
		}
	}
	w := h.pick()
	switch op := h.rng.Intn(100); {
	case op < 28:
		cw := h.active()
		if h.zombiesAct() && len(h.writers) > 1 && h.rng.Intn(5) == 0 {
			cw = h.writers[h.rng.Intn(len(h.writers))]
		}
		h.commit(cw)
	case op < 36:
		if w == nil {
			return
		}
		err := w.db.Sync(h.ctx)
		pos, _ := w.db.Pos()
		h.tracef("%d: %s sync: txid %s err=%v", i, w.name, pos.TXID, err)
	case op < 42:
		if w == nil {
			return
		}
		err := w.db.Replica.Sync(h.ctx)
		h.tracef("%d: %s upload: replica txid %s err=%v", i, w.name, w.db.Replica.Pos().TXID, err)
	case op < 56:
		h.replicate(i, w)
	case op < 60:
		if w == nil {
			return
		}
		lvl := 1 + h.rng.Intn(2)
		info, err := w.db.Compact(h.ctx, lvl)
		h.tracef("%d: %s compact L%d: %s err=%v", i, w.name, lvl, fileName(info), err)
	case op < 63:
		if w == nil {
			return
		}
		info, err := w.db.Snapshot(h.ctx)
		h.tracef("%d: %s snapshot: %s err=%v", i, w.name, fileName(info), err)
	case op < 66:
		h.retentionByTXID(i, w)
	case op < 69:
		if w == nil {
			return
		}
		err := w.db.EnforceL0RetentionByTime(h.ctx)
		h.tracef("%d: %s L0 retention by time: err=%v", i, w.name, err)
	case op < 74:
		h.closeAndReopen(i, h.active())
	case op < 77:
		if w == nil {
			return
		}
		err := w.db.ResetLocalState(h.ctx)
		h.tracef("%d: %s ResetLocalState: err=%v", i, w.name, err)
	case op < 81:
		h.faultN = 1 + h.rng.Intn(4)
		h.setFaults(true)
		h.tracef("%d: backend fails for %d steps", i, h.faultN)
	case op < 85:
		h.saveCopy(i)
	case op < 89:
		if h.noneOpen() {
			h.damage(i)
		}
	case op < 93:
		h.takeover(i)
	default:
		h.commit(h.active())
	}
}

func fileName(info *ltx.FileInfo) string {
	if info == nil {
		return "-"
	}
	return ltx.FormatFilename(info.MinTXID, info.MaxTXID)
}

func (h *replicaHunt) exec(w *huntWriter, query string) {
	if _, err := w.app.Exec(query); err != nil {
		h.fatalf("%s: %s: %v", w.name, query, err)
	}
	w.dump = MustDump(h.t, w.app)
	h.all[w.dump] = true
}

func (h *replicaHunt) report(txid ltx.TXID, dump string) {
	if h.reported[txid] == nil {
		h.reported[txid] = map[string]bool{}
	}
	h.reported[txid][dump] = true
}

// commit writes one transaction of one to a hundred rows on w's app.
func (h *replicaHunt) commit(w *huntWriter) {
	table, what, err := randomCommit(w.app, h.rng, 3000)
	if errors.Is(err, errBegin) {
		h.fatalf("%v", err)
	} else if err != nil {
		h.tracef("%s commit %s %s failed: %v", w.name, table, what, err)
		return
	}
	w.dump = MustDump(h.t, w.app)
	h.all[w.dump] = true
	h.tracef("%s commit %s %s -> %s", w.name, table, what, w.dump)
}

// replicate asks w to replicate everything; on success the replica is
// checked against w's state.
func (h *replicaHunt) replicate(i int, w *huntWriter) {
	if w == nil {
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
	defer cancel()
	var err error
	how := "SyncAndWait"
	if h.rng.Intn(2) == 0 {
		how = "WaitReplicated"
		err = w.db.WaitReplicated(ctx)
	} else {
		err = w.db.SyncAndWait(ctx)
	}
	pos, _ := w.db.Pos()
	h.tracef("%d: %s %s: txid %s replica %s err=%v", i, w.name, how, pos.TXID, w.db.Replica.Pos().TXID, err)
	if err != nil {
		return
	}
	h.report(pos.TXID, w.dump)
	h.check(w)
}

// check verifies the replica after w said everything it committed is on it.
func (h *replicaHunt) check(w *huntWriter) {
	h.t.Helper()
	r := litestream.NewReplicaWithClient(nil, h.raw)
	got, err := h.restore(r, 0)
	if err != nil {
		h.fatalf("after %s replicated: restore latest: %v", w.name, err)
	}
	if got != w.dump {
		h.fatalf("after %s replicated: latest restore holds %s, want %s (its committed state)", w.name, got, w.dump)
	}
	errs, err := r.ValidateChain(h.ctx)
	if err != nil {
		h.fatalf("validate chain: %v", err)
	}
	for _, e := range errs {
		if e.CurrFile != nil && e.CurrFile.MinTXID <= h.lostBelow {
			h.tracef("   chain gap below the retention floor %s: %s", h.lostBelow, e.Message)
			continue
		}
		h.fatalf("after %s replicated: replica chain: %s %s", w.name, e.Type, e.Message)
	}
	for _, info := range levelFiles(h.t, h.raw, 0) {
		txid := info.MaxTXID
		sig := fmt.Sprintf("%d/%s", info.Size, info.CreatedAt)
		if h.verified[txid] == sig {
			continue
		}
		got, err := h.restore(r, txid)
		if err != nil {
			if txid < h.lostBelow {
				h.tracef("   restore txid %s (below retention floor %s): %v", txid, h.lostBelow, err)
				continue
			}
			h.fatalf("after %s replicated: restore of listed L0 txid %s: %v", w.name, txid, err)
		}
		if !h.all[got] {
			h.fatalf("after %s replicated: txid %s restores %s, a state no writer committed", w.name, txid, got)
		}
		if rep := h.reported[txid]; rep != nil && !rep[got] {
			h.fatalf("after %s replicated: txid %s restores %s, not a state a Sync reported for it (%v)", w.name, txid, got, keys(rep))
		}
		h.verified[txid] = sig
	}
	h.tracef("   checked: latest = %s", got)
}

func cloneReported(m map[ltx.TXID]map[string]bool) map[ltx.TXID]map[string]bool {
	out := make(map[ltx.TXID]map[string]bool, len(m))
	for txid, set := range m {
		out[txid] = map[string]bool{}
		for k := range set {
			out[txid][k] = true
		}
	}
	return out
}

func keys(m map[string]bool) []string {
	var a []string
	for k := range m {
		a = append(a, k)
	}
	return a
}

func (h *replicaHunt) restore(r *litestream.Replica, txid ltx.TXID) (string, error) {
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(h.t.TempDir(), "restore.db")
	opt.TXID = txid
	if err := r.Restore(h.ctx, opt); err != nil {
		return "", err
	}
	db, err := sql.Open("sqlite", testFileURI(opt.OutputPath))
	if err != nil {
		return "", err
	}
	defer func() { _ = db.Close() }()
	var result string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&result); err != nil || result != "ok" {
		h.fatalf("restore of txid %s fails integrity_check: %s %v", txid, result, err)
	}
	return MustDump(h.t, db), nil
}

// retentionByTXID deletes, at one level, files below the newest snapshot,
// as snapshot retention does: TXIDs below it may then no longer restore.
func (h *replicaHunt) retentionByTXID(i int, w *huntWriter) {
	if w == nil {
		return
	}
	snaps := levelFiles(h.t, h.raw, litestream.SnapshotLevel)
	if len(snaps) == 0 {
		return
	}
	floor := snaps[len(snaps)-1].MaxTXID
	lvl := []int{0, 1, 2, litestream.SnapshotLevel}[h.rng.Intn(4)]
	err := w.db.EnforceRetentionByTXID(h.ctx, lvl, floor)
	h.tracef("%d: %s retention L%d below %s: err=%v", i, w.name, lvl, floor, err)
	h.lostBelow = max(h.lostBelow, floor)
}

// restart replaces w's DB by a new DB object on the same file, as a new
// process would: a fenced DB object stays fenced after Close and Open.
func (h *replicaHunt) restart(w *huntWriter) {
	if w.open {
		h.tracef("   restart %s: close %v", w.name, w.db.Close(h.ctx))
		w.open = false
	}
	n := len(h.writers)
	nw := h.newWriterUnopened(w.path)
	h.writers = h.writers[:n]
	w.db, w.fc = nw.db, nw.fc
	h.openDB(w)
}

// closeAndReopen closes w, lets things happen while nothing captures, and
// opens the same DB object again.
func (h *replicaHunt) closeAndReopen(i int, w *huntWriter) {
	if !w.open {
		h.openDB(w)
		return
	}
	err := w.db.Close(h.ctx)
	h.tracef("%d: %s close: err=%v", i, w.name, err)
	w.open = false
	fenced := err != nil && strings.Contains(err.Error(), "lease not held")
	for n := h.rng.Intn(4); n > 0; n-- {
		switch h.rng.Intn(4) {
		case 0:
			err := os.RemoveAll(w.db.MetaPath())
			h.tracef("   closed: remove meta dir %s: %v", w.db.MetaPath(), err)
		case 1:
			if h.noneOpen() {
				h.damage(i)
			}
		default:
			h.commit(w)
		}
	}
	if fenced && os.Getenv("LITESTREAM_HUNT_ENSURE") != "" {
		h.restart(w)
		return
	}
	h.openDB(w)
}

// noneOpen reports whether no DB that may still upload is open: a DB
// notices files changed behind its back only when it lists the replica
// again (IndexRefreshInterval, 6 h by default).
func (h *replicaHunt) noneOpen() bool {
	if os.Getenv("LITESTREAM_HUNT_OPEN_DAMAGE") != "" && h.listEvery {
		return true // uploads do not list even with IndexRefreshInterval -1
	}
	for _, w := range h.writers {
		if w.open && (h.zombiesAct() || !w.crashed) {
			return false
		}
	}
	return true
}

// saveCopy keeps a copy of the replica directory as it is now.
func (h *replicaHunt) saveCopy(i int) {
	dst := filepath.Join(h.dir, fmt.Sprintf("copy%d", len(h.copies)))
	if err := copyTree(h.replicaDir, dst); err != nil {
		h.fatalf("copy replica: %v", err)
	}
	h.copies = append(h.copies, dst)
	h.copyRep = append(h.copyRep, cloneReported(h.reported))
	h.copyLost = append(h.copyLost, h.lostBelow)
	h.tracef("%d: replica saved as %s", i, filepath.Base(dst))
}

// damage replaces the replica directory by an older copy, empties it, or
// removes its newest L0 files (which L1 or a snapshot may still hold). The
// TXIDs it no longer holds may then be written again with other states.
func (h *replicaHunt) damage(i int) {
	if h.rng.Intn(4) == 0 {
		h.dropNewestL0(i)
		return
	}
	tmp := filepath.Join(h.dir, fmt.Sprintf("next%d", i))
	what := "emptied"
	rep, lost := map[ltx.TXID]map[string]bool{}, ltx.TXID(0)
	if len(h.copies) > 0 && h.rng.Intn(3) != 0 {
		j := h.rng.Intn(len(h.copies))
		src := h.copies[j]
		rep, lost = cloneReported(h.copyRep[j]), h.copyLost[j]
		what = "replaced by " + filepath.Base(src)
		if err := copyTree(src, tmp); err != nil {
			h.fatalf("copy: %v", err)
		}
	} else if err := os.MkdirAll(tmp, 0o755); err != nil {
		h.fatal(err)
	}
	// Only the LTX files change: the lease record is not the replica's
	// data, and a tool that wiped it while processes run would let two of
	// them hold "the" lease, which no fencing survives.
	old := filepath.Join(h.dir, fmt.Sprintf("old%d-%d", i, h.rng.Int()))
	ltxDir := filepath.Join(h.replicaDir, "ltx")
	if err := os.MkdirAll(h.replicaDir, 0o755); err != nil {
		h.fatal(err)
	}
	if err := os.Rename(ltxDir, old); err != nil && !os.IsNotExist(err) {
		h.fatal(err)
	}
	if err := os.Rename(filepath.Join(tmp, "ltx"), ltxDir); err != nil && !os.IsNotExist(err) {
		h.fatal(err)
	}
	h.lostBelow = lost
	h.forgetAboveReplica(rep)
	h.tracef("%d: replica %s", i, what)
}

// dropNewestL0 removes the replica's newest L0 files, as a tool or a
// partial copy would; higher levels may still hold their TXIDs.
func (h *replicaHunt) dropNewestL0(i int) {
	l0 := levelFiles(h.t, h.raw, 0)
	if len(l0) == 0 {
		return
	}
	gone := l0[len(l0)-1-h.rng.Intn(len(l0)):]
	if err := h.raw.DeleteLTXFiles(h.ctx, gone); err != nil {
		h.fatal(err)
	}
	top := h.forgetAboveReplica(h.reported)
	// The TXIDs only the removed files held no longer restore, and the
	// chain may skip them up to the next file written after top.
	h.lostBelow = max(h.lostBelow, top+1)
	h.tracef("%d: replica lost its L0 files from %s", i, gone[0].MinTXID)
}

// forgetAboveReplica makes rep, what Syncs reported for the TXIDs the
// replica still holds, the reported states: TXIDs above the replica's
// newest file at any level (top, returned) were lost and may be written
// again.
func (h *replicaHunt) forgetAboveReplica(rep map[ltx.TXID]map[string]bool) (top ltx.TXID) {
	h.verified = map[ltx.TXID]string{}
	for lvl := 0; lvl <= litestream.SnapshotLevel; lvl++ {
		if infos := levelFiles(h.t, h.raw, lvl); len(infos) > 0 {
			top = max(top, infos[len(infos)-1].MaxTXID)
		}
	}
	for txid := range rep {
		if txid > top {
			delete(rep, txid)
		}
	}
	h.reported = rep
	return top
}

func (h *replicaHunt) fatal(err error) { h.t.Helper(); h.fatalf("%v", err) }

// takeover: the active writer's process "dies" (its claims are forgotten;
// it stays open as a zombie that may go on), and a new writer restores the
// replica's latest state into its own file and replicates from there.
func (h *replicaHunt) takeover(i int) {
	a := h.active()
	if a.open {
		litestream.ForgetClaims(a.db)
	}
	a.crashed = true
	path := filepath.Join(h.dir, fmt.Sprintf("w%d.db", len(h.writers)))
	// EnsureExists restores under the lease, waiting for it; otherwise the
	// restore is made before taking the lease
	// (TestReplica_Lease_WriterInitializedBeforeLeaseSeesReplicaAdvanced).
	ensure := h.leaser && (os.Getenv("LITESTREAM_HUNT_ENSURE") != "" || h.rng.Intn(2) == 0)
	var err error
	var w *huntWriter
	if ensure {
		time.Sleep(huntLeaseTTL + 50*time.Millisecond) // A's lease expires unrenewed
		w = h.newWriterUnopened(path)
		ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
		err = w.db.EnsureExists(ctx)
		cancel()
		h.tracef("%d: %s crashes; %s EnsureExists: err=%v", i, a.name, w.name, err)
	} else {
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = path
		err = litestream.NewReplicaWithClient(nil, h.raw).Restore(h.ctx, opt)
		h.tracef("%d: %s crashes; restore latest into %s: err=%v", i, a.name, filepath.Base(path), err)
	}
	if _, serr := os.Stat(path); serr != nil {
		// Nothing restored: the new writer starts from the schema.
		app, err := sql.Open("sqlite", fmt.Sprintf("%s?_pragma=page_size(%d)&_pragma=journal_mode(wal)", testFileURI(path), h.pageSize))
		if err != nil {
			h.fatal(err)
		}
		app.SetMaxOpenConns(1)
		for _, q := range []string{`CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER, pad BLOB)`, `CREATE TABLE aside (id INTEGER PRIMARY KEY, v INTEGER, pad BLOB)`} {
			if _, err := app.Exec(q); err != nil {
				h.fatal(err)
			}
		}
		_ = app.Close()
	}
	if w == nil {
		w = h.newWriterUnopened(path)
	}
	h.attachApp(w)
	h.tracef("   %s starts at %s", w.name, w.dump)
	h.openDB(w)
}

// finish: the active writer replicates everything, and the replica is
// checked against it.
func (h *replicaHunt) finish() {
	h.setFaults(false)
	h.faultN = 0
	w := h.active()
	if !w.open {
		h.openDB(w)
	}
	// Zombies stop: only the active writer goes on.
	for _, z := range h.writers[:len(h.writers)-1] {
		if z.open && h.zombiesAct() {
			z.open = false
			h.tracef("%s: zombie closes: %v", z.name, z.db.Close(h.ctx))
		}
	}
	if !w.open {
		h.fatalf("final open of %s failed", w.name)
	}
	ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
	defer cancel()
	var err error
	for range 3 { // a takeover may leave a stale lease to wait out
		if err = w.db.SyncAndWait(ctx); err == nil {
			break
		}
		h.tracef("final SyncAndWait: %v", err)
		if strings.Contains(err.Error(), "lease not held") { // restart, as the error says
			h.restart(w)
		}
	}
	if err != nil {
		h.fatalf("final SyncAndWait of %s: %v", w.name, err)
	}
	pos, _ := w.db.Pos()
	h.report(pos.TXID, w.dump)
	h.tracef("finish: %s at txid %s", w.name, pos.TXID)
	h.check(w)
	// A lease not renewed for its TTL (renewed before batches only) may
	// fence Close after the checks: nothing is left to upload then.
	if err := w.db.Close(h.ctx); err != nil && !strings.Contains(err.Error(), "lease not") {
		h.fatalf("close: %v", err)
	}
	w.open = false
}

// copyTree copies the directory src (which may be missing) to dst.
func copyTree(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(path)
		if os.IsNotExist(err) {
			return nil
		} else if err != nil {
			return err
		}
		defer func() { _ = in.Close() }()
		fi, err := in.Stat()
		if err != nil {
			return err
		}
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			_ = out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		return os.Chtimes(target, fi.ModTime(), fi.ModTime())
	})
}
