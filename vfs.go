// vfs.go: a read-only SQLite VFS for modernc.org/sqlite that serves a
// database straight from a ReplicaClient, at the latest TXID (following new
// ones between read transactions), a fixed TXID or a point in time.

package litestream

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/benbjohnson/litestream/internal"
	"github.com/superfly/ltx"
	sqlitevfs "modernc.org/sqlite/vfs"
)

const (
	// DefaultPollInterval is how often a VFS looks for new TXIDs while a
	// connection follows the latest one.
	DefaultPollInterval = 1 * time.Second

	// DefaultCacheSize bounds the bytes of decoded pages a VFS keeps.
	DefaultCacheSize = 10 * 1024 * 1024

	// DefaultPageSize is SQLite's default page size; a VFS fetches up to 32
	// such pages past a missed one in the same request (ReadAheadSize).
	DefaultPageSize = 4096
)

// ErrConflict reports a replica that contradicts what a VFS already
// serves: a file whose header does not match its name, or a latest TXID
// that went backwards (the replica was reset or replaced).
var ErrConflict = errors.New("replica conflicts with the view being served")

// VFS serves the database of one replica to modernc.org/sqlite, read-only.
// Register it, then open connections with DSN. The database name selects
// the point in time: "name" follows the latest TXID, "name@<16 hex digits>"
// pins a TXID and "name@<RFC 3339 time>" pins the last TXID before that
// time.
//
// It is an fs.FS: modernc.org/sqlite/vfs calls Open once per connection.
// Set the exported fields before the first connection opens.
type VFS struct {
	// PollInterval is how often the latest TXID is looked up while a
	// connection follows it. New TXIDs become visible to the next read
	// transaction, never within one.
	PollInterval time.Duration

	// CacheSize bounds the decoded pages kept in memory, in bytes, shared
	// by every connection of the VFS.
	CacheSize int

	// ReadAheadSize is how many bytes of stored frames one request fetches
	// when a page is missed: the page and the pages following it in the
	// same file. Zero fetches the single page.
	ReadAheadSize int

	// HydrationEnabled restores the first TXID a connection opens to a
	// local file in the background (see Hydrator); once complete, pages
	// unchanged since that TXID are read from it.
	HydrationEnabled bool

	// HydrationPath is the local file hydration writes; it must not exist.
	// Empty: a file in a new temporary directory. Close removes it.
	HydrationPath string

	client ReplicaClient
	logger *slog.Logger

	initOnce sync.Once
	reader   *vfsPageReader
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	buildMu sync.Mutex // serializes view building so that indexes are fetched once

	mu          sync.Mutex
	name        string
	fsys        *sqlitevfs.FS
	latest      *txView
	fixed       map[ltx.TXID]*txView
	polling     bool
	pollFailing bool
	// latestStale: a poll found the replica no longer holds latest's files
	// (wiped, replaced, gone back); the next read transaction looks again.
	latestStale bool
	refreshing  bool       // a read transaction is looking again
	refreshed   *sync.Cond // on mu: signals refreshing ended
	gen         uint64     // replacements of the replica seen (see txView.gen)
	lastErr     error
	closed      bool
}

// NewVFS returns a VFS reading client. A nil logger logs nothing.
func NewVFS(client ReplicaClient, logger *slog.Logger) *VFS {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	v := &VFS{
		PollInterval:  DefaultPollInterval,
		CacheSize:     DefaultCacheSize,
		ReadAheadSize: 32 * DefaultPageSize,
		client:        client,
		logger:        logger.With("system", "vfs"),
		fixed:         make(map[ltx.TXID]*txView),
	}
	v.refreshed = sync.NewCond(&v.mu)
	return v
}

func (v *VFS) init() {
	v.initOnce.Do(func() {
		v.reader = &vfsPageReader{client: v.client, cache: newVFSPageCache(v.CacheSize), readAhead: v.ReadAheadSize}
		v.ctx, v.cancel = context.WithCancel(context.Background())
	})
}

