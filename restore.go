package litestream

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"filippo.io/age"
	"github.com/benbjohnson/litestream/internal"
	"github.com/superfly/ltx"
)

// Restore defaults.
const (
	DefaultRestoreParallelism = 8
	DefaultFollowInterval     = 1 * time.Second
)

// IntegrityCheckMode selects the SQLite check run on a restored database.
type IntegrityCheckMode int

// Integrity check modes.
const (
	IntegrityCheckNone  IntegrityCheckMode = iota // no check
	IntegrityCheckQuick                           // PRAGMA quick_check
	IntegrityCheckFull                            // PRAGMA integrity_check
)

// RestoreOptions configure Replica.Restore.
type RestoreOptions struct {
	// OutputPath is where the database is written. Required; must not exist.
	OutputPath string

	// TXID restores the state as of this TXID; zero means latest.
	TXID ltx.TXID

	// Timestamp restores the state from files created before it; zero
	// means latest. Exclusive with TXID.
	Timestamp time.Time

	// Parallelism is how many files are read from the replica at once;
	// zero or one reads them one at a time. All but the first file are
	// spooled to disk and all are applied in order, so memory stays bounded.
	Parallelism int

	// Follow keeps applying new files after the restore until ctx ends.
	Follow bool

	// FollowInterval is how often Follow polls the replica. Default 1s.
	FollowInterval time.Duration

	// IntegrityCheck runs a SQLite check on the result before returning.
	IntegrityCheck IntegrityCheckMode

	// AgeIdentities decrypt a v0.3.x backup written with age encryption
	// (v0.3's "age: identities:" setting); unused for LTX files.
	AgeIdentities []age.Identity
}

// NewRestoreOptions returns the default options: latest state, 8 parallel
// downloads, follow polling every second.
func NewRestoreOptions() RestoreOptions {
	return RestoreOptions{Parallelism: DefaultRestoreParallelism, FollowInterval: DefaultFollowInterval}
}

func (opt RestoreOptions) validate() error {
	switch {
	case opt.OutputPath == "":
		return fmt.Errorf("output path required")
	case opt.TXID != 0 && !opt.Timestamp.IsZero():
		return fmt.Errorf("cannot specify index & timestamp to restore")
	case opt.Follow && opt.TXID != 0:
		return fmt.Errorf("cannot use follow mode with -txid")
	case opt.Follow && !opt.Timestamp.IsZero():
		return fmt.Errorf("cannot use follow mode with -timestamp")
	case opt.IntegrityCheck < IntegrityCheckNone || opt.IntegrityCheck > IntegrityCheckFull:
		return fmt.Errorf("unsupported integrity check mode: %d", opt.IntegrityCheck)
	}
	return nil
}

