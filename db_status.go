// What a DB reports about itself: sync status against the replica, sync
// diagnostics, and a checksum of the database file.

package litestream

import (
	"context"
	"fmt"
	"hash/crc64"
	"io"
	"os"
	"time"

	"github.com/superfly/ltx"
)

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
	if err := db.checkOpenable(); err != nil {
		return st, err
	}
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
