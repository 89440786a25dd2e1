// Compaction: the levels and their intervals, and the Compactor that merges
// a level's files into the next level up on the replica.

package litestream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/superfly/ltx"
)

// CompactionLevel is a level that level-1 files are merged into every
// Interval, at wall-clock-aligned boundaries (UTC).
type CompactionLevel struct {
	Level    int
	Interval time.Duration
}

// PrevCompactionAt returns the latest interval boundary at or before now.
func (lvl *CompactionLevel) PrevCompactionAt(now time.Time) time.Time {
	return now.UTC().Truncate(lvl.Interval)
}

// NextCompactionAt returns the first interval boundary after now.
func (lvl *CompactionLevel) NextCompactionAt(now time.Time) time.Time {
	return lvl.PrevCompactionAt(now).Add(lvl.Interval)
}

// CompactionLevels lists the compaction levels, index = level number, L0
// first. The snapshot level (9) is not listed: Store.SnapshotInterval sets it.
type CompactionLevels []*CompactionLevel

// DefaultCompactionLevels are L0, L1 every 30s, L2 every 5m, L3 every hour.
var DefaultCompactionLevels = CompactionLevels{
	{Level: 0},
	{Level: 1, Interval: 30 * time.Second},
	{Level: 2, Interval: 5 * time.Minute},
	{Level: 3, Interval: time.Hour},
}

// Level returns the configured level; the snapshot level is an error.
func (a CompactionLevels) Level(level int) (*CompactionLevel, error) {
	if level == SnapshotLevel {
		return nil, fmt.Errorf("invalid argument, snapshot level")
	} else if level < 0 || level > a.MaxLevel() {
		return nil, fmt.Errorf("level out of bounds: %d", level)
	}
	return a[level], nil
}

// MaxLevel returns the highest configured level number.
func (a CompactionLevels) MaxLevel() int { return len(a) - 1 }

// Validate checks that the levels start at L0, are numbered by position,
// stay below the snapshot level and have intervals above L0.
func (a CompactionLevels) Validate() error {
	if len(a) == 0 {
		return fmt.Errorf("at least one compaction level is required")
	}
	for i, lvl := range a {
		switch {
		case lvl == nil:
			return fmt.Errorf("compaction level %d is nil", i)
		case lvl.Level != i:
			return fmt.Errorf("compaction level number out of order: %d, expected %d", lvl.Level, i)
		case lvl.Level > SnapshotLevel-1:
			return fmt.Errorf("compaction level cannot exceed %d", SnapshotLevel-1)
		case lvl.Level == 0 && lvl.Interval != 0:
			return fmt.Errorf("cannot set interval on compaction level zero")
		case lvl.Level != 0 && lvl.Interval <= 0:
			return fmt.Errorf("interval required for level %d", lvl.Level)
		}
	}
	return nil
}

// IsValidLevel reports whether level is configured or the snapshot level.
func (a CompactionLevels) IsValidLevel(level int) bool {
	return level == SnapshotLevel || (level >= 0 && level < len(a))
}

// PrevLevel returns the level compacted into level (-1 for L0).
func (a CompactionLevels) PrevLevel(level int) int {
	if level == SnapshotLevel {
		return a.MaxLevel()
	}
	return level - 1
}

// NextLevel returns the level that level is compacted into (-1 for L9).
func (a CompactionLevels) NextLevel(level int) int {
	switch level {
	case SnapshotLevel:
		return -1
	case a.MaxLevel():
		return SnapshotLevel
	default:
		return level + 1
	}
}

