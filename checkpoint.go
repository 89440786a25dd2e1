// Checkpoints: the automatic policy run after each sync (PASSIVE by size or
// time, TRUNCATE as an emergency brake) and checkpoints asked for by callers.

package litestream

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// checkpointIfNeeded runs the automatic checkpoint policy after a sync:
// TRUNCATE as an emergency brake for a huge WAL, otherwise PASSIVE by size
// or by time. RESTART is never automatic: it stalls writers behind long
// readers. origWALSize is the logical WAL end before the sync. Caller holds
// exec.
func (db *DB) checkpointIfNeeded(ctx context.Context, origWALSize int64) error {
	if db.pageSize == 0 {
		return nil
	}
	if !db.exceedsTruncateThreshold(db.lastSyncedWALOffset) {
		db.truncatePassiveFailed = false
		db.resetTruncateBackoff()
	}

	if db.exceedsTruncateThreshold(origWALSize) {
		if !db.truncatePassiveFailed {
			restarted, attempted, err := db.checkpointLocked(ctx, CheckpointModePassive)
			switch {
			case isSQLiteBusyError(err):
				db.truncatePassiveFailed = true
			case err != nil:
				return err
			case restarted:
				db.truncatePassiveFailed = false
				if !db.exceedsTruncateThreshold(db.lastSyncedWALOffset) {
					return nil
				}
			case attempted:
				db.truncatePassiveFailed = true
			}
		}
		// A TRUNCATE a reader keeps from completing holds app writers up
		// to BusyTimeout: not again at every sync.
		if time.Now().Before(db.truncateRetryAt) {
			return nil
		}
		restarted, attempted, err := db.checkpointLocked(ctx, CheckpointModeTruncate)
		if restarted || !db.exceedsTruncateThreshold(db.lastSyncedWALOffset) {
			db.truncatePassiveFailed = false
			db.resetTruncateBackoff()
		} else if attempted {
			db.backOffTruncate(err)
		}
		if isSQLiteBusyError(err) {
			return nil // a long reader; the WAL is captured, a sync after the backoff tries again
		}
		return err
	}

	// A WAL holding only the frame the last checkpoint's bump wrote is not
	// worth another: with MinCheckpointPageN 1 each would write the next.
	newWALSize := db.lastSyncedWALOffset
	if newWALSize >= walSizeForPages(db.pageSize, db.MinCheckpointPageN) && newWALSize > walSizeForPages(db.pageSize, 1) {
		return db.passiveCheckpoint(ctx)
	}

	if db.timeCheckpointWanted() {
		if fi, err := db.f.Stat(); err == nil && time.Since(fi.ModTime()) > db.CheckpointInterval {
			return db.passiveCheckpoint(ctx)
		}
	}
	return nil
}

// backOffTruncate delays the next emergency TRUNCATE after one that left
// the WAL past the threshold: doubling from MonitorInterval up to a minute
// (or CheckpointInterval, if shorter). Logged when the backoff starts only.
// Caller holds exec.
func (db *DB) backOffTruncate(err error) {
	base := db.MonitorInterval
	if base <= 0 {
		base = DefaultMonitorInterval
	}
	ceiling := time.Minute
	if db.CheckpointInterval > 0 {
		ceiling = min(ceiling, db.CheckpointInterval)
	}
	first := db.truncateBackoff == 0
	db.truncateBackoff = min(max(db.truncateBackoff*2, base), max(ceiling, base))
	db.truncateRetryAt = time.Now().Add(db.truncateBackoff)
	if first {
		db.logger().Warn("emergency TRUNCATE checkpoint could not complete, a reader may hold the WAL; retrying with backoff",
			"wal_size", db.lastSyncedWALOffset, "truncate_page_n", db.truncatePageN(), "retry_in", db.truncateBackoff, "error", err)
	}
}

// resetTruncateBackoff ends the TRUNCATE backoff once the WAL is back under
// the threshold. Caller holds exec.
func (db *DB) resetTruncateBackoff() {
	if db.truncateBackoff == 0 {
		return
	}
	db.truncateBackoff, db.truncateRetryAt = 0, time.Time{}
	db.logger().Info("emergency TRUNCATE backoff ended: the WAL is back under the threshold",
		"wal_size", db.lastSyncedWALOffset, "truncate_page_n", db.truncatePageN())
}

// passiveCheckpoint runs a PASSIVE checkpoint, ignoring busy errors: the
// next sync tries again.
func (db *DB) passiveCheckpoint(ctx context.Context) error {
	_, _, err := db.checkpointLocked(ctx, CheckpointModePassive)
	if isSQLiteBusyError(err) {
		return nil
	}
	return err
}

