// DB: one SQLite database tracked by the library, its paths, opening and
// closing, the read lock that keeps the WAL, and the local LTX position.

package litestream

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/litestream/internal"
	"github.com/superfly/ltx"
	"golang.org/x/sync/semaphore"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// DB defaults.
const (
	DefaultMonitorInterval      = 1 * time.Second
	DefaultCheckpointInterval   = 1 * time.Minute
	DefaultBusyTimeout          = 1 * time.Second
	DefaultMinCheckpointPageN   = 1000
	DefaultTruncatePageN        = 121359
	DefaultMaxSyncWALBytes      = 64 << 20
	DefaultShutdownSyncTimeout  = 30 * time.Second
	DefaultShutdownSyncInterval = 500 * time.Millisecond
	DefaultSyncBackoffMax       = 5 * time.Minute
	SyncErrorLogInterval        = 30 * time.Second
)

// DB tracks one SQLite database and writes its committed WAL frames to L0
// LTX files in the meta directory, one file per sync.
type DB struct {
	// Done, when closed, interrupts the shutdown sync retry in Close.
	Done <-chan struct{}

	// MinCheckpointPageN is the WAL size in pages at which a PASSIVE
	// checkpoint runs after a sync. Default 1000; must be positive.
	MinCheckpointPageN int

	// TruncatePageN is the WAL size in pages at which an emergency TRUNCATE
	// checkpoint runs. Zero means the default 121359; negative disables it.
	TruncatePageN int

	// CheckpointInterval runs a PASSIVE checkpoint when data was synced and
	// the database file is older than this. Default 1m; zero disables.
	CheckpointInterval time.Duration

	// MonitorInterval is the longest a commit waits for its sync, and the
	// poll interval where WAL change events are unavailable. Default 1s;
	// zero disables background sync (call Sync).
	MonitorInterval time.Duration

	// MaxSyncWALBytes bounds the WAL bytes read per sync chunk, stopping at a
	// commit boundary. Default 64 MiB; zero is unbounded.
	MaxSyncWALBytes int64

	// BusyTimeout is SQLite's busy timeout on the DB's connections. Default 1s.
	BusyTimeout time.Duration

	// L0Retention is how long L0 files are kept after compaction into L1.
	// Default 5m; zero or negative keeps them.
	L0Retention time.Duration

	// VerifyCompaction checks each compacted level for gaps after writing.
	VerifyCompaction bool

	// RetentionEnabled lets retention delete remote files. Local copies are
	// removed either way. Default true.
	RetentionEnabled bool

	// Replica is the database's replica; required before Open.
	Replica *Replica

	// ShutdownSyncTimeout bounds the retries of the final upload in Close.
	// Default 30s; zero means a single attempt.
	ShutdownSyncTimeout time.Duration

	// ShutdownSyncInterval is the wait between those retries. Default 500ms.
	ShutdownSyncInterval time.Duration

	// Logger receives the DB's logs.
	Logger *slog.Logger

	path     string
	metaPath string

	// storePasses admits a Store's compaction and snapshot passes over the
	// DB (read-locked) until UnregisterDB retires it (write-locked): a pass
	// still running then would race a DB registered on the same file.
	storePasses sync.RWMutex
	retired     bool // guarded by storePasses

	mu             sync.Mutex // guards the fields below it
	opened         bool
	fileKey        string // the database file's entry in openDBs while open
	replicaKeyHeld string // the replica's entry in openDBs while open
	closing        bool   // Close has begun: nothing may open SQLite again
	sqldb          *sql.DB
	f              *os.File  // the only descriptor of the database file (POSIX locks)
	rconn          *sql.Conn // holds the long-running read transaction
	pageSize       int
	fileInfo       os.FileInfo
	dirInfo        os.FileInfo
	ctx            context.Context
	cancel         context.CancelFunc
	// cancelNoLock is cancel, for Close to call before it takes mu.
	cancelNoLock atomic.Pointer[context.CancelFunc]
	wg           sync.WaitGroup

	// exec serializes sync chunks, checkpoints, snapshot capture and Close.
	exec *semaphore.Weighted
	// chkMu is held shared by syncs and snapshot readers, exclusively (and
	// only by TryLock) by checkpoints.
	chkMu sync.RWMutex

	// Sync state, guarded by exec.
	inCloseSync           bool // Close's own final sync or upload is running; guarded by mu
	lastSyncedWALOffset   int64
	witness               *restartWitness // set by a checkpoint that restarted the WAL safely
	syncedSinceCheckpoint bool
	truncatePassiveFailed bool
	truncateBackoff       time.Duration // after an emergency TRUNCATE that could not complete; 0 when none
	truncateRetryAt       time.Time     // no emergency TRUNCATE before this
	lastFrame             lastFrame
	fetchedCopy           string       // a compacted replica file fetched as the newest L0 file, until a newer one follows
	comparedRemote        ltx.FileInfo // the replica's newest L0 file as last compared with the local files
	// framesPastWALIndex: the last sync saw valid WAL frames SQLite has not
	// published as committed; the monitor looks again a MonitorInterval later.
	framesPastWALIndex atomic.Bool

	posMu sync.Mutex
	pos   *ltx.Pos // cached position; nil when unknown

	maxMu        sync.Mutex
	maxInfos     map[int]*ltx.FileInfo // newest file per level on the replica
	filesChanged func()                // called when an entry of maxInfos changes; set by the Store

	l0RetMu sync.Mutex // guards l0Ret
	l0Ret   l0RetentionPass

	notify internal.Signal

	syncedMu      sync.Mutex
	syncReq       chan struct{} // asks the monitor for a sync; buffered, one pending request
	lastSyncStart time.Time     // when the last successful Sync began

	// Background syncs (the monitor's, the snapshot pass's) share one
	// backoff after failures, so that no pass retries a failing disk
	// sooner than the monitor would.
	syncBackoffMu sync.Mutex
	syncBackoff   time.Duration // doubles on each failed background sync; 0 after a success
	syncRetryAt   time.Time     // background syncs wait until then

	syncMu         sync.Mutex
	lastSuccessful time.Time
	// replicaCheckPending: init could not reach the replica to compare
	// positions; the uploader does it once the replica answers.
	replicaCheckPending atomic.Bool
	// localResets counts resets of local state, which renumber TXIDs.
	localResets atomic.Uint64
	// ownSnapshot is the header of the last snapshot this DB uploaded, and
	// the localResets count it was taken under.
	ownSnapshot atomic.Pointer[ownSnapshot]

	replicaCaughtUp bool // the replica monitor waits with everything uploaded
	diag            SyncDiagnostic

	compactor *Compactor

	metricsMu        sync.Mutex               // serializes SetMetrics
	stopMetricsWatch func()                   // ends the metrics' event watcher
	events           eventHub                 // the DB's subscribers
	storeEvents      atomic.Pointer[eventHub] // its store's subscribers, if any

	// topCompactionLevel is its store's highest compaction level: files
	// below it are merged again, so compaction keeps local copies of them.
	topCompactionLevel atomic.Int32

	metrics *dbMetrics

	// initOnce makes the fields above that NewDB sets, so that a DB built
	// as a struct literal works (or fails with an error) too.
	initOnce sync.Once
}