// Register registers v with SQLite under a name chosen by
// modernc.org/sqlite/vfs (see Name). Calling it again does nothing.
func (v *VFS) Register() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return fmt.Errorf("register vfs: closed")
	}
	if v.fsys != nil {
		return nil
	}
	name, fsys, err := sqlitevfs.New(v)
	if err != nil {
		return fmt.Errorf("register vfs: %w", err)
	}
	v.name, v.fsys = name, fsys
	v.logger.Info("vfs registered", "name", name, "replica", v.client.Type())
	return nil
}

// Name returns the name v is registered under, for the DSN's vfs parameter;
// it is empty before Register.
func (v *VFS) Name() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.name
}

// DSN returns a modernc.org/sqlite data source name opening db (see VFS
// for the forms of db) read-only through v. It also keeps temporary tables
// and sorts in memory, because the VFS cannot create temporary files.
func (v *VFS) DSN(db string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(db)
	return "file:" + esc + "?vfs=" + v.Name() + "&mode=ro&_pragma=temp_store(memory)&_pragma=query_only(1)"
}

// LastError returns the most recent error behind a failed open or read.
// SQLite reports those to the query only as "disk I/O error" or "unable to
// open database file"; this is the cause, naming TXID, file and page.
func (v *VFS) LastError() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.lastErr
}

func (v *VFS) setErr(name string, err error) {
	v.mu.Lock()
	v.lastErr = fmt.Errorf("vfs %q: %w", name, err)
	v.mu.Unlock()
	v.logger.Error("vfs read failed", "db", name, "error", err)
}

// Close stops polling and unregisters v. Connections must be closed first.
func (v *VFS) Close() error {
	v.init()
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil
	}
	v.closed = true
	fsys := v.fsys
	v.mu.Unlock()

	v.cancel()
	v.wg.Wait()
	var err error
	if h := v.reader.hydrator.Load(); h != nil {
		err = h.Close()
		if v.HydrationPath == "" {
			_ = os.Remove(filepath.Dir(h.path))
		}
	}
	if fsys != nil {
		err = errors.Join(err, fsys.Close())
	}
	return err
}

// Hydrator returns the hydrator of v, nil until a connection opened with
// HydrationEnabled.
func (v *VFS) Hydrator() *Hydrator {
	v.init()
	return v.reader.hydrator.Load()
}

// startHydration hydrates the first view opened, once.
func (v *VFS) startHydration(view *txView) error {
	if !v.HydrationEnabled || v.reader.hydrator.Load() != nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.reader.hydrator.Load() != nil || v.closed {
		return nil
	}
	path := v.HydrationPath
	if path == "" {
		dir, err := os.MkdirTemp("", "litestream-vfs-")
		if err != nil {
			return fmt.Errorf("hydration: %w", err)
		}
		path = filepath.Join(dir, "hydrated.db")
	}
	h := NewHydrator(v.client, path, view.txid, v.logger)
	h.gen = view.gen
	v.reader.hydrator.Store(h)
	h.Start(v.ctx)
	return nil
}

