package litestream

import (
	"context"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/benbjohnson/litestream/internal"
	"github.com/superfly/ltx"
)

// Compact merges the level below dstLevel into it on the replica. After an
// L1 compaction it applies L0 retention, logging its errors.
func (db *DB) Compact(ctx context.Context, dstLevel int) (*ltx.FileInfo, error) {
	db.syncCompactorOptions()
	info, err := db.compactor.Compact(ctx, dstLevel)
	if err != nil {
		if !errors.Is(err, ErrNoCompaction) && !errors.Is(err, ErrCompactionGap) {
			// A failed write may still have landed: list the level again
			// rather than write a file overlapping it.
			db.dropMaxLTXFileInfo(dstLevel)
		}
		return nil, err
	}
	if dstLevel == 1 {
		if err := db.EnforceL0RetentionByTime(ctx); err != nil {
			db.logger().Error("l0 retention after compaction", "error", err)
		}
	}
	return info, nil
}

// setCompactorOptions runs set, which assigns VerifyCompaction or
// RetentionEnabled, under the lock the compactor reads its copies with, and
// copies them.
func (db *DB) setCompactorOptions(set func()) {
	db.lazyInit()
	c := db.compactor
	c.optMu.Lock()
	defer c.optMu.Unlock()
	set()
	c.VerifyCompaction, c.RetentionEnabled = db.VerifyCompaction, db.RetentionEnabled
}

// syncCompactorOptions picks up VerifyCompaction and RetentionEnabled as
// assigned after Open.
func (db *DB) syncCompactorOptions() { db.setCompactorOptions(func() {}) }

// EnforceSnapshotRetention deletes snapshots created before timestamp,
// always keeping the newest. It returns the MaxTXID of the snapshot just
// before the first one kept (0 if none was deleted): lower levels may drop
// files below it without breaking a restore from any kept snapshot.
func (db *DB) EnforceSnapshotRetention(ctx context.Context, timestamp time.Time) (minSnapshotTXID ltx.TXID, err error) {
	db.syncCompactorOptions()
	if db.Replica == nil {
		return 0, fmt.Errorf("no replica configured")
	}
	infos, err := listFrom(ctx, db.Replica.Client, SnapshotLevel, 0)
	if err != nil {
		return 0, fmt.Errorf("list snapshots: %w", err)
	}
	var deleted []*ltx.FileInfo
	for i, info := range infos {
		if i == len(infos)-1 || !info.CreatedAt.Before(timestamp) {
			break
		}
		deleted = append(deleted, info)
	}
	if len(deleted) > 0 {
		minSnapshotTXID = deleted[len(deleted)-1].MaxTXID
	}
	return minSnapshotTXID, db.compactor.deleteFiles(ctx, deleted)
}

// EnforceRetentionByTXID deletes a level's files whose MaxTXID is below
// txID, always keeping the level's newest file.
func (db *DB) EnforceRetentionByTXID(ctx context.Context, level int, txID ltx.TXID) (err error) {
	db.syncCompactorOptions()
	return db.compactor.EnforceRetentionByTXID(ctx, level, txID)
}

// EnforceL0RetentionByTime deletes L0 files that L1 already covers and that
// are older than L0Retention, remotely and locally. It never deletes the
// newest L0 file nor leaves a hole in the retained range.
func (db *DB) EnforceL0RetentionByTime(ctx context.Context) error {
	return db.enforceL0Retention(ctx, false)
}

// enforceL0Retention is EnforceL0RetentionByTime; with mayskip (background
// passes only) it returns without listing the replica while no L0 or L1
// file was added since the last pass and no file has aged past retention.
func (db *DB) enforceL0Retention(ctx context.Context, mayskip bool) error {
	db.syncCompactorOptions()
	if db.L0Retention <= 0 || db.Replica == nil {
		return nil
	}
	key, keyOK := db.l0RetentionKey()
	db.l0RetMu.Lock()
	last := db.l0Ret
	db.l0RetMu.Unlock()
	if mayskip && keyOK && last.valid && last.key == key && (last.nextDue.IsZero() || time.Now().Before(last.nextDue)) {
		return nil
	}

	deleted, nextDue, err := l0RetentionCandidates(ctx, db.Replica.Client, db.L0Retention, func(info *ltx.FileInfo) (time.Time, bool) {
		fi, err := os.Stat(db.LTXPath(0, info.MinTXID, info.MaxTXID))
		if err != nil {
			return time.Time{}, false
		}
		return fi.ModTime(), true
	})
	if err != nil {
		return err
	}
	db.metrics.observeL0Retention(db, len(deleted))
	if err := db.compactor.deleteFiles(ctx, deleted); err != nil {
		return err
	}
	db.l0RetMu.Lock()
	db.l0Ret = l0RetentionPass{key: key, nextDue: nextDue, valid: keyOK && len(deleted) == 0}
	db.l0RetMu.Unlock()
	return nil
}

