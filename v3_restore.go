// v3_restore.go restores backups written by Litestream v0.3.x: it picks a
// snapshot, rebuilds each WAL index from its segments, checks every frame
// before SQLite sees it, checkpoints the WAL into the database and checks
// the result. It also decides when Replica.Restore uses such a backup.

package litestream

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"filippo.io/age"

	"github.com/benbjohnson/litestream/internal"
)

// RestoreV3 restores a backup written by Litestream v0.3.x into
// opt.OutputPath: the latest state, or with opt.Timestamp the state of the
// newest snapshot created at or before it plus the WAL segments of its
// generation created at or before it. The result is checkpointed (no -wal
// file), integrity-checked (opt.IntegrityCheck, or a full check when it is
// IntegrityCheckNone) and appears only when complete. Encrypted backups need
// opt.AgeIdentities. TXID and Follow do not apply to v0.3.x backups.
func (r *Replica) RestoreV3(ctx context.Context, opt RestoreOptions) error {
	client, ok := r.Client.(ReplicaClientV3)
	if !ok {
		return fmt.Errorf("replica client %T does not support v0.3.x restore", r.Client)
	}
	switch {
	case opt.OutputPath == "":
		return fmt.Errorf("output path required")
	case opt.TXID != 0:
		return fmt.Errorf("cannot restore v0.3.x backup to a TXID: v0.3.x has no TXIDs, restore by timestamp instead")
	case opt.Follow:
		return fmt.Errorf("cannot follow a v0.3.x backup: only LTX replicas can be followed")
	}
	if _, err := os.Stat(opt.OutputPath); err == nil {
		return fmt.Errorf("cannot restore, output path already exists: %s", opt.OutputPath)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}

	plan, err := calcRestorePlanV3(ctx, client, opt.Timestamp)
	if err != nil {
		return err
	}
	r.Logger().Info("restoring v0.3.x backup",
		"generation", plan.snapshot.Generation, "snapshot_index", plan.snapshot.Index,
		"wal_indexes", len(plan.indexes), "wal_segments", plan.segmentN(), "timestamp", opt.Timestamp)

	if err := internal.MkdirAll(filepath.Dir(opt.OutputPath), r.outputDirPerm()); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	tmpPath := opt.OutputPath + ".tmp"
	// Locked as the LTX restore locks it, for the whole run and before
	// anything beside it is removed: another restore into the same output,
	// v0.3.x or LTX, is refused instead of replacing these files.
	f, err := openRestoreTemp(tmpPath)
	if err != nil {
		return fmt.Errorf("create restore file: %w", err)
	}
	defer removeRestoreTempV3(tmpPath, f)
	// A restore killed while it rebuilt a WAL leaves the temporary database
	// and its -wal: SQLite would replay that -wal into this one's snapshot.
	for _, p := range databaseFiles(tmpPath)[1:] {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s left by an earlier restore: %w", p, err)
		}
	}
	if err := restoreV3(ctx, client, plan, f, opt.AgeIdentities); err != nil {
		return err
	}
	mode := opt.IntegrityCheck
	if mode == IntegrityCheckNone {
		mode = IntegrityCheckFull
	}
	if err := checkIntegrity(ctx, tmpPath, mode); err != nil {
		return fmt.Errorf("v0.3.x restore integrity check: generation %s: %w", plan.snapshot.Generation, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync restore file %s: %w", tmpPath, err)
	}
	// Placed while still locked: another restore cannot replace it first.
	return moveRestoredIntoPlace(tmpPath, opt.OutputPath)
}

// removeRestoreTempV3 removes the temporary database f and the files
// SQLite kept beside it, then lets go of its lock. Once f was placed or
// removed the name may be another restore's, so nothing is removed then.
func removeRestoreTempV3(tmpPath string, f *os.File) {
	defer func() { _ = f.Close() }() // last: the lock goes with it
	held, err := f.Stat()
	if err != nil {
		return
	} else if now, err := os.Stat(tmpPath); err != nil || !os.SameFile(held, now) {
		return
	}
	for _, p := range databaseFiles(tmpPath)[1:] {
		_ = os.Remove(p)
	}
	removeIfSameFile(tmpPath, f)
}

