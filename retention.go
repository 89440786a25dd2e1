// Retention: which replica files may be deleted (expired snapshots, files no
// kept snapshot needs, L0 files past L0Retention) and deleting them.

package litestream

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/superfly/ltx"
)

// EnforceSnapshotRetention deletes snapshots older than retention, always
// keeping the newest, and returns the smallest MaxTXID among the snapshots
// kept for being recent (0 if none).
func (c *Compactor) EnforceSnapshotRetention(ctx context.Context, retention time.Duration) (ltx.TXID, error) {
	infos, err := listFrom(ctx, c.client, SnapshotLevel, 0)
	if err != nil {
		return 0, fmt.Errorf("list snapshots: %w", err)
	}
	cutoff := time.Now().Add(-retention)
	var deleted []*ltx.FileInfo
	var minTXID ltx.TXID
	for i, info := range infos {
		if info.CreatedAt.Before(cutoff) {
			if i < len(infos)-1 {
				deleted = append(deleted, info)
			}
			continue
		}
		if minTXID == 0 || info.MaxTXID < minTXID {
			minTXID = info.MaxTXID
		}
	}
	return minTXID, c.deleteFiles(ctx, deleted)
}

// EnforceRetentionByTXID deletes a level's files whose MaxTXID is below
// txID, always keeping the level's newest file. While the level above
// (below the snapshot level) has files, a file it does not cover yet is
// kept too: deleting it would leave a gap that compaction into that level
// could never cross.
func (c *Compactor) EnforceRetentionByTXID(ctx context.Context, level int, txID ltx.TXID) error {
	_, err := c.enforceRetentionByTXID(ctx, level, txID)
	return err
}

// enforceRetentionByTXID is EnforceRetentionByTXID, returning the files it
// deleted.
func (c *Compactor) enforceRetentionByTXID(ctx context.Context, level int, txID ltx.TXID) ([]*ltx.FileInfo, error) {
	infos, err := listFrom(ctx, c.client, level, 0)
	if err != nil {
		return nil, fmt.Errorf("list L%d: %w", level, err)
	}
	var next txRanges
	if level+1 < SnapshotLevel && len(infos) > 1 {
		above, err := listFrom(ctx, c.client, level+1, 0)
		if err != nil {
			return nil, fmt.Errorf("list L%d: %w", level+1, err)
		}
		next = contiguousRuns(above)
	}
	var deleted []*ltx.FileInfo
	for i, info := range infos {
		if i < len(infos)-1 && info.MaxTXID < txID && (len(next) == 0 || next.covers(info)) {
			deleted = append(deleted, info)
		}
	}
	return deleted, c.deleteFiles(ctx, deleted)
}

// EnforceL0Retention deletes L0 files older than retention whose TXIDs a
// contiguous run of L1 files covers, stopping at the first recent one and
// keeping the newest. An L0 file in an L1 gap is kept: it may be the only
// copy of its TXID.
func (c *Compactor) EnforceL0Retention(ctx context.Context, retention time.Duration) error {
	if retention <= 0 {
		return nil
	}
	deleted, _, err := l0RetentionCandidates(ctx, c.client, retention, nil)
	if err != nil {
		return err
	}
	return c.deleteFiles(ctx, deleted)
}

// l0RetentionCandidates returns the L0 files retention may delete. localTime,
// if set, supplies an age for files the listing has no time for. nextDue is
// when, with no new files, the next file becomes old enough to delete; zero
// means only new L0 or L1 files can make one deletable.
func l0RetentionCandidates(ctx context.Context, client ReplicaClient, retention time.Duration, localTime func(*ltx.FileInfo) (time.Time, bool)) (deleted []*ltx.FileInfo, nextDue time.Time, err error) {
	l1, err := listFrom(ctx, client, 1, 0)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("list L1: %w", err)
	}
	runs := contiguousRuns(l1)
	if len(runs) == 0 {
		return nil, time.Time{}, nil // nothing compacted yet
	}

	l0, err := listFrom(ctx, client, 0, 0)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("list L0: %w", err)
	}
	ends := l1 // files a kept L0 file's restore can continue from
	if len(l0) > 0 && l0[0].MaxTXID < runs[0].min {
		// L0 files before L1's first file, which started from a snapshot:
		// an upload again of a lost file that raced the first compaction.
		// A snapshot that reaches them covers them.
		snaps, err := listFrom(ctx, client, SnapshotLevel, 0)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("list snapshots: %w", err)
		}
		var snapMax ltx.TXID
		for _, info := range snaps {
			snapMax = max(snapMax, info.MaxTXID)
		}
		if end := min(snapMax, runs[0].min-1); end > 0 {
			runs = append(txRanges{{1, end}}, runs...)
			ends = append(slices.Clip(l1), snaps...)
		}
	}
	threshold := time.Now().Add(-retention)
	walkedAll := true
	for _, info := range l0 {
		createdAt := info.CreatedAt
		if createdAt.IsZero() {
			createdAt = threshold
			if localTime != nil {
				if t, ok := localTime(info); ok {
					createdAt = t
				}
			}
		}
		if createdAt.After(threshold) {
			walkedAll = false // never leave a hole in the retained range
			if runs.covers(info) {
				nextDue = createdAt.Add(retention)
			}
			break
		}
		if runs.covers(info) {
			deleted = append(deleted, info)
		}
	}
	// The newest L0 anchors the replica's position.
	if walkedAll && len(deleted) > 0 && len(l0) > 0 && deleted[len(deleted)-1] == l0[len(l0)-1] {
		deleted = deleted[:len(deleted)-1]
	}
	return keepReachable(deleted, l0, ends), nextDue, nil
}