// Compactor merges a level's new files into one file at the next level and
// applies retention on the replica.
type Compactor struct {
	// VerifyCompaction checks the destination level for gaps after writing.
	VerifyCompaction bool

	// RetentionEnabled lets retention delete remote files. Default true.
	RetentionEnabled bool

	// CompactionVerifyErrorCounter, if set, counts failed verifications.
	CompactionVerifyErrorCounter prometheus.Counter

	// LocalFileOpener opens a local copy of a file, preferred over the
	// replica's; an os.ErrNotExist error falls back to the replica.
	LocalFileOpener func(level int, minTXID, maxTXID ltx.TXID) (io.ReadCloser, error)

	// LocalFileDeleter removes a local copy of a file that retention deletes.
	LocalFileDeleter func(level int, minTXID, maxTXID ltx.TXID) error

	// CacheGetter and CacheSetter cache the newest file of each level.
	CacheGetter func(level int) (*ltx.FileInfo, bool)
	CacheSetter func(level int, info *ltx.FileInfo)

	client ReplicaClient
	logger *slog.Logger

	// onCompacted, if set, is told of each file a compaction writes.
	onCompacted func(*ltx.FileInfo)

	// localCopy, if set, returns where to keep a local copy of an output
	// (nil: none), so that the next level's compaction need not download it.
	localCopy func(level int, minTXID, maxTXID ltx.TXID) *localCopy

	// refillL0, if set, reports whether local L0 files hold TXIDs in a
	// range the replica's L0 lacks, and has them uploaded again.
	refillL0 func(minTXID, maxTXID ltx.TXID) bool

	// spillDir takes a large output's page index; "" is os.TempDir.
	spillDir string

	// optMu guards VerifyCompaction and RetentionEnabled while Store's
	// setters change them under running compactions.
	optMu sync.Mutex

	// levelMu serializes compactions into each level: two at once would
	// both start after the level's newest file and write overlapping files,
	// which the next level's compactions take for a gap.
	levelMu [SnapshotLevel + 1]sync.Mutex

	// gapMu guards gaps: per destination level, the gap a compaction
	// waits on, so that it is logged when it appears and when it closes
	// rather than on every try.
	gapMu sync.Mutex
	gaps  map[int]compactionGap
}

// compactionGap is a destination level's next TXID and the TXID the
// source level's next listed file starts at instead.
type compactionGap struct{ want, next ltx.TXID }

func (c *Compactor) options() (verify, retention bool) {
	c.optMu.Lock()
	defer c.optMu.Unlock()
	return c.VerifyCompaction, c.RetentionEnabled
}

func (c *Compactor) setOptions(verify, retention bool) {
	c.optMu.Lock()
	defer c.optMu.Unlock()
	c.VerifyCompaction, c.RetentionEnabled = verify, retention
}

// NewCompactor returns a compactor for client. A nil logger uses the default.
func NewCompactor(client ReplicaClient, logger *slog.Logger) *Compactor {
	if logger == nil {
		logger = slog.Default()
	}
	return &Compactor{
		RetentionEnabled: true,
		client:           client,
		logger:           logger.With(LogKeySubsystem, LogSubsystemCompactor),
	}
}

// MaxLTXFileInfo returns the newest file at a level, from the cache if set.
func (c *Compactor) MaxLTXFileInfo(ctx context.Context, level int) (ltx.FileInfo, error) {
	if c.CacheGetter != nil {
		if info, ok := c.CacheGetter(level); ok {
			return *info, nil
		}
	}
	var max ltx.FileInfo
	if c.client == nil {
		return max, errNoReplicaClient
	}
	itr, err := c.client.LTXFiles(ctx, level, 0, false)
	if err != nil {
		return max, err
	}
	defer func() { _ = itr.Close() }()
	for itr.Next() {
		if item := itr.Item(); item.MaxTXID > max.MaxTXID {
			max = *item
		}
	}
	if err := itr.Close(); err != nil {
		return max, err
	}
	if c.CacheSetter != nil && max.MaxTXID > 0 {
		c.CacheSetter(level, &max)
	}
	return max, nil
}

// maxCompactionInputs bounds the files one merge reads at once. Each input
// holds an open file or stream and a few pages of buffers, so a backlog
// (say a day of L0 files piled up while the replica was unreachable) is
// merged into several files rather than exhausting file descriptors and
// memory on one merge that would fail on every retry.
var maxCompactionInputs = 256