// Restore writes the replica's database, as of opt.TXID, opt.Timestamp or
// the latest state, to opt.OutputPath. The file appears only when complete:
// it is written to a temporary file, fsynced and renamed, and nothing is
// left behind on failure.
func (r *Replica) Restore(ctx context.Context, opt RestoreOptions) (err error) {
	if err := opt.validate(); err != nil {
		return err
	} else if r.Client == nil {
		return errNoClient
	}
	if opt.Follow {
		if _, err := os.Stat(opt.OutputPath); err == nil {
			return r.resumeFollow(ctx, opt)
		}
	}
	if _, err := os.Stat(opt.OutputPath); err == nil {
		return fmt.Errorf("cannot restore, output path already exists: %s", opt.OutputPath)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if useV3, err := r.shouldRestoreV3(ctx, opt); err != nil {
		return err
	} else if useV3 {
		return r.RestoreV3(ctx, opt)
	}

	plan, err := CalcRestorePlan(ctx, r.Client, opt.TXID, opt.Timestamp, r.Logger())
	if errors.Is(err, ErrTxNotAvailable) {
		err = txNotAvailableError(ctx, r.Client, opt)
	}
	if err != nil {
		return fmt.Errorf("cannot calc restore plan: %w", err)
	}
	for _, info := range plan {
		if info.Size < ltx.HeaderSize {
			return fmt.Errorf("invalid ltx file: level=%d min=%s max=%s has size %d bytes (minimum %d)", info.Level, info.MinTXID, info.MaxTXID, info.Size, ltx.HeaderSize)
		}
	}

	if err := internal.MkdirAll(filepath.Dir(opt.OutputPath), r.outputDirPerm()); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	if err := restorePlan(ctx, r.Client, plan, opt.OutputPath, opt.Parallelism); err != nil {
		return err
	}
	if err := checkIntegrity(ctx, opt.OutputPath, opt.IntegrityCheck); err != nil {
		if ctx.Err() == nil {
			removeDatabaseFiles(opt.OutputPath)
		}
		return fmt.Errorf("post-restore integrity check: %w", err)
	}

	if opt.Follow {
		txid := plan[len(plan)-1].MaxTXID
		if err := WriteTXIDFile(opt.OutputPath, txid); err != nil {
			return err
		}
		return r.follow(ctx, opt, txid)
	}
	return nil
}

func (r *Replica) outputDirPerm() internal.Perm {
	if r.db != nil {
		if fi := r.db.DirInfo(); fi != nil {
			return internal.PermOf(fi)
		}
	}
	return internal.DefaultDirPerm
}

// restorePlan applies the plan's files, in order, to a database at outputPath.
func restorePlan(ctx context.Context, client ReplicaClient, plan []*ltx.FileInfo, outputPath string, parallelism int) (err error) {
	tmpPath := outputPath + ".tmp"
	f, err := os.OpenFile(tmpPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create restore file: %w", err)
	}
	w := &restoreWriter{f: f, direct: openDirect(tmpPath)}
	defer func() {
		w.closeDirect()
		_ = f.Close()
		_ = os.Remove(tmpPath)
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rdrs, cleanup := openPlanReaders(ctx, client, plan, filepath.Dir(outputPath), parallelism)
	defer cleanup()

	// Each file is applied in turn straight into the output: the snapshot
	// as one sequential stream, later files page by page at their offsets.
	a := newPageApplier(w)
	for i, rd := range rdrs {
		if err := a.apply(rd, plan[i]); err != nil {
			cancel()
			info := plan[i]
			cause := NewLTXError("apply", LTXFilePath("", info.Level, info.MinTXID, info.MaxTXID), info.Level, uint64(info.MinTXID), uint64(info.MaxTXID), err)
			return diagnoseRestoreError(context.WithoutCancel(ctx), client, plan[i:i+1], cause)
		}
	}
	w.closeDirect()
	if err := f.Truncate(int64(a.commit) * int64(a.pageSize)); err != nil {
		return fmt.Errorf("truncate restore file: %w", err)
	} else if err := f.Sync(); err != nil {
		return fmt.Errorf("sync restore file: %w", err)
	} else if err := f.Close(); err != nil {
		return fmt.Errorf("close restore file: %w", err)
	} else if err := os.Rename(tmpPath, outputPath); err != nil {
		return fmt.Errorf("rename restore file: %w", err)
	}
	return internal.SyncDir(filepath.Dir(outputPath))
}

// directMinRun is the shortest run written with O_DIRECT: a direct write
// waits for the device, which the scattered pages of later files would
// each pay, so short runs go through the page cache.
const directMinRun = 256 << 10

// restoreWriter writes the restore file. Long aligned runs, such as the
// snapshot's, go through a second descriptor opened with O_DIRECT where
// the system has one: the data must reach the disk before the rename
// anyway, and going around the page cache saves a copy and the cost of
// filling the cache with a whole database. Other runs, and every run once
// the file system refuses a direct write, go through the ordinary
// descriptor; the kernel keeps the two coherent.
type restoreWriter struct {
	f      *os.File
	direct directWriter // nil without O_DIRECT
}

// directWriter is the O_DIRECT descriptor of the restore file.
type directWriter interface {
	io.WriterAt
	io.Closer
}

func (w *restoreWriter) WriteAt(p []byte, off int64) (int, error) {
	if w.direct != nil && len(p) >= directMinRun && off%directAlign == 0 && len(p)%directAlign == 0 && uintptr(unsafe.Pointer(unsafe.SliceData(p)))%directAlign == 0 {
		n, err := w.direct.WriteAt(p, off)
		if !errors.Is(err, syscall.EINVAL) {
			return n, err
		}
		w.closeDirect()
	}
	return w.f.WriteAt(p, off)
}

func (w *restoreWriter) closeDirect() {
	if w.direct != nil {
		_ = w.direct.Close()
		w.direct = nil
	}
}

// diagnoseRestoreError finds which plan file is corrupt, if one is, so that
// the error names it. Other failures are returned as they are.
func diagnoseRestoreError(ctx context.Context, client ReplicaClient, plan []*ltx.FileInfo, cause error) error {
	if ctx.Err() == nil {
		if err := verifyLTXFiles(ctx, client, plan); err != nil {
			return fmt.Errorf("decode database: %w", err)
		}
	}
	return fmt.Errorf("decode database: %w", cause)
}

// verifyLTXFiles returns an error naming the first replica file that is
// corrupt, does not hold what its name says, or has another page size than
// the files before it (a file of another database).
func verifyLTXFiles(ctx context.Context, client ReplicaClient, infos []*ltx.FileInfo) error {
	var pageSize uint32
	for _, info := range infos {
		hdr, err := verifyRemoteLTX(ctx, client, info)
		if err != nil {
			return err
		}
		if pageSize == 0 {
			pageSize = hdr.PageSize
		} else if hdr.PageSize != pageSize {
			return NewLTXError("verify", LTXFilePath("", info.Level, info.MinTXID, info.MaxTXID), info.Level, uint64(info.MinTXID), uint64(info.MaxTXID),
				fmt.Errorf("page size %d, earlier files have %d", hdr.PageSize, pageSize))
		}
	}
	return nil
}

// verifyRemoteLTX reads a whole replica file, checks its structure,
// checksum and TXID range, and returns its header.
func verifyRemoteLTX(ctx context.Context, client ReplicaClient, info *ltx.FileInfo) (ltx.Header, error) {
	path := LTXFilePath("", info.Level, info.MinTXID, info.MaxTXID)
	rc, err := client.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
	if err != nil {
		return ltx.Header{}, NewLTXError("open", path, info.Level, uint64(info.MinTXID), uint64(info.MaxTXID), err)
	}
	defer func() { _ = rc.Close() }()

	hdr, _, err := verifyLTX(bufio.NewReader(rc))
	if err == nil {
		err = checkLTXName(hdr, info)
	}
	if err != nil {
		return ltx.Header{}, NewLTXError("verify", path, info.Level, uint64(info.MinTXID), uint64(info.MaxTXID), err)
	}
	return hdr, nil
}

// checkLTXName reports a file whose header covers other TXIDs than its name.
func checkLTXName(hdr ltx.Header, info *ltx.FileInfo) error {
	if hdr.MinTXID != info.MinTXID || hdr.MaxTXID != info.MaxTXID {
		return fmt.Errorf("%w: header covers %s-%s", ErrLTXCorrupted, hdr.MinTXID, hdr.MaxTXID)
	}
	return nil
}

// openPlanReaders returns one reader per plan file, in plan order. At most
// parallelism files are read from the replica at once. The first file
// (normally the snapshot) streams into the merge and stays open until it
// ends; the rest are downloaded ahead into unlinked temporary files in dir,
// so that memory does not grow with their size.
func openPlanReaders(ctx context.Context, client ReplicaClient, plan []*ltx.FileInfo, dir string, parallelism int) ([]io.Reader, func()) {
	first := newResumableReader(ctx, client, plan[0], nil)
	rdrs := []io.Reader{first}
	closers := []io.Closer{first}
	if len(plan) == 1 {
		return rdrs, func() { closeAll(closers) }
	}

	// The stream holds one slot; with a single slot it waits until every
	// download is done.
	workers := max(parallelism-1, 1)
	downloaded := make(chan struct{})
	if parallelism <= 1 {
		rdrs[0] = &waitReader{ctx: ctx, ready: downloaded, r: first}
	}

	spools := make([]*spooledReader, len(plan)-1)
	for i, info := range plan[1:] {
		spools[i] = &spooledReader{info: info, ready: make(chan struct{})}
		rdrs = append(rdrs, spools[i])
		closers = append(closers, spools[i])
	}
	queue := make(chan *spooledReader, len(spools))
	for _, s := range spools {
		queue <- s
	}
	close(queue)
	var wg sync.WaitGroup
	for range min(workers, len(spools)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range queue {
				if ctx.Err() != nil {
					s.fail(context.Cause(ctx))
					continue
				}
				s.download(ctx, client, dir)
			}
		}()
	}
	go func() { wg.Wait(); close(downloaded) }()
	return rdrs, func() { <-downloaded; closeAll(closers) }
}

// waitReader delays the first read until ready is closed.
type waitReader struct {
	ctx   context.Context
	ready <-chan struct{}
	r     io.Reader
}

func (w *waitReader) Read(p []byte) (int, error) {
	select {
	case <-w.ready:
		return w.r.Read(p)
	case <-w.ctx.Done():
		return 0, context.Cause(w.ctx)
	}
}

func closeAll(closers []io.Closer) {
	for _, c := range closers {
		_ = c.Close()
	}
}

// spooledReader reads a file once its download to a temporary file ends.
type spooledReader struct {
	info  *ltx.FileInfo
	ready chan struct{}
	f     *os.File
	err   error
}

func (s *spooledReader) download(ctx context.Context, client ReplicaClient, dir string) {
	f, err := os.CreateTemp(dir, ".litestream-restore-*.ltx")
	if err != nil {
		s.fail(fmt.Errorf("create spool file: %w", err))
		return
	}
	_ = os.Remove(f.Name()) // unlinked: the descriptor keeps it until closed

	rd := newResumableReader(ctx, client, s.info, nil)
	defer func() { _ = rd.Close() }()
	if _, err := io.Copy(f, rd); err != nil {
		_ = f.Close()
		s.fail(err)
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		_ = f.Close()
		s.fail(err)
		return
	}
	s.f = f
	close(s.ready)
}

func (s *spooledReader) fail(err error) {
	s.err = err
	close(s.ready)
}

func (s *spooledReader) Read(p []byte) (int, error) {
	<-s.ready
	if s.err != nil {
		return 0, s.err
	}
	return s.f.Read(p)
}

func (s *spooledReader) Close() error {
	<-s.ready
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}

// Retry policy for reading replica files.
const (
	resumableMaxRetries = 3
	resumableBaseDelay  = 250 * time.Millisecond
)

// resumableReader reads a replica file and, when the stream fails or ends
// early, reopens it at the current offset, up to three times with backoff.
type resumableReader struct {
	ctx     context.Context
	client  ReplicaClient
	info    *ltx.FileInfo
	rc      io.ReadCloser
	offset  int64
	retries int
}

// newResumableReader wraps an open stream, or opens lazily when rc is nil.
func newResumableReader(ctx context.Context, client ReplicaClient, info *ltx.FileInfo, rc io.ReadCloser) *resumableReader {
	return &resumableReader{ctx: ctx, client: client, info: info, rc: rc}
}

func (r *resumableReader) Read(p []byte) (int, error) {
	for {
		if r.rc == nil {
			if err := r.open(); err != nil {
				return 0, err
			}
		}
		n, err := r.rc.Read(p)
		r.offset += int64(n)
		if err == nil || (err == io.EOF && (r.info.Size == 0 || r.offset >= r.info.Size)) {
			return n, err
		}
		if n > 0 {
			return n, nil // hand over what arrived; the next read reopens
		}
		_ = r.rc.Close()
		r.rc = nil
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if retryErr := r.backoff(err); retryErr != nil {
			return 0, retryErr
		}
	}
}

func (r *resumableReader) open() error {
	for {
		rc, err := r.client.OpenLTXFile(r.ctx, r.info.Level, r.info.MinTXID, r.info.MaxTXID, r.offset, 0)
		if err == nil {
			r.rc = rc
			return nil
		}
		if errors.Is(err, os.ErrNotExist) || r.ctx.Err() != nil {
			return fmt.Errorf("open L%d %s-%s: %w", r.info.Level, r.info.MinTXID, r.info.MaxTXID, err)
		}
		if retryErr := r.backoff(err); retryErr != nil {
			return retryErr
		}
	}
}

func (r *resumableReader) backoff(cause error) error {
	if r.retries >= resumableMaxRetries {
		return fmt.Errorf("max retries exceeded reading ltx file (L%d %s-%s at offset %d): %w", r.info.Level, r.info.MinTXID, r.info.MaxTXID, r.offset, cause)
	}
	delay := resumableBaseDelay << r.retries
	r.retries++
	select {
	case <-r.ctx.Done():
		return context.Cause(r.ctx)
	case <-time.After(delay):
		return nil
	}
}

func (r *resumableReader) Close() error {
	if r.rc == nil {
		return nil
	}
	err := r.rc.Close()
	r.rc = nil
	return err
}

// checkIntegrity runs SQLite's quick or full check on a database file and
// removes the -wal and -shm files the check leaves.
func checkIntegrity(ctx context.Context, path string, mode IntegrityCheckMode) error {
	if mode == IntegrityCheckNone {
		return nil
	}
	pragma := "PRAGMA quick_check;"
	if mode == IntegrityCheckFull {
		pragma = "PRAGMA integrity_check;"
	}
	sqldb, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return err
	}
	var result string
	err = sqldb.QueryRowContext(ctx, pragma).Scan(&result)
	if closeErr := sqldb.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return err
	} else if result != "ok" {
		return fmt.Errorf("integrity check failed: %s", result)
	}
	_ = os.Remove(path + "-shm")
	_ = os.Remove(path + "-wal")
	return nil
}

