// replica_index.go keeps a replica's file listing in memory so that
// compaction and retention decide from what this process wrote and deleted
// instead of listing the backend on every pass. LIST requests are most of an
// object store's bill; with the index a busy database lists each level once
// at open and then about once per refresh interval.

package litestream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/superfly/ltx"
)

// DefaultReplicaIndexRefresh is how long a level's in-memory listing is
// trusted before the next use lists the backend again. Files removed or
// added behind the library's back are noticed at that listing.
const DefaultReplicaIndexRefresh = 6 * time.Hour

// replicaIndex is a ReplicaClient that serves LTXFiles (without metadata)
// from memory. Writes and deletes go to the backend and update the index
// when they succeed; a failed write or delete, or a read that finds a file
// missing, drops the level so that the next listing asks the backend.
type replicaIndex struct {
	ReplicaClient // the backend, through the lease check when there is a Leaser

	base   ReplicaClient // the Replica's Client it was made for
	fenced bool          // ReplicaClient checks the lease

	refresh  func() time.Duration
	logger   func() *slog.Logger
	onChange func(level int, missing, added, listed []*ltx.FileInfo)

	mu     sync.Mutex
	levels map[int]*indexedLevel

	// listsWrittenTime is learned from the first file this process wrote
	// and then listed at its size: 1 when the backend lists the time the
	// write returned (the header's), -1 when it lists a time of its own
	// (S3's LastModified). Only where it lists the written time can a
	// file replaced by one of the same size be told from it.
	listsWrittenTime int
}

// indexedLevel is one level's files in (MinTXID, MaxTXID) order.
type indexedLevel struct {
	files    []*ltx.FileInfo
	listedAt time.Time
	loaded   bool
	version  uint64 // bumped by every change, so a listing that raced one is not kept
	inflight int    // writes and deletes under way: a listing now may show them or not
	previous []*ltx.FileInfo
	hadPrev  bool // previous holds what the index believed before it was dropped

	// uncertain holds the ranges of failed writes and deletes, which may
	// or may not have taken effect: the next listing decides, and does not
	// report them as changed by someone else.
	uncertain map[[2]ltx.TXID]bool

	// written holds the ranges whose known entry came from this process's
	// write since the level was last listed: a listing may give such a
	// file the backend's time, not the header's, so only its size tells
	// whether it was replaced.
	written map[[2]ltx.TXID]bool
}

// known returns what the index believes the level holds, loaded or not.
func (lvl *indexedLevel) known() ([]*ltx.FileInfo, bool) {
	if lvl.loaded {
		return lvl.files, true
	}
	return lvl.previous, lvl.hadPrev
}

func (lvl *indexedLevel) setKnown(files []*ltx.FileInfo) {
	if lvl.loaded {
		lvl.files = files
	} else if lvl.hadPrev {
		lvl.previous = files
	}
}

func (lvl *indexedLevel) markUncertain(minTXID, maxTXID ltx.TXID) {
	if lvl.uncertain == nil {
		lvl.uncertain = make(map[[2]ltx.TXID]bool)
	}
	lvl.uncertain[[2]ltx.TXID{minTXID, maxTXID}] = true
}

func (lvl *indexedLevel) certain(files []*ltx.FileInfo) []*ltx.FileInfo {
	return slices.DeleteFunc(files, func(f *ltx.FileInfo) bool { return lvl.uncertain[[2]ltx.TXID{f.MinTXID, f.MaxTXID}] })
}

func newReplicaIndex(client ReplicaClient, refresh func() time.Duration, logger func() *slog.Logger) *replicaIndex {
	return &replicaIndex{ReplicaClient: client, refresh: refresh, logger: logger, levels: make(map[int]*indexedLevel)}
}

func (x *replicaIndex) level(level int) *indexedLevel {
	lvl := x.levels[level]
	if lvl == nil {
		lvl = &indexedLevel{}
		x.levels[level] = lvl
	}
	return lvl
}

// indexKey marks a context whose listings may come from the index.
type indexKey struct{}

