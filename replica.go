// Replica: uploading a DB's L0 files in TXID order to a ReplicaClient, its
// sync loop and health, and replica-wide queries and validation.

package litestream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/superfly/ltx"
	"golang.org/x/sync/semaphore"
)

// Replica defaults.
const (
	DefaultSyncInterval    = 1 * time.Second
	DefaultMaxSyncLTXFiles = 256
)

// Replica uploads a DB's L0 files, in TXID order, to a ReplicaClient, and
// restores databases from it.
type Replica struct {
	// Client stores the replica's files.
	Client ReplicaClient

	// SyncInterval is the longest wait between uploads. Default 1s.
	SyncInterval time.Duration

	// MaxSyncLTXFiles caps the files uploaded per batch. Default 256.
	MaxSyncLTXFiles int

	// MonitorEnabled starts background uploads when the DB initializes.
	// Default true.
	MonitorEnabled bool

	// AutoRecoverEnabled resets local state when uploads fail on a missing
	// or corrupt local L0 file. Default false.
	AutoRecoverEnabled bool

	// IndexRefreshInterval is how long compaction and retention trust the
	// in-memory listing of a level before listing the backend again; files
	// changed behind the library's back are noticed then. Zero means
	// DefaultReplicaIndexRefresh; negative lists the backend every time.
	IndexRefreshInterval time.Duration

	// Leaser, when set, makes this process the replica's only writer: the
	// lease is taken before the first upload, renewed, checked before each
	// batch and released on Close (replica_lease.go). Set it before Open.
	Leaser Leaser

	// LeaseWait waits for a lease another process holds instead of failing
	// with *LeaseExistsError. Default false (fail fast). Close never waits:
	// it asks once and skips the final upload if another process holds it.
	LeaseWait bool

	// LeaseRenewInterval is how often a held lease is renewed. Default a
	// third of the lease's TTL.
	LeaseRenewInterval time.Duration

	lease replicaLease

	db *DB

	syncSem *semaphore.Weighted // one upload batch at a time

	mu      sync.Mutex // guards pos, known, changed, cancel, done
	pos     ltx.Pos
	known   ltx.TXID      // the replica's last known TXID; pos may be zeroed to list again
	changed uint64        // listings that found the replica changed by someone else and forgot pos
	wakeReq chan struct{} // a waiter asks the monitor to try now; one pending at most
	cancel  context.CancelFunc
	done    chan struct{}

	initOnce sync.Once // makes syncSem and wakeReq for a struct literal

	indexMu sync.Mutex    // guards index
	index   *replicaIndex // Client behind the in-memory listing

	repairMu sync.Mutex      // guards repair
	repair   []*ltx.FileInfo // L0 files the replica lost, to upload again from local copies
	// checkRestorable: the DB opened, or a listing found files gone from
	// the replica; the next complete sync checks that the replica still
	// restores its newest state. A new process has no earlier listing to
	// find lost files by: a hole an older copy put back left below files
	// written after it is found only so.
	checkRestorable atomic.Bool
	// localCopiesCompared: since Open, the replica's listing was compared
	// with the local copies (compareWithLocalCopies).
	localCopiesCompared atomic.Bool
	// snapshotOwed: the replica's newest file was another history's; the
	// next complete sync uploads a snapshot whatever the listing says.
	snapshotOwed atomic.Bool
	owedGen      atomic.Uint64 // bumped by every debt, so that paying one clears no later one
	owedMu       sync.Mutex    // orders recording a debt and clearing its record

	healthMu     sync.Mutex // guards failingSince, lastErr, stallLogged
	failingSince time.Time  // start of the current run of failed syncs; zero after a success
	lastErr      error      // the newest error of that run
	stallLogged  bool       // the run was logged as a stall
}

// StallSyncIntervals is how many SyncIntervals of failed syncs make a
// stall: reported by SyncStatus and logged once.
const StallSyncIntervals = 3

// NewReplica returns a replica of db with default settings and no client.
func NewReplica(db *DB) *Replica {
	return &Replica{
		db:              db,
		SyncInterval:    DefaultSyncInterval,
		MaxSyncLTXFiles: DefaultMaxSyncLTXFiles,
		MonitorEnabled:  true,
		syncSem:         semaphore.NewWeighted(1),
		wakeReq:         make(chan struct{}, 1),
	}
}

// lazyInit makes what NewReplica would have, for a Replica built as a
// struct literal.
func (r *Replica) lazyInit() {
	r.initOnce.Do(func() {
		if r.syncSem == nil {
			r.syncSem = semaphore.NewWeighted(1)
		}
		if r.wakeReq == nil {
			r.wakeReq = make(chan struct{}, 1)
		}
	})
}