// l0RetentionIdleUntil reports whether EnforceL0RetentionByTime would do
// nothing before until, or, when until is zero, before a level's newest
// file changes.
func (db *DB) l0RetentionIdleUntil() (until time.Time, ok bool) {
	if db.L0Retention <= 0 || db.Replica == nil {
		return time.Time{}, true
	}
	key, keyOK := db.l0RetentionKey()
	db.l0RetMu.Lock()
	last := db.l0Ret
	db.l0RetMu.Unlock()
	if !keyOK || !last.valid || last.key != key {
		return time.Time{}, false
	}
	return last.nextDue, true
}

// l0RetentionPass remembers what the last L0 retention pass saw.
type l0RetentionPass struct {
	key     [2]ltx.TXID // newest local L0 and cached L1 TXIDs
	nextDue time.Time   // zero: nothing becomes deletable without new files
	valid   bool
}

// l0RetentionKey identifies the files retention could act on: the newest
// local L0 and the newest L1 this process knows of.
func (db *DB) l0RetentionKey() ([2]ltx.TXID, bool) {
	pos, err := db.Pos()
	if err != nil {
		return [2]ltx.TXID{}, false
	}
	l1, ok := db.cachedMaxLTXFileInfo(1)
	if !ok {
		return [2]ltx.TXID{}, false
	}
	return [2]ltx.TXID{pos.TXID, l1.MaxTXID}, true
}

// EnsureExists restores the database from its replica if the file does not
// exist. An empty replica is not an error: the application creates a new
// database. Call it before Open.
func (db *DB) EnsureExists(ctx context.Context) error {
	if db.Replica == nil {
		return fmt.Errorf("no replica configured")
	} else if db.Replica.Client == nil {
		return fmt.Errorf("no replica client configured")
	}
	// With a Leaser the restore happens under the lease (waiting for it in
	// LeaseWait mode), so that no other writer extends the replica after it.
	if err := db.Replica.acquireLease(ctx); err != nil {
		return err
	}
	if _, err := os.Stat(db.path); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if dir := filepath.Dir(db.path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("create database directory: %w", err)
		}
	}

	opt := NewRestoreOptions()
	opt.OutputPath = db.path
	opt.IntegrityCheck = IntegrityCheckQuick
	if err := db.Replica.Restore(ctx, opt); errors.Is(err, ErrTxNotAvailable) || errors.Is(err, ErrNoSnapshots) {
		return nil
	} else if err != nil {
		return fmt.Errorf("restore from backup: %w", err)
	}
	return nil
}

// ResetLocalState removes the local LTX files so that the next sync starts
// over from the replica's newest file with a full snapshot. TXIDs continue
// after the replica's highest instead of restarting at 1.
func (db *DB) ResetLocalState(ctx context.Context) error {
	db.lazyInit()
	// Under the executor: a sync must not write L0 files meanwhile.
	if err := db.exec.Acquire(ctx, 1); err != nil {
		return fmt.Errorf("wait for db sync executor: %w", context.Cause(ctx))
	}
	defer db.exec.Release(1)
	if err := os.RemoveAll(db.LTXDir()); err != nil {
		return fmt.Errorf("remove local ltx files: %w", err)
	}
	db.invalidatePos()
	db.dropMaxLTXFileInfo(-1)
	db.localResets.Add(1)
	if db.Replica != nil {
		db.Replica.SetPos(ltx.Pos{})
	}
	db.wakeMonitor() // the next sync follows the WAL from the new position

	if !db.isInitialized() || db.Replica == nil {
		return nil
	}
	db.lastFrame = lastFrame{}
	return db.checkBehindReplica(ctx)
}

// checkBehindReplica handles a local position behind the replica's (after a
// restore from backup, or lost local state): the replica's newest L0 file
// becomes the local one, so the next sync continues its TXIDs. If the WAL no
// longer matches that file, that sync writes a full snapshot.
func (db *DB) checkBehindReplica(ctx context.Context) error {
	remote, err := db.Replica.MaxLTXFileInfo(ctx, 0)
	if err != nil {
		return fmt.Errorf("read replica position: %w: %w", errReplicaUnreachable, err)
	}
	return db.adoptReplicaPosition(ctx, remote)
}

// errReplicaUnreachable marks a behind-replica check that could not list
// the replica; init then goes on capturing locally.
var errReplicaUnreachable = errors.New("replica unreachable")