// withReplicaIndex returns ctx marked for the library's background work
// (sync, compaction and retention monitors), whose listings the index
// serves. Calls a program makes itself, with its own context, always list
// the backend, as upstream's do, and refresh the index with what they find.
func withReplicaIndex(ctx context.Context) context.Context {
	return context.WithValue(ctx, indexKey{}, true)
}

func indexAllowed(ctx context.Context) bool {
	ok, _ := ctx.Value(indexKey{}).(bool)
	return ok
}

// LTXFiles serves a background listing without metadata from memory while
// it is fresh. Other listings ask the backend.
func (x *replicaIndex) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	if useMetadata {
		return x.ReplicaClient.LTXFiles(ctx, level, seek, useMetadata)
	}
	x.mu.Lock()
	lvl := x.level(level)
	if indexAllowed(ctx) && lvl.loaded && time.Since(lvl.listedAt) < x.refresh() {
		files := filesFrom(lvl.files, seek)
		x.mu.Unlock()
		return ltx.NewFileInfoSliceIterator(files), nil
	}
	version := lvl.version
	x.mu.Unlock()

	itr, err := x.ReplicaClient.LTXFiles(ctx, level, 0, false)
	if err != nil {
		return nil, err
	}
	listed, err := ltx.SliceFileIterator(itr)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(listed, compareFileInfo)

	x.mu.Lock()
	if lvl.version == version && lvl.inflight == 0 {
		x.compareLocked(level, lvl, listed)
		lvl.files, lvl.listedAt, lvl.loaded = listed, time.Now(), true
		lvl.previous, lvl.hadPrev, lvl.uncertain, lvl.written = nil, false, nil, nil
	}
	x.mu.Unlock()
	return ltx.NewFileInfoSliceIterator(filesFrom(listed, seek)), nil
}

// compareLocked reports files the backend lost or gained since the index
// last knew the level: someone else changed the replica.
func (x *replicaIndex) compareLocked(level int, lvl *indexedLevel, listed []*ltx.FileInfo) {
	known, ok := lvl.known()
	if !ok {
		return
	}
	missing := lvl.certain(fileDifference(known, listed))
	added := lvl.certain(fileDifference(listed, known))
	// A file replaced under the same name (a copy put back, another
	// writer) is a file lost and one added, though the TXIDs match.
	gone, replacing := x.replacedLocked(lvl, known, listed)
	missing, added = append(missing, gone...), append(added, replacing...)
	if len(missing) == 0 && len(added) == 0 {
		return
	}
	slices.SortFunc(missing, compareFileInfo)
	slices.SortFunc(added, compareFileInfo)
	attrs := []any{"level", level, "missing", len(missing), "added", len(added)}
	if len(gone) > 0 {
		attrs = append(attrs, "replaced", len(gone), "first_replaced", ltx.FormatFilename(gone[0].MinTXID, gone[0].MaxTXID))
	}
	if len(missing) > 0 {
		attrs = append(attrs, "first_missing", ltx.FormatFilename(missing[0].MinTXID, missing[0].MaxTXID))
	}
	if len(added) > 0 {
		attrs = append(attrs, "first_added", ltx.FormatFilename(added[0].MinTXID, added[0].MaxTXID))
	}
	x.logger().Warn("replica files changed outside this process", attrs...)
	if x.onChange != nil {
		x.onChange(level, missing, added, listed)
	}
}

// OpenLTXFile drops the level from the index when the file is missing.
func (x *replicaIndex) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	rc, err := x.ReplicaClient.OpenLTXFile(ctx, level, minTXID, maxTXID, offset, size)
	if errors.Is(err, os.ErrNotExist) {
		x.drop(level)
	}
	return rc, err
}

// WriteLTXFile records the stored file, or drops the level on failure: the
// write may have landed or not.
func (x *replicaIndex) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	return x.writeVia(ctx, x.ReplicaClient, level, minTXID, maxTXID, r)
}