// keepReachable drops from deleted the files whose removal would leave a
// kept L0 file unrestorable by its TXID. A restore of a kept file's TXID
// needs files that end exactly where the kept files before it begin:
// after deleted files, one of ends (L1 files, and snapshots where they
// cover L0) must end between the last deleted TXID and the kept file's.
// An L1 file that ends past it, part of whose L0 files are still recent,
// does not do: restores to a TXID take no file ending after it.
func keepReachable(deleted, l0, ends []*ltx.FileInfo) []*ltx.FileInfo {
	if len(deleted) == 0 {
		return deleted
	}
	gone := make(map[*ltx.FileInfo]bool, len(deleted))
	for _, info := range deleted {
		gone[info] = true
	}
	endsWithin := func(from, to ltx.TXID) bool {
		for _, info := range ends {
			if info.MaxTXID >= from && info.MaxTXID <= to {
				return true
			}
		}
		return false
	}
	for i := len(l0) - 1; i > 0; i-- {
		if kept, before := l0[i], l0[i-1]; !gone[kept] && gone[before] && !endsWithin(before.MaxTXID, kept.MaxTXID) {
			gone[before] = false // kept too; the file before it is checked next
		}
	}
	still := deleted[:0]
	for _, info := range deleted {
		if gone[info] {
			still = append(still, info)
		}
	}
	return still
}

// deleteFiles removes files remotely (if RetentionEnabled) and locally.
func (c *Compactor) deleteFiles(ctx context.Context, infos []*ltx.FileInfo) error {
	if len(infos) == 0 {
		return nil
	}
	if _, retention := c.options(); retention {
		if err := c.client.DeleteLTXFiles(ctx, infos); err != nil {
			return fmt.Errorf("delete %d files from L%d: %w", len(infos), infos[0].Level, err)
		}
	}
	if c.LocalFileDeleter != nil {
		for _, info := range infos {
			if err := c.LocalFileDeleter(info.Level, info.MinTXID, info.MaxTXID); err != nil {
				c.logger.Error("delete local ltx file", "level", info.Level, "min_txid", info.MinTXID, "max_txid", info.MaxTXID, "error", err)
			}
		}
	}
	return nil
}

// txRange is an inclusive TXID range.
type txRange struct{ min, max ltx.TXID }

// txRanges are disjoint ranges in ascending order.
type txRanges []txRange

// contiguousRuns merges files, sorted by MinTXID, into the ranges they
// cover without a gap.
func contiguousRuns(infos []*ltx.FileInfo) txRanges {
	var runs txRanges
	for _, info := range infos {
		if n := len(runs); n > 0 && info.MinTXID <= runs[n-1].max+1 {
			runs[n-1].max = max(runs[n-1].max, info.MaxTXID)
			continue
		}
		runs = append(runs, txRange{info.MinTXID, info.MaxTXID})
	}
	return runs
}

// covers reports whether one run holds all of info's TXIDs.
func (runs txRanges) covers(info *ltx.FileInfo) bool {
	for _, r := range runs {
		if r.min <= info.MinTXID && info.MaxTXID <= r.max {
			return true
		}
	}
	return false
}