// resolveReplicaCheck runs the behind-replica check that init could not,
// with the replica's newest L0 file as the uploader just listed it.
func (db *DB) resolveReplicaCheck(ctx context.Context, remote ltx.FileInfo) error {
	db.lazyInit()
	if !db.replicaCheckPending.Load() {
		return nil
	}
	if err := db.exec.Acquire(ctx, 1); err != nil {
		return fmt.Errorf("wait for db sync executor: %w", context.Cause(ctx))
	}
	defer db.exec.Release(1)
	if !db.replicaCheckPending.Load() {
		return nil
	}
	if err := db.adoptReplicaPosition(ctx, remote); err != nil {
		return err
	}
	db.replicaCheckPending.Store(false)
	return nil
}

// adoptReplicaPosition makes the replica's newest L0 file the local one when
// the local position is behind it. Caller holds exec.
func (db *DB) adoptReplicaPosition(ctx context.Context, remote ltx.FileInfo) error {
	pos, err := db.Pos()
	if err != nil {
		var ltxErr *LTXError
		if !errors.As(err, &ltxErr) || !ltxErr.IsAutoRecoverable() {
			return err
		}
		pos = ltx.Pos{} // a corrupt local file: start over from the replica
	}
	if remote.MaxTXID == 0 || pos.TXID >= remote.MaxTXID {
		return nil
	}
	db.logger().Info("database is behind its replica, fetching the replica's newest L0 file",
		"local_txid", pos.TXID, "remote_txid", remote.MaxTXID)

	if err := os.RemoveAll(db.LTXLevelDir(0)); err != nil {
		return fmt.Errorf("remove local L0 files: %w", err)
	}
	db.invalidatePos()
	if err := internal.MkdirAll(db.LTXLevelDir(0), db.dirPerm()); err != nil {
		return fmt.Errorf("create L0 directory: %w", err)
	}

	rc, err := db.Replica.Client.OpenLTXFile(ctx, 0, remote.MinTXID, remote.MaxTXID, 0, 0)
	if err != nil {
		return fmt.Errorf("open replica L0 %s-%s: %w", remote.MinTXID, remote.MaxTXID, err)
	}
	defer func() { _ = rc.Close() }()
	path := db.LTXPath(0, remote.MinTXID, remote.MaxTXID)
	if _, err := db.stageLTX(path, 0, remote.MinTXID, remote.MaxTXID, func(w io.Writer) error {
		_, err := io.Copy(w, rc)
		return err
	}); err != nil {
		return err
	}
	// Nothing captured since this process started belongs to that file.
	db.lastSyncedWALOffset, db.witness = 0, nil
	db.setMaxLTXFileInfo(0, &remote)
	if _, err := db.Pos(); err != nil {
		return fmt.Errorf("verify replica L0 %s-%s: %w", remote.MinTXID, remote.MaxTXID, err)
	}
	if hdr, err := readLTXHeaderFile(path); err != nil {
		return err
	} else if int(hdr.PageSize) != db.pageSize {
		_ = os.RemoveAll(db.LTXLevelDir(0))
		db.invalidatePos()
		return fmt.Errorf("replica L0 %s-%s has page size %d but the database has %d: the replica belongs to another database", remote.MinTXID, remote.MaxTXID, hdr.PageSize, db.pageSize)
	}
	return nil
}

// SyncAndWait syncs the WAL and uploads everything to the replica.
func (db *DB) SyncAndWait(ctx context.Context) error {
	if db.Replica == nil {
		return fmt.Errorf("no replica configured")
	}
	if err := db.Sync(ctx); err != nil {
		return fmt.Errorf("db sync: %w", err)
	}
	if err := db.Replica.Sync(ctx); err != nil {
		return fmt.Errorf("replica sync: %w", err)
	}
	return nil
}

// SyncStatus compares the local position with the replica's newest L0, and
// reports failing replica syncs.
type SyncStatus struct {
	LocalTXID  ltx.TXID
	RemoteTXID ltx.TXID
	InSync     bool // LocalTXID > 0 && LocalTXID == RemoteTXID

	// FailingSince is when the current run of failed replica syncs began;
	// zero when the last sync succeeded.
	FailingSince time.Time
	// LastError is the newest error of that run, or nil.
	LastError error
	// Stalled reports syncs failing for StallSyncIntervals SyncIntervals
	// or longer.
	Stalled bool
	// LeaseLost is the *LeaseLostError that stopped replication for good
	// (another writer holds the replica's lease), or nil.
	LeaseLost error
}