// Compact merges every file of level dstLevel-1 past the destination's
// newest file into new files at dstLevel, one for each maxCompactionInputs
// inputs, and returns the last.
func (c *Compactor) Compact(ctx context.Context, dstLevel int) (*ltx.FileInfo, error) {
	if dstLevel < 1 || dstLevel > SnapshotLevel {
		return nil, fmt.Errorf("compact into L%d: levels 1 to %d only", dstLevel, SnapshotLevel)
	}
	c.levelMu[dstLevel].Lock()
	defer c.levelMu[dstLevel].Unlock()
	srcLevel := dstLevel - 1
	prev, err := c.MaxLTXFileInfo(ctx, dstLevel)
	if err != nil {
		return nil, fmt.Errorf("cannot determine L%d max: %w", dstLevel, err)
	}

	infos, err := listFrom(ctx, c.client, srcLevel, prev.MaxTXID+1)
	if err != nil {
		return nil, fmt.Errorf("list L%d: %w", srcLevel, err)
	}
	infos = dropContained(infos)
	if len(infos) == 0 {
		return nil, ErrNoCompaction
	}
	n, err := c.compactionInputs(ctx, dstLevel, prev, infos)
	if err != nil {
		return nil, err
	}
	infos = infos[:n]

	var info *ltx.FileInfo
	var link chainLink
	for len(infos) > 0 {
		n := min(len(infos), maxCompactionInputs)
		if info, link, err = c.merge(ctx, dstLevel, infos[:n], link); err != nil {
			return nil, err
		}
		if c.onCompacted != nil {
			c.onCompacted(info)
		}
		infos = infos[n:]
	}

	if verify, _ := c.options(); verify {
		if err := c.VerifyLevelConsistency(ctx, dstLevel); err != nil {
			c.logger.Warn("compaction verification failed", "level", dstLevel, "error", err)
			if c.CompactionVerifyErrorCounter != nil {
				c.CompactionVerifyErrorCounter.Inc()
			}
		}
	}
	return info, nil
}

// dropContained removes, from files sorted by MinTXID then MaxTXID, each
// whose TXID range another one contains. Both exist when a write reported
// as failed landed after its retry had listed without it (or a paused
// lease holder's compaction landed beside the new holder's): the wider
// file holds every change of the narrower, and merging both would be
// taken for a gap.
func dropContained(infos []*ltx.FileInfo) []*ltx.FileInfo {
	out := make([]*ltx.FileInfo, 0, len(infos))
	for _, info := range infos {
		for n := len(out); n > 0 && out[n-1].MinTXID >= info.MinTXID && out[n-1].MaxTXID <= info.MaxTXID; n = len(out) {
			out = out[:n-1]
		}
		if n := len(out); n > 0 && out[n-1].MaxTXID >= info.MaxTXID {
			continue // starts no earlier (sorted) and ends no later
		}
		out = append(out, info)
	}
	return out
}

// compactionInputs checks that infos, the source files past the
// destination's newest file prev, continue the destination and each other
// with no gap, and returns how many of them to compact. A gap is a file
// missing from the listing (or never written); compacting past it would
// leave a hole in the destination that restores cannot cross, so the
// compaction waits, with an ErrCompactionGap error, for the file to be
// listed. A hole between inputs that validStart would cross ends the
// inputs there: the next compaction starts after it.
func (c *Compactor) compactionInputs(ctx context.Context, dstLevel int, prev ltx.FileInfo, infos []*ltx.FileInfo) (int, error) {
	first := infos[0]
	ok, err := c.validStart(ctx, dstLevel, prev, first)
	if err != nil {
		return 0, err
	} else if !ok {
		return 0, c.gapError(dstLevel, first, fmt.Errorf("%w: L%d ends at TXID %s, the next listed L%d file starts at %s",
			ErrCompactionGap, dstLevel, prev.MaxTXID, first.Level, first.MinTXID), compactionGap{want: prev.MaxTXID + 1, next: first.MinTXID})
	}
	for i := 1; i < len(infos); i++ {
		before, info := infos[i-1], infos[i]
		if info.MinTXID == before.MaxTXID+1 {
			continue
		}
		if ok, err := c.crossableHole(ctx, dstLevel, before.MaxTXID, info); err != nil {
			return 0, err
		} else if ok {
			c.setGap(dstLevel, compactionGap{}, nil)
			return i, nil
		}
		kind := "non-contiguous"
		if info.MinTXID <= before.MaxTXID {
			kind = "overlapping"
		}
		return 0, c.gapError(dstLevel, info, fmt.Errorf("%w: %s L%d files: one ending at TXID %s is followed by one starting at %s",
			ErrCompactionGap, kind, info.Level, before.MaxTXID, info.MinTXID), compactionGap{want: before.MaxTXID + 1, next: info.MinTXID})
	}
	c.setGap(dstLevel, compactionGap{}, nil)
	return len(infos), nil
}