// errNoClient is returned by a Replica that has no Client.
var errNoClient = errors.New("replica client required")

// wake asks the monitor to upload now: out of a backoff, and even if it
// believes it is caught up. WaitReplicated calls it, so that a waiter does
// not sit out a backoff that a rare run of failures on a flaky backend grew
// to minutes.
func (r *Replica) wake() {
	select {
	case r.wakeReq <- struct{}{}:
	default:
	}
}

// NewReplicaWithClient returns a replica of db stored by client.
func NewReplicaWithClient(db *DB, client ReplicaClient) *Replica {
	r := NewReplica(db)
	r.Client = client
	return r
}

// DB returns the database being replicated.
func (r *Replica) DB() *DB { return r.db }

// Logger returns the DB's logger tagged with the replica type.
func (r *Replica) Logger() *slog.Logger {
	logger := slog.Default()
	if r.db != nil {
		logger = r.db.logger()
	}
	if r.Client != nil {
		logger = logger.With("replica", r.Client.Type())
	}
	return logger
}

// Pos returns the highest TXID known to be on the replica's L0.
func (r *Replica) Pos() ltx.Pos {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pos
}

// SetPos sets the replica position. A zero position makes the next sync
// list the replica again, not trusting what this process knew of it.
func (r *Replica) SetPos(pos ltx.Pos) {
	r.mu.Lock()
	r.pos, r.known = pos, pos.TXID
	r.mu.Unlock()
	r.posChanged()
	if pos.IsZero() {
		if x := r.indexed(); x != nil {
			x.dropAll()
		}
	}
}

// setPosUnlessReset is SetPos for an upload of the local history counted
// by resets, made while changed listings had found the replica changed: a
// reset, or a listing that forgot the position, landing before it wins, as
// one landing after does.
func (r *Replica) setPosUnlessReset(pos ltx.Pos, resets, changed uint64) bool {
	r.mu.Lock()
	if r.db.localResets.Load() != resets || r.changed != changed {
		r.mu.Unlock()
		return false
	}
	r.pos, r.known = pos, pos.TXID
	r.mu.Unlock()
	r.posChanged()
	return true
}

// changesSeen returns how many listings found the replica changed by
// someone else and forgot the position.
func (r *Replica) changesSeen() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// forgetPos makes the next sync list the replica for its position, keeping
// the last known TXID for lag reporting.
func (r *Replica) forgetPos() {
	r.mu.Lock()
	r.pos = ltx.Pos{}
	r.mu.Unlock()
	r.posChanged()
	if x := r.indexed(); x != nil {
		x.drop(0)
	}
}

// client returns Client behind the replica's in-memory listing, which the
// library's own uploads, compaction and retention go through. It is nil
// without a Client.
func (r *Replica) client() ReplicaClient {
	if x := r.indexed(); x != nil {
		return x
	}
	return nil
}

// knownTXID returns the replica's last known TXID.
func (r *Replica) knownTXID() ltx.TXID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.known
}

// posChanged tells the DB's waiters that the replica position moved.
func (r *Replica) posChanged() {
	if r.db != nil {
		r.db.emitInternal(eventReplicaPos, time.Now())
	}
}

// Start begins background uploads, stopping any earlier monitor. It does
// nothing when MonitorEnabled is false.
func (r *Replica) Start(ctx context.Context) error {
	if !r.MonitorEnabled {
		return nil
	} else if r.db == nil || r.Client == nil {
		return fmt.Errorf("start replica: %w (and a database: use NewReplica)", errNoClient)
	}
	r.lazyInit()
	_ = r.Stop(false)

	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	r.mu.Lock()
	r.cancel, r.done = cancel, done
	r.mu.Unlock()

	go func() { defer close(done); r.monitor(ctx) }()
	return nil
}

// Stop ends background uploads and waits for the monitor to return.
func (r *Replica) Stop(hard bool) (err error) {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel, r.done = nil, nil
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}

// Sync uploads every local L0 file the replica does not have yet.
func (r *Replica) Sync(ctx context.Context) (err error) {
	_, err = r.sync(ctx, 0)
	return err
}

// sync uploads in batches of at most maxFiles (0 = unlimited) until done,
// and returns how many files it uploaded, even when it fails. A replica
// behind the local L0 files is re-seeded once per call.
func (r *Replica) sync(ctx context.Context, maxFiles int) (uploaded int, err error) {
	if r.db == nil || r.Client == nil {
		return 0, fmt.Errorf("replica sync: %w (and a database: use NewReplica)", errNoClient)
	}
	r.lazyInit()
	defer func() { r.recordSync(ctx, err) }()
	reseeded := false
	for {
		limited, n, err := r.syncOnce(ctx, maxFiles)
		uploaded += n
		if err == nil && !limited {
			err = r.ensureRestorable(ctx)
		}
		var behind *replicaBehindError
		if errors.As(err, &behind) && !reseeded {
			reseeded = true
			if err = r.reseed(ctx, behind); err == nil {
				continue
			}
		}
		if err != nil || !limited {
			return uploaded, err
		}
	}
}

