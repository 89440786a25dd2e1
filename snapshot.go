// Snapshots: streaming a full-database LTX file of the current position.

package litestream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/superfly/ltx"
)

// SnapshotReader streams a full-database LTX file (MinTXID 1) of the
// database as of its current position. Checkpoints wait until the reader is
// read to the end or closed: always close it.
func (db *DB) SnapshotReader(ctx context.Context) (ltx.Pos, io.ReadCloser, error) {
	db.lazyInit()
	if err := db.checkOpenable(); err != nil {
		return ltx.Pos{}, nil, err
	}
	if err := db.exec.Acquire(ctx, 1); err != nil {
		return ltx.Pos{}, nil, fmt.Errorf("wait for db sync executor: %w", context.Cause(ctx))
	}
	// Sync first: the snapshot is of the position's L0 file's WAL
	// generation, and the WAL may have moved on since the last sync. The
	// store's snapshot pass leaves a failing sync to the shared backoff.
	if isBackgroundSync(ctx) && db.syncRetryWait() > 0 {
		db.exec.Release(1)
		return ltx.Pos{}, nil, errSyncDeferred
	}
	err := db.syncLocked(ctx, false)
	db.noteSyncOutcome(ctx, err)
	if err != nil {
		db.exec.Release(1)
		return ltx.Pos{}, nil, fmt.Errorf("sync before snapshot: %w", err)
	}
	pageSize := db.PageSize()
	if pageSize == 0 {
		db.exec.Release(1)
		return ltx.Pos{}, nil, &DBNotReadyError{Reason: "page size not initialized"}
	}
	pos, err := db.Pos()
	if err != nil {
		db.exec.Release(1)
		return ltx.Pos{}, nil, fmt.Errorf("snapshot position: %w", err)
	}
	bound, err := db.snapshotWALBound(pos)
	if err != nil {
		db.exec.Release(1)
		return ltx.Pos{}, nil, err
	}
	// Lock out checkpoints before letting go of exec, so that the WAL and
	// database file stay as they are at pos while the snapshot is read.
	db.chkMu.RLock()
	db.exec.Release(1)

	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := db.writeSnapshot(ctx, pw, pos, bound)
		db.chkMu.RUnlock()
		_ = pw.CloseWithError(err)
	}()
	return pos, &snapshotReader{PipeReader: pr, done: done}, nil
}

type snapshotReader struct {
	*io.PipeReader
	done chan struct{} // closed once the writer stopped reading the database
}

// Close stops the writer and waits for it: a reader closed early (an upload
// that failed) must not leave it reading files that DB.Close releases.
func (r *snapshotReader) Close() error {
	err := r.PipeReader.Close()
	<-r.done
	return err
}

// snapshotWAL is the part of the WAL a snapshot at a position takes: its
// frames up to end, of the generation with these salts.
type snapshotWAL struct {
	end   int64
	salts [2]uint32
}

// snapshotWALBound returns the WAL frames up to which the position's L0
// chain reaches. The WAL must still be that L0 file's generation: frames of
// a later one belong to later TXIDs, and the database file may hold them
// too. Caller holds exec.
func (db *DB) snapshotWALBound(pos ltx.Pos) (snapshotWAL, error) {
	if pos.TXID == 0 {
		return snapshotWAL{end: WALHeaderSize}, nil
	}
	last, err := db.capturedAt(pos)
	if err != nil {
		return snapshotWAL{}, err
	}
	walHdr, err := db.readWALHeader()
	if err != nil {
		return snapshotWAL{}, fmt.Errorf("read wal header: %w", err)
	}
	if salts, _ := readWALHeaderSalts(bytes.NewReader(walHdr)); walHdr != nil && salts != last.salts {
		return snapshotWAL{}, fmt.Errorf("snapshot at TXID %s: %w", pos.TXID, errWALRestartedDuringRead)
	}
	return snapshotWAL{end: max(last.end, WALHeaderSize), salts: last.salts}, nil
}

// writeSnapshot encodes pages 1..commit, taking WAL frames up to bound.end.
// Checkpoints are held off, but not a WAL restart by the app: the frames
// read must be bound's generation, before and after they are read.
func (db *DB) writeSnapshot(ctx context.Context, w io.Writer, pos ltx.Pos, bound snapshotWAL) error {
	dbSize, err := db.dbFileSize()
	if err != nil {
		return err
	}
	pageSize := db.PageSize()
	commit := uint32(dbSize / int64(pageSize))

	walFile, err := os.Open(db.WALPath())
	if err != nil {
		return fmt.Errorf("open wal: %w", err)
	}
	defer func() { _ = walFile.Close() }()

	hdr := ltx.Header{
		Version:   ltx.Version,
		Flags:     ltx.HeaderFlagNoChecksum,
		PageSize:  uint32(pageSize),
		MinTXID:   1,
		MaxTXID:   pos.TXID,
		Timestamp: headerTimestamp(time.Now()),
		WALOffset: WALHeaderSize,
	}
	var pageMap map[uint32]int64
	if bound.end > WALHeaderSize {
		rd, err := NewWALReader(walFile, db.logger())
		if err != nil && err != io.EOF {
			return fmt.Errorf("open wal reader: %w", err)
		}
		if rd != nil && [2]uint32{rd.salt1, rd.salt2} != bound.salts {
			return fmt.Errorf("snapshot at TXID %s: %w", pos.TXID, errWALRestartedDuringRead)
		}
		if rd != nil {
			var end int64
			var walCommit uint32
			if pageMap, end, walCommit, _, err = rd.pageMap(ctx, bound.end-WALHeaderSize); err != nil {
				return fmt.Errorf("read wal page map: %w", err)
			} else if end > bound.end {
				return fmt.Errorf("wal page map ends at %d, past the synced bound %d", end, bound.end)
			}
			if walCommit > 0 {
				commit = walCommit
			}
			hdr.WALSalt1, hdr.WALSalt2 = rd.salt1, rd.salt2
			if end > 0 {
				frameSize := int64(pageSize) + WALFrameHeaderSize
				hdr.WALOffset = max(end-frameSize, WALHeaderSize)
				hdr.WALSize = end - hdr.WALOffset
			}
		}
	}
	hdr.Commit = commit

	pages, last := allPages(commit, ltx.LockPgno(uint32(pageSize)))
	if err := db.encodePages(ctx, w, hdr, pages, last, pageMap, walFile); err != nil {
		return err
	}
	// The frames read must still be the position's generation.
	if salts, err := readWALHeaderSalts(walFile); err != nil {
		return err
	} else if bound.end > WALHeaderSize && salts != bound.salts {
		return fmt.Errorf("snapshot at TXID %s: %w", pos.TXID, errWALRestartedDuringRead)
	}
	return nil
}

