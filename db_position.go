// The local position against the replica's: when the local LTX files are
// behind the replica (a restore from backup, lost local state), the
// replica's newest L0 file becomes the local one so TXIDs continue.

package litestream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/benbjohnson/litestream/internal"
	"github.com/superfly/ltx"
)

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
	db.lastFrame, db.comparedRemote = lastFrame{}, ltx.FileInfo{}
	if err := db.checkBehindReplica(ctx); err != nil {
		// The local files are gone: until the replica is compared, the
		// uploader must not take the local TXIDs for the replica's.
		db.replicaCheckPending.Store(true)
		return err
	}
	return nil
}

// checkBehindReplica handles a local position behind the replica's (after a
// restore from backup, or lost local state): the replica's newest file
// becomes the local newest L0 file, so the next sync continues its TXIDs.
// If the WAL no longer matches that file, that sync writes a full snapshot.
func (db *DB) checkBehindReplica(ctx context.Context) error {
	remote, err := db.Replica.newestFileInfo(ctx)
	if err != nil {
		return fmt.Errorf("read replica position: %w: %w", errReplicaUnreachable, err)
	}
	if err := db.adoptReplicaPosition(ctx, remote); err != nil {
		return err
	}
	db.comparedRemote = remote
	return nil
}

// errReplicaUnreachable marks a behind-replica check that could not list
// the replica; init then goes on capturing locally.
var errReplicaUnreachable = errors.New("replica unreachable")

// resolveReplicaCheck compares the local L0 files with the replica's newest
// file as the uploader just listed it, before the uploader takes that
// file's TXID for the local history's. init compared at start, but another
// writer may have written since: a paused holder whose late upload landed
// after this process took the lease, the holder a standby took over from.
func (db *DB) resolveReplicaCheck(ctx context.Context, remote ltx.FileInfo) error {
	db.lazyInit()
	if err := db.exec.Acquire(ctx, 1); err != nil {
		return fmt.Errorf("wait for db sync executor: %w", context.Cause(ctx))
	}
	defer db.exec.Release(1)
	if !db.isInitialized() {
		// init compares when the database appears; until then local L0
		// files of an earlier run are not to be taken for the replica's
		// continuation.
		return errNoPosition
	}
	if !db.replicaCheckPending.Load() && remote == db.comparedRemote {
		return nil // the very file compared last: no second read
	}
	if err := db.adoptReplicaPosition(ctx, remote); err != nil {
		return err
	}
	db.comparedRemote = remote
	db.replicaCheckPending.Store(false)
	return nil
}

// adoptReplicaPosition makes the replica's newest file (normally L0's; a
// compacted one when L0 lost it) the local newest L0 file when the local
// position is behind it, or when the local L0 files are another history
// than the replica's. Caller holds exec.
func (db *DB) adoptReplicaPosition(ctx context.Context, remote ltx.FileInfo) error {
	pos, err := db.Pos()
	if err != nil {
		var ltxErr *LTXError
		if !errors.As(err, &ltxErr) || !ltxErr.IsAutoRecoverable() {
			return err
		}
		pos = ltx.Pos{} // a corrupt local file: start over from the replica
	}
	if remote.MaxTXID == 0 {
		return nil
	} else if pos.TXID >= remote.MaxTXID {
		same, err := db.sameL0AsReplica(ctx, remote)
		if err != nil || same {
			return err
		}
		msg := "local L0 files are another history than the replica's, fetching the replica's newest file"
		if _, err := os.Stat(db.LTXPath(0, remote.MinTXID, remote.MaxTXID)); errors.Is(err, os.ErrNotExist) {
			msg = "no local copy proves the replica's newest file is this database's history, re-seeding the replica with a full snapshot after it"
		}
		db.logger().Warn(msg, "local_txid", pos.TXID, "remote_level", remote.Level, "remote_txid", remote.MaxTXID)
		// Files this DB uploaded may lie below the other history's: the
		// replica's chain then breaks between them, and only a snapshot
		// past the adopted file restores the newest state.
		if err := db.oweSnapshot(); err != nil {
			return err
		}
	} else {
		db.logger().Info("database is behind its replica, fetching the replica's newest file",
			"local_txid", pos.TXID, "remote_level", remote.Level, "remote_txid", remote.MaxTXID)
	}

	// Local copies at every level, and the last-frame record, belong to
	// the history being given up.
	if err := os.RemoveAll(db.LTXDir()); err != nil {
		return fmt.Errorf("remove local LTX files: %w", err)
	}
	db.invalidatePos()
	db.lastFrame = lastFrame{}
	if err := internal.MkdirAll(db.LTXLevelDir(0), db.dirPerm()); err != nil {
		return fmt.Errorf("create L0 directory: %w", err)
	}

	rc, err := db.Replica.Client.OpenLTXFile(ctx, remote.Level, remote.MinTXID, remote.MaxTXID, 0, 0)
	if err != nil {
		return fmt.Errorf("open replica L%d %s-%s: %w", remote.Level, remote.MinTXID, remote.MaxTXID, err)
	}
	defer func() { _ = rc.Close() }()
	path := db.LTXPath(0, remote.MinTXID, remote.MaxTXID)
	if remote.MinTXID != remote.MaxTXID {
		db.fetchedCopy = path
	}
	if _, err := db.stageLTX(path, 0, remote.MinTXID, remote.MaxTXID, func(w io.Writer) error {
		_, err := io.Copy(w, rc)
		return err
	}); err != nil {
		return err
	}
	// Nothing captured since this process started belongs to that file,
	// and waiters must start over on the new position.
	db.lastSyncedWALOffset, db.witness = 0, nil
	db.localResets.Add(1)
	db.setMaxLTXFileInfo(remote.Level, &remote)
	if _, err := db.Pos(); err != nil {
		return fmt.Errorf("verify replica L%d %s-%s: %w", remote.Level, remote.MinTXID, remote.MaxTXID, err)
	}
	if hdr, err := readLTXHeaderFile(path); err != nil {
		return err
	} else if int(hdr.PageSize) != db.pageSize {
		_ = os.RemoveAll(db.LTXLevelDir(0))
		db.invalidatePos()
		return fmt.Errorf("replica L%d %s-%s has page size %d but the database has %d: the replica belongs to another database", remote.Level, remote.MinTXID, remote.MaxTXID, hdr.PageSize, db.pageSize)
	}
	// Commits the removed files held are still in the WAL or the database:
	// the next sync captures them, without waiting for the app to write.
	db.wakeMonitor()
	return nil
}

