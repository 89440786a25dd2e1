// Syncing a DB: copying the WAL's committed frames into L0 LTX files and
// the monitor that runs syncs and checkpoints.

package litestream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/benbjohnson/litestream/internal"
	"github.com/superfly/ltx"
)

// syncInfo says where the next L0 file starts reading the WAL.
type syncInfo struct {
	offset       int64 // WAL offset of the first frame to read
	salt1, salt2 uint32
	prevCommit   uint32 // database size in pages after the previous L0
	snapshotting bool   // write every page, not just the changed ones
	reason       string // why snapshotting
}

// syncResult is what writing an L0 file produced.
type syncResult struct {
	written bool
	info    *ltx.FileInfo
	walEnd  int64 // logical end of the WAL content covered
	walN    int64 // WAL bytes read
	atEnd   bool  // walEnd equals the WAL file size
	limited bool  // stopped at the byte limit before the WAL end
}

// Sync writes the WAL's committed frames since the last sync into one new L0
// file (more when MaxSyncWALBytes splits a large backlog), then runs the
// checkpoint policy. A missing database file is not an error.
func (db *DB) Sync(ctx context.Context) error {
	db.lazyInit()
	return db.sync(ctx)
}

// sync is Sync; in a background context it waits out the shared backoff
// (returning errSyncDeferred) and records its outcome in it.
func (db *DB) sync(ctx context.Context) (err error) {
	start := time.Now()
	for {
		if err := context.Cause(ctx); err != nil {
			return err
		}
		if err := db.exec.Acquire(ctx, 1); err != nil {
			return fmt.Errorf("wait for db sync executor: %w", context.Cause(ctx))
		}
		// Checked under exec: a sync that just failed has set the backoff.
		if isBackgroundSync(ctx) && db.syncRetryWait() > 0 {
			db.exec.Release(1)
			return errSyncDeferred
		}
		more, err := db.syncChunk(ctx, db.MaxSyncWALBytes, false)
		db.noteSyncOutcome(ctx, err)
		db.exec.Release(1)
		if err != nil {
			return err
		} else if !more {
			db.markSynced(start)
			return nil
		}
	}
}

// errSyncDeferred: a background sync did not run because an earlier one
// failed and the shared backoff has not yet passed.
var errSyncDeferred = errors.New("sync deferred: backing off after a failed sync")

type backgroundSyncKey struct{}

// withBackgroundSync marks ctx as a background pass's, whose syncs respect
// the shared backoff. Syncs a user asks for always try.
func withBackgroundSync(ctx context.Context) context.Context {
	return context.WithValue(ctx, backgroundSyncKey{}, true)
}

func isBackgroundSync(ctx context.Context) bool {
	v, _ := ctx.Value(backgroundSyncKey{}).(bool)
	return v
}

// noteSyncOutcome updates the shared backoff after a background sync.
func (db *DB) noteSyncOutcome(ctx context.Context, err error) {
	if !isBackgroundSync(ctx) || errors.Is(err, context.Canceled) {
		return
	}
	db.syncBackoffMu.Lock()
	defer db.syncBackoffMu.Unlock()
	if err == nil {
		db.syncBackoff, db.syncRetryAt = 0, time.Time{}
		return
	}
	db.syncBackoff = min(max(db.syncBackoff*2, db.MonitorInterval), DefaultSyncBackoffMax)
	db.syncRetryAt = time.Now().Add(db.syncBackoff)
}

// syncBackoffNow is the current backoff, 0 when the last background sync
// succeeded.
func (db *DB) syncBackoffNow() time.Duration {
	db.syncBackoffMu.Lock()
	defer db.syncBackoffMu.Unlock()
	return db.syncBackoff
}

// syncRetryWait is how long background syncs still wait.
func (db *DB) syncRetryWait() time.Duration {
	db.syncBackoffMu.Lock()
	defer db.syncBackoffMu.Unlock()
	return time.Until(db.syncRetryAt)
}