// ensureRestorable runs after the DB opened, and after files went missing
// from the replica (a wipe, an older copy put back). Lost L0 files with
// local copies were uploaded again; if what is left still has no chain to
// the replica's newest file, a snapshot of the database at the uploaded
// position gives it one. The plan is made from the in-memory listing,
// which the DB lists at open anyway. A closing DB leaves the check to the
// next Open: Close cannot take a snapshot.
func (r *Replica) ensureRestorable(ctx context.Context) error {
	owed := r.snapshotOwed.Load()
	if (!owed && !r.checkRestorable.Load()) || r.db.checkOpenable() != nil {
		return nil
	}
	if owed {
		r.Logger().Warn("the replica holds files of another history, uploading a snapshot past them")
		gen := r.owedGen.Load()
		if _, err := r.db.Snapshot(ctx); err != nil {
			return fmt.Errorf("upload the snapshot owed for files of another history: %w", err)
		}
		if err := r.db.snapshotPaid(gen); err != nil {
			return err
		}
		r.checkRestorable.Store(false)
		return nil
	}
	var client ReplicaClient = r.Client
	if x := r.indexed(); x != nil {
		client, ctx = x, withReplicaIndex(ctx)
	}
	_, err := CalcRestorePlan(ctx, client, 0, time.Time{}, nil)
	if err != nil && !errors.Is(err, ErrTxNotAvailable) && !errors.Is(err, errNonContiguous) {
		return fmt.Errorf("check that the replica still restores after files were lost: %w", err)
	}
	if err != nil {
		r.Logger().Warn("files lost from the replica left it without a chain to its newest file, uploading a snapshot", "reason", err)
		if _, err := r.db.Snapshot(ctx); err != nil {
			return fmt.Errorf("upload a snapshot after files were lost from the replica: %w", err)
		}
	}
	r.checkRestorable.Store(false)
	return nil
}

// uploadThrough uploads the local L0 files the replica lacks, up to at least
// txid. Unlike Sync it never re-seeds the replica: that writes an L0 file,
// and a snapshot reader, which calls this, blocks checkpoints meanwhile.
func (r *Replica) uploadThrough(ctx context.Context, txid ltx.TXID) (err error) {
	if pos := r.Pos(); !pos.IsZero() && pos.TXID >= txid {
		return nil
	}
	r.lazyInit()
	defer func() { r.recordSync(ctx, err) }()
	if _, _, err = r.syncOnce(ctx, 0); err != nil {
		return err
	}
	if pos := r.Pos(); pos.TXID < txid {
		return fmt.Errorf("replica reached TXID %s, not %s", pos.TXID, txid)
	}
	return nil
}

// errLocalStateReset ends an upload that a reset of local state overtook.
var errLocalStateReset = errors.New("local state was reset during the upload")

// replicaBehindError reports that the replica needs an L0 file that no
// longer exists locally while later ones do: local retention removed it.
type replicaBehindError struct {
	txid, next ltx.TXID // the TXID needed, the first local L0 file past it
	err        error
}

func (e *replicaBehindError) Error() string {
	return fmt.Sprintf("replica needs TXID %s but the local L0 files go on at %s: %s", e.txid, e.next, e.err)
}

func (e *replicaBehindError) Unwrap() error { return e.err }

// behindLocal returns a replicaBehindError if err is a missing local L0
// file for txid with local L0 files past it that local retention removed,
// and err otherwise. Retention removed it when every local file left past
// it starts after it, or when it recorded doing so (the replica lost the
// L1 that covered it, and an older local file stayed, uncovered). Local
// files older than the one before txid do not count: a retention pass
// whose remote delete half failed leaves such files for good. Another
// missing file is the local state's fault, left to AutoRecoverEnabled.
func (r *Replica) behindLocal(txid ltx.TXID, err error) error {
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	entries, rerr := os.ReadDir(r.db.LTXLevelDir(0))
	if rerr != nil {
		return err
	}
	var next ltx.TXID
	hole := false // a local file ends right before txid
	for _, entry := range entries {
		minTXID, maxTXID, perr := ltx.ParseFilename(entry.Name())
		switch {
		case perr != nil || minTXID != maxTXID || maxTXID+1 < txid:
			continue // not an L0 file this process wrote, or a leftover
		case minTXID < txid:
			hole = true
		case minTXID == txid:
			return err // the file is there after all
		case next == 0 || minTXID < next:
			next = minTXID
		}
	}
	if next == 0 || (hole && txid > r.db.l0RetainedThrough()) {
		return err
	}
	return &replicaBehindError{txid: txid, next: next, err: err}
}