// removeFetchedCopy removes the local copy of a compacted replica file
// that adoptReplicaPosition made the newest L0 file, once a newer L0 file
// follows it. It only anchored the TXIDs: it is not uploaded, retention
// never deletes it, and it may be as large as the database. Caller holds
// exec.
func (db *DB) removeFetchedCopy() {
	if db.fetchedCopy == "" {
		return
	}
	if err := os.Remove(db.fetchedCopy); err != nil && !errors.Is(err, os.ErrNotExist) {
		db.logger().Warn("cannot remove the compacted replica file fetched as the newest L0 file", "path", db.fetchedCopy, "error", err)
		return
	}
	db.fetchedCopy = ""
}

// removeStaleFetchedCopies removes, at open, fetched copies a crash left
// behind a newer L0 file: L0 files of more than one TXID that are not the
// newest. This process writes L0 files of one TXID each.
func (db *DB) removeStaleFetchedCopies() {
	entries, err := os.ReadDir(db.LTXLevelDir(0))
	if err != nil {
		return
	}
	var newest ltx.TXID
	for _, e := range entries {
		if _, maxTXID, err := ltx.ParseFilename(e.Name()); err == nil {
			newest = max(newest, maxTXID)
		}
	}
	for _, e := range entries {
		minTXID, maxTXID, err := ltx.ParseFilename(e.Name())
		if err != nil || minTXID == maxTXID || maxTXID == newest {
			continue
		}
		db.fetchedCopy = filepath.Join(db.LTXLevelDir(0), e.Name())
		db.removeFetchedCopy()
	}
}

// sameL0AsReplica reports whether the local L0 file of the replica's newest
// L0 TXID is that file: same header. TXIDs alone do not say so. Local files
// written while the replica was out of reach, after a failed reset, or by a
// lease holder another process took over from, carry the replica's TXIDs
// with other content, and the uploader would put the next one on top of
// the replica's. When the replica's newest file is a compacted one (L0
// lost its newest files), only a copy fetched earlier proves it: local L0
// files of those TXIDs, or a comparison of the pages they wrote, cannot
// show that the replica's file holds the same history, and continuing a
// different one would make the latest restore a mix of the two.
//
// A local file that is not there proves nothing either. Local copies go
// with their replica files, and retention keeps the replica's newest L0
// file: the replica was put back from an older copy, or written by
// another writer. A process that started on this replica never had the
// TXIDs below the file it fetched then, its first local L0 file: another
// writer that wrote the replica again up to right below that file would
// see its own continued by this process's files, the fetched one first.
//
// A snapshot this DB uploaded since its last reset is its own history too,
// found by its header (ownSnapshot).
func (db *DB) sameL0AsReplica(ctx context.Context, remote ltx.FileInfo) (bool, error) {
	path := db.LTXPath(0, remote.MinTXID, remote.MaxTXID)
	local, err := readLTXHeaderFile(path)
	own := db.ownSnapshot.Load()
	if own != nil && (own.resets != db.localResets.Load() || remote.Level != SnapshotLevel || own.hdr.MaxTXID != remote.MaxTXID) {
		own = nil
	}
	if own == nil && errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if own == nil && err != nil {
		return false, nil // unreadable: start over from the replica
	}
	theirs, rerr := readRemoteHeaderOf(ctx, db.Replica.Client, &remote)
	if rerr != nil {
		return false, fmt.Errorf("read replica L%d %s-%s header: %w: %w", remote.Level, remote.MinTXID, remote.MaxTXID, errReplicaUnreachable, rerr)
	}
	return (err == nil && local == theirs) || (own != nil && own.hdr == theirs), nil
}