// Open opens the database name for one SQLite connection (fs.FS). Journal
// and WAL names do not exist: the database is served in rollback mode.
func (v *VFS) Open(name string) (fs.File, error) {
	if isSidecarName(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	f := newVFSFile(v, name)
	if err := f.Open(); err != nil {
		v.setErr(name, err)
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return f, nil
}

// Stat answers SQLite's existence checks without reaching the replica.
func (v *VFS) Stat(name string) (fs.FileInfo, error) {
	if isSidecarName(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	if _, err := parseVFSName(name); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return vfsFileInfo{name: name}, nil
}

func isSidecarName(name string) bool {
	for _, suffix := range []string{"-journal", "-wal", "-shm"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// vfsPoint is the point in time a database name selects.
type vfsPoint struct {
	txID      ltx.TXID  // fixed TXID, or zero
	timestamp time.Time // fixed time, or zero
}

func (p vfsPoint) follow() bool { return p.txID == 0 && p.timestamp.IsZero() }

// parseVFSName reads the point in time after the last '@' of name.
func parseVFSName(name string) (vfsPoint, error) {
	i := strings.LastIndexByte(name, '@')
	if i < 0 {
		return vfsPoint{}, nil
	}
	s := name[i+1:]
	if s == "latest" {
		return vfsPoint{}, nil
	}
	if len(s) == 16 {
		if txID, err := ltx.ParseTXID(s); err == nil && txID > 0 {
			return vfsPoint{txID: txID}, nil
		}
	}
	if ts, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return vfsPoint{timestamp: ts}, nil
	}
	return vfsPoint{}, fmt.Errorf("database name %q: %q after '@' is neither \"latest\", a TXID of 16 hex digits nor an RFC 3339 time such as 2026-01-02T15:04:05Z", name, s)
}

// knownIndex returns an index some view already fetched. Callers hold
// buildMu, which orders it against the views being replaced.
func (v *VFS) knownIndex(key ltxFileKey) *ltxIndex {
	v.mu.Lock()
	defer v.mu.Unlock()
	views := make([]*txView, 0, len(v.fixed)+1)
	if v.latest != nil {
		views = append(views, v.latest)
	}
	for _, fv := range v.fixed {
		views = append(views, fv)
	}
	for _, view := range views {
		for _, x := range view.files {
			if x.key == key {
				return x
			}
		}
	}
	return nil
}

// view returns the view of a point: the current latest view (building it
// and starting the poller the first time) or the view of a fixed point.
func (v *VFS) view(p vfsPoint) (*txView, error) {
	v.init()
	if p.follow() {
		v.mu.Lock()
		latest := v.latest
		v.mu.Unlock()
		if latest != nil {
			return latest, nil
		}
		if err := v.refreshLatest(); err != nil {
			return nil, err
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		if !v.polling && !v.closed && v.PollInterval > 0 {
			v.polling = true
			v.wg.Add(1)
			go v.poll()
		}
		return v.latest, nil
	}

	v.mu.Lock()
	if fv := v.fixed[p.txID]; p.txID != 0 && fv != nil {
		v.mu.Unlock()
		return fv, nil
	}
	v.mu.Unlock()
	return v.buildFixed(p.txID, p.timestamp)
}

// buildFixed builds and remembers the view of a fixed TXID or time.
func (v *VFS) buildFixed(txID ltx.TXID, timestamp time.Time) (*txView, error) {
	v.buildMu.Lock()
	defer v.buildMu.Unlock()
	fv, err := buildView(v.ctx, v.client, txID, timestamp, v.knownIndex)
	if err != nil {
		if txID != 0 {
			return nil, fmt.Errorf("TXID %s: %w", txID, err)
		}
		return nil, fmt.Errorf("time %s: %w", timestamp.Format(time.RFC3339Nano), err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	fv.gen = v.gen
	if old := v.fixed[fv.txid]; old != nil && txID == 0 {
		return old, nil
	}
	v.fixed[fv.txid] = fv
	return fv, nil
}

// refreshLatest looks up the latest TXID and makes it the latest view if
// it is newer. A TXID going backwards is refused with ErrConflict.
func (v *VFS) refreshLatest() error {
	v.buildMu.Lock()
	defer v.buildMu.Unlock()
	plan, err := CalcRestorePlan(v.ctx, v.client, 0, time.Time{}, nil)
	if err != nil {
		return fmt.Errorf("latest TXID: %w", err)
	}
	newest := plan[len(plan)-1].MaxTXID
	v.mu.Lock()
	cur := v.latest
	v.mu.Unlock()
	if cur != nil && newest < cur.txid {
		return fmt.Errorf("latest TXID went back from %s to %s: %w", cur.txid, newest, ErrConflict)
	}
	var why string
	var again []*ltxIndex
	if cur != nil && newest == cur.txid {
		// Another database may have reached the same TXID under the same
		// file names: connections would keep the old pages and read the
		// others from its files.
		if why, again, err = sameTXIDReplaced(v.ctx, v.client, cur, plan); err != nil {
			return fmt.Errorf("latest TXID %s: %w", newest, err)
		} else if why == "" {
			v.adoptListing(cur, again)
			return nil
		}
	} else if cur != nil {
		why, again = replacesFiles(v.ctx, v.client, cur, plan)
		v.logRelisted(again)
		if why == "" {
			// No file of the view was written again, but another database
			// may have replaced the replica under other names: its files
			// ending at or before cur's TXID would be read with cur's
			// caches and hydrated file.
			if why, err = advanceReplaced(v.ctx, v.client, cur, plan, again); err != nil {
				return fmt.Errorf("latest TXID %s: %w", newest, err)
			}
		}
	}
	known := v.knownIndex
	if why != "" {
		// Read transactions wait for this view rather than start on files
		// now holding another database; views and the hydrated file of the
		// old one serve none of its pages.
		v.mu.Lock()
		v.latestStale = true
		v.gen++
		v.fixed = make(map[ltx.TXID]*txView)
		v.mu.Unlock()
		// Indexes are keyed by name, size and listed time, which a backend
		// without times leaves alike for the two databases' files.
		known = func(ltxFileKey) *ltxIndex { return nil }
		v.logger.Info("vfs replica replaced by another database", "txid", newest, "reason", why)
	} else if len(again) > 0 {
		known = func(k ltxFileKey) *ltxIndex {
			for _, x := range again {
				if x.key == k {
					return x
				}
			}
			return v.knownIndex(k)
		}
	}
	view, err := buildView(v.ctx, v.client, newest, time.Time{}, known)
	if err != nil {
		return fmt.Errorf("latest TXID %s: %w", newest, err)
	}
	v.mu.Lock()
	view.gen = v.gen
	v.latest = view
	v.latestStale = false
	v.mu.Unlock()
	v.logger.Debug("vfs latest txid", "txid", view.txid, "files", len(view.files))
	return nil
}

// adoptListing replaces the latest view, if still cur, with a copy whose
// files listed again with the same bytes carry their new listing, so that
// later polls match them without reading them. Connections on cur keep it:
// the bytes are the same.
func (v *VFS) adoptListing(cur *txView, again []*ltxIndex) {
	if len(again) == 0 {
		return
	}
	v.logRelisted(again)
	next := *cur
	next.files = slices.Clone(cur.files)
	for i, x := range next.files {
		for _, y := range again {
			if sameName(x.key, y.key) {
				next.files[i] = y
			}
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.latest == cur {
		v.latest = &next
	}
}

// logRelisted logs the files found listed again with the same bytes.
func (v *VFS) logRelisted(again []*ltxIndex) {
	for _, x := range again {
		v.logger.Debug("vfs replica file written again with the same bytes", "file", x.key.String())
	}
}

// sameTXIDReplaced tells why plan, which ends at view's TXID, is of another
// database than view, or "" if it is view's, with the files of view listed
// again (see replacesFiles). The newest file listed with the name, size and
// time the view was built with, or listed again with its bytes, settles it
// without another request; anything else reads the header of the view's
// newest file. A header that differs, or a file that is gone, counts as
// replaced: a needless replacement costs only caches, a missed one mixes
// two databases.
func sameTXIDReplaced(ctx context.Context, client ReplicaClient, view *txView, plan []*ltx.FileInfo) (string, []*ltxIndex, error) {
	why, again := replacesFiles(ctx, client, view, plan)
	if why != "" {
		return why, nil, nil
	}
	newest := view.files[len(view.files)-1].key
	last := fileKeyOf(plan[len(plan)-1])
	if last == newest && !plan[len(plan)-1].CreatedAt.IsZero() {
		return "", again, nil
	}
	for _, x := range again {
		if x.key == last && sameName(last, newest) {
			return "", again, nil
		}
	}
	hdr, err := FetchLTXHeader(ctx, client, &ltx.FileInfo{Level: newest.level, MinTXID: newest.minTXID, MaxTXID: newest.maxTXID})
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Sprintf("%s is gone", newest), nil, nil
	} else if err != nil {
		return "", nil, fmt.Errorf("read header of %s: %w", newest, err)
	} else if hdr != view.last {
		return fmt.Sprintf("%s has another header", newest), nil, nil
	}
	return "", again, nil
}

// advanceReplaced tells why plan, which ends past view's TXID, may be of
// another database than view, or "" if it is shown to continue view. LTX
// files carry no database checksum (NoChecksum), so the proofs are, the
// cheapest first: the plan holds the view's newest file as listed when the
// view was built (with a time) or listed again with its bytes (no
// request: new L0 files after the view); the plan's file ending at the
// view's TXID has the page size, commit and time of the view's newest
// header, as a compaction of the view's files does (one header read); the
// view's newest file is still stored with its header (one header read).
// Anything else counts as replaced, e.g. a plan sharing no file with the
// view, its files wiped: a needless replacement costs caches and the
// hydrated file, a missed one serves pages of two databases.
func advanceReplaced(ctx context.Context, client ReplicaClient, view *txView, plan []*ltx.FileInfo, again []*ltxIndex) (string, error) {
	newest := view.files[len(view.files)-1].key
	var boundary *ltx.FileInfo
	for _, info := range plan {
		k := fileKeyOf(info)
		if k == newest && !info.CreatedAt.IsZero() {
			return "", nil
		}
		for _, x := range again {
			if x.key == k && sameName(k, newest) {
				return "", nil
			}
		}
		if info.MaxTXID == view.txid {
			boundary = info
		}
	}

	if boundary != nil && !sameName(fileKeyOf(boundary), newest) {
		hdr, err := FetchLTXHeader(ctx, client, boundary)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("read header of %s: %w", fileKeyOf(boundary), err)
		} else if err == nil && hdr.PageSize == view.last.PageSize && hdr.Commit == view.last.Commit && hdr.Timestamp == view.last.Timestamp {
			return "", nil
		}
	}

	hdr, err := FetchLTXHeader(ctx, client, &ltx.FileInfo{Level: newest.level, MinTXID: newest.minTXID, MaxTXID: newest.maxTXID})
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Sprintf("%s is gone and the plan shows no continuation of TXID %s", newest, view.txid), nil
	} else if err != nil {
		return "", fmt.Errorf("read header of %s: %w", newest, err)
	} else if hdr != view.last {
		return fmt.Sprintf("%s has another header", newest), nil
	}
	return "", nil
}

// replacesFiles tells why plan replaces a file of view, or "" if it does
// not. A file of view listed under the same name with another size is
// another database's. With the same size and another time it was written
// again: by another database, or by this one uploading a lost L0 file
// again from its local copy (repairLost) on a backend that lists the time
// of the upload. It is the same file if its trailer, whose checksum covers
// every byte, is the one the view read: one ranged read, only for a file
// listed with another time; one that cannot be read counts as replaced.
// Files listed again with the same bytes are returned as indexes under
// their new listing.
func replacesFiles(ctx context.Context, client ReplicaClient, view *txView, plan []*ltx.FileInfo) (string, []*ltxIndex) {
	held := make(map[ltxFileKey]bool, len(view.files))
	for _, x := range view.files {
		held[x.key] = true
	}
	var again []*ltxIndex
	for _, info := range plan {
		k := fileKeyOf(info)
		if held[k] {
			continue
		}
		for _, x := range view.files {
			if !sameName(x.key, k) {
				continue
			} else if x.key.size != k.size {
				return fmt.Sprintf("%s listed again with %d bytes, was %d", k, k.size, x.key.size), nil
			}
			r := &vfsPageReader{client: client}
			trailer, err := r.readFrames(ctx, k, k.size-ltx.TrailerSize, ltx.TrailerSize)
			if err != nil {
				return fmt.Sprintf("%s listed again and its trailer not read: %v", k, err), nil
			} else if !bytes.Equal(trailer, x.trailer[:]) {
				return fmt.Sprintf("%s listed again with another checksum", k), nil
			}
			y := *x
			y.key = k
			again = append(again, &y)
		}
	}
	return "", again
}

// sameName reports whether a and b name the same file, whatever their
// listed size and time.
func sameName(a, b ltxFileKey) bool {
	return a.level == b.level && a.minTXID == b.minTXID && a.maxTXID == b.maxTXID
}

// latestForTxn returns the view a following connection starts a read
// transaction on. While a poll has found the latest view's files gone or
// replaced, the first transaction looks again (waiting for a build in
// progress) and the others wait for it: at most one extra listing per
// poll that found it so, none otherwise.
func (v *VFS) latestForTxn() *txView {
	v.mu.Lock()
	defer v.mu.Unlock()
	for v.refreshing {
		v.refreshed.Wait()
	}
	if v.latestStale {
		v.latestStale, v.refreshing = false, true
		v.mu.Unlock()
		err := v.refreshLatest()
		v.mu.Lock()
		// Consumed even if it failed: the next poll finds it so again.
		v.latestStale, v.refreshing = false, false
		v.refreshed.Broadcast()
		if err != nil {
			v.logger.Debug("vfs latest txid not refreshed", "error", err)
		}
	}
	return v.latest
}

// poll refreshes the latest view every PollInterval until Close, logging
// when polling starts and stops failing rather than on every tick.
func (v *VFS) poll() {
	defer v.wg.Done()
	internal.Tick(v.ctx, v.PollInterval, v.pollOnce)
}

// pollOnce is one tick of poll; false once the VFS is closed.
func (v *VFS) pollOnce() bool {
	err := v.refreshLatest()
	if v.ctx.Err() != nil {
		return false
	}
	v.mu.Lock()
	changed := (err != nil) != v.pollFailing
	v.pollFailing = err != nil
	if errors.Is(err, ErrConflict) || errors.Is(err, ErrTxNotAvailable) {
		v.latestStale = true
	}
	v.mu.Unlock()
	if changed && err != nil {
		v.logger.Warn("vfs cannot follow the replica; readers stay at their TXID", "error", err)
	} else if changed {
		v.logger.Info("vfs follows the replica again")
	}
	return true
}

// VFSFile is one connection's view of a database: the TXID it is pinned
// to and its read position. SQLite reads it through Seek and Read.
type VFSFile struct {
	vfs   *VFS
	name  string
	point vfsPoint

	mu     sync.Mutex
	view   *txView
	pos    int64
	closed bool
}

// NewVFSFile returns a file reading the database name (see VFS for its
// forms) from client, outside SQLite, with its own page cache. Call Open
// before reading.
func NewVFSFile(client ReplicaClient, name string, logger *slog.Logger) *VFSFile {
	return newVFSFile(NewVFS(client, logger), name)
}

func newVFSFile(v *VFS, name string) *VFSFile {
	return &VFSFile{vfs: v, name: name}
}

// Open resolves the file's point in time and pins its TXID.
func (f *VFSFile) Open() error {
	p, err := parseVFSName(f.name)
	if err != nil {
		return err
	}
	view, err := f.vfs.view(p)
	if err != nil {
		return err
	}
	if err := f.vfs.startHydration(view); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.point, f.view = p, view
	return nil
}

// TXID returns the TXID the file is pinned to.
func (f *VFSFile) TXID() ltx.TXID {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.view == nil {
		return 0
	}
	return f.view.txid
}

// Seek sets the offset of the next Read.
func (f *VFSFile) Seek(offset int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.pos
	case io.SeekEnd:
		offset += f.view.size()
	default:
		return 0, fmt.Errorf("seek %s: invalid whence %d", f.name, whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("seek %s: negative offset %d", f.name, offset)
	}
	f.pos = offset
	return offset, nil
}

// Read reads at the offset set by Seek.
func (f *VFSFile) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.readAt(p, f.pos)
	f.pos += int64(n)
	return n, err
}

// ReadAt reads the database at its pinned TXID.
func (f *VFSFile) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readAt(p, off)
}

// changeCounterOffset and changeCounterRead are the read SQLite's pager
// makes when a read transaction starts on a connection that has read
// before: 16 bytes from the change counter on, compared with what its page
// cache was read with. It is the only 16-byte read SQLite makes of a
// database file, so it marks the point between two transactions where a
// follower may move to a newer TXID.
const (
	changeCounterOffset = 24
	changeCounterRead   = 16
)

func (f *VFSFile) readAt(p []byte, off int64) (int, error) {
	if f.closed || f.view == nil {
		return 0, fmt.Errorf("read %s: %w", f.name, fs.ErrClosed)
	}
	if f.point.follow() && off == changeCounterOffset && len(p) == changeCounterRead {
		latest := f.vfs.latestForTxn()
		if latest != nil && (latest.txid > f.view.txid || latest.gen != f.view.gen) {
			f.view = latest
		}
	}

	view := f.view
	size := view.size()
	ps := int64(view.pageSize)
	n := 0
	for n < len(p) && off+int64(n) < size {
		pos := off + int64(n)
		err := f.page(uint32(pos/ps)+1, func(data []byte) {
			n += copy(p[n:], data[pos%ps:])
		})
		if err != nil {
			f.vfs.setErr(f.name, err)
			return n, err
		}
	}
	patchDatabaseHeader(p[:n], off, view.txid, view.gen)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// page returns a page of the pinned view. When a file of the view was
// removed, the same TXID is planned again from the files that remain;
// if none rebuild it, the read fails naming the TXID.
func (f *VFSFile) page(pgno uint32, use func([]byte)) error {
	view := f.view
	err := f.vfs.reader.page(f.vfs.ctx, view, pgno, use)
	var gone *errLTXFileGone
	if !errors.As(err, &gone) {
		return err
	}
	again, perr := f.vfs.buildFixed(view.txid, time.Time{})
	if perr != nil || again.gen != view.gen || again.txid != view.txid || again.commit != view.commit || again.pageSize != view.pageSize {
		return fmt.Errorf("TXID %s can no longer be read: %s was removed (compaction or retention) and the remaining files do not rebuild it; end the transaction and read again (%w)", view.txid, gone.file, ErrTxNotAvailable)
	}
	f.view = again
	err = f.vfs.reader.page(f.vfs.ctx, again, pgno, use)
	if errors.As(err, &gone) {
		return fmt.Errorf("TXID %s can no longer be read: %s was removed (compaction or retention); end the transaction and read again (%w)", view.txid, gone.file, ErrTxNotAvailable)
	}
	return err
}

// patchDatabaseHeader rewrites the header bytes inside b (read at off):
// read and write versions say rollback journal, so SQLite looks for no WAL,
// and the change counter and its version-valid-for copy carry the TXID, so
// that SQLite drops its page cache whenever the TXID changes. Each
// replacement of the replica seen (gen) moves the counter too: another
// database at the same TXID must not be read with the old one's cache.
func patchDatabaseHeader(b []byte, off int64, txid ltx.TXID, gen uint64) {
	var counter [4]byte
	binary.BigEndian.PutUint32(counter[:], uint32(txid)+uint32(gen)*0x9e3779b1)
	set := func(at int64, v byte) {
		if at >= off && at < off+int64(len(b)) {
			b[at-off] = v
		}
	}
	set(18, 1)
	set(19, 1)
	for i := int64(0); i < 4; i++ {
		set(24+i, counter[i])
		set(92+i, counter[i])
	}
}

// Stat returns the size of the database at the pinned TXID.
func (f *VFSFile) Stat() (fs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.view == nil {
		return nil, fmt.Errorf("stat %s: %w", f.name, fs.ErrClosed)
	}
	return vfsFileInfo{name: f.name, size: f.view.size()}, nil
}

// Close releases the file; its views stay shared with other connections.
func (f *VFSFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// vfsFileInfo is the fs.FileInfo of a served database.
type vfsFileInfo struct {
	name string
	size int64
}

func (i vfsFileInfo) Name() string       { return i.name }
func (i vfsFileInfo) Size() int64        { return i.size }
func (i vfsFileInfo) Mode() fs.FileMode  { return 0o444 }
func (i vfsFileInfo) ModTime() time.Time { return time.Time{} }
func (i vfsFileInfo) IsDir() bool        { return false }
func (i vfsFileInfo) Sys() any           { return nil }
