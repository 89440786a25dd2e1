// Restore on startup: DB.EnsureExists restores a missing database from its
// replica before the DB opens, and refuses to let an empty one replace a
// backup that exists but does not restore.

package litestream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// EnsureExists restores the database from its replica if the file does not
// exist. An empty replica is not an error: the application creates a new
// database. A replica whose files restore nothing is. Call it before Open.
func (db *DB) EnsureExists(ctx context.Context) error {
	if db.Replica == nil {
		return fmt.Errorf("no replica configured")
	} else if db.Replica.Client == nil {
		return fmt.Errorf("no replica client configured")
	}
	// With a Leaser the restore happens under the lease (waiting for it in
	// LeaseWait mode), so that no other writer extends the replica after it.
	if err := db.Replica.acquireLease(ctx); err != nil {
		return err
	}
	if _, err := os.Stat(db.path); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if dir := filepath.Dir(db.path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("create database directory: %w", err)
		}
	}

	opt := NewRestoreOptions()
	opt.OutputPath = db.path
	opt.IntegrityCheck = IntegrityCheckQuick
	err := db.Replica.Restore(ctx, opt)
	if errors.Is(err, ErrTxNotAvailable) || errors.Is(err, ErrNoSnapshots) {
		return db.checkNoBackup(ctx, err)
	} else if err != nil {
		return fmt.Errorf("restore from backup: %w", err)
	}
	return nil
}

// checkNoBackup lets the application start an empty database only when the
// replica holds no files: files that do not restore (older ones expired by
// a bucket lifecycle rule, a partial copy) are a backup in trouble, and an
// empty database replicated over them would become its latest state.
func (db *DB) checkNoBackup(ctx context.Context, restoreErr error) error {
	e, err := readReplicaExtent(ctx, db.Replica.Client, false)
	if err != nil {
		return fmt.Errorf("restore from backup: %w (and listing the replica failed: %w)", restoreErr, err)
	} else if e.files == 0 {
		return nil
	}
	return fmt.Errorf("restore from backup: %s holds %d files (TXIDs %s-%s) but they restore no database; %s was not created, so that an empty one does not replace the backup: restore by hand, or remove the replica's files to start empty: %w",
		replicaName(db.Replica.Client), e.files, e.minTXID, e.maxTXID, db.path, restoreErr)
}