// syncLocked syncs to the end of the WAL. Caller holds exec.
func (db *DB) syncLocked(ctx context.Context, inCheckpoint bool) error {
	for {
		more, err := db.syncChunk(ctx, 0, inCheckpoint)
		if err != nil || !more {
			return err
		}
	}
}

// syncChunk writes at most one L0 file. It reports whether the WAL holds
// more than was read. Caller holds exec.
func (db *DB) syncChunk(ctx context.Context, limit int64, inCheckpoint bool) (more bool, err error) {
	start := time.Now()
	defer func() { db.metrics.observeSync(db, start, err) }()

	if err := db.init(ctx); err != nil {
		return false, fmt.Errorf("init: %w", err)
	} else if !db.isInitialized() {
		return false, nil
	}
	if err := db.ensureReadLock(ctx); err != nil {
		return false, fmt.Errorf("acquire read lock: %w", err)
	}
	if !inCheckpoint {
		if err := db.ensureWAL(ctx); err != nil {
			return false, fmt.Errorf("ensure wal exists: %w", err)
		}
	}

	pos, err := db.Pos()
	if err != nil {
		return false, fmt.Errorf("cannot determine current position: %w", err)
	}
	origWALSize := db.lastSyncedWALOffset
	if origWALSize == 0 {
		origWALSize, _ = fileSize(db.WALPath())
	}

	info, err := db.verify(ctx, pos)
	if err != nil {
		return false, fmt.Errorf("cannot verify wal state: %w", err)
	}
	if info.snapshotting && info.reason != "" {
		db.logger().Info("writing full snapshot to L0", "txid", pos.TXID+1, "reason", info.reason)
	}

	res, err := db.writeL0(ctx, pos, info, limit, inCheckpoint)
	if err != nil {
		return false, err
	}
	if res.written {
		db.applySyncResult(res)
		db.syncedSinceCheckpoint = true
		db.metrics.observeWALBytes(res.walN)
	}

	if !inCheckpoint && (!res.limited || res.atEnd || db.exceedsTruncateThreshold(origWALSize)) {
		if err := db.checkpointIfNeeded(ctx, origWALSize); err != nil {
			return false, fmt.Errorf("checkpoint: %w", err)
		}
	}
	return res.limited && !res.atEnd, nil
}

// applySyncResult records a newly written L0 file. Caller holds exec.
func (db *DB) applySyncResult(res syncResult) {
	db.removeFetchedCopy()
	db.lastSyncedWALOffset = res.walEnd
	db.witness = nil
	db.setPos(ltx.Pos{TXID: res.info.MaxTXID})
	db.setMaxLTXFileInfo(0, res.info)
	db.notify.Broadcast()
	db.emit(EventL0Written, 0, res.info.MinTXID, res.info.MaxTXID, nil)
}

func (db *DB) exceedsTruncateThreshold(size int64) bool {
	n := db.truncatePageN()
	return n > 0 && size >= walSizeForPages(db.pageSize, n)
}

func (db *DB) truncatePageN() int {
	if db.TruncatePageN == 0 {
		return DefaultTruncatePageN
	}
	return db.TruncatePageN
}

// walSizeForPages is the size of a WAL holding n frames.
func walSizeForPages(pageSize, n int) int64 {
	return WALHeaderSize + int64(WALFrameHeaderSize+pageSize)*int64(n)
}