// NewDB returns a DB for the database at path with default settings. It does
// no I/O.
func NewDB(path string) *DB {
	db := &DB{
		MinCheckpointPageN:   DefaultMinCheckpointPageN,
		TruncatePageN:        DefaultTruncatePageN,
		CheckpointInterval:   DefaultCheckpointInterval,
		MonitorInterval:      DefaultMonitorInterval,
		MaxSyncWALBytes:      DefaultMaxSyncWALBytes,
		BusyTimeout:          DefaultBusyTimeout,
		L0Retention:          DefaultL0Retention,
		RetentionEnabled:     true,
		ShutdownSyncTimeout:  DefaultShutdownSyncTimeout,
		ShutdownSyncInterval: DefaultShutdownSyncInterval,
		Logger:               slog.With(LogKeyDB, filepath.Base(path)),

		path: path,
	}
	db.lazyInit()
	return db
}

// lazyInit makes the internal state NewDB would have made. Every entry
// point that uses it calls this first.
func (db *DB) lazyInit() {
	db.initOnce.Do(func() {
		if db.metaPath == "" && db.path != "" {
			db.metaPath = filepath.Join(filepath.Dir(db.path), "."+filepath.Base(db.path)+MetaDirSuffix)
		}
		db.exec = semaphore.NewWeighted(1)
		db.syncReq = make(chan struct{}, 1)
		db.maxMu.Lock()
		db.maxInfos = make(map[int]*ltx.FileInfo)
		db.maxMu.Unlock()
		db.compactor = NewCompactor(nil, db.logger())
		db.compactor.RetentionEnabled = db.RetentionEnabled
		db.compactor.LocalFileOpener = db.openLocalLTXFile
		db.compactor.LocalFileDeleter = db.deleteLocalLTXFile
		db.compactor.CacheGetter = db.cachedMaxLTXFileInfo
		db.compactor.CacheSetter = db.setMaxLTXFileInfo
		db.compactor.spillDir = db.metaPath
		db.compactor.localCopy = db.newLocalCopy
		db.compactor.refillL0 = db.refillL0
		db.compactor.onCompacted = func(info *ltx.FileInfo) {
			db.emit(EventCompacted, info.Level, info.MinTXID, info.MaxTXID, nil)
		}
	})
}