// reseed restarts a replica that is behind the local L0 files, as
// AutoRecoverEnabled would: local state is reset to the replica's newest L0
// file, and the next L0 file, written at once, is a full snapshot at the
// replica's next TXID, so that its TXIDs continue without a gap.
func (r *Replica) reseed(ctx context.Context, behind *replicaBehindError) error {
	r.Logger().Warn("replica is behind the local L0 files, re-seeding it with a full snapshot",
		"need_txid", behind.txid, "next_local_txid", behind.next)
	if err := r.db.ResetLocalState(ctx); err != nil {
		return fmt.Errorf("re-seed replica at TXID %s: reset local state: %w", behind.txid, err)
	}
	if err := r.db.Sync(ctx); err != nil {
		return fmt.Errorf("re-seed replica at TXID %s: write snapshot: %w", behind.txid, err)
	}
	return nil
}

// recordSync tracks runs of failed syncs and logs their changes of state,
// once each: the first failure, a stall (failures for StallSyncIntervals
// SyncIntervals), the recovery.
func (r *Replica) recordSync(ctx context.Context, err error) {
	if errors.Is(err, errNoPosition) || (err != nil && ctx.Err() != nil) {
		return
	}
	now := time.Now()
	r.healthMu.Lock()
	since, logged := r.failingSince, r.stallLogged
	stall := false
	switch {
	case err == nil:
		r.failingSince, r.lastErr, r.stallLogged = time.Time{}, nil, false
	case since.IsZero():
		r.failingSince, r.lastErr = now, err
	default:
		r.lastErr = err
		stall = !logged && now.Sub(since) >= r.stallAfter()
		r.stallLogged = logged || stall
	}
	r.healthMu.Unlock()

	if r.db != nil && err != nil {
		r.db.metrics.observeLag(r.db) // no event reports each failure: lag grows
	}
	switch {
	case err == nil && !since.IsZero():
		r.Logger().Info("replica sync recovered", "failing_for", now.Sub(since).Round(time.Millisecond))
		r.emit(EventRecovered, nil)
	case err != nil && since.IsZero():
		r.Logger().Error("replica sync failed", append([]any{"error", err}, ltxErrorAttrs(err)...)...)
	case stall:
		r.Logger().Error("replica sync stalled", append([]any{"failing_since", since, "error", err}, ltxErrorAttrs(err)...)...)
		r.emit(EventStalled, err)
	}
}

func (r *Replica) stallAfter() time.Duration {
	interval := r.SyncInterval
	if interval <= 0 {
		interval = DefaultSyncInterval
	}
	return StallSyncIntervals * interval
}

// health returns the start and newest error of the current run of failed
// syncs (zero and nil after a success), and whether it is a stall.
func (r *Replica) health() (failingSince time.Time, stalled bool, lastErr error) {
	r.healthMu.Lock()
	defer r.healthMu.Unlock()
	stalled = !r.failingSince.IsZero() && time.Since(r.failingSince) >= r.stallAfter()
	return r.failingSince, stalled, r.lastErr
}