// restorePlanV3 is what a v0.3.x restore applies: one snapshot, then the
// WAL segments of each index from the snapshot's on, in order.
type restorePlanV3 struct {
	snapshot SnapshotInfoV3
	indexes  [][]WALSegmentInfoV3 // indexes[i] holds index snapshot.Index+i
}

func (p *restorePlanV3) segmentN() (n int) {
	for _, segs := range p.indexes {
		n += len(segs)
	}
	return n
}

// calcRestorePlanV3 picks the newest snapshot (at or before timestamp, when
// set) across all generations, and the WAL segments of its generation that
// follow it, stopping at the first one created after timestamp. It fails on
// a missing WAL index or a gap between segments of an index.
func calcRestorePlanV3(ctx context.Context, client ReplicaClientV3, timestamp time.Time) (*restorePlanV3, error) {
	snapshot, err := findSnapshotV3(ctx, client, timestamp)
	if err != nil {
		return nil, err
	} else if snapshot == nil {
		if timestamp.IsZero() {
			return nil, fmt.Errorf("v0.3.x restore: %w", ErrNoSnapshots)
		}
		return nil, fmt.Errorf("v0.3.x restore: no snapshot created at or before %s: %w", timestamp.Format(time.RFC3339Nano), ErrNoSnapshots)
	}
	gen := snapshot.Generation
	segments, err := client.WALSegmentsV3(ctx, gen)
	if err != nil {
		return nil, fmt.Errorf("list v0.3.x wal segments: generation %s: %w", gen, err)
	}
	slices.SortStableFunc(segments, func(a, b WALSegmentInfoV3) int {
		return cmp.Or(cmp.Compare(a.Index, b.Index), cmp.Compare(a.Offset, b.Offset))
	})

	plan := &restorePlanV3{snapshot: *snapshot}
	for _, seg := range segments {
		if seg.Index < snapshot.Index {
			continue
		} else if !timestamp.IsZero() && seg.CreatedAt.After(timestamp) {
			break // later segments build on this one; stopping keeps the WAL whole
		}
		i := seg.Index - snapshot.Index
		if i > len(plan.indexes) {
			return nil, fmt.Errorf("v0.3.x restore: missing wal index %s/%08x: segments jump to index %08x; the backup has a gap", gen, snapshot.Index+len(plan.indexes), seg.Index)
		} else if i == len(plan.indexes) {
			if seg.Offset != 0 {
				return nil, fmt.Errorf("v0.3.x restore: missing initial wal segment %s: first segment of index %08x starts at offset %d", WALSegmentPathV3("", gen, seg.Index, 0), seg.Index, seg.Offset)
			}
			plan.indexes = append(plan.indexes, nil)
		} else if prev := plan.indexes[i][len(plan.indexes[i])-1]; seg.Offset == prev.Offset {
			return nil, fmt.Errorf("v0.3.x restore: duplicate wal segment %s", WALSegmentPathV3("", gen, seg.Index, seg.Offset))
		}
		plan.indexes[i] = append(plan.indexes[i], seg)
	}
	return plan, nil
}

// findSnapshotV3 returns the newest snapshot across generations, created at
// or before timestamp when it is set, or nil when there is none. Equal
// times go to the higher index, and between generations to the one with the
// newest file at or before timestamp (stores that keep whole seconds make
// such ties common).
func findSnapshotV3(ctx context.Context, client ReplicaClientV3, timestamp time.Time) (*SnapshotInfoV3, error) {
	gens, err := client.GenerationsV3(ctx)
	if err != nil {
		return nil, fmt.Errorf("list v0.3.x generations: %w", err)
	}
	var best *SnapshotInfoV3
	for _, gen := range gens {
		snapshots, err := client.SnapshotsV3(ctx, gen)
		if err != nil {
			return nil, fmt.Errorf("list v0.3.x snapshots: generation %s: %w", gen, err)
		}
		for i := range snapshots {
			s := &snapshots[i]
			if !timestamp.IsZero() && s.CreatedAt.After(timestamp) {
				continue
			}
			switch {
			case best == nil || s.CreatedAt.After(best.CreatedAt):
				best = s
			case !s.CreatedAt.Equal(best.CreatedAt):
			case s.Generation == best.Generation:
				if s.Index > best.Index {
					best = s
				}
			default:
				newer, err := generationNewerV3(ctx, client, s.Generation, best.Generation, timestamp)
				if err != nil {
					return nil, err
				} else if newer {
					best = s
				}
			}
		}
	}
	return best, nil
}