// hasLocalL0 reports whether a local L0 file holds each TXID from minTXID
// to maxTXID.
func (db *DB) hasLocalL0(minTXID, maxTXID ltx.TXID) bool {
	for txid := minTXID; txid <= maxTXID; txid++ {
		if _, err := os.Stat(db.LTXPath(0, txid, txid)); err != nil {
			return false
		}
	}
	return true
}

// refillL0 reports whether local L0 files hold TXIDs from minTXID to
// maxTXID, which compaction found missing from the replica's L0, and has
// the replica upload them again: a listing made after they were lost (a
// first one, after a restart) cannot report them lost.
func (db *DB) refillL0(minTXID, maxTXID ltx.TXID) bool {
	entries, err := os.ReadDir(db.LTXLevelDir(0))
	if err != nil {
		return false
	}
	var local []*ltx.FileInfo
	for _, e := range entries {
		if lo, hi, err := ltx.ParseFilename(e.Name()); err == nil && lo == hi && lo >= minTXID && lo <= maxTXID {
			local = append(local, &ltx.FileInfo{Level: 0, MinTXID: lo, MaxTXID: hi})
		}
	}
	if len(local) > 0 && db.Replica != nil {
		db.Replica.queueRepair(local)
	}
	return len(local) > 0
}

// snapshotOwedFileName marks, in the meta directory, a replica that owes a
// snapshot: its newest file was found to be another history's, with files
// of this DB possibly below it. No restore crosses that break, and the
// names alone do not show it; the mark outlives a crash until a snapshot
// past the break is uploaded.
const snapshotOwedFileName = "snapshot-owed"

func (db *DB) snapshotOwedPath() string { return filepath.Join(db.metaPath, snapshotOwedFileName) }

// oweSnapshot records, durably, that the replica needs a snapshot before
// its newest state restores.
func (db *DB) oweSnapshot() error {
	db.Replica.owedMu.Lock()
	defer db.Replica.owedMu.Unlock()
	f, err := os.OpenFile(db.snapshotOwedPath(), os.O_WRONLY|os.O_CREATE, db.filePerm().Mode)
	if err != nil {
		return fmt.Errorf("record that the replica owes a snapshot: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = internal.SyncDir(db.metaPath)
	}
	if err != nil {
		return fmt.Errorf("record that the replica owes a snapshot: %w", err)
	}
	db.Replica.owedGen.Add(1)
	db.Replica.snapshotOwed.Store(true)
	return nil
}

// oweSnapshotSoon is oweSnapshot where no error can be returned: the debt
// holds in memory at least, and a record that cannot be written is logged.
func (db *DB) oweSnapshotSoon() {
	if err := db.oweSnapshot(); err != nil {
		db.Replica.owedMu.Lock()
		db.Replica.owedGen.Add(1)
		db.Replica.snapshotOwed.Store(true)
		db.Replica.owedMu.Unlock()
		db.logger().Warn("the replica owes a snapshot; only this process knows it", "error", err)
	}
}

// loadSnapshotOwed takes over, at open, a snapshot an earlier process owed.
func (db *DB) loadSnapshotOwed() {
	if _, err := os.Stat(db.snapshotOwedPath()); err == nil {
		db.Replica.snapshotOwed.Store(true)
	}
}

// snapshotPaid clears the record once the snapshot is uploaded, unless a
// debt came after gen (the debts counted when the snapshot started).
func (db *DB) snapshotPaid(gen uint64) error {
	db.Replica.owedMu.Lock()
	defer db.Replica.owedMu.Unlock()
	if db.Replica.owedGen.Load() != gen {
		return nil // owed again meanwhile: the next sync pays that
	}
	if err := os.Remove(db.snapshotOwedPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("clear the record of the snapshot the replica owed: %w", err)
	}
	db.Replica.snapshotOwed.Store(false)
	return nil
}