// Path returns the database path.
func (db *DB) Path() string { return db.path }

// WALPath returns the path of the database's WAL file.
func (db *DB) WALPath() string { return db.path + "-wal" }

// MetaPath returns the directory holding local LTX files.
func (db *DB) MetaPath() string { return db.metaPath }

// SetMetaPath overrides the meta directory. Call before Open.
func (db *DB) SetMetaPath(path string) { db.metaPath = path }

// LTXDir returns the local LTX directory.
func (db *DB) LTXDir() string { return filepath.Join(db.metaPath, "ltx") }

// LTXLevelDir returns the local directory of a level.
func (db *DB) LTXLevelDir(level int) string {
	return filepath.Join(db.LTXDir(), fmt.Sprint(level))
}

// LTXPath returns the local path of an LTX file. It panics on a negative level.
func (db *DB) LTXPath(level int, minTXID, maxTXID ltx.TXID) string {
	if level < 0 {
		panic(fmt.Sprintf("litestream: invalid ltx level %d", level))
	}
	return filepath.Join(db.LTXLevelDir(level), ltx.FormatFilename(minTXID, maxTXID))
}

// IsOpen reports whether Open succeeded and Close has not run.
func (db *DB) IsOpen() bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.opened
}

// PageSize returns the database page size, or 0 before the first sync.
func (db *DB) PageSize() int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.pageSize
}

// FileInfo returns the database file's info, cached at init; nil before.
func (db *DB) FileInfo() os.FileInfo {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.fileInfo
}

// DirInfo returns the database directory's info, cached at init; nil before.
func (db *DB) DirInfo() os.FileInfo {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.dirInfo
}

// SQLDB returns the DB's own connection pool, nil before init.
func (db *DB) SQLDB() *sql.DB {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.sqldb
}

// SetLogger replaces the logger of the DB, its compactor and its client.
func (db *DB) SetLogger(logger *slog.Logger) {
	db.lazyInit()
	if logger == nil {
		logger = slog.Default()
	}
	db.Logger = logger
	db.compactor.logger = logger.With(LogKeySubsystem, LogSubsystemCompactor)
	if db.Replica != nil && db.Replica.Client != nil {
		db.Replica.Client.SetLogger(logger)
	}
}

func (db *DB) logger() *slog.Logger {
	if db.Logger == nil {
		return slog.Default()
	}
	return db.Logger
}

// Notify returns a channel closed the next time a sync writes an L0 file.
func (db *DB) Notify() <-chan struct{} { return db.notify.Wait() }