// syncOnce uploads one batch and reports whether it stopped at maxFiles
// and how many files it uploaded.
func (r *Replica) syncOnce(ctx context.Context, maxFiles int) (limited bool, n int, err error) {
	if err := r.syncSem.Acquire(ctx, 1); err != nil {
		return false, 0, fmt.Errorf("wait for replica sync: %w", context.Cause(ctx))
	}
	defer r.syncSem.Release(1)
	defer func() {
		if err != nil {
			r.forgetPos() // ask the replica again next time
		}
	}()

	if err := context.Cause(ctx); err != nil {
		return false, 0, err
	}
	if err := r.checkLease(ctx); err != nil {
		return false, 0, err
	}
	pos := r.Pos()
	if r.IndexRefreshInterval < 0 && !pos.IsZero() {
		// Listing every pass was asked for: a replica that no longer ends
		// at the known position (wiped, put back from a copy, written by
		// another) is compared again, as after a restart.
		// The listing forgets the position itself when it finds the file
		// at it replaced under the same name.
		if info, err := r.MaxLTXFileInfo(ctx, 0); err != nil {
			return false, 0, fmt.Errorf("calc pos: %w", err)
		} else if info.MaxTXID != pos.TXID || r.Pos().IsZero() {
			r.forgetPos()
			pos = ltx.Pos{}
		}
	}
	if pos.IsZero() || r.db.replicaCheckPending.Load() {
		info, err := r.newestFileInfo(ctx)
		if err != nil {
			return false, 0, fmt.Errorf("calc pos: %w", err)
		}
		resets := r.db.localResets.Load()
		if err := r.db.resolveReplicaCheck(ctx, info); err != nil {
			return false, 0, fmt.Errorf("compare with replica position: %w", err)
		}
		pos = ltx.Pos{TXID: info.MaxTXID}
		r.SetPos(pos)
		if r.db.localResets.Load() == resets { // the replica's newest file is this history's
			// newestFileInfo listed the levels just now: the index serves
			// them from memory.
			listed := withReplicaIndex(ctx)
			if info.Level != 0 {
				// A compacted file goes past L0, which lost its top files:
				// their local copies go back, as lost files below a listed
				// one do, if they all do (L0 files above a hole would not
				// restore).
				if l0, err := r.MaxLTXFileInfo(listed, 0); err == nil && l0.MaxTXID < info.MaxTXID && r.db.hasLocalL0(l0.MaxTXID+1, info.MaxTXID) {
					r.db.refillL0(l0.MaxTXID+1, info.MaxTXID)
				}
			}
			if !r.localCopiesCompared.Swap(true) {
				if err := r.compareWithLocalCopies(listed); err != nil {
					r.localCopiesCompared.Store(false) // compare at the next sync
					return false, 0, fmt.Errorf("compare replica files with local copies: %w", err)
				}
			}
		}
	}
	resets := r.db.localResets.Load()
	changed := r.changesSeen()

	dpos, err := r.db.Pos()
	if err != nil {
		return false, 0, fmt.Errorf("cannot determine current position: %w", err)
	} else if dpos.IsZero() {
		return false, 0, errNoPosition
	}
	if err := r.repairLost(ctx); err != nil {
		return false, 0, err
	}

	renewed := time.Now()
	for txid := pos.TXID + 1; txid <= dpos.TXID; txid++ {
		if maxFiles > 0 && n >= maxFiles {
			return true, n, nil
		}
		// A lease lost during the batch stops it; a long batch renews as
		// the renew loop would.
		if err := r.leaseLost(); err != nil {
			return false, n, err
		} else if r.Leaser != nil && time.Since(renewed) >= r.renewInterval() {
			if err := r.checkLease(ctx); err != nil {
				return false, n, err
			}
			renewed = time.Now()
		}
		if err := r.uploadL0(ctx, txid); err != nil {
			return false, n, r.behindLocal(txid, err)
		}
		if r.db.localResets.Load() != resets {
			// The file uploaded was of the local history before a reset,
			// which may have reused its TXID: compare with the replica
			// again before trusting either.
			r.db.replicaCheckPending.Store(true)
			return false, n, fmt.Errorf("upload L0 %s: %w", txid, errLocalStateReset)
		}
		if failingSince, _, _ := r.health(); !failingSince.IsZero() {
			r.recordSync(ctx, nil) // before SetPos wakes waiters, who may read SyncStatus
		}
		if !r.setPosUnlessReset(ltx.Pos{TXID: txid}, resets, changed) {
			if r.db.localResets.Load() == resets {
				// A listing found the replica changed meanwhile: the next
				// pass compares with it before going on.
				r.db.replicaCheckPending.Store(true)
				return true, n, nil
			}
			r.db.replicaCheckPending.Store(true)
			return false, n, fmt.Errorf("upload L0 %s: %w", txid, errLocalStateReset)
		}
		r.db.emit(EventUploaded, 0, txid, txid, nil)
		n++
	}
	r.db.RecordSuccessfulSync()
	return false, n, nil
}

// hasPending reports whether the DB has L0 files the replica lacks, or the
// replica position must be fetched.
func (r *Replica) hasPending() bool {
	pos := r.Pos()
	dpos, err := r.db.Pos()
	return err != nil || pos.IsZero() || dpos.TXID > pos.TXID
}

func (r *Replica) uploadL0(ctx context.Context, txid ltx.TXID) error {
	return r.uploadL0Range(ctx, txid, txid)
}

func (r *Replica) uploadL0Range(ctx context.Context, minTXID, maxTXID ltx.TXID) error {
	path := r.db.LTXPath(0, minTXID, maxTXID)
	f, err := os.Open(path)
	if err != nil {
		return NewLTXError("open", path, 0, uint64(minTXID), uint64(maxTXID), err)
	}
	defer func() { _ = f.Close() }()

	if err := r.writeL0(ctx, minTXID, maxTXID, f); err != nil {
		return remoteLTXError("upload", 0, minTXID, maxTXID, err)
	}
	return nil
}

