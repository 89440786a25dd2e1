// The Store: a set of databases replicated together, with the background
// work they share (compaction of each level, snapshots, retention,
// validation and heartbeat pings).

package litestream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/litestream/internal"
	"github.com/superfly/ltx"
	"golang.org/x/sync/errgroup"
)

// Store defaults.
const (
	DefaultSnapshotInterval         = 24 * time.Hour
	DefaultSnapshotRetention        = 24 * time.Hour
	DefaultRetention                = 24 * time.Hour // unused; kept for compatibility
	DefaultRetentionCheckInterval   = 1 * time.Hour  // unused; kept for compatibility
	DefaultL0Retention              = 5 * time.Minute
	DefaultL0RetentionCheckInterval = 15 * time.Second
	DefaultDBInitTimeout            = 30 * time.Second
)

// storeOpenConcurrency bounds concurrent client inits and DB opens.
const storeOpenConcurrency = 50

// Store owns a set of databases and runs their background work: compaction
// of each level on its interval, snapshots, and retention.
type Store struct {
	// SnapshotInterval is how often a full snapshot is written to level 9.
	// Default 24h; must be positive.
	SnapshotInterval time.Duration

	// SnapshotRetention is how long snapshots are kept. Default 24h.
	SnapshotRetention time.Duration

	// L0Retention is how long compacted L0 files are kept. Default 5m.
	L0Retention time.Duration

	// L0RetentionCheckInterval is how often L0 retention runs. Default 15s.
	L0RetentionCheckInterval time.Duration

	// CompactionMonitorEnabled runs compaction and snapshots in the
	// background. Default true.
	CompactionMonitorEnabled bool

	// VerifyCompaction checks compacted levels for gaps.
	VerifyCompaction bool

	// RetentionEnabled lets retention delete remote files. Default true.
	RetentionEnabled bool

	// ShutdownSyncTimeout and ShutdownSyncInterval are pushed to each DB.
	ShutdownSyncTimeout  time.Duration
	ShutdownSyncInterval time.Duration

	// Heartbeat, when set, is pinged once per its Interval while every
	// database has replicated successfully since the last ping. Whether a
	// ping is due is checked every HeartbeatCheckInterval (default 15s).
	HeartbeatCheckInterval time.Duration
	Heartbeat              *HeartbeatClient

	// ValidationInterval runs Validate periodically when positive.
	ValidationInterval time.Duration

	// Logger receives the store's logs.
	Logger *slog.Logger

	mu     sync.Mutex // guards dbs, levels, done
	dbs    []*DB
	levels CompactionLevels
	done   <-chan struct{}

	changed internal.Signal // broadcast when a DB's newest file of a level changes

	heartbeatFailing bool // owned by the heartbeat monitor: logs only state changes

	events eventHub // subscribers to every DB's events

	// pushed holds the settings last pushed into the DBs, so that Open pushes
	// the fields assigned since NewStore and leaves alone the DBs' own.
	pushed storeSettings

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewStore returns a store for dbs with the given compaction levels, pushing
// its settings into each DB.
func NewStore(dbs []*DB, levels CompactionLevels) *Store {
	s := &Store{
		SnapshotInterval:         DefaultSnapshotInterval,
		SnapshotRetention:        DefaultSnapshotRetention,
		L0Retention:              DefaultL0Retention,
		L0RetentionCheckInterval: DefaultL0RetentionCheckInterval,
		CompactionMonitorEnabled: true,
		RetentionEnabled:         true,
		ShutdownSyncTimeout:      DefaultShutdownSyncTimeout,
		ShutdownSyncInterval:     DefaultShutdownSyncInterval,
		HeartbeatCheckInterval:   DefaultHeartbeatCheckInterval,
		Logger:                   slog.Default().With(LogKeySystem, LogSystemStore),
		dbs:                      dbs,
		levels:                   levels,
	}
	s.ctx, s.cancel = context.WithCancel(withReplicaIndex(context.Background()))
	for _, db := range dbs {
		s.applySettings(db)
	}
	s.pushed = s.settings()
	return s
}

// storeSettings are the Store fields that NewStore pushes into each DB.
type storeSettings struct {
	l0Retention          time.Duration
	shutdownSyncTimeout  time.Duration
	shutdownSyncInterval time.Duration
	verifyCompaction     bool
	retentionEnabled     bool
	logger               *slog.Logger
}

func (s *Store) settings() storeSettings {
	return storeSettings{s.L0Retention, s.ShutdownSyncTimeout, s.ShutdownSyncInterval, s.VerifyCompaction, s.RetentionEnabled, s.Logger}
}

// pushChangedSettings pushes into every DB each field assigned since the
// last push. Caller holds mu.
func (s *Store) pushChangedSettings() {
	now, old := s.settings(), s.pushed
	for _, db := range s.dbs {
		if now.logger != old.logger {
			db.SetLogger(s.logger().With(LogKeyDB, db.Path()))
		}
		if now.l0Retention != old.l0Retention {
			db.setCompactorOptions(func() { db.L0Retention = now.l0Retention })
		}
		if now.shutdownSyncTimeout != old.shutdownSyncTimeout {
			db.ShutdownSyncTimeout = now.shutdownSyncTimeout
		}
		if now.shutdownSyncInterval != old.shutdownSyncInterval {
			db.ShutdownSyncInterval = now.shutdownSyncInterval
		}
		if now.verifyCompaction != old.verifyCompaction {
			db.setCompactorOptions(func() { db.VerifyCompaction = now.verifyCompaction })
		}
		if now.retentionEnabled != old.retentionEnabled {
			db.setCompactorOptions(func() { db.RetentionEnabled = now.retentionEnabled })
		}
	}
	s.pushed = now
}

func (s *Store) applySettings(db *DB) {
	db.storeEvents.Store(&s.events)
	db.topCompactionLevel.Store(int32(s.levels.MaxLevel()))
	db.SetLogger(s.logger().With(LogKeyDB, db.Path()))
	db.setCompactorOptions(func() { db.L0Retention = s.L0Retention })
	db.ShutdownSyncTimeout = s.ShutdownSyncTimeout
	db.ShutdownSyncInterval = s.ShutdownSyncInterval
	db.setCompactorOptions(func() { db.VerifyCompaction, db.RetentionEnabled = s.VerifyCompaction, s.RetentionEnabled })
	if s.done != nil {
		db.Done = s.done
	}
	db.setFilesChangedHook(s.signalChanged)
}

// changes returns a channel closed at the next change of any DB's newest
// file of a level, or of the store's settings or databases.
func (s *Store) changes() <-chan struct{} { return s.changed.Wait() }

func (s *Store) signalChanged() { s.changed.Broadcast() }

func (s *Store) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

// Open initializes every replica client, opens every DB and starts the
// background monitors.
func (s *Store) Open(ctx context.Context) error {
	if err := s.levels.Validate(); err != nil {
		return err
	}
	if s.SnapshotInterval <= 0 {
		return fmt.Errorf("snapshot interval must be positive")
	}
	s.mu.Lock()
	if s.ctx == nil { // a Store built as a struct literal
		s.ctx, s.cancel = context.WithCancel(context.Background())
	}
	s.pushChangedSettings()
	s.mu.Unlock()

	dbs := s.DBs()
	for _, db := range dbs {
		if err := checkDatabaseFile(db.Path()); err != nil {
			return err
		}
	}
	// Each Init gets ctx itself, not a context that ends with Open, as
	// upstream's does: a client may keep it for work it starts. After a
	// failure the Inits not yet started are skipped.
	g := &errgroup.Group{}
	g.SetLimit(storeOpenConcurrency)
	var initFailed atomic.Bool
	for _, db := range dbs {
		g.Go(func() error {
			if db.Replica == nil || db.Replica.Client == nil || initFailed.Load() {
				return nil // Open reports a missing client
			}
			if err := db.Replica.Client.Init(ctx); err != nil {
				initFailed.Store(true)
				return fmt.Errorf("initialize replica client for %q: %w", db.Path(), err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}

	g = &errgroup.Group{}
	g.SetLimit(storeOpenConcurrency)
	for _, db := range dbs {
		g.Go(db.Open)
	}
	if err := g.Wait(); err != nil {
		return err
	}

	if s.CompactionMonitorEnabled {
		for _, lvl := range s.levels[1:] {
			s.goMonitor(func() { s.monitorCompactionLevel(lvl) })
		}
		s.goMonitor(func() { s.monitorCompactionLevel(s.SnapshotLevel()) })
	}
	// Started even with retention off, so that SetL0Retention can turn it on.
	if s.L0RetentionCheckInterval > 0 {
		s.goMonitor(s.monitorL0Retention)
	}
	if s.ValidationInterval > 0 {
		s.goMonitor(s.monitorValidation)
	}
	if s.HeartbeatCheckInterval > 0 {
		interval := s.HeartbeatCheckInterval
		s.goMonitor(func() { s.monitorHeartbeat(interval) })
	}
	return nil
}

func (s *Store) goMonitor(fn func()) {
	s.wg.Add(1)
	go func() { defer s.wg.Done(); fn() }()
}

// closeParallelism is how many databases Store.Close closes at once.
const closeParallelism = 16

// Close stops the monitors, then closes every DB, each syncing and
// flushing its replica.
func (s *Store) Close(ctx context.Context) (err error) {
	// Stop the monitors first: a compaction or snapshot upload under way
	// is abandoned (uploads are atomic), so that closing the DBs, whose
	// final upload is what counts, does not wait for it past ctx.
	if s.cancel != nil { // nil in a Store built as a struct literal
		s.cancel()
	}
	var interrupted error
	var mu sync.Mutex // guards err and interrupted
	var g errgroup.Group
	g.SetLimit(closeParallelism) // each close is a final sync and upload: I/O, not CPU
	for _, db := range s.DBs() {
		g.Go(func() error {
			e := db.Close(ctx)
			mu.Lock()
			defer mu.Unlock()
			if e != nil {
				if errors.Is(e, ErrShutdownInterrupted) {
					if interrupted == nil {
						interrupted = e
					}
				} else if err == nil {
					err = e
				}
			}
			return nil
		})
	}
	_ = g.Wait()
	s.wg.Wait()
	if err == nil {
		err = interrupted
	}
	return err
}

// DBs returns the store's databases.
func (s *Store) DBs() []*DB {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*DB(nil), s.dbs...)
}

// FindDB returns the database at path, or nil.
func (s *Store) FindDB(path string) *DB {
	for _, db := range s.DBs() {
		if db.Path() == path {
			return db
		}
	}
	return nil
}

// SnapshotLevel returns level 9 with the store's snapshot interval.
func (s *Store) SnapshotLevel() *CompactionLevel {
	return &CompactionLevel{Level: SnapshotLevel, Interval: s.SnapshotInterval}
}

// futureDateSlack is how far past now a file may be dated and still count
// as written now: header times round up, and clocks differ a little.
const futureDateSlack = time.Minute

// writtenThisInterval reports whether a file dated createdAt was written
// after the level's latest interval boundary. Header times are milliseconds
// rounded up, so the boundary is rounded up too: a file written in the same
// millisecond before a boundary (possible with sub-millisecond intervals)
// would otherwise look newer than it is.
func writtenThisInterval(createdAt time.Time, lvl *CompactionLevel, now time.Time) bool {
	boundary := lvl.PrevCompactionAt(now)
	if r := boundary.Truncate(time.Millisecond); !r.Equal(boundary) {
		boundary = r.Add(time.Millisecond)
	}
	return createdAt.After(boundary) && !createdAt.After(now.Add(futureDateSlack))
}

// CompactDB compacts one level of a database if its interval window has no
// file yet: a snapshot for level 9, a merge of the level below otherwise.
func (s *Store) CompactDB(ctx context.Context, db *DB, lvl *CompactionLevel) (*ltx.FileInfo, error) {
	db.storePasses.RLock()
	defer db.storePasses.RUnlock()
	if db.retired {
		return nil, fmt.Errorf("%s: %w: unregistered", db.path, ErrDatabaseNotOpen)
	}
	if db.PageSize() == 0 {
		return nil, &DBNotReadyError{Reason: "page size not initialized"}
	}
	dst, err := db.MaxLTXFileInfo(ctx, lvl.Level)
	if err != nil {
		return nil, err
	}
	// A file dated well past now was written while the clock ran fast: it
	// says nothing about this interval, and waiting for its date would stop
	// the level until the clock got there.
	if writtenThisInterval(dst.CreatedAt, lvl, time.Now()) {
		return nil, ErrCompactionTooEarly
	}

	if lvl.Level == SnapshotLevel {
		pos, err := db.Pos()
		if err != nil {
			return nil, fmt.Errorf("snapshot position: %w", err)
		}
		if dst.MaxTXID != 0 && dst.MaxTXID >= pos.TXID {
			return nil, ErrNoCompaction
		}
		return db.Snapshot(ctx)
	}

	s.mu.Lock()
	prevLevel := s.levels.PrevLevel(lvl.Level)
	s.mu.Unlock()
	src, err := db.MaxLTXFileInfo(ctx, prevLevel)
	if err != nil {
		return nil, err
	}
	// Comparing with dst.MaxTXID, not upstream's MinTXID, skips the listing
	// Compact would do only to find nothing new.
	if src.MaxTXID <= dst.MaxTXID {
		return nil, ErrNoCompaction
	}
	return db.Compact(ctx, lvl.Level)
}

// monitorCompactionLevel compacts every open DB at each interval boundary.
// When no DB has new files below the level, nothing can be due: it sleeps
// until a file arrives and resumes at the boundary after it.
func (s *Store) monitorCompactionLevel(lvl *CompactionLevel) {
	var notReadySince time.Time
	for {
		changed := s.changes()
		now := time.Now()
		delay := lvl.NextCompactionAt(now).Sub(now)

		notReady, deferred := false, false
		idle := lvl.Level != SnapshotLevel // snapshots expire with time alone
		for _, db := range s.DBs() {
			if !db.IsOpen() {
				idle = false
				continue
			}
			_, err := s.CompactDB(withBackgroundSync(s.ctx), db, lvl)
			if !errors.Is(err, ErrNoCompaction) || !s.nothingBelow(db, lvl.Level) {
				idle = false
			}
			switch {
			case err == nil, errors.Is(err, ErrNoCompaction), errors.Is(err, ErrCompactionTooEarly):
			case errors.Is(err, ErrCompactionGap):
				// The compactor logs a gap when it appears and when it
				// closes; it is retried at the next boundary.
			case errors.Is(err, ErrDBNotReady):
				notReady = true
			case errors.Is(err, ErrDatabaseNotOpen):
				// Closed while the pass ran: the store is closing it.
			case errors.Is(err, errSyncDeferred):
				// The DB's syncs are failing; the snapshot waits for
				// them to succeed rather than retry them itself.
				deferred = true
			case errors.Is(err, context.Canceled):
				return
			default:
				attrs := ltxErrorAttrs(err)
				if attrs == nil {
					attrs = []any{"level", lvl.Level}
				}
				db.logger().Error("compaction failed", append(attrs, "error", err)...)
			}
			if lvl.Level == SnapshotLevel && db.PageSize() > 0 {
				if err := s.EnforceSnapshotRetention(s.ctx, db); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, ErrDatabaseNotOpen) {
					db.logger().Error("snapshot retention failed", "error", err)
				}
			}
		}

		// Databases that have not synced yet are retried each second for a while.
		if notReady {
			if notReadySince.IsZero() {
				notReadySince = time.Now()
			}
			if time.Since(notReadySince) < DefaultDBInitTimeout {
				delay = time.Second
			} else {
				s.logger().Warn("databases not ready for compaction", "level", lvl.Level)
			}
		} else {
			notReadySince = time.Time{}
		}
		if deferred {
			delay = min(delay, time.Second)
		}

		if idle {
			select {
			case <-s.ctx.Done():
				return
			case <-changed:
			}
			now := time.Now()
			delay = lvl.NextCompactionAt(now).Sub(now)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// nothingBelow reports whether the DB knows of no file below level newer
// than the level's newest. (Compaction can also find nothing because the
// replica has yet to receive L0 files the DB already wrote.)
func (s *Store) nothingBelow(db *DB, level int) bool {
	s.mu.Lock()
	prevLevel := s.levels.PrevLevel(level)
	s.mu.Unlock()
	src, ok := db.cachedMaxLTXFileInfo(prevLevel)
	if !ok {
		return false
	}
	dst, ok := db.cachedMaxLTXFileInfo(level)
	return ok && src.MaxTXID <= dst.MaxTXID
}

// monitorL0Retention runs L0 retention every L0RetentionCheckInterval, but
// sleeps through the passes that could delete nothing: until the earliest
// time a file becomes deletable, or until files change.
func (s *Store) monitorL0Retention() {
	interval := s.L0RetentionCheckInterval
	next := time.Now().Add(interval)
	for {
		changed := s.changes()
		wake := next
		var changedC <-chan struct{}
		if until, ok := s.l0RetentionIdleUntil(); ok {
			changedC = changed
			if until.IsZero() {
				wake = time.Time{}
			} else if until.After(next) {
				wake = next.Add((until.Sub(next) + interval - 1) / interval * interval)
			}
		}
		var timer *time.Timer
		var timerC <-chan time.Time
		if !wake.IsZero() {
			timer = time.NewTimer(time.Until(wake))
			timerC = timer.C
		}
		select {
		case <-s.ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case <-changedC:
			if timer != nil {
				timer.Stop()
			}
			// Resume on the ticker's schedule.
			if now := time.Now(); now.After(next) {
				next = next.Add((now.Sub(next) + interval - 1) / interval * interval)
			}
			continue
		case <-timerC:
		}
		next = wake.Add(interval)

		for _, db := range s.DBs() {
			if !db.IsOpen() {
				continue
			}
			if err := db.enforceL0Retention(s.ctx, true); err != nil && !errors.Is(err, context.Canceled) {
				db.logger().Error("l0 retention failed", "error", err)
			}
		}
	}
}

// l0RetentionIdleUntil reports whether no open DB's L0 retention pass could
// delete anything before until, or, when until is zero, before files change.
func (s *Store) l0RetentionIdleUntil() (until time.Time, ok bool) {
	for _, db := range s.DBs() {
		if !db.IsOpen() {
			return time.Time{}, false
		}
		u, ok := db.l0RetentionIdleUntil()
		if !ok {
			return time.Time{}, false
		}
		if !u.IsZero() && (until.IsZero() || u.Before(until)) {
			until = u
		}
	}
	return until, true
}

// monitorValidation checks every replica each ValidationInterval and logs
// the problems found.
func (s *Store) monitorValidation() {
	internal.Tick(s.ctx, s.ValidationInterval, func() bool {
		result, err := s.Validate(s.ctx)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				s.logger().Error("validation failed", "error", err)
			}
			return true
		}
		for _, e := range result.Errors {
			s.logger().Warn("replica validation error", "level", e.Level, "type", e.Type, "message", e.Message)
		}
		return true
	})
}

// EnforceSnapshotRetention deletes expired snapshots of db, then the files
// of levels 1 and up that no retained snapshot or restore still needs.
func (s *Store) EnforceSnapshotRetention(ctx context.Context, db *DB) error {
	floor, err := db.EnforceSnapshotRetention(ctx, time.Now().Add(-s.SnapshotRetention))
	if err != nil {
		return err
	}
	s.mu.Lock()
	maxLevel := s.levels.MaxLevel()
	s.mu.Unlock()
	for level := 1; level <= maxLevel; level++ {
		if err := db.EnforceRetentionByTXID(ctx, level, floor); err != nil {
			return err
		}
	}
	return nil
}

// ValidationResult is the outcome of Store.Validate.
type ValidationResult struct {
	Valid  bool
	Errors []ValidationError
}

// Validate checks every configured level of every replica for gaps,
// overlaps and ordering errors, and each replica whose levels pass for
// TXIDs after its oldest snapshot that no file covers.
func (s *Store) Validate(ctx context.Context) (*ValidationResult, error) {
	result := &ValidationResult{Valid: true}
	s.mu.Lock()
	maxLevel := s.levels.MaxLevel()
	s.mu.Unlock()
	for _, db := range s.DBs() {
		if db.Replica == nil || db.Replica.Client == nil {
			continue
		}
		levelErrs := 0
		for level := 0; level <= maxLevel; level++ {
			errs, err := db.Replica.ValidateLevel(ctx, level)
			if err != nil {
				return nil, fmt.Errorf("validate L%d of %q: %w", level, db.Path(), err)
			}
			levelErrs += len(errs)
			result.Errors = append(result.Errors, errs...)
		}
		if levelErrs > 0 {
			continue // the chain check would report the same holes again
		}
		errs, err := db.Replica.ValidateChain(ctx)
		if err != nil {
			return nil, fmt.Errorf("validate chain of %q: %w", db.Path(), err)
		}
		result.Errors = append(result.Errors, errs...)
	}
	result.Valid = len(result.Errors) == 0
	return result, nil
}

// RegisterDB adds and opens a database; a path already present is a no-op.
func (s *Store) RegisterDB(db *DB) error {
	if db == nil {
		return fmt.Errorf("db required")
	}
	if s.FindDB(db.Path()) != nil {
		return nil
	}
	s.mu.Lock()
	s.applySettings(db)
	s.mu.Unlock()
	db.storePasses.Lock()
	db.retired = false // registered again after UnregisterDB
	db.storePasses.Unlock()
	if err := db.Open(); err != nil {
		return fmt.Errorf("open db %q: %w", db.Path(), err)
	}

	s.mu.Lock()
	for _, other := range s.dbs {
		if other.Path() == db.Path() {
			s.mu.Unlock()
			return db.Close(context.Background()) // lost a race to register
		}
	}
	s.dbs = append(s.dbs, db)
	s.mu.Unlock()
	s.signalChanged()
	return nil
}

// UnregisterDB removes a database and closes it.
func (s *Store) UnregisterDB(ctx context.Context, path string) error {
	if path == "" {
		return fmt.Errorf("db path required")
	}
	s.mu.Lock()
	var db *DB
	for i, other := range s.dbs {
		if other.Path() == path {
			db = other
			s.dbs = append(s.dbs[:i:i], s.dbs[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	if db == nil {
		return nil
	}
	// Wait for the passes under way: once this returns, a DB registered on
	// the same file must be the only one compacting its replica.
	db.storePasses.Lock()
	db.retired = true
	db.storePasses.Unlock()
	if err := db.Close(ctx); err != nil {
		return fmt.Errorf("close db: %w", err)
	}
	return nil
}

// EnableDB opens a registered database that was disabled.
func (s *Store) EnableDB(ctx context.Context, path string) error {
	db := s.FindDB(path)
	if db == nil {
		return fmt.Errorf("database not found: %s", path)
	} else if db.IsOpen() {
		return fmt.Errorf("database already enabled: %s", path)
	}
	defer s.signalChanged()
	return db.Open()
}

// DisableDB closes a registered database, keeping it registered.
func (s *Store) DisableDB(ctx context.Context, path string) error {
	db := s.FindDB(path)
	if db == nil {
		return fmt.Errorf("database not found: %s", path)
	} else if !db.IsOpen() {
		return fmt.Errorf("database already disabled: %s", path)
	}
	defer s.signalChanged()
	return db.Close(ctx)
}

// SyncDBResult reports what Store.SyncDB did.
type SyncDBResult struct {
	TXID           uint64 // local TXID after the sync
	ReplicatedTXID uint64 // replica position after the sync
	Changed        bool   // whether the local TXID advanced
}

// SyncDB syncs one database, and with wait also uploads to its replica.
func (s *Store) SyncDB(ctx context.Context, path string, wait bool) (SyncDBResult, error) {
	db := s.FindDB(path)
	if db == nil {
		return SyncDBResult{}, fmt.Errorf("%w: %s", ErrDatabaseNotFound, path)
	} else if !db.IsOpen() {
		return SyncDBResult{}, fmt.Errorf("%w: %s", ErrDatabaseNotOpen, path)
	}
	before, err := db.Pos()
	if err != nil {
		return SyncDBResult{}, err
	}
	if wait {
		err = db.SyncAndWait(ctx)
	} else {
		err = db.Sync(ctx)
	}
	if err != nil {
		return SyncDBResult{}, err
	}
	after, err := db.Pos()
	if err != nil {
		return SyncDBResult{}, err
	}
	return SyncDBResult{
		TXID:           uint64(after.TXID),
		ReplicatedTXID: uint64(db.Replica.Pos().TXID),
		Changed:        after.TXID != before.TXID,
	}, nil
}

// SetL0Retention sets L0 retention on the store and every DB.
func (s *Store) SetL0Retention(d time.Duration) {
	s.update(func() { s.L0Retention, s.pushed.l0Retention = d, d }, func(db *DB) {
		db.setCompactorOptions(func() { db.L0Retention = d })
	})
}

// SetDone sets the channel that interrupts shutdown syncs on every DB.
func (s *Store) SetDone(done <-chan struct{}) {
	s.update(func() { s.done = done }, func(db *DB) { db.Done = done })
}

// SetShutdownSyncTimeout sets the shutdown retry budget on every DB.
func (s *Store) SetShutdownSyncTimeout(d time.Duration) {
	s.update(func() { s.ShutdownSyncTimeout, s.pushed.shutdownSyncTimeout = d, d }, func(db *DB) { db.ShutdownSyncTimeout = d })
}

// SetShutdownSyncInterval sets the shutdown retry interval on every DB.
func (s *Store) SetShutdownSyncInterval(d time.Duration) {
	s.update(func() { s.ShutdownSyncInterval, s.pushed.shutdownSyncInterval = d, d }, func(db *DB) { db.ShutdownSyncInterval = d })
}

// SetVerifyCompaction sets compaction verification on every DB.
func (s *Store) SetVerifyCompaction(v bool) {
	s.update(func() { s.VerifyCompaction, s.pushed.verifyCompaction = v, v }, func(db *DB) {
		db.setCompactorOptions(func() { db.VerifyCompaction = v })
	})
}

// SetRetentionEnabled sets remote retention on every DB.
func (s *Store) SetRetentionEnabled(v bool) {
	s.update(func() { s.RetentionEnabled, s.pushed.retentionEnabled = v, v }, func(db *DB) {
		db.setCompactorOptions(func() { db.RetentionEnabled = v })
	})
}

func (s *Store) update(store func(), each func(*DB)) {
	defer s.signalChanged()
	s.mu.Lock()
	defer s.mu.Unlock()
	store()
	for _, db := range s.dbs {
		each(db)
	}
}

// checkDatabaseFile fails if path exists and is not a SQLite database: the
// DB would otherwise open and only log the problem at every sync. A missing
// or empty file is fine; SQLite makes it a database on the first write.
func checkDatabaseFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	if err := checkSQLiteHeader(f); err != nil {
		return fmt.Errorf("open database: %w (it does not start with the SQLite header; give NewDB the path of a SQLite database, or of one to be created)", err)
	}
	return nil
}