// generationNewerV3 reports whether generation a's newest WAL segment at or
// before timestamp is newer than generation b's.
func generationNewerV3(ctx context.Context, client ReplicaClientV3, a, b string, timestamp time.Time) (bool, error) {
	latest := func(gen string) (time.Time, error) {
		segments, err := client.WALSegmentsV3(ctx, gen)
		if err != nil {
			return time.Time{}, fmt.Errorf("list v0.3.x wal segments: generation %s: %w", gen, err)
		}
		var t time.Time
		for _, seg := range segments {
			if seg.CreatedAt.After(t) && (timestamp.IsZero() || !seg.CreatedAt.After(timestamp)) {
				t = seg.CreatedAt
			}
		}
		return t, nil
	}
	ta, err := latest(a)
	if err != nil {
		return false, err
	}
	tb, err := latest(b)
	if err != nil {
		return false, err
	}
	return ta.After(tb), nil
}

// restoreV3 writes the plan's database to f, empty and locked, and
// rebuilds each WAL beside it. f stays open, keeping the lock, until
// SQLite is done with the file: closing a descriptor of it while SQLite
// has it open would drop SQLite's POSIX locks.
func restoreV3(ctx context.Context, client ReplicaClientV3, plan *restorePlanV3, f *os.File, identities []age.Identity) error {
	dbPath := f.Name()
	snap := plan.snapshot
	name := SnapshotPathV3("", snap.Generation, snap.Index)
	rc, err := openSnapshotV3(ctx, client, snap.Generation, snap.Index, identities)
	if err != nil {
		return fmt.Errorf("open v0.3.x snapshot %s: %w", name, err)
	}
	err = copyToFileV3(f, rc)
	_ = rc.Close()
	if err != nil {
		return fmt.Errorf("download v0.3.x snapshot %s: %w", name, err)
	}
	pageSize, err := readDBPageSizeV3(dbPath)
	if err != nil {
		return fmt.Errorf("v0.3.x snapshot %s: %w", name, err)
	}

	for i, segs := range plan.indexes {
		index := snap.Index + i
		walPath := dbPath + "-wal"
		for j, seg := range segs {
			if err := appendWALSegmentV3(ctx, client, seg, walPath, j == 0, identities); err != nil {
				return err
			}
		}
		frames, err := verifyWALV3(walPath, pageSize)
		if err != nil {
			return fmt.Errorf("v0.3.x wal %s/%08x: %w", snap.Generation, index, err)
		}
		if err := checkpointWALV3(ctx, dbPath, frames); err != nil {
			return fmt.Errorf("apply v0.3.x wal %s/%08x: %w", snap.Generation, index, err)
		}
	}
	return nil
}