// monitor uploads new L0 files as the DB writes them, one batch per
// SyncInterval at most, backing off on errors. Caught up, it sleeps until
// the DB writes an L0 file: with nothing to upload a sync would make no
// backend request, and sync health is reported as current meanwhile.
func (r *Replica) monitor(ctx context.Context) {
	defer r.db.setReplicaCaughtUp(false)

	var lastBatch time.Time // start of the last batch that uploaded files
	var backoff time.Duration
	var healthy bool // the last sync succeeded
	for first := true; ; first = false {
		notify := r.db.Notify()
		if !first {
			if backoff > 0 {
				timer := time.NewTimer(backoff)
				select {
				case <-ctx.Done():
					timer.Stop()
					return
				case <-timer.C:
				case <-r.wakeReq:
					timer.Stop()
				}
			}
			if dpos, err := r.db.Pos(); err == nil && dpos.TXID <= r.Pos().TXID {
				r.db.setReplicaCaughtUp(healthy)
				select {
				case <-ctx.Done():
					return
				case <-notify:
				case <-r.wakeReq:
				}
				r.db.setReplicaCaughtUp(false)
			}
		}

		// At most one upload batch per SyncInterval; after a quiet interval
		// the next batch starts at once.
		if r.hasPending() {
			if wait := r.SyncInterval - time.Since(lastBatch); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}

		start := time.Now()
		uploaded, err := r.sync(ctx, r.MaxSyncLTXFiles)
		if uploaded > 0 {
			lastBatch = start
		}
		healthy = err == nil
		switch {
		case err == nil:
			backoff = 0
			continue
		case errors.Is(err, errNoPosition):
			continue
		case ctx.Err() != nil:
			return
		}

		// Back off only when no file got through: a flaky client that
		// fails some calls must not stall a backlog it is draining.
		if uploaded > 0 {
			backoff = 0
		} else {
			backoff = min(max(backoff*2, r.SyncInterval), DefaultSyncBackoffMax)
		}
		var ltxErr *LTXError
		if r.AutoRecoverEnabled && errors.As(err, &ltxErr) && ltxErr.IsAutoRecoverable() {
			r.Logger().Warn("resetting local state to recover", "error", err)
			if err := r.db.ResetLocalState(ctx); err != nil {
				r.Logger().Error("reset local state", "error", err)
			} else {
				backoff = 0
			}
		}
	}
}

// shutdownSync uploads what remains, retrying every ShutdownSyncInterval for
// up to ShutdownSyncTimeout, and gives up early when DB.Done closes.
func (r *Replica) shutdownSync(ctx context.Context) error {
	db := r.db
	if r.leaseWanted() {
		// Lost it: uploading would be refused, and the files stay local.
		if err := r.leaseLost(); err != nil {
			return err
		}
		// Not asked for yet (closed before the first tick), or held by
		// another process: ask once, without waiting for another holder.
		if err := r.acquireLeaseWaiting(ctx, false); err != nil {
			return fmt.Errorf("final upload skipped: closed before the lease was acquired: %w: %w", ErrLeaseNotHeld, err)
		}
	}
	if db.ShutdownSyncTimeout <= 0 {
		return r.Sync(ctx)
	}
	interval := db.ShutdownSyncInterval
	if interval <= 0 {
		interval = DefaultShutdownSyncInterval
	}

	ctx, cancel := context.WithTimeout(ctx, db.ShutdownSyncTimeout)
	defer cancel()
	if db.Done != nil {
		go func() {
			select {
			case <-db.Done:
				cancel()
			case <-ctx.Done():
			}
		}()
	}

	var err error
	for attempt := 1; ; attempt++ {
		if db.Done != nil {
			select {
			case <-db.Done:
				return fmt.Errorf("after %d attempts: %w", attempt-1, ErrShutdownInterrupted)
			default:
			}
		}
		if err = r.Sync(ctx); err == nil || errors.Is(err, errNoPosition) {
			return nil
		} else if errors.Is(err, ErrLeaseNotHeld) {
			return err // retrying cannot help: another writer holds the lease
		}
		select {
		case <-ctx.Done():
			if db.Done != nil {
				select {
				case <-db.Done:
					return fmt.Errorf("after %d attempts: %w", attempt, ErrShutdownInterrupted)
				default:
				}
			}
			return fmt.Errorf("shutdown sync timeout after %d attempts: %w", attempt, err)
		case <-time.After(interval):
		}
	}
}

