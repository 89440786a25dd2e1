// Restore: the options, then the algorithm in three steps: plan (which
// files rebuild the database), apply (write them to a temporary file), and
// check (SQLite's integrity check) before the rename.

package litestream

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

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

	// Compaction and retention may delete files between the listings of
	// two levels, or between a listing and the download: they are then
	// covered by a higher level, so a fresh plan finds them there.
	var plan []*ltx.FileInfo
	var last chainLink // the plan's last file, for follow mode
	var madeDir bool
	for attempt := 1; ; attempt++ {
		plan, err = r.calcRestorePlan(ctx, opt)
		if (errors.Is(err, errNonContiguous) || errors.Is(err, ErrTxNotAvailable)) && attempt < restoreReplanAttempts && ctx.Err() == nil {
			r.Logger().Debug("replica listing incomplete, planning again", "attempt", attempt, "error", err)
			continue
		} else if err != nil {
			return err
		}
		if !madeDir {
			if err := internal.MkdirAll(filepath.Dir(opt.OutputPath), r.outputDirPerm()); err != nil {
				return fmt.Errorf("create output directory: %w", err)
			}
			madeDir = true
		}
		var followTXID ltx.TXID // written beside the output before it is placed
		if opt.Follow {
			followTXID = plan[len(plan)-1].MaxTXID
		}
		last, err = restorePlan(ctx, r.Client, plan, opt.OutputPath, opt.Parallelism, opt.IntegrityCheck, followTXID)
		if err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) || attempt == restoreReplanAttempts || ctx.Err() != nil {
			return err
		}
		r.Logger().Info("replica file deleted during restore, planning again", "attempt", attempt, "error", err)
	}
	if opt.Follow {
		return r.follow(ctx, opt, plan[len(plan)-1].MaxTXID, last)
	}
	return nil
}

// errNonContiguous is a gap in the files a restore plan lists. A listing
// taken while compaction and retention run can show one that is not there:
// a restore plans again before reporting it.
var errNonContiguous = errors.New("non-contiguous ltx files")

// restoreReplanAttempts bounds the plans a restore makes when files of its
// plan keep vanishing under it.
const restoreReplanAttempts = 5

// calcRestorePlan plans a restore and checks the planned files' sizes.
func (r *Replica) calcRestorePlan(ctx context.Context, opt RestoreOptions) ([]*ltx.FileInfo, error) {
	plan, err := CalcRestorePlan(ctx, r.Client, opt.TXID, opt.Timestamp, r.Logger())
	if errors.Is(err, ErrTxNotAvailable) {
		err = txNotAvailableError(ctx, r.Client, opt)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot calc restore plan: %w", err)
	}
	for _, info := range plan {
		if info.Size < ltx.HeaderSize {
			return nil, fmt.Errorf("invalid ltx file: level=%d min=%s max=%s has size %d bytes (minimum %d)", info.Level, info.MinTXID, info.MaxTXID, info.Size, ltx.HeaderSize)
		}
	}
	return plan, nil
}