// EnforceSnapshotRetention deletes snapshots created before timestamp,
// always keeping the newest. It returns the MaxTXID of the snapshot just
// before the first one kept (0 if none was deleted): lower levels may drop
// files below it without breaking a restore from any kept snapshot.
func (db *DB) EnforceSnapshotRetention(ctx context.Context, timestamp time.Time) (minSnapshotTXID ltx.TXID, err error) {
	if err := db.checkOpenable(); err != nil {
		return 0, err
	}
	db.syncCompactorOptions()
	if db.Replica == nil {
		return 0, fmt.Errorf("no replica configured")
	}
	infos, err := listFrom(ctx, db.Replica.client(), SnapshotLevel, 0)
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
// txID, always keeping the level's newest file. At L0 it records, as L0
// retention by time does, the highest TXID whose local file it removed.
func (db *DB) EnforceRetentionByTXID(ctx context.Context, level int, txID ltx.TXID) (err error) {
	if err := db.checkOpenable(); err != nil {
		return err
	}
	db.syncCompactorOptions()
	resets := db.localResets.Load()
	deleted, err := db.compactor.enforceRetentionByTXID(ctx, level, txID)
	if err != nil {
		return err
	}
	db.rememberL0RetainedUnlessReset(deleted, resets)
	return nil
}

// EnforceL0RetentionByTime deletes L0 files that L1 already covers and that
// are older than L0Retention, remotely and locally. It never deletes the
// newest L0 file nor leaves a hole in the retained range.
func (db *DB) EnforceL0RetentionByTime(ctx context.Context) error {
	if err := db.checkOpenable(); err != nil {
		return err
	}
	return db.enforceL0Retention(ctx, false)
}

// enforceL0Retention is EnforceL0RetentionByTime; with mayskip (background
// passes only) it returns without listing the replica while no L0 or L1
// file was added since the last pass and no file has aged past retention.
func (db *DB) enforceL0Retention(ctx context.Context, mayskip bool) error {
	retention := db.l0Retention() // also syncs the compactor's options
	if retention <= 0 || db.Replica == nil {
		return nil
	}
	key, keyOK := db.l0RetentionKey()
	resets := db.localResets.Load()
	db.l0RetMu.Lock()
	last := db.l0Ret
	db.l0RetMu.Unlock()
	if mayskip && keyOK && last.valid && last.key == key && last.retention == retention && (last.nextDue.IsZero() || time.Now().Before(last.nextDue)) {
		return nil
	}

	deleted, nextDue, err := l0RetentionCandidates(ctx, db.Replica.client(), retention, func(info *ltx.FileInfo) (time.Time, bool) {
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
	db.rememberL0RetainedUnlessReset(deleted, resets)
	db.l0RetMu.Lock()
	db.l0Ret = l0RetentionPass{key: key, retention: retention, nextDue: nextDue, valid: keyOK && len(deleted) == 0}
	db.l0RetMu.Unlock()
	return nil
}

// l0RetentionIdleUntil reports whether EnforceL0RetentionByTime would do
// nothing before until, or, when until is zero, before a level's newest
// file changes.
func (db *DB) l0RetentionIdleUntil() (until time.Time, ok bool) {
	retention := db.l0Retention()
	if retention <= 0 || db.Replica == nil {
		return time.Time{}, true
	}
	key, keyOK := db.l0RetentionKey()
	db.l0RetMu.Lock()
	last := db.l0Ret
	db.l0RetMu.Unlock()
	// A pass under another retention setting says nothing about this one.
	if !keyOK || !last.valid || last.key != key || last.retention != retention {
		return time.Time{}, false
	}
	return last.nextDue, true
}

// l0RetentionPass remembers what the last L0 retention pass saw.
type l0RetentionPass struct {
	key       [2]ltx.TXID   // newest local L0 and cached L1 TXIDs
	retention time.Duration // the L0Retention the pass applied
	nextDue   time.Time     // zero: nothing becomes deletable without new files
	valid     bool
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

// l0RetainedFileName records, in the LTX directory (which a reset removes
// with the files it speaks of), the highest TXID whose local L0 file L0
// retention removed: uploaded, and covered by L1 on the replica then. A
// replica that later needs such a TXID (its L1 lost, an older copy put
// back) needs a file no one has, and is re-seeded; a missing local file
// retention did not remove is the local state's fault, left to
// AutoRecoverEnabled.
const l0RetainedFileName = "l0-retained"

func (db *DB) l0RetainedPath() string { return filepath.Join(db.LTXDir(), l0RetainedFileName) }

// rememberL0RetainedUnlessReset is rememberL0Retained unless local state
// was reset since resets was read: the record would speak of the history
// the reset gave up.
func (db *DB) rememberL0RetainedUnlessReset(deleted []*ltx.FileInfo, resets uint64) {
	if db.localResets.Load() == resets {
		db.rememberL0Retained(deleted)
	}
}

// rememberL0Retained raises the record to the highest L0 TXID deleted. It
// is written in place without fsync: one lost or torn by a crash only
// leaves such a replica to AutoRecoverEnabled.
func (db *DB) rememberL0Retained(deleted []*ltx.FileInfo) {
	var highest ltx.TXID
	for _, info := range deleted {
		if info.Level == 0 && info.MaxTXID > highest {
			highest = info.MaxTXID
		}
	}
	if highest == 0 || highest <= db.l0RetainedThrough() {
		return
	}
	var rec [12]byte
	binary.BigEndian.PutUint64(rec[0:], uint64(highest))
	sealRecord(rec[:])
	f, err := os.OpenFile(db.l0RetainedPath(), os.O_WRONLY|os.O_CREATE, db.filePerm().Mode)
	if err != nil {
		return
	}
	defer func() { _ = f.Close() }()
	_, _ = f.WriteAt(rec[:], 0)
}

// l0RetainedThrough returns the recorded TXID, or 0 when there is no
// intact record.
func (db *DB) l0RetainedThrough() ltx.TXID {
	rec, err := os.ReadFile(db.l0RetainedPath())
	if err != nil || !sealedRecord(rec, 12) {
		return 0
	}
	return ltx.TXID(binary.BigEndian.Uint64(rec[0:]))
}