// gapError returns err as the error of the file after a gap, and logs the
// gap if it is new.
func (c *Compactor) gapError(dstLevel int, info *ltx.FileInfo, err error, gap compactionGap) error {
	if x, ok := c.client.(*replicaIndex); ok {
		x.drop(info.Level) // the missing file may be there: list again next time
	}
	ltxErr := NewLTXError("compact", LTXFilePath("", info.Level, info.MinTXID, info.MaxTXID), info.Level, uint64(info.MinTXID), uint64(info.MaxTXID), err)
	c.setGap(dstLevel, gap, ltxErr)
	return ltxErr
}

// validStart reports whether a compaction may start with first: right after
// the destination's newest file, into an empty destination at TXID 1 or
// where a snapshot reaches (a restore can start there) and, into L1, no
// local L0 copy can fill the TXIDs before it, or across a hole
// crossableHole allows.
func (c *Compactor) validStart(ctx context.Context, dstLevel int, prev ltx.FileInfo, first *ltx.FileInfo) (bool, error) {
	switch {
	case first.MinTXID == prev.MaxTXID+1:
		return true, nil
	case first.MinTXID <= prev.MaxTXID:
		return false, nil
	case prev.MaxTXID > 0:
		return c.crossableHole(ctx, dstLevel, prev.MaxTXID, first)
	case dstLevel == 1 && c.refillL0 != nil && c.refillL0(1, first.MinTXID-1):
		// Into an empty L1 too, local L0 copies that can fill the TXIDs
		// before first are waited on, though a snapshot reaches it.
		return false, nil
	}
	return c.snapshotReaches(ctx, first)
}

// crossableHole reports whether the TXIDs after after and before next, which
// the source level lacks, may be left out of the destination: a snapshot
// covers them, so restores start there, and nothing will fill them (files
// removed from the replica, after which the DB went on from the snapshot's).
// Into L1, a hole that local L0 copies can fill is waited on while they are
// uploaded again; a Compactor without the DB's local files (NewCompactor)
// never leaves one out there. Nothing makes a lost L1 file again, so holes
// into L2 and up are left out when a snapshot covers them.
func (c *Compactor) crossableHole(ctx context.Context, dstLevel int, after ltx.TXID, next *ltx.FileInfo) (bool, error) {
	if dstLevel == 1 && (c.refillL0 == nil || c.refillL0(after+1, next.MinTXID-1)) {
		return false, nil
	}
	return c.snapshotReaches(ctx, next)
}

// snapshotReaches reports whether a snapshot reaches the TXID before first.
func (c *Compactor) snapshotReaches(ctx context.Context, first *ltx.FileInfo) (bool, error) {
	snapshots, err := listFrom(ctx, c.client, SnapshotLevel, 0)
	if err != nil {
		return false, fmt.Errorf("list snapshots: %w", err)
	}
	for _, snap := range snapshots {
		if snap.MaxTXID+1 >= first.MinTXID {
			return true, nil
		}
	}
	return false, nil
}

// setGap records the gap a destination level waits on (err nil: none) and
// logs when it appears, moves or closes.
func (c *Compactor) setGap(level int, gap compactionGap, err error) {
	c.gapMu.Lock()
	defer c.gapMu.Unlock()
	prev, waiting := c.gaps[level]
	switch {
	case err == nil && waiting:
		delete(c.gaps, level)
		c.logger.Info("compaction resumed", "level", level, "txid", prev.want)
	case err != nil && (!waiting || prev != gap):
		if c.gaps == nil {
			c.gaps = make(map[int]compactionGap)
		}
		c.gaps[level] = gap
		c.logger.Warn("compaction waiting for a missing file", append(ltxErrorAttrs(err), "dst_level", level, "want_txid", gap.want, "error", err)...)
	}
}