// Checkpoint syncs and checkpoints the WAL in the given mode, keeping every
// committed frame in the L0 chain across the WAL restart.
func (db *DB) Checkpoint(ctx context.Context, mode string) (err error) {
	db.lazyInit()
	if err := db.exec.Acquire(ctx, 1); err != nil {
		return fmt.Errorf("wait for db sync executor: %w", context.Cause(ctx))
	}
	defer db.exec.Release(1)

	if err := db.init(ctx); err != nil {
		return err
	} else if !db.isInitialized() {
		return nil
	}
	_, _, err = db.checkpointLocked(ctx, mode)
	return err
}

// checkpointLocked runs one checkpoint and follows the WAL restart it causes.
// attempted is false when a snapshot reader made it skip. Whatever the pragma
// returns, including SQLITE_BUSY after it backfilled everything, the WAL is
// captured and the read lock moved before returning, so that no one can
// restart the WAL over frames not in an L0 file. Caller holds exec.
func (db *DB) checkpointLocked(ctx context.Context, mode string) (restarted, attempted bool, err error) {
	start := time.Now()
	defer func() { db.metrics.observeCheckpoint(db, mode, start, err) }()

	if !db.chkMu.TryLock() {
		return false, false, nil // a snapshot reader needs the WAL as it is
	}
	defer db.chkMu.Unlock()

	if err := db.syncLocked(ctx, true); err != nil {
		return false, true, fmt.Errorf("sync before checkpoint: %w", err)
	}

	// A PASSIVE checkpoint holds the write lock from the last sync to the
	// checkpoint, so no commit can slip between them.
	var barrier *sql.Tx
	if mode == CheckpointModePassive {
		if barrier, err = db.beginWriteBarrier(ctx); err != nil {
			return false, true, err
		}
		defer func() { _ = barrier.Rollback() }()
		if err := db.syncLocked(ctx, true); err != nil {
			return false, true, fmt.Errorf("sync under write barrier: %w", err)
		}
	}
	pos, err := db.Pos()
	if err != nil {
		return false, true, fmt.Errorf("position before checkpoint: %w", err)
	}
	before, err := db.capturedAt(pos)
	if err != nil {
		return false, true, fmt.Errorf("position before checkpoint: %w", err)
	}

	// From here on the pragma may have backfilled frames: finish the
	// capture even if it failed or the caller gave up.
	complete, ckptErr := db.execCheckpoint(ctx, mode)
	ctx = context.WithoutCancel(ctx)
	crashPoint("checkpoint")
	if barrier != nil {
		if err := barrier.Rollback(); err != nil && !isTxDone(err) {
			return false, true, fmt.Errorf("release write barrier: %w", err)
		}
	}

	// A write after a complete checkpoint is what makes SQLite restart the
	// WAL. After one a reader held back it would only append a frame, which
	// the next sync captures into an L0 file, which wakes the next
	// checkpoint: an idle database with a long reader would churn.
	if complete {
		if err := db.bumpSeq(ctx); err != nil {
			return false, true, errors.Join(ckptErr, fmt.Errorf("write _litestream_seq after checkpoint: %w", err))
		}
	}
	hdrAfter, err := db.readWALHeader()
	if err != nil {
		return false, true, errors.Join(ckptErr, fmt.Errorf("read wal header: %w", err))
	}
	after, _ := readWALHeaderSalts(bytes.NewReader(hdrAfter))
	restarted = hdrAfter == nil || after != before.salts
	if restarted {
		db.truncatePassiveFailed = false
		crashPoint("checkpoint-restarted")
		if err := db.followRestart(ctx, mode, ckptErr, before, after); err != nil {
			return true, true, errors.Join(ckptErr, err)
		}
	}
	db.syncedSinceCheckpoint = false
	return restarted, true, errors.Join(ckptErr, db.moveReadMark(ctx))
}

// followRestart decides how the L0 chain crosses a WAL restart that the
// checkpoint caused. Only a PASSIVE checkpoint that succeeded proves that
// the old generation ended at the last captured frame: the write barrier
// kept commits out until the checkpoint had backfilled every frame, and
// from then on a commit restarts the WAL instead of appending to it. After
// FULL, RESTART or TRUNCATE, commits that raced the pragma may have been
// backfilled and overwritten, so the database is captured whole.
func (db *DB) followRestart(ctx context.Context, mode string, ckptErr error, before capture, after [2]uint32) error {
	if mode == CheckpointModePassive && ckptErr == nil && after[0] == before.salts[0]+1 {
		db.witness = &restartWitness{salts: before.salts, end: before.end, next: after}
		return nil
	}
	return db.writeBoundarySnapshot(ctx)
}