// SyncStatus returns the local and replica positions and sync health. When
// the replica cannot be listed, the health fields are still filled in.
func (db *DB) SyncStatus(ctx context.Context) (SyncStatus, error) {
	if db.Replica == nil {
		return SyncStatus{}, fmt.Errorf("no replica configured")
	}
	var st SyncStatus
	st.FailingSince, st.Stalled, st.LastError = db.Replica.health()
	st.LeaseLost = db.Replica.leaseLost()
	pos, err := db.Pos()
	if err != nil {
		return st, fmt.Errorf("local position: %w", err)
	}
	st.LocalTXID = pos.TXID
	remote, err := db.Replica.MaxLTXFileInfo(ctx, 0)
	if err != nil {
		return st, fmt.Errorf("remote position: %w", err)
	}
	st.RemoteTXID = remote.MaxTXID
	st.InSync = pos.TXID > 0 && pos.TXID == remote.MaxTXID
	return st, nil
}

// SyncDiagnostic describes the DB's sync state for diagnostics.
type SyncDiagnostic struct {
	Path                string     `json:"path"`
	Active              bool       `json:"active"`
	Operation           string     `json:"operation,omitempty"`
	Phase               string     `json:"phase,omitempty"`
	StartedAt           *time.Time `json:"started_at,omitempty"`
	UpdatedAt           *time.Time `json:"updated_at,omitempty"`
	ElapsedSeconds      float64    `json:"elapsed_seconds,omitempty"`
	TXID                uint64     `json:"txid,omitempty"`
	WALSize             int64      `json:"wal_size,omitempty"`
	LastSyncedWALOffset int64      `json:"last_synced_wal_offset,omitempty"`
	Snapshotting        bool       `json:"snapshotting,omitempty"`
	CheckpointMode      string     `json:"checkpoint_mode,omitempty"`
	Reason              string     `json:"reason,omitempty"`
	Error               string     `json:"error,omitempty"`
	ExecutorWaiterCount int        `json:"executor_waiter_count,omitempty"`
	ExecutorWaitStarted *time.Time `json:"executor_wait_started_at,omitempty"`
	ExecutorWaitSeconds float64    `json:"executor_wait_seconds,omitempty"`
}

// SyncDiagnostic returns the DB's current sync state.
func (db *DB) SyncDiagnostic() SyncDiagnostic {
	db.lazyInit()
	d := SyncDiagnostic{Path: db.path}
	if pos, err := db.Pos(); err == nil {
		d.TXID = uint64(pos.TXID)
	}
	d.WALSize, _ = fileSize(db.WALPath())
	if db.exec.TryAcquire(1) {
		d.LastSyncedWALOffset = db.lastSyncedWALOffset
		db.exec.Release(1)
	} else {
		d.Active = true
	}
	return d
}

// CRC64 checkpoints the WAL into the database (RESTART) and returns the
// CRC-64/ISO of the database file with the position it corresponds to.
func (db *DB) CRC64(ctx context.Context) (uint64, ltx.Pos, error) {
	db.lazyInit()
	if err := db.exec.Acquire(ctx, 1); err != nil {
		return 0, ltx.Pos{}, fmt.Errorf("wait for db sync executor: %w", context.Cause(ctx))
	}
	defer db.exec.Release(1)

	if err := db.init(ctx); err != nil {
		return 0, ltx.Pos{}, err
	} else if !db.isInitialized() {
		return 0, ltx.Pos{}, os.ErrNotExist
	}
	if _, _, err := db.checkpointLocked(ctx, CheckpointModeRestart); err != nil {
		return 0, ltx.Pos{}, err
	}
	pos, err := db.Pos()
	if err != nil {
		return 0, ltx.Pos{}, err
	}
	h := crc64.New(crc64.MakeTable(crc64.ISO))
	if _, err := io.Copy(h, io.NewSectionReader(db.f, 0, 1<<62)); err != nil {
		return 0, ltx.Pos{}, fmt.Errorf("read database: %w", err)
	}
	return h.Sum64(), pos, nil
}

// EnforceRetention applies the replica's retention: expired snapshots and
// files no retained snapshot needs, plus L0 files past L0Retention.
func (r *Replica) EnforceRetention(ctx context.Context) (err error) {
	db := r.db
	if db == nil {
		return fmt.Errorf("enforce retention: replica has no database (use NewReplica)")
	}
	floor, err := db.EnforceSnapshotRetention(ctx, time.Now().Add(-DefaultSnapshotRetention))
	if err != nil {
		return err
	}
	for level := 1; level < SnapshotLevel; level++ {
		if err := db.EnforceRetentionByTXID(ctx, level, floor); err != nil {
			return err
		}
	}
	return db.EnforceL0RetentionByTime(ctx)
}