func removeDatabaseFiles(path string) {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		_ = os.Remove(p)
	}
}

// CalcRestorePlan picks the files that rebuild the database: the newest
// eligible snapshot, then, across levels 8..0, the file that reaches
// furthest from the current TXID each step. Files must not be newer than
// txID, nor created at or after timestamp (when set).
func CalcRestorePlan(ctx context.Context, client ReplicaClient, txID ltx.TXID, timestamp time.Time, logger *slog.Logger) ([]*ltx.FileInfo, error) {
	if txID != 0 && !timestamp.IsZero() {
		return nil, fmt.Errorf("cannot specify both TXID & timestamp to restore")
	}
	useMetadata := !timestamp.IsZero()
	eligible := func(info *ltx.FileInfo) bool {
		return (txID == 0 || info.MaxTXID <= txID) && (timestamp.IsZero() || info.CreatedAt.Before(timestamp))
	}

	var plan []*ltx.FileInfo
	var cur ltx.TXID
	snapshots, err := FindLTXFiles(ctx, client, SnapshotLevel, useMetadata, func(info *ltx.FileInfo) (bool, error) {
		return eligible(info), nil
	})
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	if len(snapshots) > 0 {
		snap := snapshots[len(snapshots)-1]
		plan, cur = append(plan, snap), snap.MaxTXID
	}

	if txID == 0 || cur < txID {
		var cursors []*planCursor
		defer func() {
			for _, c := range cursors {
				_ = c.itr.Close()
			}
		}()
		for level := SnapshotLevel - 1; level >= 0; level-- {
			itr, err := client.LTXFiles(ctx, level, 0, useMetadata)
			if err != nil {
				return nil, fmt.Errorf("list L%d: %w", level, err)
			}
			cursors = append(cursors, &planCursor{level: level, itr: itr, eligible: eligible})
		}

		for txID == 0 || cur < txID {
			var best *planCursor
			for _, c := range cursors {
				if err := c.refresh(cur); err != nil {
					return nil, err
				}
				if c.cand != nil && (best == nil || betterPlanFile(c.cand, best.cand)) {
					best = c
				}
			}
			if best == nil {
				break
			}
			plan, cur = append(plan, best.cand), best.cand.MaxTXID
			best.cand = nil
		}

		if txID == 0 && timestamp.IsZero() && len(plan) > 0 {
			for _, c := range cursors {
				if c.pending != nil && c.pending.MinTXID > cur+1 {
					return nil, fmt.Errorf("non-contiguous ltx files: have up to %s but next file starts at %s (gap before %s)", cur, c.pending.MinTXID,
						LTXFilePath("", c.pending.Level, c.pending.MinTXID, c.pending.MaxTXID))
				}
			}
		}
	}

	if len(plan) == 0 || (txID != 0 && cur < txID) {
		return nil, ErrTxNotAvailable
	}
	if logger != nil {
		logger.Debug("restore plan", "files", len(plan), "max_txid", cur)
	}
	return plan, nil
}