// writeL0 writes the next L0 file from the WAL (and, for pages the WAL range
// lacks, the database file). Caller holds exec.
func (db *DB) writeL0(ctx context.Context, pos ltx.Pos, info syncInfo, limit int64, inCheckpoint bool) (res syncResult, err error) {
	txid := pos.TXID + 1
	if !inCheckpoint {
		db.chkMu.RLock()
		defer db.chkMu.RUnlock()
	}
	dbSize, err := db.dbFileSize()
	if err != nil {
		return res, err
	}
	commit := uint32(dbSize / int64(db.pageSize))

	walFile, err := os.Open(db.WALPath())
	if err != nil {
		return res, fmt.Errorf("open wal: %w", err)
	}
	defer func() { _ = walFile.Close() }()

	rd, err := db.openWALReader(ctx, walFile, &info)
	if err != nil {
		return res, err
	}
	if info.snapshotting {
		limit = 0
	}
	var pageMap map[uint32]int64
	var maxOffset int64
	if rd != nil {
		if rd.PageSize() != uint32(db.pageSize) {
			return res, fmt.Errorf("wal page size %d does not match database page size %d; the replica must be reset", rd.PageSize(), db.pageSize)
		}
		if n := committedFrameLimit(db.WALPath(), rd); n >= 0 {
			rd.limitFrames(n)
		}
		var walCommit uint32
		if pageMap, maxOffset, walCommit, res.limited, err = rd.pageMap(ctx, limit); err != nil {
			return res, fmt.Errorf("read wal page map: %w", err)
		}
		db.noteFramesPastWALIndex(rd)
		if walCommit > 0 {
			commit = walCommit
		}
		info.salt1, info.salt2 = rd.salt1, rd.salt2
	}
	var sz int64
	if maxOffset > 0 {
		sz = maxOffset - info.offset
	}
	if !info.snapshotting && sz == 0 {
		return res, nil
	}
	if commit == 0 {
		return res, fmt.Errorf("cannot write L0 txid %s: database has no pages", txid)
	}

	pages, last := db.l0Pages(pageMap, info, commit)
	path := db.LTXPath(0, txid, txid)
	hdr := ltx.Header{
		Version:   ltx.Version,
		Flags:     ltx.HeaderFlagNoChecksum,
		PageSize:  uint32(db.pageSize),
		Commit:    commit,
		MinTXID:   txid,
		MaxTXID:   txid,
		Timestamp: headerTimestamp(time.Now()),
		WALOffset: info.offset,
		WALSize:   sz,
		WALSalt1:  info.salt1,
		WALSalt2:  info.salt2,
	}
	size, err := db.stageLTX(path, 0, txid, txid, func(w io.Writer) error {
		if err := db.encodePages(ctx, w, hdr, pages, last, pageMap, walFile); err != nil {
			return err
		}
		return checkWALUnchanged(walFile, rd, maxOffset)
	})
	if err != nil {
		return res, err
	}

	if sz > 0 {
		db.rememberLastFrame(walFile, txid, maxOffset-int64(db.pageSize)-WALFrameHeaderSize)
	}
	walSize, _ := fileSize(db.WALPath())
	res.written = true
	res.walEnd = info.offset + sz
	res.walN = sz
	res.atEnd = res.walEnd == walSize
	res.info = &ltx.FileInfo{Level: 0, MinTXID: txid, MaxTXID: txid, Size: size, CreatedAt: time.UnixMilli(hdr.Timestamp).UTC()}
	return res, nil
}

// openWALReader opens the WAL at info.offset, falling back to the start of
// the WAL when the frame before the offset no longer matches. It returns nil
// when the WAL has no valid header.
func (db *DB) openWALReader(ctx context.Context, walFile *os.File, info *syncInfo) (*WALReader, error) {
	if info.offset > WALHeaderSize {
		rd, err := NewWALReaderWithOffset(ctx, walFile, info.offset, info.salt1, info.salt2, db.logger())
		var mismatch *PrevFrameMismatchError
		if err == nil {
			return rd, nil
		} else if !errors.As(err, &mismatch) && err != io.EOF {
			return nil, fmt.Errorf("open wal reader at %d: %w", info.offset, err)
		}
		// The WAL changed between verify and here: start over with a
		// snapshot, as verify would have.
		info.offset, info.snapshotting = WALHeaderSize, true
		info.reason = "wal changed before the resume offset"
		db.logger().Info("writing full snapshot to L0", "reason", info.reason)
	}
	rd, err := NewWALReader(walFile, db.logger())
	if err == io.EOF {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("open wal reader: %w", err)
	}
	return rd, nil
}