// Open validates the settings, removes stale temporary files and starts the
// background monitor. It does not touch SQLite: the first sync does.
func (db *DB) Open() (err error) {
	db.lazyInit()
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.opened {
		return nil
	}

	if db.path == "" {
		return fmt.Errorf("database path required: create the DB with NewDB")
	} else if db.Replica == nil {
		return fmt.Errorf("replica required before opening database")
	} else if db.Replica.Client == nil {
		return fmt.Errorf("replica client required before opening database")
	} else if db.MinCheckpointPageN <= 0 {
		return fmt.Errorf("minimum checkpoint page count required")
	}
	if err := db.claimFile(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			db.releaseFile()
		}
	}()

	if err := removeTmpFiles(db.metaPath); err != nil {
		return fmt.Errorf("cannot remove tmp files: %w", err)
	}
	// The position an earlier Open cached may be stale: the local files
	// may have been removed or replaced while the DB was closed.
	db.invalidatePos()
	db.lastFrame = db.loadLastFrame()
	// Nor may it trust what it knew of the replica, which another writer,
	// a wipe or a restore may have changed: it lists it again, as a new
	// process does, and a check left pending before Close stays pending.
	db.Replica.SetPos(ltx.Pos{})
	db.Replica.localCopiesCompared.Store(false)
	db.dropMaxLTXFileInfo(-1)
	db.lastSyncedWALOffset, db.witness, db.comparedRemote = 0, nil, ltx.FileInfo{}
	db.ownSnapshot.Store(db.loadOwnSnapshot())

	if db.Replica.db == nil {
		db.Replica.db = db // a Replica built as a struct literal
	}
	db.Replica.reopenLease()
	if db.Replica.Leaser != nil && !db.Replica.LeaseWait {
		// Fail fast: Open reports a lease another process holds.
		if err := db.Replica.acquireLease(context.Background()); err != nil {
			return err
		}
	}
	db.compactor.client = db.Replica.client() // the index, over the lease-checking client
	db.compactor.spillDir = db.metaPath
	db.syncCompactorOptions()

	db.closing = false
	db.syncBackoffMu.Lock()
	db.syncBackoff, db.syncRetryAt = 0, time.Time{} // a reopened DB starts afresh
	db.syncBackoffMu.Unlock()
	db.ctx, db.cancel = context.WithCancel(withReplicaIndex(context.Background()))
	cancel := db.cancel
	db.cancelNoLock.Store(&cancel)
	if db.MonitorInterval > 0 {
		db.wg.Add(1)
		go func() { defer db.wg.Done(); db.monitor() }()
	}
	db.opened = true
	return nil
}

// removeTmpFiles deletes leftover staging files under dir.
func removeTmpFiles(dir string) error {
	var removeErr error
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".tmp") {
			return nil
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			removeErr = err
		}
		return nil
	})
	return removeErr
}

// Close stops the monitor, syncs a last time, flushes the replica and
// releases SQLite once open snapshot readers are done. Cleanup runs even
// when ctx is already canceled.
func (db *DB) Close(ctx context.Context) (err error) {
	db.lazyInit()
	// First, without mu: a first sync's init holds mu while it lists the
	// replica under the DB's context, however long the backend takes.
	if cancel := db.cancelNoLock.Load(); cancel != nil {
		(*cancel)()
	}
	db.mu.Lock()
	cancel, wasOpen := db.cancel, db.opened
	db.closing = true
	db.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	db.wg.Wait()

	// A DB whose Open failed (another DB holds the file, another process
	// the lease) must not write into the local files or the replica.
	var initialized bool
	if wasOpen {
		initialized, err = db.finalSync(ctx)
	}
	if db.Replica != nil {
		for attempt := 1; initialized; attempt++ {
			// A replica found behind the local files is re-seeded with a
			// snapshot, which this upload must still be able to write.
			resets := db.localResets.Load()
			db.setInCloseSync(true)
			e := db.Replica.shutdownSync(ctx)
			db.setInCloseSync(false)
			if e != nil || db.localResets.Load() == resets {
				if err == nil {
					err = e
				}
				break
			}
			// The upload found the replica holding another history under
			// the local TXIDs and took its position: the commits since are
			// in the WAL only. Capture them again and upload them.
			if attempt == 3 {
				if err == nil {
					err = fmt.Errorf("final upload: %w, three times in a row", errLocalStateReset)
				}
				break
			} else if _, e := db.finalSync(ctx); e != nil {
				if err == nil {
					err = e
				}
				break
			}
		}
		if e := db.Replica.Stop(true); e != nil && err == nil {
			err = e
		}
		if e := db.Replica.releaseLease(ctx); e != nil && err == nil {
			err = e
		}
	}

	// Snapshot readers read the database file without exec; wait for them.
	db.chkMu.Lock()
	defer db.chkMu.Unlock()
	db.mu.Lock()
	defer db.mu.Unlock()
	if e := db.releaseSQLite(); e != nil && err == nil {
		err = e
	}
	db.releaseFile()
	db.opened = false
	db.cancel = nil
	return err
}