// Snapshot writes a full snapshot of the current position to the replica's
// snapshot level. It always writes, even if one exists for the position.
// The L0 files up to the position are uploaded first, and the snapshot
// fails if they cannot be.
func (db *DB) Snapshot(ctx context.Context) (*ltx.FileInfo, error) {
	db.lazyInit()
	if db.Replica == nil || db.Replica.Client == nil {
		return nil, fmt.Errorf("snapshot %s: %w (set DB.Replica)", db.path, errNoClient)
	}
	resets := db.localResets.Load()
	pos, rc, err := db.SnapshotReader(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }()

	// A snapshot ahead of the replica's L0 files would let a process that
	// restores it and replicates on continue from the newest L0 file,
	// reusing TXIDs the snapshot holds: its commits would be lost.
	if err := db.Replica.uploadThrough(ctx, pos.TXID); err != nil {
		return nil, fmt.Errorf("snapshot at TXID %s: upload the L0 files before it: %w", pos.TXID, err)
	}
	// The upload may have found the replica holding another history under
	// these TXIDs and taken its position: this snapshot's TXIDs then name
	// the replica's states, not the ones read.
	if db.localResets.Load() != resets {
		return nil, fmt.Errorf("snapshot at TXID %s: %w", pos.TXID, errLocalStateReset)
	}

	hdr, body, err := ltx.PeekHeader(rc)
	if err != nil {
		return nil, remoteLTXError("snapshot", SnapshotLevel, 1, pos.TXID, err)
	}
	info, err := db.Replica.client().WriteLTXFile(ctx, SnapshotLevel, 1, pos.TXID, body)
	if err != nil {
		return nil, remoteLTXError("snapshot", SnapshotLevel, 1, pos.TXID, err)
	}
	db.ownSnapshot.Store(&ownSnapshot{hdr: hdr, resets: resets})
	db.recordOwnSnapshot(hdr, resets)
	db.setMaxLTXFileInfo(SnapshotLevel, info)
	db.emit(EventSnapshot, SnapshotLevel, info.MinTXID, info.MaxTXID, nil)
	return info, nil
}

// ownSnapshot identifies a snapshot this DB uploaded: its header, and the
// count of local resets it was taken under. Found as the replica's newest
// file, it is this database's history while no reset came since, though no
// local L0 file holds its range (sameL0AsReplica).
type ownSnapshot struct {
	hdr    ltx.Header
	resets uint64
}

// ownSnapshotFileName records the last ownSnapshot's header in the LTX
// directory, which a reset removes with the history it speaks of, so that
// a restarted DB still knows its own snapshot.
const ownSnapshotFileName = "own-snapshot"

func (db *DB) ownSnapshotPath() string { return filepath.Join(db.LTXDir(), ownSnapshotFileName) }

// recordOwnSnapshot writes the record, unless local state was reset since
// resets was read. A record lost or torn by a crash only leaves the next
// run not knowing the snapshot, as before it was written.
func (db *DB) recordOwnSnapshot(hdr ltx.Header, resets uint64) {
	b, err := hdr.MarshalBinary()
	if err != nil {
		return
	}
	b = append(b, 0, 0, 0, 0)
	sealRecord(b)
	tmp := db.ownSnapshotPath() + ".tmp"
	if err := os.WriteFile(tmp, b, db.filePerm().Mode); err != nil {
		return // no LTX directory: a reset removed it
	}
	if db.localResets.Load() != resets {
		_ = os.Remove(tmp)
		return
	}
	if err := os.Rename(tmp, db.ownSnapshotPath()); err != nil {
		_ = os.Remove(tmp)
	}
}

// loadOwnSnapshot reads the record at Open, or returns nil when there is no
// intact one.
func (db *DB) loadOwnSnapshot() *ownSnapshot {
	b, err := os.ReadFile(db.ownSnapshotPath())
	if err != nil || !sealedRecord(b, ltx.HeaderSize+4) {
		return nil
	}
	var hdr ltx.Header
	if err := hdr.UnmarshalBinary(b[:ltx.HeaderSize]); err != nil {
		return nil
	}
	return &ownSnapshot{hdr: hdr, resets: db.localResets.Load()}
}