// MaxLTXFileInfo returns the replica's file with the highest MaxTXID at a
// level, or a zero value if the level is empty.
func (r *Replica) MaxLTXFileInfo(ctx context.Context, level int) (info ltx.FileInfo, err error) {
	client := r.client()
	if client == nil {
		return info, errNoClient
	}
	itr, err := client.LTXFiles(ctx, level, 0, false)
	if err != nil {
		return info, err
	}
	defer func() { _ = itr.Close() }()
	for itr.Next() {
		if item := itr.Item(); item.MaxTXID > info.MaxTXID {
			info = *item
		}
	}
	return info, itr.Close()
}

// newestFileInfo returns the replica's file with the highest MaxTXID, the
// position its TXIDs continue from. That is normally L0's newest file, as
// the higher levels are compacted from L0. A replica whose newest L0 files
// were removed (an outside tool, a partial copy) still holds their TXIDs in
// a compacted file, and new TXIDs must go after them, not under them. The
// levels listed are those the DB's store compacts (which it lists at open
// anyway) and the snapshot level; every level without a store.
func (r *Replica) newestFileInfo(ctx context.Context) (ltx.FileInfo, error) {
	newest, err := r.MaxLTXFileInfo(ctx, 0)
	if err != nil {
		return newest, fmt.Errorf("list L0: %w", err)
	}
	newest.Level = 0
	top := SnapshotLevel - 1
	if r.db != nil {
		if n := int(r.db.topCompactionLevel.Load()); n > 0 {
			top = n
		}
	}
	for level := 1; level <= SnapshotLevel; level++ {
		if level > top && level != SnapshotLevel {
			continue
		}
		info, err := r.MaxLTXFileInfo(ctx, level)
		if err != nil {
			return newest, fmt.Errorf("list L%d: %w", level, err)
		}
		if info.MaxTXID > newest.MaxTXID {
			newest, newest.Level = info, level
		}
	}
	return newest, nil
}

// compareWithLocalCopies reports the replica's files whose local copy has
// another size as replaced by someone else, as a listing does for files it
// knew. A process lists a replica for the first time with nothing to
// compare it with, and a file replaced before it started (an older copy
// put back while the last run trusted its listing) would otherwise pass
// for its own, with its own files above it: a chain no restore crosses.
// Levels without local copies are not listed; ctx should let the index
// serve the listing the position check just made.
func (r *Replica) compareWithLocalCopies(ctx context.Context) error {
	client := r.client()
	if client == nil {
		return nil
	}
	for level := 0; level < SnapshotLevel; level++ {
		local := localLTXSizes(r.db.LTXLevelDir(level))
		if len(local) == 0 {
			continue
		}
		listed, err := listFrom(ctx, client, level, 0)
		if err != nil {
			return err
		}
		var replaced []*ltx.FileInfo
		for _, info := range listed {
			if size, ok := local[[2]ltx.TXID{info.MinTXID, info.MaxTXID}]; ok && size != info.Size {
				replaced = append(replaced, info)
			}
		}
		if len(replaced) > 0 {
			r.Logger().Warn("replica files differ from their local copies", "level", level, "replaced", len(replaced),
				"first_replaced", ltx.FormatFilename(replaced[0].MinTXID, replaced[0].MaxTXID))
			r.filesChanged(level, replaced, replaced, listed)
		}
	}
	return nil
}

// localLTXSizes returns the size of each LTX file in dir by TXID range.
func localLTXSizes(dir string) map[[2]ltx.TXID]int64 {
	entries, _ := os.ReadDir(dir)
	sizes := make(map[[2]ltx.TXID]int64, len(entries))
	for _, e := range entries {
		minTXID, maxTXID, err := ltx.ParseFilename(e.Name())
		if err != nil {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			sizes[[2]ltx.TXID{minTXID, maxTXID}] = fi.Size()
		}
	}
	return sizes
}

// CreatedAt returns the creation time of the replica's first L0 file.
func (r *Replica) CreatedAt(ctx context.Context) (time.Time, error) {
	if r.Client == nil {
		return time.Time{}, errNoClient
	}
	itr, err := r.Client.LTXFiles(ctx, 0, 0, false)
	if err != nil {
		return time.Time{}, err
	}
	defer func() { _ = itr.Close() }()
	if itr.Next() {
		return itr.Item().CreatedAt, nil
	}
	return time.Time{}, itr.Close()
}

// TimeBounds returns the earliest and latest file creation times across all
// levels.
func (r *Replica) TimeBounds(ctx context.Context) (createdAt, updatedAt time.Time, err error) {
	if r.Client == nil {
		return createdAt, updatedAt, errNoClient
	}
	for level := SnapshotLevel; level >= 0; level-- {
		itr, err := r.Client.LTXFiles(ctx, level, 0, false)
		if err != nil {
			return createdAt, updatedAt, err
		}
		for itr.Next() {
			info := itr.Item()
			if createdAt.IsZero() || info.CreatedAt.Before(createdAt) {
				createdAt = info.CreatedAt
			}
			if updatedAt.IsZero() || info.CreatedAt.After(updatedAt) {
				updatedAt = info.CreatedAt
			}
		}
		if err := itr.Close(); err != nil {
			return createdAt, updatedAt, err
		}
	}
	return createdAt, updatedAt, nil
}