// finalSync is Close's sync. It also initializes a database created since
// the last monitor tick, so a program that writes and exits within its
// first MonitorInterval still replicates what it wrote.
func (db *DB) finalSync(ctx context.Context) (initialized bool, err error) {
	_ = db.exec.Acquire(context.WithoutCancel(ctx), 1)
	defer db.exec.Release(1)
	db.setInCloseSync(true)
	defer db.setInCloseSync(false)
	if e := db.syncLocked(context.WithoutCancel(ctx), false); e != nil {
		err = fmt.Errorf("final sync: %w", e)
	}
	return db.isInitialized(), err
}

// releaseSQLite closes the read transaction, pool and file. Caller holds mu.
func (db *DB) releaseSQLite() (err error) {
	if e := db.releaseReadLock(); e != nil {
		err = fmt.Errorf("release read lock: %w", e)
	}
	if db.sqldb != nil {
		if e := db.sqldb.Close(); e != nil && err == nil {
			err = fmt.Errorf("close sql db: %w", e)
		}
		db.sqldb = nil
	}
	if db.f != nil {
		if e := db.f.Close(); e != nil && err == nil {
			err = fmt.Errorf("close db file: %w", e)
		}
		db.f = nil
	}
	db.pageSize = 0
	return err
}

// setInCloseSync marks Close's final sync and upload, during which syncs
// may still run.
func (db *DB) setInCloseSync(on bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.inCloseSync = on
}

func (db *DB) isInitialized() bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.sqldb != nil
}