// l0Pages returns, in order, the pages an L0 file holds, and the last of
// them: every page for a snapshot, listed as it is read so that memory does
// not grow with the database; otherwise the changed pages plus any growth
// the WAL range lacks.
func (db *DB) l0Pages(pageMap map[uint32]int64, info syncInfo, commit uint32) (iter.Seq[uint32], uint32) {
	lockPgno := ltx.LockPgno(uint32(db.pageSize))
	if info.snapshotting {
		return allPages(commit, lockPgno)
	}

	pgnos := make([]uint32, 0, len(pageMap))
	for pgno := range pageMap {
		pgnos = append(pgnos, pgno)
	}
	for pgno := info.prevCommit + 1; pgno <= commit; pgno++ {
		if _, ok := pageMap[pgno]; !ok && pgno != lockPgno {
			pgnos = append(pgnos, pgno)
		}
	}
	slices.Sort(pgnos)
	var last uint32
	if len(pgnos) > 0 {
		last = pgnos[len(pgnos)-1]
	}
	return slices.Values(pgnos), last
}

// allPages lists the pages of a snapshot: 1 to commit but the lock page.
func allPages(commit, lockPgno uint32) (iter.Seq[uint32], uint32) {
	last := commit
	if last == lockPgno {
		last--
	}
	return func(yield func(uint32) bool) {
		for pgno := uint32(1); pgno <= commit; pgno++ {
			if pgno != lockPgno && !yield(pgno) {
				return
			}
		}
	}, last
}

// encodePages writes an LTX file of the pages, reading each from its WAL
// frame when mapped, else from the database file. Its page index spills
// next to the L0 files when large.
func (db *DB) encodePages(ctx context.Context, w io.Writer, hdr ltx.Header, pages iter.Seq[uint32], last uint32, pageMap map[uint32]int64, walFile io.ReaderAt) error {
	bw := getEncodeWriter(w)
	defer putEncodeWriter(bw)
	enc := newLTXEncoder(bw, db.metaPath)
	defer enc.release()
	if err := enc.EncodeHeader(hdr); err != nil {
		return fmt.Errorf("encode ltx header: %w", err)
	}
	pr := pageReader{f: db.f, wal: walFile, pageMap: pageMap, data: make([]byte, db.pageSize), last: last}
	defer pr.release()
	var n int
	for pgno := range pages {
		if n++; n%1024 == 0 {
			if err := context.Cause(ctx); err != nil {
				return err
			}
		}
		data, err := pr.read(pgno)
		if err != nil {
			return err
		}
		if err := enc.EncodePage(ltx.PageHeader{Pgno: pgno}, data); err != nil {
			return fmt.Errorf("encode page %d: %w", pgno, err)
		}
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("close ltx encoder: %w", err)
	}
	return bw.Flush()
}

// pageReader reads pages from their WAL frames when mapped, else from the
// database file, which it reads ahead in runs of consecutive pages up to
// the last page wanted.
type pageReader struct {
	f       io.ReaderAt
	wal     io.ReaderAt
	pageMap map[uint32]int64
	last    uint32
	data    []byte // one page, from the WAL

	run     *[encodeBufferSize]byte // database pages read ahead, from page first; from readAheadPool
	first   uint32
	runSize int // bytes of run read
}

// release returns the read-ahead run to its pool.
func (r *pageReader) release() {
	if r.run != nil {
		readAheadPool.Put(r.run)
		r.run = nil
	}
}

func (r *pageReader) read(pgno uint32) ([]byte, error) {
	pageSize := len(r.data)
	if off, ok := r.pageMap[pgno]; ok {
		if n, err := r.wal.ReadAt(r.data, off+WALFrameHeaderSize); n < pageSize {
			return nil, fmt.Errorf("read page %d from wal at %d: short read: %w", pgno, off, err)
		}
		return r.data, nil
	}
	if i := int(pgno - r.first); pgno >= r.first && (i+1)*pageSize <= r.runSize {
		return r.run[i*pageSize : (i+1)*pageSize], nil
	}
	if r.run == nil {
		r.run = readAheadPool.Get().(*[encodeBufferSize]byte)
	}
	off := int64(pgno-1) * int64(pageSize)
	n, err := r.f.ReadAt(r.run[:min(len(r.run)/pageSize, int(r.last-pgno+1))*pageSize], off)
	if n < pageSize {
		return nil, fmt.Errorf("read page %d from database at %d: short read: %w", pgno, off, err)
	}
	r.first, r.runSize = pgno, n-n%pageSize
	return r.run[:pageSize], nil
}