// CalcRestoreTarget checks that opt.Timestamp, if set, lies inside the
// replica's history, and returns the newest file time.
func (r *Replica) CalcRestoreTarget(ctx context.Context, opt RestoreOptions) (updatedAt time.Time, err error) {
	createdAt, updatedAt, err := r.TimeBounds(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("cannot calculate time bounds: %w", err)
	}
	if createdAt, updatedAt, err = r.widenTimeBoundsV3(ctx, createdAt, updatedAt); err != nil {
		return time.Time{}, err
	}
	if !opt.Timestamp.IsZero() {
		if createdAt.IsZero() && updatedAt.IsZero() {
			return time.Time{}, fmt.Errorf("no backups found")
		} else if opt.Timestamp.Before(createdAt) || opt.Timestamp.After(updatedAt) {
			return time.Time{}, fmt.Errorf("timestamp does not exist")
		}
	}
	return updatedAt, nil
}

// ValidationError is one problem found in a level's listing, or (Type
// "chain") in the replica as a whole.
type ValidationError struct {
	Level    int
	Type     string // "gap", "overlap", "unsorted" or "chain"
	Message  string
	PrevFile *ltx.FileInfo
	CurrFile *ltx.FileInfo
}

// ValidateLevel reports gaps, overlaps and ordering errors in a level.
func (r *Replica) ValidateLevel(ctx context.Context, level int) ([]ValidationError, error) {
	if r.Client == nil {
		return nil, errNoClient
	}
	itr, err := r.Client.LTXFiles(ctx, level, 0, false)
	if err != nil {
		return nil, err
	}
	defer func() { _ = itr.Close() }()

	var errs []ValidationError
	var prev *ltx.FileInfo
	for itr.Next() {
		curr := *itr.Item()
		if prev != nil {
			add := func(typ, format string, args ...any) {
				p, c := *prev, curr
				errs = append(errs, ValidationError{Level: level, Type: typ, Message: fmt.Sprintf(format, args...), PrevFile: &p, CurrFile: &c})
			}
			switch {
			case curr.MinTXID < prev.MinTXID:
				add("unsorted", "L%d file %s-%s listed after %s-%s", level, curr.MinTXID, curr.MaxTXID, prev.MinTXID, prev.MaxTXID)
			case curr.MinTXID > prev.MaxTXID+1:
				add("gap", "L%d gap between %s-%s and %s-%s", level, prev.MinTXID, prev.MaxTXID, curr.MinTXID, curr.MaxTXID)
			case curr.MinTXID <= prev.MaxTXID:
				add("overlap", "L%d overlap between %s-%s and %s-%s", level, prev.MinTXID, prev.MaxTXID, curr.MinTXID, curr.MaxTXID)
			}
		}
		prev = &curr
	}
	return errs, itr.Close()
}

// ValidateChain reports TXIDs between the oldest snapshot (or TXID 1 when
// there is none) and the newest file of levels 0-8 that no file of those
// levels covers: a state no restore can reach. Each gap is one error whose
// CurrFile is the file after it.
func (r *Replica) ValidateChain(ctx context.Context) ([]ValidationError, error) {
	var from ltx.TXID // TXIDs up to from are reachable
	snapshots, err := listFrom(ctx, r.Client, SnapshotLevel, 0)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	} else if len(snapshots) > 0 {
		from = snapshots[0].MaxTXID
	}
	var infos []*ltx.FileInfo
	for level := 0; level < SnapshotLevel; level++ {
		a, err := listFrom(ctx, r.Client, level, 0)
		if err != nil {
			return nil, fmt.Errorf("list L%d: %w", level, err)
		}
		infos = append(infos, a...)
	}
	slices.SortFunc(infos, func(a, b *ltx.FileInfo) int { return cmp.Compare(a.MinTXID, b.MinTXID) })

	var errs []ValidationError
	for _, info := range infos {
		if info.MaxTXID <= from {
			continue
		}
		if info.MinTXID > from+1 {
			curr := *info
			errs = append(errs, ValidationError{Level: info.Level, Type: "chain", CurrFile: &curr,
				Message: fmt.Sprintf("no file covers TXIDs %s-%s: restores reach %s, the next file is %s", from+1, info.MinTXID-1, from, LTXFilePath("", info.Level, info.MinTXID, info.MaxTXID))})
		}
		from = info.MaxTXID
	}
	return errs, nil
}