func (r *Replica) outputDirPerm() internal.Perm {
	if r.db != nil {
		if fi := r.db.DirInfo(); fi != nil {
			return internal.PermOf(fi)
		}
	}
	return internal.DefaultDirPerm
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

		// A plan that stops where no listed file covers the next TXID, with
		// later files listed, ran into a hole. The listings were taken
		// while files moved between levels: plan again. A plan by time may
		// stop short where only files too new for it continue.
		if txID == 0 && len(plan) > 0 && !coveredPast(cursors, cur) {
			for _, c := range cursors {
				if c.pending != nil && c.pending.MinTXID > cur+1 {
					return nil, fmt.Errorf("%w: have up to %s but next file starts at %s (gap before %s)", errNonContiguous, cur, c.pending.MinTXID,
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
	skipped  ltx.TXID      // highest MaxTXID of the ineligible items passed over
}

// coveredPast reports whether a file the plan passed over as ineligible
// (too new) covers cur+1.
func coveredPast(cursors []*planCursor, cur ltx.TXID) bool {
	for _, c := range cursors {
		if c.skipped > cur {
			return true
		}
	}
	return false
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
		if item.MaxTXID <= cur {
			continue
		} else if !c.eligible(item) {
			c.skipped = max(c.skipped, item.MaxTXID)
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

// restorePlan applies the plan's files, in order, to a database at outputPath,
// and returns the last one's link for follow mode. The database is checked
// (mode) before it is placed, so that a failed or interrupted check leaves
// no output; with followTXID, the -txid sidecar is written first too, so
// that a follower that dies right after placing it can resume.
func restorePlan(ctx context.Context, client ReplicaClient, plan []*ltx.FileInfo, outputPath string, parallelism int, mode IntegrityCheckMode, followTXID ltx.TXID) (_ chainLink, err error) {
	tmpPath := outputPath + ".tmp"
	f, err := openRestoreTemp(tmpPath)
	if err != nil {
		return chainLink{}, fmt.Errorf("create restore file: %w", err)
	}
	w := &restoreWriter{f: f, direct: openDirect(tmpPath)}
	defer func() {
		w.closeDirect()
		removeIfSameFile(tmpPath, f) // before the lock goes with the descriptor
		_ = f.Close()
	}()

	readCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	rdrs, cleanup := openPlanReaders(readCtx, client, plan, filepath.Dir(outputPath), parallelism)
	defer cleanup()

	// Each file is applied in turn straight into the output: the snapshot
	// as one sequential stream, later files page by page at their offsets.
	a := newPageApplier(w)
	for i, rd := range rdrs {
		if err := a.apply(rd, plan[i]); err != nil {
			cancel()
			info := plan[i]
			cause := NewLTXError("apply", LTXFilePath("", info.Level, info.MinTXID, info.MaxTXID), info.Level, uint64(info.MinTXID), uint64(info.MaxTXID), err)
			// The caller's context, not readCtx (cancelled just above):
			// a caller that gave up gets no second download.
			return chainLink{}, diagnoseRestoreError(ctx, client, plan[i:i+1], cause)
		}
		// Closed once applied: a long plan would otherwise hold a
		// descriptor per file.
		_ = rd.Close()
	}
	w.closeDirect()
	if err := f.Truncate(int64(a.commit) * int64(a.pageSize)); err != nil {
		return chainLink{}, fmt.Errorf("truncate restore file: %w", err)
	} else if err := f.Sync(); err != nil {
		return chainLink{}, fmt.Errorf("sync restore file: %w", err)
	}
	if err := checkIntegrity(ctx, tmpPath, mode); err != nil {
		return chainLink{}, fmt.Errorf("post-restore integrity check: %w", err)
	}
	// Placed while still locked: another restore cannot truncate it first.
	return a.prev, placeRestored(tmpPath, outputPath, followTXID)
}

// removeIfSameFile removes path if it is still f's file, not one another
// restore created there after this one placed or removed f's.
func removeIfSameFile(path string, f *os.File) {
	held, err := f.Stat()
	if err != nil {
		return
	}
	if now, err := os.Stat(path); err == nil && os.SameFile(held, now) {
		_ = os.Remove(path)
	}
}

// moveRestoredIntoPlace renames a complete restored database to outputPath,
// which did not exist when the restore began. A -wal, -journal or -shm file
// still beside that path belongs to a database that was there before (a
// crashed application or follower), and SQLite would replay its frames or
// pages into the restored file at the first open; a -txid sidecar would
// name another state. They are removed first, unless a database appeared at
// outputPath during the restore: its -wal may hold its commits, so then
// nothing is removed or replaced and the restore fails.
func moveRestoredIntoPlace(tmpPath, outputPath string) error {
	return placeRestored(tmpPath, outputPath, 0)
}

// placeRestored is moveRestoredIntoPlace that, with followTXID, also records
// the follower's position. -txid is written only after the rename, so a
// TXID in it always names an output that is there (code written for
// upstream polls it); -txid.next, written before the rename, lets a
// follower stopped between the two resume (see adoptPlacedTXID).
func placeRestored(tmpPath, outputPath string, followTXID ltx.TXID) error {
	if _, err := os.Lstat(outputPath); err == nil {
		return outputCreatedError(outputPath, os.ErrExist)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("check restore output %s: %w", outputPath, err)
	}
	for _, p := range []string{outputPath + "-wal", outputPath + "-journal", outputPath + "-shm", TXIDPath(outputPath), nextTXIDPath(outputPath)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove stale %s beside the restore output: %w", p, err)
		}
	}
	if followTXID != 0 {
		if err := writeTXID(nextTXIDPath(outputPath), followTXID); err != nil {
			return err
		}
	}
	crashPoint("restore-placing")
	placed, err := renameRestored(tmpPath, outputPath)
	if err != nil {
		if !placed && followTXID != 0 {
			_ = os.Remove(nextTXIDPath(outputPath)) // not ours to leave beside another's file
		}
		return err
	}
	crashPoint("restore-placed")
	if followTXID == 0 {
		return nil
	}
	return WriteTXIDFile(outputPath, followTXID)
}

// renameRestored renames the restored database to outputPath, which must
// not exist, and makes the rename durable. placed reports an output in
// place even when a later step failed.
func renameRestored(tmpPath, outputPath string) (placed bool, err error) {
	if err := renameNoReplace(tmpPath, outputPath); errors.Is(err, os.ErrExist) {
		return false, outputCreatedError(outputPath, err)
	} else if err != nil {
		return errors.Is(err, errOtherNameLeft), fmt.Errorf("rename restore file to %s: %w", outputPath, err)
	}
	if err := restoreSyncDir(filepath.Dir(outputPath)); err != nil {
		return true, fmt.Errorf("restored to %s, but sync its directory: %w", outputPath, err)
	}
	return true, nil
}

// restoreSyncDir makes a placed output durable; tests replace it.
var restoreSyncDir = internal.SyncDir

// errOtherNameLeft: the output is in place, by a hard link, but the
// temporary name could not be removed.
var errOtherNameLeft = errors.New("restored database left under its temporary name too")

// outputCreatedError reports a file that another process created at the
// output path while the restore ran; it matches os.ErrExist.
func outputCreatedError(outputPath string, err error) error {
	return fmt.Errorf("cannot restore to %s: another process created it during the restore; it was left as it is and the restored database discarded: %w", outputPath, err)
}

// linkNoReplace places oldpath at newpath with a hard link, which fails if
// newpath exists, then removes oldpath. On a file system without hard links
// it checks newpath and renames: only a creation between the two replaces.
func linkNoReplace(oldpath, newpath string) error {
	err := os.Link(oldpath, newpath)
	if err == nil {
		// A second name left would let a later restore's truncate of the
		// temporary file empty the output.
		if err := os.Remove(oldpath); err != nil {
			return fmt.Errorf("restored to %s, but remove its other name: %w: %w", newpath, errOtherNameLeft, err)
		}
		return nil
	} else if errors.Is(err, os.ErrExist) {
		return err
	}
	if _, serr := os.Lstat(newpath); serr == nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: os.ErrExist}
	} else if !errors.Is(serr, os.ErrNotExist) {
		return serr
	}
	return os.Rename(oldpath, newpath)
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
	sqldb, err := sql.Open("sqlite", sqliteFileURI(path, ""))
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

// databaseFiles returns a database's file and the files SQLite keeps
// beside it.
func databaseFiles(path string) []string {
	return []string{path, path + "-wal", path + "-shm", path + "-journal"}
}

func removeDatabaseFiles(path string) {
	for _, p := range databaseFiles(path) {
		_ = os.Remove(p)
	}
}