// moveReadMark restarts the read transaction with writers held off and every
// frame synced. Begun on a fully checkpointed WAL, as after a checkpoint, it
// holds read mark 0, which blocks every checkpoint by the application: each
// app commit past wal_autocheckpoint then builds a checkpoint iterator over
// the whole WAL and gives up. Begun after the restart's first frames it holds
// a real mark, so app checkpoints can copy frames up to it, while the WAL
// still cannot restart under frames not yet in an L0 file.
func (db *DB) moveReadMark(ctx context.Context) error {
	barrier, err := db.beginWriteBarrier(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = barrier.Rollback() }()
	if err := db.syncLocked(ctx, true); err != nil {
		return fmt.Errorf("sync after checkpoint: %w", err)
	}

	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.releaseReadLock(); err != nil {
		return fmt.Errorf("release read lock: %w", err)
	} else if err := db.acquireReadLock(ctx); err != nil {
		return fmt.Errorf("reacquire read lock: %w", err)
	}
	return nil
}

// beginWriteBarrier takes SQLite's write lock with a write that is never
// committed.
//
// Like the read lock, it never runs on a caller's context: database/sql
// would roll it back when that context ends, letting commits in while the
// checkpoint counts on there being none. SQLite's busy timeout bounds the
// wait for the lock.
func (db *DB) beginWriteBarrier(ctx context.Context) (*sql.Tx, error) {
	ctx = context.WithoutCancel(ctx)
	tx, err := db.sqldb.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin write barrier: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO _litestream_lock (id) VALUES (1);`); err != nil {
		_ = tx.Rollback()
		return nil, fmt.Errorf("acquire write barrier: %w", err)
	}
	return tx, nil
}

// execCheckpoint releases the read lock around the checkpoint pragma, and
// reports whether it backfilled every frame of the WAL.
func (db *DB) execCheckpoint(ctx context.Context, mode string) (complete bool, err error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.releaseReadLock(); err != nil {
		return false, fmt.Errorf("release read lock: %w", err)
	}
	defer func() {
		if e := db.acquireReadLock(context.WithoutCancel(ctx)); e != nil && err == nil {
			err = fmt.Errorf("reacquire read lock: %w", e)
		}
	}()

	crashPoint("checkpoint-pragma")
	var busy, walFrames, checkpointed int64
	if err := db.sqldb.QueryRowContext(ctx, fmt.Sprintf(`PRAGMA wal_checkpoint(%s);`, mode)).Scan(&busy, &walFrames, &checkpointed); err != nil {
		return false, fmt.Errorf("%s checkpoint: %w", mode, err)
	}
	complete = walFrames >= 0 && checkpointed == walFrames
	if busy != 0 && mode != CheckpointModePassive {
		return complete, fmt.Errorf("%s checkpoint: database is locked (SQLITE_BUSY)", mode)
	}
	return complete, nil
}

// writeBoundarySnapshot writes a full-database L0 file under the write lock
// after a restart whose lost frames cannot be ruled out.
func (db *DB) writeBoundarySnapshot(ctx context.Context) error {
	barrier, err := db.beginWriteBarrier(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = barrier.Rollback() }()

	pos, err := db.Pos()
	if err != nil {
		return fmt.Errorf("boundary snapshot position: %w", err)
	}
	hdr, err := db.readWALHeader()
	if err != nil {
		return fmt.Errorf("read wal header: %w", err)
	}
	salts, _ := readWALHeaderSalts(bytes.NewReader(hdr))
	info := syncInfo{offset: WALHeaderSize, salt1: salts[0], salt2: salts[1], snapshotting: true, reason: "checkpoint boundary snapshot"}
	db.logger().Info("writing full snapshot to L0", "txid", pos.TXID+1, "reason", info.reason)
	res, err := db.writeL0(ctx, pos, info, 0, true)
	if err != nil {
		return fmt.Errorf("boundary snapshot: %w", err)
	}
	db.applySyncResult(res)
	return nil
}

// isSQLiteBusyError reports whether err is SQLite's busy/locked error.
func isSQLiteBusyError(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "database is locked") || strings.Contains(msg, "SQLITE_BUSY")
}

// isTxDone reports whether err says the transaction already ended, which
// rolling back a checkpoint's barrier may find.
func isTxDone(err error) bool {
	return errors.Is(err, sql.ErrTxDone) || strings.Contains(err.Error(), "transaction has already been committed or rolled back")
}