// appendWALSegmentV3 adds a segment's bytes to the WAL being rebuilt,
// checking that it starts exactly where the previous segment ended.
func appendWALSegmentV3(ctx context.Context, client ReplicaClientV3, seg WALSegmentInfoV3, walPath string, first bool, identities []age.Identity) error {
	name := WALSegmentPathV3("", seg.Generation, seg.Index, seg.Offset)
	flag := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if first {
		flag |= os.O_TRUNC
	}
	f, err := os.OpenFile(walPath, flag, 0o644)
	if err != nil {
		return fmt.Errorf("open wal for v0.3.x segment %s: %w", name, err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return err
	} else if fi.Size() != seg.Offset {
		return fmt.Errorf("v0.3.x wal segment %s starts at offset %d but the segments before it end at %d; the backup has a gap", name, seg.Offset, fi.Size())
	}
	rc, err := openWALSegmentV3(ctx, client, seg, identities)
	if err != nil {
		return fmt.Errorf("open v0.3.x wal segment %s: %w", name, err)
	}
	defer func() { _ = rc.Close() }()
	if _, err := io.Copy(f, rc); err != nil {
		return fmt.Errorf("download v0.3.x wal segment %s: %w", name, err)
	}
	return f.Close()
}

// verifyWALV3 checks a rebuilt WAL file the way SQLite reads it: header
// checksum, page size, then every frame's salts and running checksum. It
// returns the number of frames up to the last commit. A frame SQLite would
// reject, or bytes that do not form whole frames, is an error: SQLite would
// silently drop that frame and every later one.
func verifyWALV3(walPath string, pageSize uint32) (frames int, err error) {
	f, err := os.Open(walPath)
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}

	hdr := make([]byte, WALHeaderSize)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return 0, fmt.Errorf("read wal header: %w", err)
	}
	var bo binary.ByteOrder
	switch magic := binary.BigEndian.Uint32(hdr[0:]); magic {
	case 0x377f0682:
		bo = binary.LittleEndian
	case 0x377f0683:
		bo = binary.BigEndian
	default:
		return 0, fmt.Errorf("invalid wal header magic %08x", magic)
	}
	if ps := binary.BigEndian.Uint32(hdr[8:]); ps != pageSize {
		return 0, fmt.Errorf("wal page size %d does not match the snapshot's page size %d", ps, pageSize)
	}
	s0, s1 := WALChecksum(bo, 0, 0, hdr[:24])
	if s0 != binary.BigEndian.Uint32(hdr[24:]) || s1 != binary.BigEndian.Uint32(hdr[28:]) {
		return 0, fmt.Errorf("wal header checksum mismatch")
	}
	salt := hdr[16:24]

	frameSize := int64(WALFrameHeaderSize) + int64(pageSize)
	if rem := (fi.Size() - WALHeaderSize) % frameSize; rem != 0 {
		return 0, fmt.Errorf("wal size %d is not a whole number of %d-byte frames", fi.Size(), frameSize)
	}
	buf := make([]byte, frameSize)
	for i := 0; ; i++ {
		if _, err := io.ReadFull(f, buf); errors.Is(err, io.EOF) {
			return frames, nil
		} else if err != nil {
			return 0, fmt.Errorf("read wal frame %d: %w", i, err)
		}
		if string(buf[8:16]) != string(salt) {
			return 0, fmt.Errorf("wal frame %d (offset %d): salt does not match the wal header", i, WALHeaderSize+int64(i)*frameSize)
		}
		s0, s1 = WALChecksum(bo, s0, s1, buf[:8])
		s0, s1 = WALChecksum(bo, s0, s1, buf[WALFrameHeaderSize:])
		if s0 != binary.BigEndian.Uint32(buf[16:]) || s1 != binary.BigEndian.Uint32(buf[20:]) {
			return 0, fmt.Errorf("wal frame %d (offset %d): checksum mismatch", i, WALHeaderSize+int64(i)*frameSize)
		}
		if binary.BigEndian.Uint32(buf[4:]) != 0 {
			frames = i + 1
		}
	}
}