// init connects to the database on first use. A missing database file is not
// an error: init is retried on the next sync. Caller holds exec.
func (db *DB) init(ctx context.Context) (err error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closing && !db.inCloseSync {
		return db.closedError()
	}
	if db.sqldb != nil {
		return nil
	}

	fi, err := os.Stat(db.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("stat database: %w", err)
	}
	dirInfo, err := os.Stat(filepath.Dir(db.path))
	if err != nil {
		return fmt.Errorf("stat database directory: %w", err)
	}
	db.fileInfo, db.dirInfo = fi, dirInfo

	defer func() {
		if err != nil {
			_ = db.releaseSQLite()
			err = explainDescriptorLimit(err)
		}
	}()

	// Open the file once, first, and read the header through it: closing any
	// other descriptor of it would drop the process's SQLite locks.
	if db.f, err = os.Open(db.path); err != nil {
		return fmt.Errorf("open database file: %w", err)
	}
	if err := checkSQLiteHeader(db.f); err != nil {
		return err
	}

	dsn := sqliteFileURI(db.path, fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=wal_autocheckpoint(0)", db.BusyTimeout.Milliseconds()))
	if db.sqldb, err = sql.Open("sqlite", dsn); err != nil {
		return fmt.Errorf("open sql db: %w", err)
	}
	if err := db.setPersistWAL(ctx); err != nil {
		return fmt.Errorf("set PERSIST_WAL: %w", err)
	}
	var mode string
	if err := db.sqldb.QueryRowContext(ctx, `PRAGMA journal_mode = wal;`).Scan(&mode); err != nil {
		return fmt.Errorf("enable wal: %w", err)
	} else if mode != "wal" {
		return fmt.Errorf("enable wal failed, mode=%q", mode)
	}

	if _, err := db.sqldb.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER);`); err != nil {
		return fmt.Errorf("create _litestream_seq table: %w", err)
	}
	if _, err := db.sqldb.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS _litestream_lock (id INTEGER);`); err != nil {
		return fmt.Errorf("create _litestream_lock table: %w", err)
	}

	if err := db.acquireReadLock(ctx); err != nil {
		return fmt.Errorf("acquire read lock: %w", err)
	}

	if err := db.sqldb.QueryRowContext(ctx, `PRAGMA page_size;`).Scan(&db.pageSize); err != nil {
		return fmt.Errorf("read page size: %w", err)
	} else if db.pageSize <= 0 {
		return fmt.Errorf("invalid db page size: %d", db.pageSize)
	}

	if err := internal.MkdirAll(db.LTXLevelDir(0), db.dirPerm()); err != nil {
		return fmt.Errorf("create meta directory: %w", err)
	}
	if err := db.ensureWAL(ctx); err != nil {
		return fmt.Errorf("ensure wal exists: %w", err)
	}
	db.removeStaleFetchedCopies()

	if db.Replica != nil {
		// Local capture must not wait for the backend: with the replica
		// out of reach, the comparison waits for the first upload.
		db.replicaCheckPending.Store(false)
		db.Replica.checkRestorable.Store(true)
		db.loadSnapshotOwed()
		if err := db.checkBehindReplica(ctx); errors.Is(err, errReplicaUnreachable) {
			db.replicaCheckPending.Store(true)
			db.logger().Warn("replica unreachable at start, capturing locally until it answers", "error", err)
		} else if err != nil {
			return fmt.Errorf("check replica position: %w", err)
		}
		if err := db.Replica.Start(db.ctx); err != nil {
			return fmt.Errorf("start replica: %w", err)
		}
	}
	return nil
}

// closedError is returned by methods called after Close. Caller holds mu.
func (db *DB) closedError() error {
	return fmt.Errorf("%s: %w: closed", db.path, ErrDatabaseNotOpen)
}

// checkOpenable fails once Close has begun.
func (db *DB) checkOpenable() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closing {
		return db.closedError()
	}
	return nil
}

// checkSQLiteHeader rejects files that are not SQLite databases before the
// driver gets a chance to turn them into one.
func checkSQLiteHeader(f *os.File) error {
	hdr := make([]byte, 16)
	n, err := f.ReadAt(hdr, 0)
	if n == 0 && (err == io.EOF || err == nil) {
		return nil // an empty file becomes a database on first write
	}
	if n < len(hdr) || string(hdr) != "SQLite format 3\x00" {
		return fmt.Errorf("%s is not a SQLite database", f.Name())
	}
	return nil
}

func (db *DB) setPersistWAL(ctx context.Context) error {
	conn, err := db.sqldb.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	return conn.Raw(func(dc any) error {
		fc, ok := dc.(interface {
			FileControlPersistWAL(dbName string, mode int) (int, error)
		})
		if !ok {
			return fmt.Errorf("sqlite driver does not support PERSIST_WAL")
		}
		_, err := fc.FileControlPersistWAL("main", 1)
		return err
	})
}

func (db *DB) dirPerm() internal.Perm {
	if db.dirInfo == nil {
		return internal.DefaultDirPerm
	}
	return internal.PermOf(db.dirInfo)
}

func (db *DB) filePerm() internal.Perm {
	if db.fileInfo == nil {
		return internal.DefaultFilePerm
	}
	return internal.PermOf(db.fileInfo)
}

