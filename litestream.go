// Package litestream replicates SQLite databases continuously to object stores
// and file servers as LTX files, and restores them to any point in time.
//
// A program wraps its database with NewDB, attaches a Replica with a
// ReplicaClient (see the file, s3, gs, abs, oss, sftp, nats and webdav
// packages) and opens a Store, which syncs the WAL into level-0 LTX files,
// uploads them, compacts them into higher levels and writes snapshots.
package litestream

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/superfly/ltx"
)

// MetaDirSuffix is appended to the database's base name to form the name of
// the hidden directory, beside the database, that holds local LTX files.
const MetaDirSuffix = "-litestream"

// SnapshotLevel is the LTX level that holds full database snapshots.
const SnapshotLevel = 9

// Checkpoint modes accepted by DB.Checkpoint.
const (
	CheckpointModePassive  = "PASSIVE"
	CheckpointModeFull     = "FULL"
	CheckpointModeRestart  = "RESTART"
	CheckpointModeTruncate = "TRUNCATE"
)

// Logging keys and values shared by the package's loggers.
const (
	LogKeySystem    = "system"
	LogKeySubsystem = "subsystem"
	LogKeyDB        = "db"
)

// LogSystemStore is the system attribute of the Store's logger.
const LogSystemStore = "store"

// Subsystem attribute values.
const (
	LogSubsystemCompactor = "compactor"
	LogSubsystemWALReader = "wal-reader"
)

// LogWriter and LogFlags are kept for source compatibility; nothing reads them.
var (
	LogWriter = os.Stdout
	LogFlags  = 0
)

// Sentinel errors. Compare with errors.Is: they are usually wrapped.
var (
	// ErrNoSnapshots is returned by legacy restores that find no snapshot.
	// EnsureExists treats it like ErrTxNotAvailable.
	ErrNoSnapshots = errors.New("no snapshots available")

	// ErrChecksumMismatch marks a replica whose checksums do not match.
	ErrChecksumMismatch = errors.New("invalid replica, checksum mismatch")

	// ErrLTXCorrupted marks an LTX file that fails to decode or verify.
	ErrLTXCorrupted = errors.New("ltx file corrupted")

	// ErrLTXMissing marks an LTX file that should exist but does not.
	ErrLTXMissing = errors.New("ltx file missing")

	// ErrDiskFull is wrapped when staging a local LTX file runs out of space.
	ErrDiskFull = errors.New("disk full")
)

// compactionGapError is ErrCompactionGap's type: it matches ErrNoCompaction
// too.
type compactionGapError struct{}

func (compactionGapError) Error() string {
	return "TXID gap: compaction input does not continue the destination level"
}

func (compactionGapError) Is(target error) bool { return target == ErrNoCompaction }

// Sentinel errors returned by compaction, restore and the Store.
var (
	// ErrNoCompaction means the source level holds nothing new.
	ErrNoCompaction = errors.New("no compaction")

	// ErrCompactionGap means the source level's next file does not start
	// where the destination level ends (one is missing from the listing,
	// or was never written), or its files are non-contiguous or
	// overlapping: compacting them would leave a hole in the destination,
	// so compaction waits. It also matches ErrNoCompaction, as upstream
	// reports a hole at the destination's end: nothing was compacted.
	ErrCompactionGap error = compactionGapError{}

	// ErrCompactionTooEarly means the level already has a file for the
	// current interval window.
	ErrCompactionTooEarly = errors.New("compaction too early")

	// ErrTxNotAvailable means the replica cannot produce the requested
	// state: it is empty, or the TXID or timestamp is out of reach.
	ErrTxNotAvailable = errors.New("transaction not available")

	// ErrDBNotReady matches any *DBNotReadyError.
	ErrDBNotReady = &DBNotReadyError{}

	// ErrShutdownInterrupted is returned when DB.Done closes during the
	// shutdown sync retry loop.
	ErrShutdownInterrupted = errors.New("shutdown sync interrupted")

	// ErrDatabaseNotFound is returned for a path the Store does not manage.
	ErrDatabaseNotFound = errors.New("database not found")

	// ErrDatabaseNotOpen is returned for a Store database that is closed.
	ErrDatabaseNotOpen = errors.New("database not open")
)

// ErrStopIter may be returned by a FindLTXFiles filter to stop iterating.
var ErrStopIter = errors.New("stop iterator")