// writeVia is WriteLTXFile through another client of the same backend
// (the replica's own Client, skipping a wrapper's per-call checks).
func (x *replicaIndex) writeVia(ctx context.Context, via ReplicaClient, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	x.begin(level)
	info, err := via.WriteLTXFile(ctx, level, minTXID, maxTXID, r)
	x.mu.Lock()
	defer x.mu.Unlock()
	lvl := x.level(level)
	lvl.inflight--
	if err != nil || info == nil {
		lvl.markUncertain(minTXID, maxTXID)
		x.dropLocked(lvl)
		return info, err
	}
	lvl.version++
	if files, ok := lvl.known(); ok {
		stored := *info
		stored.Level = level
		lvl.setKnown(insertFileInfo(files, &stored))
		if lvl.written == nil {
			lvl.written = make(map[[2]ltx.TXID]bool)
		}
		lvl.written[[2]ltx.TXID{minTXID, maxTXID}] = true
	}
	return info, nil
}

// DeleteLTXFiles removes the files from the index, or drops their levels on
// failure.
func (x *replicaIndex) DeleteLTXFiles(ctx context.Context, a []*ltx.FileInfo) error {
	for _, info := range a {
		x.begin(info.Level)
	}
	err := x.ReplicaClient.DeleteLTXFiles(ctx, a)
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, info := range a {
		lvl := x.level(info.Level)
		lvl.inflight--
		lvl.version++
		if err != nil {
			lvl.markUncertain(info.MinTXID, info.MaxTXID)
			x.dropLocked(lvl)
			continue
		}
		if files, ok := lvl.known(); ok {
			lvl.setKnown(slices.DeleteFunc(slices.Clone(files), func(f *ltx.FileInfo) bool {
				return f.MinTXID == info.MinTXID && f.MaxTXID == info.MaxTXID
			}))
		}
	}
	return err
}

// begin marks a change of level under way, so that no listing made while
// it runs is taken as the level's state.
func (x *replicaIndex) begin(level int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	lvl := x.level(level)
	lvl.version++
	lvl.inflight++
}

// DeleteAll forgets every level.
func (x *replicaIndex) DeleteAll(ctx context.Context) error {
	err := x.ReplicaClient.DeleteAll(ctx)
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, lvl := range x.levels {
		lvl.version++
		lvl.files, lvl.loaded, lvl.previous, lvl.hadPrev, lvl.uncertain, lvl.written = nil, false, nil, false, nil, nil
	}
	return err
}

// drop makes the next listing of level ask the backend, comparing what it
// finds with what the index believed.
func (x *replicaIndex) drop(level int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.dropLocked(x.level(level))
}

func (x *replicaIndex) dropLocked(lvl *indexedLevel) {
	lvl.version++
	if lvl.loaded {
		lvl.previous, lvl.hadPrev = lvl.files, true
	}
	lvl.files, lvl.loaded = nil, false
}

// dropAll makes every level list the backend at its next use.
func (x *replicaIndex) dropAll() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, lvl := range x.levels {
		x.dropLocked(lvl)
	}
}

func compareFileInfo(a, b *ltx.FileInfo) int {
	if a.MinTXID != b.MinTXID {
		return compareTXID(a.MinTXID, b.MinTXID)
	}
	return compareTXID(a.MaxTXID, b.MaxTXID)
}

