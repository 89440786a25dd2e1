// The benchmark's application: its own SQLite connection and writes.

package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	_ "modernc.org/sqlite"
)

// openApp opens the application's own connection: WAL, synchronous=NORMAL,
// one connection, as a typical single-writer app would.
func openApp(path string) (*sql.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)&_pragma=synchronous(normal)"
	sqldb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	sqldb.SetMaxOpenConns(1)
	if _, err := sqldb.Exec(`CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		_ = sqldb.Close()
		return nil, fmt.Errorf("create table: %w", err)
	}
	return sqldb, nil
}

// insert commits one single-row transaction.
func insert(sqldb *sql.DB) error {
	_, err := sqldb.Exec(`INSERT INTO t (v) VALUES ('row data for the benchmark')`)
	return err
}

// commitLoop commits single-row transactions as fast as it can for d and
// returns the commit count.
func commitLoop(sqldb *sql.DB, d time.Duration) (int, error) {
	n := 0
	for deadline := time.Now().Add(d); time.Now().Before(deadline); n++ {
		if err := insert(sqldb); err != nil {
			return n, err
		}
	}
	return n, nil
}

// replicated is a database tracked by the library, replicating to a
// counting file backend.
type replicated struct {
	db     *litestream.DB
	client *countingClient
	store  *litestream.Store
}

// openReplicated opens the library on path. A Store with the default
// compaction levels runs its monitors when withStore is set.
func openReplicated(path, replicaDir string, monitor, syncInterval time.Duration, withStore bool) (*replicated, error) {
	db := litestream.NewDB(path)
	db.MonitorInterval = monitor
	client := &countingClient{ReplicaClient: file.NewReplicaClient(replicaDir)}
	db.Replica = litestream.NewReplicaWithClient(db, client)
	db.Replica.SyncInterval = syncInterval
	db.Replica.MonitorEnabled = monitor > 0

	r := &replicated{db: db, client: client}
	if withStore {
		r.store = litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
		if err := r.store.Open(context.Background()); err != nil {
			return nil, err
		}
		return r, nil
	}
	if err := db.Open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *replicated) close() error {
	ctx := context.Background()
	if r.store != nil {
		return r.store.Close(ctx)
	}
	return r.db.Close(ctx)
}

// waitCaughtUp waits until the replica holds every local L0 file.
func (r *replicated) waitCaughtUp(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return r.db.WaitReplicated(ctx)
}

// genDB builds a database of about size bytes of incompressible rows, then
// switches it to WAL mode.
func genDB(path string, size int64) error {
	sqldb, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(off)&_pragma=synchronous(off)")
	if err != nil {
		return err
	}
	defer func() { _ = sqldb.Close() }()
	sqldb.SetMaxOpenConns(1)
	if _, err := sqldb.Exec(`CREATE TABLE blobs (id INTEGER PRIMARY KEY, v BLOB)`); err != nil {
		return err
	}
	const rowSize, batch = 3000, 4096 // about one row per 4 KiB page
	rows := size / 4096
	for done := int64(0); done < rows; done += batch {
		n := min(batch, rows-done)
		if _, err := sqldb.Exec(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < ?)
			INSERT INTO blobs (v) SELECT randomblob(?) FROM c`, n, rowSize); err != nil {
			return fmt.Errorf("generate rows: %w", err)
		}
	}
	if _, err := sqldb.Exec(`PRAGMA journal_mode = wal`); err != nil {
		return err
	}
	return nil
}

// copyFsynced copies src to dst and fsyncs it: the restore baseline.
func copyFsynced(src, dst string) (time.Duration, error) {
	start := time.Now()
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer func() { _ = in.Close() }()
	out, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	if _, err := out.ReadFrom(in); err != nil {
		_ = out.Close()
		return 0, err
	}
	if err := out.Sync(); err != nil {
		_ = out.Close()
		return 0, err
	}
	if err := out.Close(); err != nil {
		return 0, err
	}
	d, err := os.Open(filepath.Dir(dst))
	if err != nil {
		return 0, err
	}
	defer func() { _ = d.Close() }()
	return time.Since(start), d.Sync()
}

// percentile returns the p-th percentile (0-100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}
