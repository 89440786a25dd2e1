// db_wait.go is WaitReplicated: waiting, without polling the backend, until
// everything committed before a call is on the replica. It shares the
// background sync and upload with every other caller and wakes on the DB's
// events.

package litestream

import (
	"context"
	"fmt"
	"time"

	"github.com/superfly/ltx"
)

// markSynced wakes WaitReplicated callers: every commit made before start
// is now in an L0 file.
func (db *DB) markSynced(start time.Time) {
	db.syncedMu.Lock()
	if start.After(db.lastSyncStart) {
		db.lastSyncStart = start
	}
	db.syncedMu.Unlock()
	db.emitInternal(eventSyncDone, start)
}

// syncedSince reports whether a sync that began after t has finished.
func (db *DB) syncedSince(t time.Time) bool {
	db.syncedMu.Lock()
	defer db.syncedMu.Unlock()
	return db.lastSyncStart.After(t)
}

// WaitReplicated blocks until everything committed before the call is on
// the replica. It waits for the background sync and upload rather than
// starting its own, so concurrent callers share one sync and one upload. If
// background sync or upload is off, it syncs and uploads itself. A context
// already done returns its error.
func (db *DB) WaitReplicated(ctx context.Context) error {
	db.lazyInit()
	if db.Replica == nil {
		return fmt.Errorf("no replica configured")
	}
	if err := db.checkOpenable(); err != nil {
		return err
	}
	// Like Sync, a context already done fails at once, whatever the
	// replica holds: the answer must not depend on which channel wins.
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if db.MonitorInterval <= 0 || !db.Replica.MonitorEnabled {
		return db.SyncAndWait(ctx)
	}

	// A reset of local state (a re-seeded replica) renumbers TXIDs: the
	// wait then starts over, on the position of a sync after the reset,
	// which holds everything committed before the call.
	for {
		resets := db.localResets.Load()
		if err := db.waitSyncStartedAfter(ctx, time.Now()); err != nil {
			return err
		}
		pos, err := db.Pos()
		if err != nil {
			return fmt.Errorf("local position: %w", err)
		}
		if db.localResets.Load() != resets {
			continue
		}
		if done, err := db.waitUploaded(ctx, pos, resets); done || err != nil {
			return err
		}
	}
}

// waitSyncStartedAfter waits for a sync that began after t to finish.
func (db *DB) waitSyncStartedAfter(ctx context.Context, t time.Time) error {
	db.wakeMonitor() // the monitor skips syncs when the WAL looks unchanged
	return db.awaitEvent(ctx, 0, nil, func() (bool, error) { return db.syncedSince(t), nil })
}

// waitUploaded waits for the replica to reach pos. It returns false when
// local state was reset meanwhile.
func (db *DB) waitUploaded(ctx context.Context, pos ltx.Pos, resets uint64) (bool, error) {
	db.Replica.wake()
	reset := false
	// While it waits, the caller has the replica retry at least once per
	// SyncInterval, whatever backoff a run of failures built up.
	err := db.awaitEvent(ctx, max(db.Replica.SyncInterval, time.Millisecond), db.Replica.wake, func() (bool, error) {
		// Position first: a reset counts itself before it moves the
		// replica's position to the replica's own, which may pass pos.
		uploaded := db.Replica.Pos().TXID >= pos.TXID
		if db.localResets.Load() != resets {
			reset = true
			return true, nil
		} else if uploaded {
			return true, nil
		}
		return false, db.Replica.leaseLost()
	})
	return err == nil && !reset, err
}