// planCursor walks one level's listing for CalcRestorePlan.
type planCursor struct {
	level    int
	itr      ltx.FileIterator
	eligible func(*ltx.FileInfo) bool
	pending  *ltx.FileInfo // next item, which starts past cur+1
	cand     *ltx.FileInfo // best usable item seen
	done     bool          // the listing is exhausted; Next must not be called again
}

// refresh drops a stale candidate and consumes items that start at or
// before cur+1, keeping the best eligible one that extends past cur.
func (c *planCursor) refresh(cur ltx.TXID) error {
	if c.cand != nil && c.cand.MaxTXID <= cur {
		c.cand = nil
	}
	for {
		item := c.pending
		if item == nil {
			if c.done {
				return nil
			}
			if !c.itr.Next() {
				c.done = true
				if err := c.itr.Err(); err != nil {
					return fmt.Errorf("list L%d: %w", c.level, err)
				}
				return nil
			}
			cp := *c.itr.Item()
			item = &cp
		}
		if item.MinTXID > cur+1 {
			c.pending = item
			return nil
		}
		c.pending = nil
		if item.MaxTXID <= cur || !c.eligible(item) {
			continue
		}
		if c.cand == nil || betterPlanFile(item, c.cand) {
			c.cand = item
		}
	}
}

// betterPlanFile orders candidates: reaches further, starts earlier, higher
// level, created earlier.
func betterPlanFile(a, b *ltx.FileInfo) bool {
	switch {
	case a.MaxTXID != b.MaxTXID:
		return a.MaxTXID > b.MaxTXID
	case a.MinTXID != b.MinTXID:
		return a.MinTXID < b.MinTXID
	case a.Level != b.Level:
		return a.Level > b.Level
	default:
		return a.CreatedAt.Before(b.CreatedAt)
	}
}