// checkpointWALV3 has SQLite copy the WAL next to dbPath into it and remove
// it, and checks that SQLite took all wantFrames committed frames.
func checkpointWALV3(ctx context.Context, dbPath string, wantFrames int) error {
	sqldb, err := sql.Open("sqlite", sqliteFileURI(dbPath, ""))
	if err != nil {
		return err
	}
	defer func() { _ = sqldb.Close() }()
	conn, err := sqldb.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	// FULL reports the frame counts; TRUNCATE, which empties the WAL,
	// would report zeros.
	var busy, log, done int
	if err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(FULL);").Scan(&busy, &log, &done); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	} else if busy != 0 || log != wantFrames || done != wantFrames {
		return fmt.Errorf("checkpoint took %d of %d wal frames (sqlite saw %d, busy=%d)", done, wantFrames, log, busy)
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE);"); err != nil {
		return fmt.Errorf("truncate wal: %w", err)
	} else if err := conn.Close(); err != nil {
		return err
	} else if err := sqldb.Close(); err != nil {
		return err
	}
	for _, p := range []string{dbPath + "-wal", dbPath + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// readDBPageSizeV3 returns the page size in a SQLite database file's header.
func readDBPageSizeV3(path string) (uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	hdr := make([]byte, 100)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return 0, fmt.Errorf("not a SQLite database: read header: %w", err)
	} else if string(hdr[:16]) != "SQLite format 3\x00" {
		return 0, fmt.Errorf("not a SQLite database: bad header magic")
	}
	ps := uint32(binary.BigEndian.Uint16(hdr[16:]))
	if ps == 1 {
		ps = 65536
	}
	return ps, nil
}

// copyToFileV3 writes r to f, empty and at offset 0, and fsyncs it.
func copyToFileV3(f *os.File, r io.Reader) error {
	if _, err := io.Copy(f, r); err != nil {
		return err
	}
	return f.Sync()
}

// openSnapshotV3 opens a snapshot's plaintext, decrypting it when the
// client hands out stored bytes.
func openSnapshotV3(ctx context.Context, client ReplicaClientV3, gen string, index int, identities []age.Identity) (io.ReadCloser, error) {
	if raw, ok := client.(ReplicaClientV3Raw); ok {
		rc, err := raw.OpenSnapshotV3Raw(ctx, gen, index)
		if err != nil {
			return nil, err
		}
		return internal.OpenV3File(rc, identities)
	}
	return client.OpenSnapshotV3(ctx, gen, index)
}

// openWALSegmentV3 opens a WAL segment's plaintext, as openSnapshotV3.
func openWALSegmentV3(ctx context.Context, client ReplicaClientV3, seg WALSegmentInfoV3, identities []age.Identity) (io.ReadCloser, error) {
	if raw, ok := client.(ReplicaClientV3Raw); ok {
		rc, err := raw.OpenWALSegmentV3Raw(ctx, seg.Generation, seg.Index, seg.Offset)
		if err != nil {
			return nil, err
		}
		return internal.OpenV3File(rc, identities)
	}
	return client.OpenWALSegmentV3(ctx, seg.Generation, seg.Index, seg.Offset)
}

// TimeBoundsV3 returns the earliest and latest creation times of the v0.3.x
// snapshots and WAL segments in client; zero times when there are none.
func (r *Replica) TimeBoundsV3(ctx context.Context, client ReplicaClientV3) (createdAt, updatedAt time.Time, err error) {
	widen := func(t time.Time) {
		if createdAt.IsZero() || t.Before(createdAt) {
			createdAt = t
		}
		if updatedAt.IsZero() || t.After(updatedAt) {
			updatedAt = t
		}
	}
	gens, err := client.GenerationsV3(ctx)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("list v0.3.x generations: %w", err)
	}
	for _, gen := range gens {
		snapshots, err := client.SnapshotsV3(ctx, gen)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("list v0.3.x snapshots: generation %s: %w", gen, err)
		}
		for _, s := range snapshots {
			widen(s.CreatedAt)
		}
		segments, err := client.WALSegmentsV3(ctx, gen)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("list v0.3.x wal segments: generation %s: %w", gen, err)
		}
		for _, s := range segments {
			widen(s.CreatedAt)
		}
	}
	return createdAt, updatedAt, nil
}