// stageLTX writes an LTX file through a .tmp file: written, fsynced, renamed,
// directory fsynced. Disk-full failures wrap ErrDiskFull.
func (db *DB) stageLTX(path string, level int, minTXID, maxTXID ltx.TXID, write func(io.Writer) error) (size int64, err error) {
	tmp := path + ".tmp"
	fail := func(op string, err error) error {
		if isDiskFullError(err) {
			err = fmt.Errorf("%w: %w", ErrDiskFull, err)
		}
		return NewLTXError(op, tmp, level, uint64(minTXID), uint64(maxTXID), err)
	}

	if err := internal.MkdirAll(filepath.Dir(path), db.dirPerm()); err != nil {
		return 0, fail("stage-mkdir", err)
	}
	perm := db.filePerm()
	f, err := openFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, perm.Mode)
	if err != nil {
		return 0, fail("stage-open", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if perm.UID >= 0 {
		_ = f.Chown(perm.UID, perm.GID)
	}

	cw := &internal.CountingWriter{W: f}
	if err := write(cw); err != nil {
		if isDiskFullError(err) {
			return 0, fail("stage-write", err)
		}
		return 0, fmt.Errorf("write L%d %s-%s: %w", level, minTXID, maxTXID, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fail("stage-sync", err)
	}
	if err := f.Close(); err != nil {
		return 0, fail("stage-close", err)
	}
	crashPoint("sync-staged")
	if err := os.Rename(tmp, path); err != nil {
		db.invalidatePos()
		db.dropMaxLTXFileInfo(level)
		return 0, fmt.Errorf("rename %s: %w", tmp, err)
	}
	if err := internal.SyncDir(filepath.Dir(path)); err != nil {
		db.invalidatePos()
		db.dropMaxLTXFileInfo(level)
		return 0, err
	}
	crashPoint("sync-renamed")
	return cw.N(), nil
}

// openFile is os.OpenFile, replaceable in tests to inject failures such as
// a full disk.
var openFile = os.OpenFile

// openWALWatcher is newWALWatcher, replaceable in tests to exercise polling.
var openWALWatcher = newWALWatcher

// crashPoint is called at named steps of syncs and checkpoints; crash tests
// replace it to kill the process exactly there.
var crashPoint = func(name string) {}

// noteFramesPastWALIndex records whether a sync stopped at SQLite's
// wal-index before valid frames: a commit still publishing, or frames a
// failed writer left, which SQLite's next commit overwrites.
func (db *DB) noteFramesPastWALIndex(rd *WALReader) {
	if past := rd.pastLimit; db.framesPastWALIndex.Swap(past) != past && past {
		db.logger().Debug("wal frames past sqlite's committed end; not captured until sqlite commits them", "committed_frames", rd.frameLimit)
	}
}

func (db *DB) dbFileSize() (int64, error) {
	fi, err := db.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat database: %w", err)
	}
	return fi.Size(), nil
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// readWALHeaderSalts returns the salts in the WAL header, zeros if it has none.
func readWALHeaderSalts(f io.ReaderAt) ([2]uint32, error) {
	hdr := make([]byte, WALHeaderSize)
	if n, err := f.ReadAt(hdr, 0); n < len(hdr) {
		if err == io.EOF || err == nil {
			return [2]uint32{}, nil
		}
		return [2]uint32{}, fmt.Errorf("read wal header: %w", err)
	}
	return [2]uint32{binary.BigEndian.Uint32(hdr[16:]), binary.BigEndian.Uint32(hdr[20:])}, nil
}

// readWALHeader returns the raw WAL header, nil if the WAL is missing or short.
func (db *DB) readWALHeader() ([]byte, error) {
	f, err := os.Open(db.WALPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	hdr := make([]byte, WALHeaderSize)
	if n, _ := f.ReadAt(hdr, 0); n < len(hdr) {
		return nil, nil
	}
	return hdr, nil
}

// monitor syncs when the WAL changes and at least every MonitorInterval,
// backing off on errors. A change right after a sync waits out the rest of
// the interval, so a burst of commits becomes one L0 file, while a commit to
// an idle database syncs at once. With WAL change events it does not poll:
// it sleeps until a change, a sync request, an error retry, or the recheck
// that lets a pending time-based checkpoint run. Without events it polls
// every MonitorInterval, and polls that find the WAL unchanged skip the sync
// unless a checkpoint recheck is due.
func (db *DB) monitor() {
	ticker := time.NewTicker(db.MonitorInterval)
	defer ticker.Stop()
	polling := true

	var changed <-chan struct{}
	if w, err := openWALWatcher(db.WALPath()); err != nil {
		db.logger().Debug("wal change events unavailable, polling", "error", err)
	} else {
		defer func() { _ = w.Close() }()
		changed = w.C
	}

	var last time.Time     // start of the last sync that wrote a file, or failed
	var lastSync time.Time // start of the last sync of any outcome
	var lastStat walStat
	var lastPos ltx.Pos // position after the last sync
	var lastLogAt time.Time
	var diskFullN int
	var pastIndexN int              // syncs in a row that stopped before unpublished frames
	var pastIndexC <-chan time.Time // the next look at them
	ctx := withBackgroundSync(db.ctx)
	for {
		backoff := db.syncBackoffNow()
		// Events cannot announce a database file that appears, so an
		// uninitialized DB is polled, as is one retrying errors.
		if poll := changed == nil || backoff > 0 || !db.isInitialized(); poll != polling {
			if polling = poll; poll {
				ticker.Reset(db.MonitorInterval)
			} else {
				ticker.Stop()
			}
		}
		var recheck *time.Timer
		var recheckC <-chan time.Time
		if !polling && db.timeCheckpointPending() {
			recheck = time.NewTimer(db.checkpointRecheck() - time.Since(lastSync))
			recheckC = recheck.C
		}

		select {
		case <-db.ctx.Done():
			return
		case <-ticker.C:
			if backoff == 0 && db.isInitialized() && statWAL(db.WALPath(), true) == lastStat && db.posIs(lastPos) &&
				(time.Since(lastSync) < db.checkpointRecheck() || !db.timeCheckpointPending()) {
				continue
			}
		case _, ok := <-changed:
			if !ok {
				db.logger().Warn("wal change events stopped, polling")
				changed = nil
			}
		case <-recheckC:
		case <-pastIndexC:
			pastIndexC = nil
		case <-db.syncReq:
		}
		if recheck != nil {
			recheck.Stop()
		}
		if wait := max(db.syncRetryWait(), db.MonitorInterval-time.Since(last)); wait > 0 {
			select {
			case <-db.ctx.Done():
				return
			case <-time.After(wait):
			}
		}

		start := time.Now()
		lastStat = statWAL(db.WALPath(), polling) // the -shm read serves polls only
		lastSync = start
		err := db.sync(ctx)
		if errors.Is(err, errSyncDeferred) {
			continue // another pass's sync failed meanwhile
		}
		if db.framesPastWALIndex.Load() {
			// A commit mid-publish (its frames written, the wal-index not
			// yet) announces nothing more: look again soon, then less often,
			// for frames a failed writer left until SQLite overwrites them.
			pastIndexN++
			pastIndexC = time.After(min(db.MonitorInterval, time.Millisecond<<min(pastIndexN-1, 16)))
		} else {
			pastIndexN = 0
		}
		if err == nil || errors.Is(err, context.Canceled) {
			diskFullN = 0
			// Only a sync that wrote a file starts a new interval: a late
			// event for frames it already took must not delay the next commit.
			if pos, _ := db.Pos(); pos != lastPos {
				last, lastPos = start, pos
			}
			continue
		}
		last = start

		backoff = db.syncBackoffNow()
		if errors.Is(err, ErrDiskFull) {
			if diskFullN++; diskFullN >= 3 {
				_ = removeTmpFiles(db.metaPath)
			}
		}
		if time.Since(lastLogAt) >= SyncErrorLogInterval {
			lastLogAt = time.Now()
			db.logger().Error("sync failed", "error", err, "backoff", backoff)
		}
	}
}

// checkpointRecheck is how long an unchanged WAL goes without a sync while
// a time-based checkpoint is pending: short enough that the checkpoint runs
// within a quarter interval of falling due.
func (db *DB) checkpointRecheck() time.Duration {
	if db.CheckpointInterval <= 0 {
		return time.Duration(1<<63 - 1)
	}
	return max(db.CheckpointInterval/4, db.MonitorInterval)
}

// timeCheckpointPending reports whether a sync without new commits could
// still run the time-based checkpoint; true when a sync holds exec.
func (db *DB) timeCheckpointPending() bool {
	if !db.exec.TryAcquire(1) {
		return true
	}
	defer db.exec.Release(1)
	return db.timeCheckpointWanted()
}

// timeCheckpointWanted reports whether the time-based checkpoint runs once
// the database file is older than CheckpointInterval. Caller holds exec.
func (db *DB) timeCheckpointWanted() bool {
	return db.CheckpointInterval > 0 && db.syncedSinceCheckpoint && db.lastSyncedWALOffset > walSizeForPages(db.pageSize, 1)
}

// wakeMonitor asks the monitor for a sync even though the WAL may look
// unchanged; one request stays pending at most.
func (db *DB) wakeMonitor() {
	select {
	case db.syncReq <- struct{}{}:
	default:
	}
}

// posIs reports whether the local position is still pos; it changes when
// something other than the monitor syncs or local state is reset.
func (db *DB) posIs(pos ltx.Pos) bool {
	p, err := db.Pos()
	return err == nil && p == pos
}

// walStat is what a poll compares to see whether the WAL changed. Size and
// mtime alone miss a commit that overwrites a restarted WAL in place within
// the filesystem's timestamp tick, so the wal-index header from the -shm
// file, which SQLite rewrites at every commit, is compared too.
type walStat struct {
	size     int64
	modTime  time.Time
	exists   bool
	walIndex [walIndexHeaderSize]byte
}

// walIndexHeaderSize is the first copy of SQLite's wal-index header: its
// change counter, mxFrame and frame checksums change at every commit.
const walIndexHeaderSize = 48

// statWAL stats the WAL and, with withIndex, reads the wal-index header.
// A stat taken without it then differs from one taken with it: a monitor
// that starts polling syncs once more.
func statWAL(path string, withIndex bool) walStat {
	fi, err := os.Stat(path)
	if err != nil {
		return walStat{}
	}
	st := walStat{size: fi.Size(), modTime: fi.ModTime(), exists: true}
	if !withIndex {
		return st
	}
	if f, err := os.Open(strings.TrimSuffix(path, "-wal") + "-shm"); err == nil {
		_, _ = io.ReadFull(f, st.walIndex[:]) // a torn or short read only costs a sync
		_ = f.Close()
	}
	return st
}

// SyncAndWait syncs the WAL and uploads everything to the replica.
func (db *DB) SyncAndWait(ctx context.Context) error {
	if db.Replica == nil {
		return fmt.Errorf("no replica configured")
	}
	// A replica sync that adopts the replica's position (another history
	// locally) leaves commits in the WAL that no L0 file holds: sync again.
	for range 3 {
		resets := db.localResets.Load()
		if err := db.Sync(ctx); err != nil {
			return fmt.Errorf("db sync: %w", err)
		}
		if err := db.Replica.Sync(ctx); err != nil {
			return fmt.Errorf("replica sync: %w", err)
		}
		if db.localResets.Load() == resets {
			return nil
		}
	}
	return fmt.Errorf("replica sync: %w, three times in a row", errLocalStateReset)
}