func compareTXID(a, b ltx.TXID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// insertFileInfo puts info in order, replacing a file of the same range.
func insertFileInfo(files []*ltx.FileInfo, info *ltx.FileInfo) []*ltx.FileInfo {
	i, found := slices.BinarySearchFunc(files, info, compareFileInfo)
	if found {
		files = slices.Clone(files)
		files[i] = info
		return files
	}
	return slices.Insert(slices.Clip(files), i, info)
}

// filesFrom returns copies of the files with MinTXID >= seek, so callers
// cannot change the index.
func filesFrom(files []*ltx.FileInfo, seek ltx.TXID) []*ltx.FileInfo {
	out := make([]*ltx.FileInfo, 0, len(files))
	for _, f := range files {
		if f.MinTXID >= seek {
			c := *f
			out = append(out, &c)
		}
	}
	return out
}

// fileDifference returns the files of a whose range b lacks.
// replacedLocked returns the known files listed again under the same name
// but with another size, or another time where the backend lists the time
// a write returned (always between two listings), and the listed files
// that replace them. Ranges whose fate is uncertain are left out.
func (x *replicaIndex) replacedLocked(lvl *indexedLevel, known, listed []*ltx.FileInfo) (gone, replacing []*ltx.FileInfo) {
	for _, f := range known {
		key := [2]ltx.TXID{f.MinTXID, f.MaxTXID}
		i, found := slices.BinarySearchFunc(listed, f, compareFileInfo)
		if !found || lvl.uncertain[key] {
			continue
		}
		g := listed[i]
		sameTime := g.CreatedAt.Equal(f.CreatedAt)
		if lvl.written[key] && g.Size == f.Size && x.listsWrittenTime == 0 {
			x.listsWrittenTime = map[bool]int{true: 1, false: -1}[sameTime]
		}
		if g.Size != f.Size || (!sameTime && (!lvl.written[key] || x.listsWrittenTime > 0)) {
			gone, replacing = append(gone, f), append(replacing, g)
		}
	}
	return gone, replacing
}

func fileDifference(a, b []*ltx.FileInfo) []*ltx.FileInfo {
	var out []*ltx.FileInfo
	for _, f := range a {
		if _, found := slices.BinarySearchFunc(b, f, compareFileInfo); !found {
			out = append(out, f)
		}
	}
	return out
}

// indexed returns the in-memory listing of Client, made anew if Client was
// replaced.
func (r *Replica) indexed() *replicaIndex {
	r.indexMu.Lock()
	defer r.indexMu.Unlock()
	if r.Client == nil {
		return nil
	}
	if r.index == nil || !sameClient(r.index.base, r.Client) || r.index.fenced != (r.Leaser != nil) {
		r.index = newReplicaIndex(r.writeClient(), r.indexRefresh, r.Logger)
		r.index.base, r.index.fenced = r.Client, r.Leaser != nil
		r.index.onChange = r.filesChanged
	}
	return r.index
}

// filesChanged is told by the index which files a listing found missing or
// added, and what it listed. An L0 file lost between files the replica
// still has is uploaded again from its local copy, so that compaction into
// L1 finds no gap. Any other change to L0 makes the next sync ask the
// replica for its position: it continues from the replica's newest file, or
// re-seeds it when local files no longer reach back that far.
func (r *Replica) filesChanged(level int, missing, added, listed []*ltx.FileInfo) {
	r.emit(EventReplicaChanged, fmt.Errorf("L%d: %d files missing, %d added by someone else", level, len(missing), len(added)))
	if len(added) > 0 && r.db != nil {
		// Files someone else wrote (an older copy put back, another
		// numbering, another writer) may sit below or between this DB's
		// under names that still form a chain; no plan made from names
		// tells. A snapshot past them is the one proof.
		r.db.oweSnapshotSoon()
	}
	if len(missing) > 0 {
		r.checkRestorable.Store(true)
		if r.db != nil {
			r.db.dropMaxLTXFileInfo(level) // compaction must not continue past a lost file
		}
		defer r.wake()
	}
	if level != 0 {
		return
	}
	var holes []*ltx.FileInfo
	for _, info := range missing {
		if len(listed) > 0 && listed[len(listed)-1].MinTXID > info.MaxTXID {
			holes = append(holes, info)
		}
	}
	if len(holes) < len(missing) || len(added) > 0 {
		r.mu.Lock()
		r.pos = ltx.Pos{} // not forgetPos: the index is being refreshed now
		r.changed++       // an upload under way must not set it again
		r.mu.Unlock()
		r.posChanged()
	}
	if len(holes) > 0 {
		r.repairMu.Lock()
		r.repair = append(r.repair, holes...)
		r.repairMu.Unlock()
	}
	r.wake()
}

// queueRepair has the next sync upload these L0 files again from their
// local copies, each once.
func (r *Replica) queueRepair(infos []*ltx.FileInfo) {
	r.repairMu.Lock()
	for _, info := range infos {
		if !slices.ContainsFunc(r.repair, func(q *ltx.FileInfo) bool { return *q == *info }) {
			r.repair = append(r.repair, info)
		}
	}
	r.repairMu.Unlock()
	r.wake()
}

// repairLost uploads again the lost L0 files that still have a local copy.
func (r *Replica) repairLost(ctx context.Context) error {
	r.repairMu.Lock()
	lost := r.repair
	r.repair = nil
	r.repairMu.Unlock()
	var l1 txRanges // what L1 covers, listed when first needed
	listed := false
	var uploaded ltx.TXID // the last file this pass put back
	for i, info := range lost {
		if _, err := os.Stat(r.db.LTXPath(0, info.MinTXID, info.MaxTXID)); err != nil {
			continue // compacted and retained away locally: L1 holds it
		}
		if !listed {
			infos, err := listFrom(ctx, r.client(), 1, 0)
			if err != nil {
				r.repairMu.Lock()
				r.repair = append(lost[i:], r.repair...)
				r.repairMu.Unlock()
				return fmt.Errorf("list L1 before uploading lost L0 files again: %w", err)
			}
			l1, listed = contiguousRuns(infos), true
		}
		if l1.covers(info) || (len(l1) > 0 && l1[len(l1)-1].max >= info.MinTXID) {
			// L1 holds it, or went past it (from a snapshot): no compaction
			// will read it, and retention would never remove it.
			continue
		}
		// The files the hole lies between must be this DB's: a replica put
		// back from an older copy, or another numbering of TXIDs, holds
		// other files at those TXIDs, and a local copy between them would
		// mix two histories that no restore crosses. Unproven, the hole
		// stays, and the replica owes a snapshot past it: the hole may be
		// another history's file under the same name, which a plan made
		// from names alone takes for a chain.
		if !(info.MinTXID == 1 || uploaded == info.MinTXID-1 || r.replicaL0IsOurs(ctx, info.MinTXID-1)) ||
			!r.replicaL0IsOurs(ctx, info.MaxTXID+1) {
			r.Logger().Warn("not uploading a lost replica file again: the replica's files around it are not this database's",
				"level", 0, "min_txid", info.MinTXID, "max_txid", info.MaxTXID)
			if r.db != nil {
				if err := r.db.oweSnapshot(); err != nil {
					return err
				}
			}
			continue
		}
		err := r.leaseLost() // the renew loop may have fenced the replica meanwhile
		if err == nil {
			err = r.uploadL0Range(ctx, info.MinTXID, info.MaxTXID)
		}
		if err != nil {
			r.repairMu.Lock()
			r.repair = append(lost[i:], r.repair...)
			r.repairMu.Unlock()
			return err
		}
		uploaded = info.MaxTXID
		r.Logger().Info("uploaded lost replica file again", "level", 0, "min_txid", info.MinTXID, "max_txid", info.MaxTXID)
	}
	return nil
}

// replicaL0IsOurs reports whether the replica's L0 file of txid is this
// DB's: its local copy has the same header, which holds the file's WAL
// range and checksums. A file that is not on the replica is this DB's to
// write, and counts; one without a local copy proves nothing.
func (r *Replica) replicaL0IsOurs(ctx context.Context, txid ltx.TXID) bool {
	remote, err := readRemoteHeader(ctx, r.client(), 0, txid)
	if errors.Is(err, os.ErrNotExist) {
		return true
	} else if err != nil {
		return false
	}
	local, err := readLTXHeaderFile(r.db.LTXPath(0, txid, txid))
	return err == nil && local == remote
}

func (r *Replica) indexRefresh() time.Duration {
	if r.IndexRefreshInterval == 0 {
		return DefaultReplicaIndexRefresh
	}
	return r.IndexRefreshInterval
}

// sameClient compares two clients, treating incomparable values as
// different.
func sameClient(a, b ReplicaClient) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}