// acquireReadLock starts the long-running read transaction that keeps other
// connections from restarting the WAL under unread frames. Caller holds mu.
//
// It is a raw BEGIN on a connection of its own rather than a *sql.Tx:
// database/sql keeps a goroutine per transaction watching its context,
// one per database for as long as it is replicated.
func (db *DB) acquireReadLock(ctx context.Context) error {
	if db.rconn != nil {
		return nil
	}
	// Never on a caller's context: the library would go on believing it
	// holds the lock that keeps the WAL from restarting after a
	// cancellation interrupted it.
	ctx = context.WithoutCancel(ctx)
	conn, err := db.sqldb.Conn(ctx)
	if err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		discardConn(conn)
		return err
	}
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT COUNT(1) FROM _litestream_seq;`).Scan(&n); err != nil {
		discardConn(conn)
		return err
	}
	db.rconn = conn
	return nil
}

// ensureReadLock takes the read lock again if a failed checkpoint left the
// DB without it.
func (db *DB) ensureReadLock(ctx context.Context) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.sqldb == nil || db.rconn != nil {
		return nil
	}
	return db.acquireReadLock(ctx)
}

// releaseReadLock ends the read transaction. Caller holds mu.
func (db *DB) releaseReadLock() error {
	if db.rconn == nil {
		return nil
	}
	conn := db.rconn
	db.rconn = nil
	if _, err := conn.ExecContext(context.Background(), `ROLLBACK`); err != nil {
		discardConn(conn) // it may still hold the transaction: never reuse it
		if errors.Is(err, sql.ErrConnDone) {
			return nil
		}
		return err
	}
	return conn.Close()
}

// discardConn closes a connection's SQLite handle instead of returning it
// to the pool, ending any transaction it still holds.
func discardConn(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}

// ensureWAL writes a frame when the WAL is missing or has no header, so
// that there is always a WAL to read.
func (db *DB) ensureWAL(ctx context.Context) error {
	if fi, err := os.Stat(db.WALPath()); err == nil && fi.Size() >= WALHeaderSize {
		return nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return db.bumpSeq(ctx)
}

// bumpSeq commits a one-row write so that SQLite writes a WAL frame.
func (db *DB) bumpSeq(ctx context.Context) error {
	_, err := db.sqldb.ExecContext(ctx, `INSERT INTO _litestream_seq (id, seq) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET seq = seq + 1;`)
	return err
}

// MaxLTX returns the TXID range of the newest local L0 file, or zeros.
func (db *DB) MaxLTX() (minTXID, maxTXID ltx.TXID, err error) {
	entries, err := os.ReadDir(db.LTXLevelDir(0))
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	} else if err != nil {
		return 0, 0, err
	}
	for _, entry := range entries {
		lo, hi, err := ltx.ParseFilename(entry.Name())
		if err == nil && hi > maxTXID {
			minTXID, maxTXID = lo, hi
		}
	}
	return minTXID, maxTXID, nil
}

// Pos returns the position of the newest local L0 file after verifying the
// whole file. The result is cached until local L0 files change.
func (db *DB) Pos() (ltx.Pos, error) {
	db.posMu.Lock()
	defer db.posMu.Unlock()
	if db.pos != nil {
		return *db.pos, nil
	}

	minTXID, maxTXID, err := db.MaxLTX()
	if err != nil {
		return ltx.Pos{}, fmt.Errorf("find max ltx file: %w", err)
	} else if maxTXID == 0 {
		return ltx.Pos{}, nil
	}

	path := db.LTXPath(0, minTXID, maxTXID)
	f, err := os.Open(path)
	if err != nil {
		return ltx.Pos{}, NewLTXError("open", path, 0, uint64(minTXID), uint64(maxTXID), err)
	}
	defer func() { _ = f.Close() }()

	hdr, trailer, err := verifyLTX(f)
	if err != nil {
		return ltx.Pos{}, NewLTXError("verify", path, 0, uint64(minTXID), uint64(maxTXID), err)
	}
	pos := ltx.Pos{TXID: hdr.MaxTXID, PostApplyChecksum: trailer.PostApplyChecksum}
	db.pos = &pos
	return pos, nil
}

func (db *DB) setPos(pos ltx.Pos) {
	db.posMu.Lock()
	defer db.posMu.Unlock()
	db.pos = &pos
}

func (db *DB) invalidatePos() {
	db.posMu.Lock()
	defer db.posMu.Unlock()
	db.pos = nil
}

// MaxLTXFileInfo returns the newest replica file at a level, from the cache
// or else from the replica's listing (and caches it).
func (db *DB) MaxLTXFileInfo(ctx context.Context, level int) (ltx.FileInfo, error) {
	db.lazyInit()
	if info, ok := db.cachedMaxLTXFileInfo(level); ok {
		return *info, nil
	}
	if db.Replica == nil {
		return ltx.FileInfo{}, fmt.Errorf("no replica configured")
	}
	info, err := db.Replica.MaxLTXFileInfo(ctx, level)
	if err != nil {
		return ltx.FileInfo{}, fmt.Errorf("cannot determine L%d max ltx file for %q: %w", level, db.path, err)
	}
	db.setMaxLTXFileInfo(level, &info)
	return info, nil
}

func (db *DB) cachedMaxLTXFileInfo(level int) (*ltx.FileInfo, bool) {
	db.maxMu.Lock()
	defer db.maxMu.Unlock()
	info, ok := db.maxInfos[level]
	if !ok {
		return nil, false
	}
	cp := *info
	return &cp, true
}

func (db *DB) setMaxLTXFileInfo(level int, info *ltx.FileInfo) {
	db.lazyInit()
	db.maxMu.Lock()
	defer db.maxMu.Unlock()
	if prev, ok := db.maxInfos[level]; ok && *prev == *info {
		return
	}
	cp := *info
	db.maxInfos[level] = &cp
	db.signalFilesChanged()
}

func (db *DB) dropMaxLTXFileInfo(level int) {
	db.maxMu.Lock()
	defer db.maxMu.Unlock()
	if level < 0 {
		clear(db.maxInfos)
	} else {
		delete(db.maxInfos, level)
	}
	db.signalFilesChanged()
}

// setFilesChangedHook sets the function called when the newest known file
// of a level changes, so that maintenance waiting for new files wakes.
func (db *DB) setFilesChangedHook(fn func()) {
	db.maxMu.Lock()
	defer db.maxMu.Unlock()
	db.filesChanged = fn
}

// signalFilesChanged calls the hook. Caller holds maxMu.
func (db *DB) signalFilesChanged() {
	if db.filesChanged != nil {
		db.filesChanged()
	}
}

// openLocalLTXFile opens the local copy of a replica file for compaction.
// While the replica check is pending the local files may be another
// history than the replica's, so compaction reads the replica's.
func (db *DB) openLocalLTXFile(level int, minTXID, maxTXID ltx.TXID) (io.ReadCloser, error) {
	if db.replicaCheckPending.Load() {
		return nil, os.ErrNotExist
	}
	return os.Open(db.LTXPath(level, minTXID, maxTXID))
}

func (db *DB) deleteLocalLTXFile(level int, minTXID, maxTXID ltx.TXID) error {
	err := os.Remove(db.LTXPath(level, minTXID, maxTXID))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil && level == 0 {
		db.invalidatePos()
	}
	return err
}

// RecordSuccessfulSync notes that the replica received everything so far.
func (db *DB) RecordSuccessfulSync() {
	db.syncMu.Lock()
	defer db.syncMu.Unlock()
	db.lastSuccessful = time.Now()
}

// setReplicaCaughtUp records whether the replica monitor sleeps with
// everything uploaded. While it does, the replica is in sync at every
// moment, without a periodic sync to record it.
func (db *DB) setReplicaCaughtUp(v bool) {
	db.syncMu.Lock()
	defer db.syncMu.Unlock()
	if db.replicaCaughtUp && !v {
		db.lastSuccessful = time.Now()
	}
	db.replicaCaughtUp = v
}

// LastSuccessfulSyncAt returns the time of the last successful replica
// sync: now while the replica monitor is caught up and idle, unless local
// capture is failing: the replica is then caught up with a position that
// no longer moves, and commits wait in the WAL.
func (db *DB) LastSuccessfulSyncAt() time.Time {
	db.syncMu.Lock()
	caughtUp, last := db.replicaCaughtUp, db.lastSuccessful
	db.syncMu.Unlock()
	if caughtUp && db.syncBackoffNow() == 0 {
		return time.Now()
	}
	return last
}
