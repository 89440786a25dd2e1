// Test hooks into the package's internals.
package litestream

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/superfly/ltx"
)

// ApplyNewFiles runs one round of follow mode on an open output database,
// so that fuzzing can drive it without the polling loop.
func (r *Replica) ApplyNewFiles(ctx context.Context, f *os.File, cur ltx.TXID) (ltx.TXID, error) {
	out, err := openFollowOutput(ctx, f.Name())
	if err != nil {
		return cur, err
	}
	defer func() { _ = out.close() }()
	return r.applyNewFiles(ctx, out, cur)
}

// SetFollowPageHook sets the hook follow mode calls after writing each
// page of a file, with the count written so far, for crash and fault tests
// run in a child process.
func SetFollowPageHook(fn func(written int) error) { followPageHook = fn }

// SetFollowCommitHook sets, until the test ends, a hook follow mode calls
// after each commit of the output with the TXID reached.
func SetFollowCommitHook(t testing.TB, fn func(ltx.TXID)) {
	followCommitHook = fn
	t.Cleanup(func() { followCommitHook = nil })
}

// NextTXIDPath is where a follower records the TXID of a commit in progress.
func NextTXIDPath(outputPath string) string { return nextTXIDPath(outputPath) }

// SetCrashPoint replaces the hook called at named steps of syncs and
// checkpoints, for crash tests in package litestream_test.
func SetCrashPoint(fn func(name string)) { crashPoint = fn }

// SetRestoreSyncDir replaces the directory sync that makes a placed restore
// output durable, until the test ends.
func SetRestoreSyncDir(t testing.TB, fn func(dir string) error) {
	prev := restoreSyncDir
	restoreSyncDir = fn
	t.Cleanup(func() { restoreSyncDir = prev })
}

// SetOpenFileHook replaces the opener of staged LTX files until the test
// ends, so external tests can pause or fail a sync at that point.
func SetOpenFileHook(t testing.TB, fn func(name string, flag int, perm os.FileMode) (*os.File, error)) {
	prev := openFile
	openFile = fn
	t.Cleanup(func() { openFile = prev })
}

// DisableWALWatcher makes monitors started until the test ends poll the WAL,
// as on systems without change events.
func DisableWALWatcher(t testing.TB) {
	prev := openWALWatcher
	openWALWatcher = func(string) (*walWatcher, error) { return nil, errors.ErrUnsupported }
	t.Cleanup(func() { openWALWatcher = prev })
}

// SetMaxCompactionInputs caps the inputs of one merge until the test ends.
func SetMaxCompactionInputs(t testing.TB, n int) {
	prev := maxCompactionInputs
	maxCompactionInputs = n
	t.Cleanup(func() { maxCompactionInputs = prev })
}

// ReadLockHeld reports whether the DB's long-running read transaction is
// still alive, or true when the DB has none yet.
func ReadLockHeld(db *DB) bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.rconn == nil {
		return db.sqldb == nil
	}
	// BEGIN fails only inside a transaction: the lock is held.
	ctx := context.Background()
	if _, err := db.rconn.ExecContext(ctx, `BEGIN`); err != nil {
		return strings.Contains(err.Error(), "within a transaction")
	}
	_, _ = db.rconn.ExecContext(ctx, `ROLLBACK`)
	return false
}

// EnforceL0RetentionIfDue runs L0 retention as the Store's background
// monitor does: skipped while nothing changed and nothing is due.
func EnforceL0RetentionIfDue(ctx context.Context, db *DB) error {
	return db.enforceL0Retention(ctx, true)
}

// SetTopCompactionLevel sets the highest compaction level of db's store, as
// a Store does: compaction keeps local copies of the levels below it.
func SetTopCompactionLevel(db *DB, level int) { db.topCompactionLevel.Store(int32(level)) }

// FramesPastWALIndex reports whether db's last sync stopped at SQLite's
// wal-index before valid frames SQLite had not published.
func FramesPastWALIndex(db *DB) bool { return db.framesPastWALIndex.Load() }

// ForgetClaims releases db's claims on its database file and replica, as
// the end of its process would, without closing it: tests modelling a
// crashed writer then open another DB on the same replica.
func ForgetClaims(db *DB) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.releaseFile()
}

// LinkNoReplace is the placement of a restored database used where rename
// cannot refuse to replace: a hard link, or a checked rename without one.
var LinkNoReplace = linkNoReplace

// PollOnce runs one tick of the VFS's poller, for tests that set a long
// PollInterval to order polls against changes of the replica.
func (v *VFS) PollOnce() { v.pollOnce() }