// widenTimeBoundsV3 extends LTX time bounds with the client's v0.3.x
// backups, when it can read them.
func (r *Replica) widenTimeBoundsV3(ctx context.Context, createdAt, updatedAt time.Time) (time.Time, time.Time, error) {
	client, ok := r.Client.(ReplicaClientV3)
	if !ok {
		return createdAt, updatedAt, nil
	}
	v3CreatedAt, v3UpdatedAt, err := r.TimeBoundsV3(ctx, client)
	if err != nil {
		return createdAt, updatedAt, fmt.Errorf("v0.3.x time bounds: %w", err)
	}
	if !v3CreatedAt.IsZero() && (createdAt.IsZero() || v3CreatedAt.Before(createdAt)) {
		createdAt = v3CreatedAt
	}
	if !v3UpdatedAt.IsZero() && (updatedAt.IsZero() || v3UpdatedAt.After(updatedAt)) {
		updatedAt = v3UpdatedAt
	}
	return createdAt, updatedAt, nil
}

// shouldRestoreV3 reports whether Restore should restore the client's
// v0.3.x backup instead of its LTX files, by upstream's rule that the newer
// backup wins: never for a TXID or follow restore; otherwise when there is
// no LTX data, or, without a timestamp, when the v0.3.x backup was updated
// last, or, with one, when no LTX plan reaches the time, or the v0.3.x
// state at the time (its snapshot and the WAL segments after it) is newer
// than every file of the LTX plan for it. The LTX plan, not only its
// snapshots: lower levels restore a time no snapshot precedes.
func (r *Replica) shouldRestoreV3(ctx context.Context, opt RestoreOptions) (bool, error) {
	client, ok := r.Client.(ReplicaClientV3)
	if !ok || opt.TXID != 0 || opt.Follow {
		return false, nil
	}
	_, v3UpdatedAt, err := r.TimeBoundsV3(ctx, client)
	if err != nil {
		return false, fmt.Errorf("v0.3.x time bounds: %w", err)
	} else if v3UpdatedAt.IsZero() {
		return false, nil
	}
	_, ltxUpdatedAt, err := r.TimeBounds(ctx)
	if err != nil {
		return false, fmt.Errorf("ltx time bounds: %w", err)
	} else if ltxUpdatedAt.IsZero() {
		r.Logger().Info("restoring from v0.3.x backup: replica has no LTX files")
		return true, nil
	}

	if opt.Timestamp.IsZero() {
		use := v3UpdatedAt.After(ltxUpdatedAt)
		if use {
			r.Logger().Info("restoring from v0.3.x backup: it is newer than the LTX files",
				"v3_updated_at", v3UpdatedAt, "ltx_updated_at", ltxUpdatedAt)
		}
		return use, nil
	}
	var v3Newest time.Time
	if v3Plan, err := calcRestorePlanV3(ctx, client, opt.Timestamp); errors.Is(err, ErrNoSnapshots) {
		return false, nil
	} else if err == nil {
		v3Newest = v3Plan.newest()
	} else if snap, ferr := findSnapshotV3(ctx, client, opt.Timestamp); ferr != nil || snap == nil {
		return false, ferr
	} else {
		v3Newest = snap.CreatedAt // a damaged WAL: RestoreV3 reports it, if chosen
	}
	ltxPlan, err := CalcRestorePlan(ctx, r.Client, 0, opt.Timestamp, nil)
	if errors.Is(err, ErrTxNotAvailable) {
		r.Logger().Info("restoring from v0.3.x backup: no LTX plan reaches the timestamp", "timestamp", opt.Timestamp)
		return true, nil
	} else if err != nil {
		return false, nil // the LTX restore plans again and reports it
	}
	var ltxNewest time.Time
	for _, info := range ltxPlan {
		if info.CreatedAt.After(ltxNewest) {
			ltxNewest = info.CreatedAt
		}
	}
	if v3Newest.After(ltxNewest) {
		r.Logger().Info("restoring from v0.3.x backup: its state at the timestamp is newer than the LTX files'",
			"v3_newest", v3Newest, "ltx_newest", ltxNewest, "timestamp", opt.Timestamp)
		return true, nil
	}
	return false, nil
}

// newest returns the time of the plan's newest file.
func (p *restorePlanV3) newest() time.Time {
	t := p.snapshot.CreatedAt
	for _, segs := range p.indexes {
		for _, seg := range segs {
			if seg.CreatedAt.After(t) {
				t = seg.CreatedAt
			}
		}
	}
	return t
}