// merge writes one file at dstLevel from infos, which must continue link,
// the last input of the merge before; it returns the new link.
func (c *Compactor) merge(ctx context.Context, dstLevel int, infos []*ltx.FileInfo, link chainLink) (*ltx.FileInfo, chainLink, error) {
	minTXID, maxTXID := infos[0].MinTXID, infos[len(infos)-1].MaxTXID
	rdrs := make([]io.Reader, 0, len(infos))
	for _, info := range infos {
		rc, err := c.openSource(ctx, info)
		if err != nil {
			return nil, link, err
		}
		defer func() { _ = rc.Close() }()
		br := bufio.NewReader(rc)
		rdrs = append(rdrs, br)
		if link, err = checkSourceHeader(br, info, link); err != nil {
			return nil, link, fmt.Errorf("compact L%d: %w", dstLevel, err)
		}
	}

	var local *localCopy
	if c.localCopy != nil {
		local = c.localCopy(dstLevel, minTXID, maxTXID)
	}
	info, err := writeMerged(ctx, c.client, dstLevel, minTXID, maxTXID, rdrs, c.spillDir, local)
	if err != nil {
		// Name the input at fault, if one is.
		if ctx.Err() == nil {
			if verr := c.verifyLocalSources(infos); verr != nil {
				return nil, link, fmt.Errorf("compact L%d: %w", dstLevel, verr)
			} else if verr := verifyLTXFiles(ctx, c.client, infos); verr != nil {
				return nil, link, fmt.Errorf("compact L%d: %w", dstLevel, verr)
			}
		}
		return nil, link, err
	}
	if c.CacheSetter != nil {
		c.CacheSetter(dstLevel, info)
	}
	return info, link, nil
}

// verifyLocalSources returns an error naming the first local copy of an
// input that is corrupt or does not hold what its name says.
func (c *Compactor) verifyLocalSources(infos []*ltx.FileInfo) error {
	if c.LocalFileOpener == nil {
		return nil
	}
	for _, info := range infos {
		rc, err := c.LocalFileOpener(info.Level, info.MinTXID, info.MaxTXID)
		if err != nil {
			continue // read from the replica, verified there
		}
		hdr, _, err := verifyLTX(bufio.NewReader(rc))
		_ = rc.Close()
		if err == nil {
			err = checkLTXName(hdr, info)
		}
		if err != nil {
			return NewLTXError("verify", "local "+LTXFilePath("", info.Level, info.MinTXID, info.MaxTXID), info.Level, uint64(info.MinTXID), uint64(info.MaxTXID), err)
		}
	}
	return nil
}

// checkSourceHeader peeks at a source file's header and checks that it
// continues the source before it, so that another database's file is not
// merged in. A header that cannot be read is left to the merge to report.
func checkSourceHeader(br *bufio.Reader, info *ltx.FileInfo, prev chainLink) (chainLink, error) {
	b, err := br.Peek(ltx.HeaderSize)
	if err != nil {
		return chainLink{}, nil
	}
	var hdr ltx.Header
	if err := hdr.UnmarshalBinary(b); err != nil {
		return chainLink{}, nil
	}
	if err := prev.continues(info.Level, hdr); err != nil {
		return prev, NewLTXError("verify", LTXFilePath("", info.Level, info.MinTXID, info.MaxTXID), info.Level, uint64(info.MinTXID), uint64(info.MaxTXID), err)
	}
	return chainLink{level: info.Level, hdr: hdr}, nil
}

// openSource opens a source file, preferring the local copy.
func (c *Compactor) openSource(ctx context.Context, info *ltx.FileInfo) (io.ReadCloser, error) {
	if c.LocalFileOpener != nil {
		rc, err := c.LocalFileOpener(info.Level, info.MinTXID, info.MaxTXID)
		if err == nil {
			return rc, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open local L%d %s-%s: %w", info.Level, info.MinTXID, info.MaxTXID, err)
		}
	}
	rc, err := c.client.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
	if err != nil {
		return nil, remoteLTXError("open", info.Level, info.MinTXID, info.MaxTXID, err)
	}
	return newResumableReader(ctx, c.client, info, rc), nil
}