// errNoPosition is returned by Replica.Sync before the DB has written any L0.
var errNoPosition = errors.New("no position, waiting for data")

// LTXError describes a failure on one LTX file: what was done, which file,
// its level and TXID range, and a hint for the operator where one helps.
type LTXError struct {
	Op      string
	Path    string
	Level   int
	MinTXID uint64
	MaxTXID uint64
	Err     error
	Hint    string
}

// NewLTXError returns an LTXError with Hint filled from the cause.
func NewLTXError(op, path string, level int, minTXID, maxTXID uint64, err error) *LTXError {
	e := &LTXError{Op: op, Path: path, Level: level, MinTXID: minTXID, MaxTXID: maxTXID, Err: err}
	switch {
	case os.IsNotExist(err) || errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrLTXMissing):
		e.Hint = "the LTX file is missing, possibly after a VACUUM, a manual checkpoint or corruption; run 'litestream reset <db>' or delete the -litestream directory and restart"
	case errors.Is(err, ErrLTXCorrupted) || errors.Is(err, ErrChecksumMismatch):
		e.Hint = "the LTX file is corrupted; delete the -litestream directory and restart to recover from the replica"
	}
	return e
}

// Error returns "<op> ltx file <path>: <err>".
func (e *LTXError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s ltx file: %s", e.Op, e.Err)
	}
	return fmt.Sprintf("%s ltx file %s: %s", e.Op, e.Path, e.Err)
}

// Unwrap returns the cause.
func (e *LTXError) Unwrap() error { return e.Err }

// IsAutoRecoverable reports whether resetting local state can fix the error:
// a missing or corrupted file. Transient OS errors are not recoverable so,
// nor is a failed upload: a backend's "not found" says nothing of local state.
func (e *LTXError) IsAutoRecoverable() bool {
	if e.Op == "upload" {
		return false
	}
	return errors.Is(e.Err, os.ErrNotExist) ||
		errors.Is(e.Err, ErrLTXMissing) ||
		errors.Is(e.Err, ErrLTXCorrupted) ||
		errors.Is(e.Err, ErrChecksumMismatch)
}

// remoteLTXError describes a failed read or write of a replica file, named
// by its key under the replica's root.
func remoteLTXError(op string, level int, minTXID, maxTXID ltx.TXID, err error) *LTXError {
	return &LTXError{Op: op, Path: LTXFilePath("", level, minTXID, maxTXID), Level: level, MinTXID: uint64(minTXID), MaxTXID: uint64(maxTXID), Err: err}
}

// ltxErrorAttrs returns log attributes naming the file, level and TXID range
// of the first LTXError in err's chain, or nil if there is none.
func ltxErrorAttrs(err error) []any {
	var e *LTXError
	if !errors.As(err, &e) {
		return nil
	}
	path := e.Path
	if path == "" && e.MaxTXID != 0 {
		path = LTXFilePath("", e.Level, ltx.TXID(e.MinTXID), ltx.TXID(e.MaxTXID))
	}
	attrs := []any{"path", path, "level", e.Level, "min_txid", ltx.TXID(e.MinTXID), "max_txid", ltx.TXID(e.MaxTXID)}
	if e.Hint != "" {
		attrs = append(attrs, "hint", e.Hint)
	}
	return attrs
}

// DBNotReadyError is returned by operations that need an initialized DB.
type DBNotReadyError struct{ Reason string }

// Error returns "db not ready" with the reason, if any.
func (e *DBNotReadyError) Error() string {
	if e.Reason == "" {
		return "db not ready"
	}
	return "db not ready: " + e.Reason
}

// Is matches any *DBNotReadyError so that errors.Is(err, ErrDBNotReady) works.
func (e *DBNotReadyError) Is(target error) bool {
	_, ok := target.(*DBNotReadyError)
	return ok
}

// PrevFrameMismatchError is returned by NewWALReaderWithOffset when the frame
// before the requested offset cannot be read or carries other salts.
type PrevFrameMismatchError struct{ Err error }

// Error returns "prev frame mismatch: <err>".
func (e *PrevFrameMismatchError) Error() string { return "prev frame mismatch: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *PrevFrameMismatchError) Unwrap() error { return e.Err }

// isDiskFullError reports whether err looks like the disk or quota is full.
func isDiskFullError(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"no space left on device", "disk quota exceeded", "not enough space on the disk", "database or disk is full", "enospc", "edquot"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