// writeMerged streams the ltx merge of rdrs into a new replica file.
// A local copy, if given, receives the same bytes and is kept only if the
// upload succeeds.
func writeMerged(ctx context.Context, client ReplicaClient, level int, minTXID, maxTXID ltx.TXID, rdrs []io.Reader, spillDir string, local *localCopy) (*ltx.FileInfo, error) {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		bw := getEncodeWriter(local.writer(pw))
		defer putEncodeWriter(bw)
		err := compactLTX(ctx, bw, rdrs, spillDir)
		if err == nil {
			err = bw.Flush()
		}
		if err == nil {
			// In place before the upload can finish (it waits for the end
			// of the pipe): from then on the replica's listing names the
			// file, and a higher level's compaction may pick it.
			local.commit()
		}
		_ = pw.CloseWithError(err)
	}()

	info, err := client.WriteLTXFile(ctx, level, minTXID, maxTXID, pr)
	if err != nil {
		_ = pr.CloseWithError(err) // unblock the merge if the write stopped early
	} else {
		_ = pr.Close()
	}
	<-done
	if err != nil {
		local.discard()
		// Upstream's words exactly, "write ltx file: <cause>", which
		// programs match; the file is named after the cause.
		e := remoteLTXError("write", level, minTXID, maxTXID, fmt.Errorf("%w (%s)", err, LTXFilePath("", level, minTXID, maxTXID)))
		e.Path = ""
		return nil, e
	}
	return info, nil
}

// VerifyLevelConsistency checks that a level's files follow each other with
// no gap or overlap.
func (c *Compactor) VerifyLevelConsistency(ctx context.Context, level int) error {
	infos, err := listFrom(ctx, c.client, level, 0)
	if err != nil {
		return fmt.Errorf("list L%d: %w", level, err)
	}
	for i := 1; i < len(infos); i++ {
		prev, curr := infos[i-1], infos[i]
		if want := prev.MaxTXID + 1; curr.MinTXID > want {
			return fmt.Errorf("TXID gap detected: prev.MaxTXID=%s, next.MinTXID=%s (expected %s) at L%d", prev.MaxTXID, curr.MinTXID, want, level)
		} else if curr.MinTXID < want {
			return fmt.Errorf("TXID overlap detected: prev.MaxTXID=%s, next.MinTXID=%s at L%d", prev.MaxTXID, curr.MinTXID, level)
		}
	}
	return nil
}

// Compact merges the level below dstLevel into it on the replica. After an
// L1 compaction it applies L0 retention, logging its errors.
func (db *DB) Compact(ctx context.Context, dstLevel int) (*ltx.FileInfo, error) {
	if err := db.checkOpenable(); err != nil {
		return nil, err // a closed DB's replica may be another writer's by now
	}
	db.syncCompactorOptions()
	info, err := db.compactor.Compact(ctx, dstLevel)
	if err != nil {
		if !errors.Is(err, ErrNoCompaction) && !errors.Is(err, ErrCompactionGap) {
			// A failed write may still have landed: list the level again
			// rather than write a file overlapping it.
			db.dropMaxLTXFileInfo(dstLevel)
		}
		return nil, err
	}
	if dstLevel == 1 {
		if err := db.EnforceL0RetentionByTime(ctx); err != nil {
			db.logger().Error("l0 retention after compaction", "error", err)
		}
	}
	return info, nil
}

// setCompactorOptions runs set, which assigns VerifyCompaction or
// RetentionEnabled, under the lock the compactor reads its copies with, and
// copies them.
func (db *DB) setCompactorOptions(set func()) {
	db.lazyInit()
	c := db.compactor
	c.optMu.Lock()
	defer c.optMu.Unlock()
	set()
	c.VerifyCompaction, c.RetentionEnabled = db.VerifyCompaction, db.RetentionEnabled
}

// l0Retention reads L0Retention under the lock Store.SetL0Retention writes
// it with, as the background retention monitor runs alongside the setter.
func (db *DB) l0Retention() (d time.Duration) {
	db.setCompactorOptions(func() { d = db.L0Retention })
	return d
}

// syncCompactorOptions picks up VerifyCompaction and RetentionEnabled as
// assigned after Open.
func (db *DB) syncCompactorOptions() { db.setCompactorOptions(func() {}) }
