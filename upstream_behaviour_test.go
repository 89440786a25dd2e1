// Behaviour that upstream Litestream's own tests promise to users of its
// library API, checked against ours: code written for upstream and switched
// here with a replace line must see the same return values, errors, files
// and positions. Written from reading those tests, not copied from them.
//
// Where ours differs on purpose (README "Deliberately better"), the test
// checks ours and its comment says what upstream does.
package litestream_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/pierrec/lz4/v4"
	"github.com/superfly/ltx"
)

// upLTX writes a one-page LTX file covering minTXID..maxTXID, stamped ts,
// to client at level.
func upLTX(t testing.TB, client litestream.ReplicaClient, level int, minTXID, maxTXID ltx.TXID, ts time.Time) {
	t.Helper()
	MustWriteLTX(t, client, level, minTXID, maxTXID, clienttest.MustLTX(t, 4096, minTXID, maxTXID, 1, ts))
}

// upCount counts the replica's files at level.
func upCount(t testing.TB, client litestream.ReplicaClient, level int) int {
	t.Helper()
	return len(levelFiles(t, client, level))
}

// upExec runs each statement on app.
func upExec(t testing.TB, app *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := app.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// upSync syncs db and fails the test on error.
func upSync(t testing.TB, db *litestream.DB) {
	t.Helper()
	if err := db.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// upUpload uploads db's pending L0 files.
func upUpload(t testing.TB, db *litestream.DB) {
	t.Helper()
	if err := db.Replica.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// upTXID returns db's local position TXID.
func upTXID(t testing.TB, db *litestream.DB) ltx.TXID {
	t.Helper()
	pos, err := db.Pos()
	if err != nil {
		t.Fatal(err)
	}
	return pos.TXID
}

// upOpenEmptyDB opens a DB on a path where no database file exists, with
// manual syncs and uploads.
func upOpenEmptyDB(t testing.TB) (*litestream.DB, *file.ReplicaClient) {
	t.Helper()
	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db := manual(MustNewDB(t, filepath.Join(dir, "db"), client))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	return db, client
}

// countingClient counts snapshot writes and can fail or cut short calls.
type countingClient struct {
	litestream.ReplicaClient
	mu         sync.Mutex
	l9Writes   int
	initFunc   func(context.Context) error
	failWrites error
}

func (c *countingClient) Init(ctx context.Context) error {
	if c.initFunc != nil {
		return c.initFunc(ctx)
	}
	return c.ReplicaClient.Init(ctx)
}

func (c *countingClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	c.mu.Lock()
	if level == litestream.SnapshotLevel {
		c.l9Writes++
	}
	fail := c.failWrites
	c.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	return c.ReplicaClient.WriteLTXFile(ctx, level, minTXID, maxTXID, r)
}

func (c *countingClient) snapshotWrites() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.l9Writes
}

// Path, WALPath and MetaPath derive from the path given to NewDB; the meta
// directory is a hidden sibling, relative when the path is.
func TestUpstream_DB_Paths(t *testing.T) {
	db := litestream.NewDB("/tmp/db")
	if got, want := db.Path(), "/tmp/db"; got != want {
		t.Errorf("Path()=%s, want %s", got, want)
	}
	if got, want := db.WALPath(), "/tmp/db-wal"; got != want {
		t.Errorf("WALPath()=%s, want %s", got, want)
	}
	if got, want := db.MetaPath(), "/tmp/.db-litestream"; got != want {
		t.Errorf("MetaPath()=%s, want %s", got, want)
	}
	if got, want := litestream.NewDB("db").MetaPath(), ".db-litestream"; got != want {
		t.Errorf("relative MetaPath()=%s, want %s", got, want)
	}
}

// CRC64 of a missing database is a not-exist error that os.IsNotExist
// recognises.
func TestUpstream_DB_CRC64_NotExist(t *testing.T) {
	db, _ := upOpenEmptyDB(t)
	_, _, err := db.CRC64(context.Background())
	if !os.IsNotExist(err) {
		t.Fatalf("CRC64 on a missing database: os.IsNotExist(%#v) is false (errors.Is ErrNotExist: %v)", err, errors.Is(err, os.ErrNotExist))
	}
}

// CRC64 covers the WAL's committed content: a change in the WAL changes it,
// and so does checkpointing that change into the database.
func TestUpstream_DB_CRC64_FollowsChanges(t *testing.T) {
	ctx := context.Background()
	db, app, _ := MustOpenDB(t, 4096)
	upSync(t, db)
	c0, _, err := db.CRC64(ctx)
	if err != nil {
		t.Fatal(err)
	}
	upExec(t, app, `CREATE TABLE u (id INT)`)
	if c1, _, err := db.CRC64(ctx); err != nil {
		t.Fatal(err)
	} else if c1 == c0 {
		t.Fatal("checksum unchanged after a WAL change")
	}
	if err := db.Checkpoint(ctx, litestream.CheckpointModeTruncate); err != nil {
		t.Fatal(err)
	}
	if c2, _, err := db.CRC64(ctx); err != nil {
		t.Fatal(err)
	} else if c2 == c0 {
		t.Fatal("checksum unchanged after a checkpoint")
	}
}

// Sync of a DB whose database file does not exist is a no-op without error.
func TestUpstream_DB_Sync_NoDB(t *testing.T) {
	db, _ := upOpenEmptyDB(t)
	upSync(t, db)
	if db.PageSize() != 0 {
		t.Fatalf("PageSize()=%d, want 0", db.PageSize())
	}
	if _, err := os.Stat(db.Path()); !os.IsNotExist(err) {
		t.Fatalf("database file after Sync: %v", err)
	}
}

// The first sync learns the page size, leaves a WAL, and is TXID 1 with its
// L0 file in the meta directory.
func TestUpstream_DB_Sync_Initial(t *testing.T) {
	db, _, _ := MustOpenDB(t, 4096)
	upSync(t, db)
	if db.PageSize() == 0 {
		t.Fatal("PageSize()=0 after the first sync")
	}
	if fi, err := os.Stat(db.WALPath()); err != nil {
		t.Fatal(err)
	} else if fi.Size() == 0 {
		t.Fatal("empty WAL after the first sync")
	}
	if got := upTXID(t, db); got != 1 {
		t.Fatalf("TXID=%s, want 1", got)
	}
	want := filepath.Join(db.MetaPath(), "ltx", "0", "0000000000000001-0000000000000001.ltx")
	if got := db.LTXPath(0, 1, 1); got != want {
		t.Fatalf("LTXPath(0,1,1)=%s, want %s", got, want)
	}
	if _, err := os.Stat(want); err != nil {
		t.Fatal(err)
	}
}

// Each sync that captures a new commit advances the TXID by exactly one.
func TestUpstream_DB_Sync_OneTXIDPerSync(t *testing.T) {
	db, app, _ := MustOpenDB(t, 4096)
	upExec(t, app, `CREATE TABLE foo (bar TEXT)`)
	upSync(t, db)
	pos0 := upTXID(t, db)
	upExec(t, app, `INSERT INTO foo (bar) VALUES ('baz')`)
	upSync(t, db)
	if got := upTXID(t, db); got != pos0+1 {
		t.Fatalf("TXID=%s, want %s", got, pos0+1)
	}
}

// A DB reopened after its WAL was checkpointed away and deleted syncs again.
func TestUpstream_DB_Sync_ReopenWithoutWAL(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	app := MustOpenApp(t, path, 4096)
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db := manual(MustNewDB(t, path, client))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	upSync(t, db)
	if err := db.Checkpoint(ctx, litestream.CheckpointModeTruncate); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(db.WALPath()); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}

	db2 := manual(MustNewDB(t, path, client))
	if err := db2.Open(); err != nil {
		t.Fatal(err)
	}
	upSync(t, db2)
	if _, err := db2.Pos(); err != nil {
		t.Fatal(err)
	}
}

// After both the DB and the last application connection close, SQLite
// removes the WAL; many writes made while the DB was closed are picked up
// when it is opened again.
func TestUpstream_DB_Sync_WritesWhileClosed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	app := MustOpenApp(t, path, 4096)
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db := manual(MustNewDB(t, path, client))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	upExec(t, app, `CREATE TABLE foo (bar TEXT)`)
	upSync(t, db)
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(db.WALPath()); !os.IsNotExist(err) {
		t.Fatalf("WAL after closing the DB and the app: stat err=%v, want not exist", err)
	}

	app2 := MustOpenApp(t, path, 4096)
	for range 100 {
		upExec(t, app2, `INSERT INTO foo (bar) VALUES ('baz')`)
	}
	db2 := manual(MustNewDB(t, path, client))
	if err := db2.Open(); err != nil {
		t.Fatal(err)
	}
	upSync(t, db2)
	if _, err := db2.Pos(); err != nil {
		t.Fatal(err)
	}
	upUpload(t, db2)
	if got, want := MustCheckRestored(t, MustRestore(t, db2.Replica, 0)), MustDump(t, app2); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
}

// Crossing MinCheckpointPageN makes the sync checkpoint: TXID 1 is the
// first sync, 2 the inserts, 3 the write that restarts the WAL.
func TestUpstream_DB_Sync_MinCheckpointPageN(t *testing.T) {
	db, app, _ := MustOpenDB(t, 4096)
	upExec(t, app, `CREATE TABLE foo (bar TEXT)`)
	upSync(t, db)
	for range db.MinCheckpointPageN {
		upExec(t, app, `INSERT INTO foo (bar) VALUES ('baz')`)
	}
	upSync(t, db)
	if got := upTXID(t, db); got != 3 {
		t.Fatalf("TXID=%s, want 3", got)
	}
}

// upWALPages is the WAL's length in whole frames.
func upWALPages(t testing.TB, db *litestream.DB) int64 {
	t.Helper()
	fi, err := os.Stat(db.WALPath())
	if os.IsNotExist(err) {
		return 0
	} else if err != nil {
		t.Fatal(err)
	}
	if db.PageSize() == 0 || fi.Size() <= litestream.WALHeaderSize {
		return 0
	}
	return (fi.Size() - litestream.WALHeaderSize) / int64(litestream.WALFrameHeaderSize+db.PageSize())
}

// TruncatePageN=1 makes a sync over a longer WAL truncate it.
func TestUpstream_DB_Sync_TruncatePageN(t *testing.T) {
	db, app, _ := MustOpenDB(t, 4096)
	db.TruncatePageN = 1
	upExec(t, app, `CREATE TABLE foo (bar TEXT)`)
	upSync(t, db)
	payload := strings.Repeat("x", db.PageSize())
	for upWALPages(t, db) <= 1 {
		if _, err := app.Exec(`INSERT INTO foo (bar) VALUES (?)`, payload); err != nil {
			t.Fatal(err)
		}
	}
	upSync(t, db)
	if got := upWALPages(t, db); got > 1 {
		t.Fatalf("WAL holds %d pages after sync, want at most 1", got)
	}
}

// DB.Compact(1) merges uploaded L0 files into one L1 file; later levels
// draw from the level below.
func TestUpstream_DB_Compact(t *testing.T) {
	ctx := context.Background()
	db, app, _ := MustOpenDB(t, 4096)
	upSync(t, db)
	upExec(t, app, `CREATE TABLE u (id INT)`, `INSERT INTO u (id) VALUES (100)`)
	upSync(t, db)
	upUpload(t, db)

	info, err := db.Compact(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if info.Level != 1 || info.MinTXID != 1 || info.MaxTXID != 2 || info.Size == 0 {
		t.Fatalf("Compact(1)=L%d %s-%s size %d, want L1 1-2 with a size", info.Level, info.MinTXID, info.MaxTXID, info.Size)
	}

	upExec(t, app, `INSERT INTO u (id) VALUES (100)`)
	upSync(t, db)
	upUpload(t, db)
	if info, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	} else if got := ltx.FormatFilename(info.MinTXID, info.MaxTXID); got != "0000000000000003-0000000000000003.ltx" {
		t.Fatalf("second L1 file %s", got)
	}
	if info, err := db.Compact(ctx, 2); err != nil {
		t.Fatal(err)
	} else if got := ltx.FormatFilename(info.MinTXID, info.MaxTXID); info.Level != 2 || got != "0000000000000001-0000000000000003.ltx" {
		t.Fatalf("L2 file L%d %s, want L2 1-3", info.Level, got)
	}
}

// DB.Snapshot writes an L9 file 1-<pos> whose database has the live
// database's CRC64.
func TestUpstream_DB_Snapshot(t *testing.T) {
	ctx := context.Background()
	db, app, _ := MustOpenDB(t, 4096)
	upExec(t, app, `CREATE TABLE u (id INT)`)
	upSync(t, db)
	upExec(t, app, `INSERT INTO u (id) VALUES (100)`)
	upSync(t, db)

	info, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := ltx.FormatFilename(info.MinTXID, info.MaxTXID); got != "0000000000000001-0000000000000002.ltx" {
		t.Fatalf("snapshot %s", got)
	}
	want, _, err := db.CRC64(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := db.Replica.Client.OpenLTXFile(ctx, litestream.SnapshotLevel, 1, 2, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	h := crc64.New(crc64.MakeTable(crc64.ISO))
	if err := ltx.NewDecoder(rc).DecodeDatabaseTo(h); err != nil {
		t.Fatal(err)
	}
	if h.Sum64() != want {
		t.Fatalf("snapshot CRC64 %016x, database %016x", h.Sum64(), want)
	}
}

// A snapshot holds every committed transaction, and its TXID names its
// state exactly.
//
// DELIBERATE DIFFERENCE (README "Deliberately better"). Upstream bounds the
// WAL read at the last synced offset and labels the snapshot with the
// position as it was, leaving out commits made since the last sync (SPEC
// section 7; section 19 "Snapshot excludes WAL frames committed after the
// last sync"). Ours syncs first: the unsynced commit gets its TXID (2) and
// the snapshot at that TXID holds it.
func TestUpstream_DB_Snapshot_SyncsFirst(t *testing.T) {
	ctx := context.Background()
	db, app, _ := MustOpenDB(t, 4096)
	upExec(t, app, `CREATE TABLE u (id INTEGER PRIMARY KEY)`, `INSERT INTO u (id) VALUES (1)`)
	upSync(t, db)
	pos := upTXID(t, db)
	upExec(t, app, `INSERT INTO u (id) VALUES (2)`)

	info, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.MaxTXID != pos+1 || upTXID(t, db) != info.MaxTXID {
		t.Fatalf("snapshot MaxTXID %s, DB at %s, want both %s", info.MaxTXID, upTXID(t, db), pos+1)
	}
	rc, err := db.Replica.Client.OpenLTXFile(ctx, litestream.SnapshotLevel, 1, info.MaxTXID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	out := filepath.Join(t.TempDir(), "snap.db")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := ltx.NewDecoder(rc).DecodeDatabaseTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	sdb, err := sql.Open("sqlite", testFileURI(out))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sdb.Close() }()
	var n int
	if err := sdb.QueryRow(`SELECT COUNT(*) FROM u`).Scan(&n); err != nil {
		t.Fatal(err)
	} else if n != 2 {
		t.Fatalf("snapshot holds %d rows, want 2", n)
	}
}

// Snapshot always writes, even twice at one position.
func TestUpstream_DB_Snapshot_AlwaysWrites(t *testing.T) {
	ctx := context.Background()
	db, app, _ := MustOpenDB(t, 4096)
	cc := &countingClient{ReplicaClient: db.Replica.Client}
	db.Replica.Client = cc
	upExec(t, app, `CREATE TABLE u (id INT)`)
	upSync(t, db)
	upExec(t, app, `INSERT INTO u (id) VALUES (100)`)
	upSync(t, db)
	a, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ltx.FormatFilename(a.MinTXID, a.MaxTXID) != ltx.FormatFilename(b.MinTXID, b.MaxTXID) {
		t.Fatalf("snapshots %s-%s and %s-%s", a.MinTXID, a.MaxTXID, b.MinTXID, b.MaxTXID)
	}
	if got := cc.snapshotWrites(); got != 2 {
		t.Fatalf("%d snapshot writes, want 2", got)
	}
}

// upThreeSnapshots makes snapshots 1-2, 1-3 and 1-4, 100ms apart.
func upThreeSnapshots(t testing.TB, db *litestream.DB, app *sql.DB) {
	t.Helper()
	upExec(t, app, `CREATE TABLE u (id INT)`)
	upSync(t, db)
	for i := range 3 {
		if _, err := app.Exec(`INSERT INTO u (id) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
		upSync(t, db)
		if _, err := db.Snapshot(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// EnforceSnapshotRetention removes snapshots older than the cut-off, keeps
// at least one, and returns the MaxTXID of the snapshot before the first it
// keeps.
func TestUpstream_DB_EnforceSnapshotRetention(t *testing.T) {
	db, app, client := MustOpenDB(t, 4096)
	upThreeSnapshots(t, db, app)
	if n := upCount(t, client, litestream.SnapshotLevel); n != 3 {
		t.Fatalf("%d snapshots, want 3", n)
	}
	min, err := db.EnforceSnapshotRetention(context.Background(), time.Now().Add(-150*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if min != 3 {
		t.Fatalf("EnforceSnapshotRetention=%s, want 3", min)
	}
	if n := upCount(t, client, litestream.SnapshotLevel); n < 1 || n >= 3 {
		t.Fatalf("%d snapshots after retention, want 1 or 2", n)
	}
}

// With only one snapshot, retention returns 0: there is no earlier snapshot.
func TestUpstream_DB_EnforceSnapshotRetention_NoPriorSnapshot(t *testing.T) {
	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db := MustNewDB(t, filepath.Join(dir, "db"), client)
	upLTX(t, client, litestream.SnapshotLevel, 1, 5, time.Now().Add(-time.Hour))
	min, err := db.EnforceSnapshotRetention(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if min != 0 {
		t.Fatalf("EnforceSnapshotRetention=%s, want 0", min)
	}
}

// With RetentionEnabled false, snapshot retention deletes no remote file.
func TestUpstream_DB_EnforceSnapshotRetention_Disabled(t *testing.T) {
	db, app, client := MustOpenDB(t, 4096)
	db.RetentionEnabled = false
	upThreeSnapshots(t, db, app)
	if _, err := db.EnforceSnapshotRetention(context.Background(), time.Now().Add(-150*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n := upCount(t, client, litestream.SnapshotLevel); n != 3 {
		t.Fatalf("%d snapshots, want all 3", n)
	}
}

// Store snapshot retention keeps the files that a restore planned before it
// still needs.
func TestUpstream_Store_EnforceSnapshotRetention_KeepsPlannedFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db := manual(MustNewDB(t, filepath.Join(dir, "db"), client))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	upLTX(t, client, litestream.SnapshotLevel, 1, 5, old)
	upLTX(t, client, 1, 6, 10, old.Add(time.Minute))

	plan, err := litestream.CalcRestorePlan(ctx, client, 10, time.Time{}, db.Logger)
	if err != nil {
		t.Fatal(err)
	}
	var planned *ltx.FileInfo
	for _, info := range plan {
		if info.Level == 1 && info.MinTXID == 6 && info.MaxTXID == 10 {
			planned = info
		}
	}
	if planned == nil {
		t.Fatalf("plan lacks L1 6-10: %s", rangesOf(plan))
	}
	upLTX(t, client, litestream.SnapshotLevel, 1, 11, time.Now())
	upLTX(t, client, 1, 11, 11, time.Now())

	store := litestream.NewStore([]*litestream.DB{db}, litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: time.Hour}})
	store.SnapshotRetention = time.Hour
	if err := store.EnforceSnapshotRetention(ctx, db); err != nil {
		t.Fatal(err)
	}
	rc, err := client.OpenLTXFile(ctx, 1, 6, 10, 0, 0)
	if err != nil {
		t.Fatalf("planned L1 6-10 deleted: %v", err)
	}
	_ = rc.Close()
}

// With RetentionEnabled false, L0 retention deletes no remote file.
func TestUpstream_DB_EnforceL0RetentionByTime_Disabled(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	db.RetentionEnabled = false
	db.L0Retention = time.Nanosecond
	upExec(t, app, `CREATE TABLE u (id INT)`)
	upSync(t, db)
	for i := range 3 {
		if _, err := app.Exec(`INSERT INTO u (id) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
		upSync(t, db)
	}
	upUpload(t, db)
	before := upCount(t, client, 0)
	if before < 2 {
		t.Fatalf("%d L0 files", before)
	}
	store := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
	if _, err := store.CompactDB(ctx, db, &litestream.CompactionLevel{Level: 1, Interval: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if err := db.EnforceL0RetentionByTime(ctx); err != nil {
		t.Fatal(err)
	}
	if after := upCount(t, client, 0); after != before {
		t.Fatalf("%d L0 files after retention, want %d", after, before)
	}
}

// A compacted file's CreatedAt is its newest input's timestamp, not the
// time of compaction.
func TestUpstream_Store_CompactDB_KeepsNewestTimestamp(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	for i := range 10 {
		upExec(t, app, `CREATE TABLE IF NOT EXISTS u (id INTEGER PRIMARY KEY, val TEXT)`)
		if _, err := app.Exec(`INSERT INTO u (val) VALUES (?)`, fmt.Sprintf("value-%d", i)); err != nil {
			t.Fatal(err)
		}
		upSync(t, db)
		upUpload(t, db)
	}
	var last time.Time
	for _, info := range levelFiles(t, client, 0) {
		if info.CreatedAt.After(last) {
			last = info.CreatedAt
		}
	}
	time.Sleep(1500 * time.Millisecond)
	levels := litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: time.Second}}
	store := litestream.NewStore([]*litestream.DB{db}, levels)
	store.CompactionMonitorEnabled = false
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close(ctx) }()
	if _, err := store.CompactDB(ctx, db, levels[1]); err != nil {
		t.Fatal(err)
	}
	l1 := levelFiles(t, client, 1)
	if len(l1) == 0 {
		t.Fatal("no L1 file")
	}
	if d := l1[0].CreatedAt.Sub(last); d.Abs() > time.Second {
		t.Fatalf("L1 CreatedAt %s, newest L0 %s", l1[0].CreatedAt, last)
	}
}

// EnforceRetentionByTXID(0, txid) removes local L0 copies below txid.
func TestUpstream_DB_EnforceRetentionByTXID_LocalCleanup(t *testing.T) {
	ctx := context.Background()
	db, app, _ := MustOpenDB(t, 4096)
	upExec(t, app, `CREATE TABLE u (id INTEGER PRIMARY KEY, val TEXT)`)
	type local struct {
		path string
		max  ltx.TXID
	}
	var first []local
	for i := range 3 {
		if _, err := app.Exec(`INSERT INTO u (val) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
		upSync(t, db)
		minTXID, maxTXID, err := db.MaxLTX()
		if err != nil {
			t.Fatal(err)
		}
		first = append(first, local{db.LTXPath(0, minTXID, maxTXID), maxTXID})
		upUpload(t, db)
	}
	for _, f := range first {
		if _, err := os.Stat(f.path); err != nil {
			t.Fatalf("local L0 before compaction: %v", err)
		}
	}
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := app.Exec(`INSERT INTO u (val) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
		upSync(t, db)
		upUpload(t, db)
	}
	second, err := db.Compact(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.EnforceRetentionByTXID(ctx, 0, second.MinTXID); err != nil {
		t.Fatal(err)
	}
	for _, f := range first {
		if f.max >= second.MinTXID {
			continue
		}
		if _, err := os.Stat(f.path); !os.IsNotExist(err) {
			t.Errorf("local %s below TXID %s still there (err=%v)", filepath.Base(f.path), second.MinTXID, err)
		}
	}
}

// L0 retention by time keeps recent files, and once they are old deletes
// every compacted L0 file but the newest, remotely and locally.
func TestUpstream_DB_EnforceL0RetentionByTime(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	db.L0Retention = 30 * time.Minute
	upExec(t, app, `CREATE TABLE u (id INTEGER PRIMARY KEY, val TEXT)`)
	for i := range 3 {
		if _, err := app.Exec(`INSERT INTO u (val) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
		upSync(t, db)
		upUpload(t, db)
	}
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	l0 := levelFiles(t, client, 0)
	if len(l0) < 2 {
		t.Fatalf("%d L0 files", len(l0))
	}
	check := func(aged bool) {
		t.Helper()
		for i, info := range l0 {
			_, remoteErr := os.Stat(client.LTXFilePath(0, info.MinTXID, info.MaxTXID))
			_, localErr := os.Stat(db.LTXPath(0, info.MinTXID, info.MaxTXID))
			gone := aged && i < len(l0)-1
			if gone && (!os.IsNotExist(remoteErr) || !os.IsNotExist(localErr)) {
				t.Fatalf("L0 %s-%s kept: remote err %v, local err %v", info.MinTXID, info.MaxTXID, remoteErr, localErr)
			}
			if !gone && (remoteErr != nil || localErr != nil) {
				t.Fatalf("L0 %s-%s removed: remote err %v, local err %v", info.MinTXID, info.MaxTXID, remoteErr, localErr)
			}
		}
	}
	if err := db.EnforceL0RetentionByTime(ctx); err != nil {
		t.Fatal(err)
	}
	check(false)

	old := time.Now().Add(-time.Hour)
	for _, info := range l0 {
		for _, p := range []string{client.LTXFilePath(0, info.MinTXID, info.MaxTXID), db.LTXPath(0, info.MinTXID, info.MaxTXID)} {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	db.L0Retention = time.Second
	if err := db.EnforceL0RetentionByTime(ctx); err != nil {
		t.Fatal(err)
	}
	check(true)
}

// A sync after VACUUM shrank the database succeeds and advances.
func TestUpstream_DB_SyncAfterVacuum(t *testing.T) {
	db, app, _ := MustOpenDB(t, 4096)
	upExec(t, app, `CREATE TABLE u (id INTEGER PRIMARY KEY, data BLOB)`)
	for range 100 {
		if _, err := app.Exec(`INSERT INTO u (data) VALUES (?)`, strings.Repeat("x", 4000)); err != nil {
			t.Fatal(err)
		}
	}
	upSync(t, db)
	upExec(t, app, `DELETE FROM u WHERE id > 10`, `VACUUM`)
	upSync(t, db)
	if got := upTXID(t, db); got < 2 {
		t.Fatalf("TXID=%s after VACUUM sync", got)
	}
	upUpload(t, db)
	if got, want := MustCheckRestored(t, MustRestore(t, db.Replica, 0)), MustDump(t, app); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
}

// Idle syncs with a tiny CheckpointInterval create no LTX files.
func TestUpstream_DB_IdleSyncsCreateNoFiles(t *testing.T) {
	db, app, _ := MustOpenDB(t, 4096)
	db.CheckpointInterval = time.Millisecond
	upExec(t, app, `CREATE TABLE u (id INTEGER PRIMARY KEY, data TEXT)`, `INSERT INTO u (data) VALUES ('test')`)
	upSync(t, db)
	time.Sleep(10 * time.Millisecond)
	upSync(t, db)
	after := upTXID(t, db)
	time.Sleep(10 * time.Millisecond)
	for range 3 {
		upSync(t, db)
		time.Sleep(10 * time.Millisecond)
	}
	if got := upTXID(t, db); got > after+1 {
		t.Fatalf("TXID %s after idle syncs, was %s", got, after)
	}
}

// A write synced before CheckpointInterval elapsed still gets its
// time-based checkpoint (a new TXID) once the interval has passed.
func TestUpstream_DB_DelayedCheckpointAfterWrite(t *testing.T) {
	ctx := context.Background()
	db, app, _ := MustOpenDB(t, 4096)
	db.CheckpointInterval = time.Hour
	upExec(t, app, `CREATE TABLE u (id INTEGER PRIMARY KEY, data TEXT)`)
	upSync(t, db)
	if err := db.Checkpoint(ctx, litestream.CheckpointModePassive); err != nil {
		t.Fatal(err)
	}
	first := upTXID(t, db)
	upExec(t, app, `INSERT INTO u (data) VALUES ('x')`)
	upSync(t, db)
	inserted := upTXID(t, db)
	if inserted <= first {
		t.Fatalf("insert did not advance: %s then %s", first, inserted)
	}
	db.CheckpointInterval = time.Nanosecond
	deadline := time.Now().Add(5 * time.Second)
	for upTXID(t, db) <= inserted {
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint TXID after %s", inserted)
		}
		upSync(t, db)
		time.Sleep(time.Millisecond)
	}
}

// SyncStatus needs a replica; before any sync both positions are 0 and the
// DB is not in sync; after a local sync only the local one moves; after an
// upload they are equal and InSync; a new local write makes it out of sync.
func TestUpstream_DB_SyncStatus(t *testing.T) {
	ctx := context.Background()
	t.Run("NoReplica", func(t *testing.T) {
		db := litestream.NewDB(filepath.Join(t.TempDir(), "db"))
		db.Replica = nil
		if _, err := db.SyncStatus(ctx); err == nil {
			t.Fatal("no error without a replica")
		}
	})
	t.Run("BeforeSync", func(t *testing.T) {
		db, _, _ := MustOpenDB(t, 4096)
		st, err := db.SyncStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.LocalTXID != 0 || st.RemoteTXID != 0 || st.InSync {
			t.Fatalf("status %+v, want zero positions, not in sync", st)
		}
	})
	t.Run("AfterDBSyncOnly", func(t *testing.T) {
		db, _, _ := MustOpenDB(t, 4096)
		upSync(t, db)
		st, err := db.SyncStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.LocalTXID == 0 || st.RemoteTXID != 0 || st.InSync {
			t.Fatalf("status %+v, want local only", st)
		}
	})
	t.Run("AfterFullSync", func(t *testing.T) {
		db, _, _ := MustOpenDB(t, 4096)
		upSync(t, db)
		upUpload(t, db)
		st, err := db.SyncStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.LocalTXID == 0 || st.LocalTXID != st.RemoteTXID || !st.InSync {
			t.Fatalf("status %+v, want equal and in sync", st)
		}
	})
	t.Run("AfterNewWrites", func(t *testing.T) {
		db, app, _ := MustOpenDB(t, 4096)
		upExec(t, app, `CREATE TABLE u (id INT)`)
		upSync(t, db)
		upUpload(t, db)
		upExec(t, app, `INSERT INTO u (id) VALUES (1)`)
		upSync(t, db)
		st, err := db.SyncStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.LocalTXID <= st.RemoteTXID || st.InSync {
			t.Fatalf("status %+v, want local ahead", st)
		}
	})
	t.Run("CancelledContext", func(t *testing.T) {
		db := litestream.NewDB(filepath.Join(t.TempDir(), "db"))
		db.Replica = litestream.NewReplicaWithClient(db, &ctxClient{ReplicaClient: file.NewReplicaClient(t.TempDir())})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := db.SyncStatus(cctx)
		if err == nil || !strings.Contains(err.Error(), "remote position") {
			t.Fatalf("err=%v, want one naming the remote position", err)
		}
	})
}

// ctxClient fails listings with the context's error.
type ctxClient struct{ litestream.ReplicaClient }

func (c *ctxClient) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.ReplicaClient.LTXFiles(ctx, level, seek, useMetadata)
}

// SyncAndWait needs a replica, and leaves the DB in sync.
func TestUpstream_DB_SyncAndWait(t *testing.T) {
	ctx := context.Background()
	db := litestream.NewDB(filepath.Join(t.TempDir(), "db"))
	db.Replica = nil
	if err := db.SyncAndWait(ctx); err == nil {
		t.Fatal("no error without a replica")
	}

	db2, app, _ := MustOpenDB(t, 4096)
	upExec(t, app, `CREATE TABLE u (id INT)`, `INSERT INTO u (id) VALUES (1)`)
	if err := db2.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := db2.SyncStatus(ctx); err != nil {
		t.Fatal(err)
	} else if !st.InSync {
		t.Fatalf("status %+v after SyncAndWait", st)
	}
}

// EnsureExists: an error without a replica; an existing file is left
// alone; an empty replica leaves no file but creates missing parent
// directories; a replica with data restores it.
func TestUpstream_DB_EnsureExists(t *testing.T) {
	ctx := context.Background()
	t.Run("NoReplica", func(t *testing.T) {
		db := litestream.NewDB(filepath.Join(t.TempDir(), "db"))
		db.Replica = nil
		if err := db.EnsureExists(ctx); err == nil {
			t.Fatal("no error without a replica")
		}
	})
	t.Run("DBAlreadyExists", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "db")
		if err := os.WriteFile(path, []byte("dummy"), 0o644); err != nil {
			t.Fatal(err)
		}
		db := MustNewDB(t, path, file.NewReplicaClient(filepath.Join(dir, "replica")))
		if err := db.EnsureExists(ctx); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != "dummy" {
			t.Fatalf("file now %q", b)
		}
	})
	t.Run("NoBackup", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "db")
		db := MustNewDB(t, path, file.NewReplicaClient(filepath.Join(dir, "replica")))
		if err := db.EnsureExists(ctx); err != nil {
			t.Fatalf("EnsureExists over an empty replica: %v", err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("database file after EnsureExists over an empty replica: %v", err)
		}
	})
	t.Run("MissingParentDir", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "subdir", "nested", "db")
		db := MustNewDB(t, path, file.NewReplicaClient(filepath.Join(dir, "replica")))
		if err := db.EnsureExists(ctx); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
			t.Fatalf("parent directory: %v", err)
		}
	})
	t.Run("RestoreFromBackup", func(t *testing.T) {
		path, app, client := mustAppWithReplica(t)
		db := manual(MustNewDB(t, path, client))
		if err := db.Open(); err != nil {
			t.Fatal(err)
		}
		upExec(t, app, `CREATE TABLE u (id INT, value TEXT)`, `INSERT INTO u VALUES (1, 'hello')`)
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
		if err := app.Close(); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(ctx); err != nil {
			t.Fatal(err)
		}
		_ = os.Remove(path)
		_ = os.Remove(path + "-wal")

		db2 := MustNewDB(t, path, file.NewReplicaClient(client.Path()))
		if err := db2.EnsureExists(ctx); err != nil {
			t.Fatal(err)
		}
		sdb, err := sql.Open("sqlite", testFileURI(path))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sdb.Close() }()
		var v string
		if err := sdb.QueryRow(`SELECT value FROM u WHERE id = 1`).Scan(&v); err != nil || v != "hello" {
			t.Fatalf("restored value %q, err %v", v, err)
		}
	})
}

// ResetLocalState removes the local ltx directory, and Pos is then zero.
func TestUpstream_DB_ResetLocalState(t *testing.T) {
	db, app, _ := MustOpenDB(t, 4096)
	upExec(t, app, `CREATE TABLE u (x TEXT)`, `INSERT INTO u VALUES ('foo')`)
	upSync(t, db)
	if _, err := os.Stat(db.LTXDir()); err != nil {
		t.Fatal(err)
	}
	if upTXID(t, db) == 0 {
		t.Fatal("TXID 0 before reset")
	}
	if err := db.ResetLocalState(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(db.LTXDir()); !os.IsNotExist(err) {
		t.Fatalf("ltx dir after reset: %v", err)
	}
	if got := upTXID(t, db); got != 0 {
		t.Fatalf("TXID=%s after reset, want 0", got)
	}
}

// A replica built with NewReplica and given a client afterwards uploads the
// DB's L0 file under its TXID, with the DB's page size.
func TestUpstream_Replica_Sync(t *testing.T) {
	ctx := context.Background()
	db, app, _ := MustOpenDB(t, 4096)
	upSync(t, db)
	pos := upTXID(t, db)
	c := file.NewReplicaClient(t.TempDir())
	r := litestream.NewReplica(db)
	c.Replica, r.Client = r, c
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	rc, err := c.OpenLTXFile(ctx, 0, pos, pos, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	dec := ltx.NewDecoder(rc)
	if err := dec.Verify(); err != nil {
		t.Fatal(err)
	}
	_ = rc.Close()
	if got := int(dec.Header().PageSize); got != db.PageSize() {
		t.Fatalf("page size %d, want %d", got, db.PageSize())
	}
	if err := db.Checkpoint(ctx, litestream.CheckpointModeTruncate); err != nil {
		t.Fatal(err)
	}
	upExec(t, app, `CREATE TABLE foo (bar TEXT)`)
	upSync(t, db)
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := r.Pos().TXID, upTXID(t, db); got != want {
		t.Fatalf("replica at %s, DB at %s", got, want)
	}
}

// Store.Open returns a replica client's Init error (errors.Is), opens no DB
// when one fails, and gives Init a context that outlives Open.
// (ContextOutlivesOpen failed until Init was given Open's context rather
// than errgroup.WithContext's, which ends when every Init has returned.)
func TestUpstream_Store_Open_Init(t *testing.T) {
	ctx := context.Background()
	want := errors.New("init error")
	t.Run("Error", func(t *testing.T) {
		db := litestream.NewDB(filepath.Join(t.TempDir(), "db"))
		db.Replica = litestream.NewReplicaWithClient(db, &countingClient{
			ReplicaClient: file.NewReplicaClient(t.TempDir()),
			initFunc:      func(context.Context) error { return want },
		})
		s := litestream.NewStore([]*litestream.DB{db}, litestream.CompactionLevels{{Level: 0}})
		s.CompactionMonitorEnabled = false
		if err := s.Open(ctx); !errors.Is(err, want) {
			t.Fatalf("Open()=%v, want %v", err, want)
		}
	})
	t.Run("NoDBOpened", func(t *testing.T) {
		started, fail := make(chan struct{}), make(chan struct{})
		db0 := litestream.NewDB(filepath.Join(t.TempDir(), "db0"))
		db0.MonitorInterval = 0
		db0.Replica = litestream.NewReplicaWithClient(db0, &countingClient{
			ReplicaClient: file.NewReplicaClient(t.TempDir()),
			initFunc:      func(context.Context) error { close(started); <-fail; return nil },
		})
		t.Cleanup(func() {
			if db0.IsOpen() {
				_ = db0.Close(context.Background())
			}
		})
		db1 := litestream.NewDB(filepath.Join(t.TempDir(), "db1"))
		db1.MonitorInterval = 0
		db1.Replica = litestream.NewReplicaWithClient(db1, &countingClient{
			ReplicaClient: file.NewReplicaClient(t.TempDir()),
			initFunc:      func(context.Context) error { <-started; close(fail); return want },
		})
		s := litestream.NewStore([]*litestream.DB{db0, db1}, litestream.CompactionLevels{{Level: 0}})
		s.CompactionMonitorEnabled = false
		if err := s.Open(ctx); !errors.Is(err, want) {
			t.Fatalf("Open()=%v, want %v", err, want)
		}
		if db0.IsOpen() || db1.IsOpen() {
			t.Fatalf("DB opened though an Init failed: db0 %v db1 %v", db0.IsOpen(), db1.IsOpen())
		}
	})
	t.Run("ContextOutlivesOpen", func(t *testing.T) {
		got := make(chan context.Context, 1)
		db := litestream.NewDB(filepath.Join(t.TempDir(), "db"))
		db.MonitorInterval = 0
		db.Replica = litestream.NewReplicaWithClient(db, &countingClient{
			ReplicaClient: file.NewReplicaClient(t.TempDir()),
			initFunc:      func(ctx context.Context) error { got <- ctx; return nil },
		})
		s := litestream.NewStore([]*litestream.DB{db}, litestream.CompactionLevels{{Level: 0}})
		s.CompactionMonitorEnabled = false
		if err := s.Open(ctx); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = s.Close(ctx) }()
		select {
		case ictx := <-got:
			time.Sleep(10 * time.Millisecond)
			if err := ictx.Err(); err != nil {
				t.Fatalf("Init's context done after Open: %v", err)
			}
		case <-time.After(time.Second):
			t.Fatal("Init never called")
		}
	})
}

// upStoreDB opens a DB with one committed, synced and uploaded row, and a
// store over it with the compaction monitor off.
func upStoreDB(t testing.TB, levels litestream.CompactionLevels, wrap func(litestream.ReplicaClient) litestream.ReplicaClient) (*litestream.DB, *litestream.Store) {
	t.Helper()
	db, app, _ := MustOpenDBWrapped(t, 4096, wrap)
	s := litestream.NewStore([]*litestream.DB{db}, levels)
	s.CompactionMonitorEnabled = false
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	upExec(t, app, `CREATE TABLE u (id INT)`, `INSERT INTO u (id) VALUES (100)`)
	upSync(t, db)
	upUpload(t, db)
	return db, s
}

// Compacting again at once is too early (or finds nothing); after the
// interval there is nothing to compact.
func TestUpstream_Store_CompactDB_L1(t *testing.T) {
	ctx := context.Background()
	levels := litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: time.Second}, {Level: 2, Interval: 500 * time.Millisecond}}
	db, s := upStoreDB(t, levels, nil)
	if _, err := s.CompactDB(ctx, db, levels[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompactDB(ctx, db, levels[1]); !errors.Is(err, litestream.ErrCompactionTooEarly) && !errors.Is(err, litestream.ErrNoCompaction) {
		t.Fatalf("immediate re-compaction: %v", err)
	}
	time.Sleep(levels[1].Interval)
	if _, err := s.CompactDB(ctx, db, levels[1]); !errors.Is(err, litestream.ErrNoCompaction) {
		t.Fatalf("re-compaction after the interval: %v, want ErrNoCompaction", err)
	}
}

// A second snapshot within SnapshotInterval is too early; with a 1ns
// interval and no progress it is ErrNoCompaction and nothing is written.
func TestUpstream_Store_CompactDB_Snapshot(t *testing.T) {
	ctx := context.Background()
	levels := litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: 100 * time.Millisecond}, {Level: 2, Interval: 500 * time.Millisecond}}
	t.Run("TooEarly", func(t *testing.T) {
		db, s := upStoreDB(t, levels, nil)
		if _, err := s.CompactDB(ctx, db, s.SnapshotLevel()); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CompactDB(ctx, db, s.SnapshotLevel()); !errors.Is(err, litestream.ErrCompactionTooEarly) {
			t.Fatalf("second snapshot: %v, want ErrCompactionTooEarly", err)
		}
	})
	t.Run("NoProgress", func(t *testing.T) {
		var cc *countingClient
		db, s := upStoreDB(t, litestream.CompactionLevels{{Level: 0}}, func(c litestream.ReplicaClient) litestream.ReplicaClient {
			cc = &countingClient{ReplicaClient: c}
			return cc
		})
		s.SnapshotInterval = time.Nanosecond
		if _, err := s.CompactDB(ctx, db, s.SnapshotLevel()); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CompactDB(ctx, db, s.SnapshotLevel()); !errors.Is(err, litestream.ErrNoCompaction) {
			t.Fatalf("second snapshot: %v, want ErrNoCompaction", err)
		}
		if got := cc.snapshotWrites(); got != 1 {
			t.Fatalf("%d snapshot writes, want 1", got)
		}
	})
}

// A snapshot before the DB ever synced is ErrDBNotReady.
func TestUpstream_Store_CompactDB_DBNotReady(t *testing.T) {
	db, _ := upOpenEmptyDB(t)
	s := litestream.NewStore([]*litestream.DB{db}, litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: 100 * time.Millisecond}})
	s.CompactionMonitorEnabled = false
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close(context.Background()) }()
	if _, err := s.CompactDB(context.Background(), db, s.SnapshotLevel()); !errors.Is(err, litestream.ErrDBNotReady) {
		t.Fatalf("snapshot before the first sync: %v, want ErrDBNotReady", err)
	}
}

// NewStore's defaults: SnapshotInterval 24h, ValidationInterval 0 (a store
// without DBs opens and closes), RetentionEnabled true.
func TestUpstream_Store_Defaults(t *testing.T) {
	s := litestream.NewStore(nil, nil)
	if s.SnapshotInterval != litestream.DefaultSnapshotInterval {
		t.Errorf("SnapshotInterval=%s, want DefaultSnapshotInterval", s.SnapshotInterval)
	}
	if litestream.DefaultSnapshotInterval != 24*time.Hour {
		t.Errorf("DefaultSnapshotInterval=%s, want 24h", litestream.DefaultSnapshotInterval)
	}
	s2 := litestream.NewStore(nil, litestream.CompactionLevels{{Level: 0}})
	s2.CompactionMonitorEnabled = false
	if s2.ValidationInterval != 0 {
		t.Errorf("ValidationInterval=%s, want 0", s2.ValidationInterval)
	}
	if !s2.RetentionEnabled {
		t.Error("RetentionEnabled=false, want true")
	}
	if err := s2.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A store with ValidationInterval set opens, validates in the background,
// and closes cleanly.
func TestUpstream_Store_ValidationMonitor(t *testing.T) {
	db, _, _ := MustOpenDB(t, 4096)
	s := litestream.NewStore([]*litestream.DB{db}, litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: time.Hour}})
	s.CompactionMonitorEnabled = false
	s.ValidationInterval = 50 * time.Millisecond
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// SetRetentionEnabled sets the store's flag and every DB's.
func TestUpstream_Store_SetRetentionEnabled(t *testing.T) {
	db0, _, _ := MustOpenDB(t, 4096)
	db1, _, _ := MustOpenDB(t, 4096)
	s := litestream.NewStore([]*litestream.DB{db0, db1}, litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: time.Hour}})
	s.CompactionMonitorEnabled = false
	for _, v := range []bool{false, true} {
		s.SetRetentionEnabled(v)
		if s.RetentionEnabled != v {
			t.Fatalf("store RetentionEnabled=%v, want %v", s.RetentionEnabled, v)
		}
		for _, db := range s.DBs() {
			if db.RetentionEnabled != v {
				t.Fatalf("%s RetentionEnabled=%v, want %v", db.Path(), db.RetentionEnabled, v)
			}
		}
	}
}

// Validate reports one error per broken level, skips DBs without a
// replica, and works on zero-value DBs given a replica.
// (MultipleDBs failed while ours added ValidateChain's report of the same
// hole; the chain is now checked only for DBs whose levels pass.)
func TestUpstream_Store_Validate(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	newDB := func(c litestream.ReplicaClient) *litestream.DB {
		db := &litestream.DB{}
		if c != nil {
			db.Replica = litestream.NewReplicaWithClient(db, c)
		}
		return db
	}
	t.Run("AllLevelsValid", func(t *testing.T) {
		c := file.NewReplicaClient(t.TempDir())
		upLTX(t, c, 0, 1, 1, now)
		upLTX(t, c, 0, 2, 2, now)
		upLTX(t, c, 1, 1, 2, now)
		s := litestream.NewStore([]*litestream.DB{newDB(c)}, litestream.CompactionLevels{{Level: 0}, {Level: 1}})
		res, err := s.Validate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Valid {
			t.Fatalf("invalid: %+v", res.Errors)
		}
	})
	t.Run("ErrorAtMultipleLevels", func(t *testing.T) {
		c := file.NewReplicaClient(t.TempDir())
		upLTX(t, c, 0, 1, 1, now)
		upLTX(t, c, 0, 5, 5, now)
		upLTX(t, c, 1, 1, 5, now)
		upLTX(t, c, 1, 3, 7, now)
		s := litestream.NewStore([]*litestream.DB{newDB(c)}, litestream.CompactionLevels{{Level: 0}, {Level: 1}})
		res, err := s.Validate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Valid || len(res.Errors) != 2 {
			t.Fatalf("Valid=%v with %d errors (%+v), want invalid with 2", res.Valid, len(res.Errors), res.Errors)
		}
	})
	t.Run("NilReplica", func(t *testing.T) {
		s := litestream.NewStore([]*litestream.DB{newDB(nil)}, litestream.CompactionLevels{{Level: 0}})
		res, err := s.Validate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Valid {
			t.Fatalf("invalid: %+v", res.Errors)
		}
	})
	t.Run("MultipleDBs", func(t *testing.T) {
		c1, c2 := file.NewReplicaClient(t.TempDir()), file.NewReplicaClient(t.TempDir())
		upLTX(t, c1, 0, 1, 1, now)
		upLTX(t, c1, 0, 2, 2, now)
		upLTX(t, c2, 0, 1, 1, now)
		upLTX(t, c2, 0, 5, 5, now)
		s := litestream.NewStore([]*litestream.DB{newDB(c1), newDB(c2)}, litestream.CompactionLevels{{Level: 0}})
		res, err := s.Validate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Valid || len(res.Errors) != 1 {
			t.Fatalf("Valid=%v with %d errors (%+v), want invalid with 1", res.Valid, len(res.Errors), res.Errors)
		}
	})
}

// upCompactor returns a compactor over a fresh file replica.
func upCompactor(t testing.TB) (*litestream.Compactor, *file.ReplicaClient) {
	t.Helper()
	c := file.NewReplicaClient(t.TempDir())
	return litestream.NewCompactor(c, slog.New(slog.DiscardHandler)), c
}

// upRange fails unless info is level lvl covering min..max.
func upRange(t testing.TB, info *ltx.FileInfo, lvl int, min, max ltx.TXID) {
	t.Helper()
	if info == nil {
		t.Fatalf("no file, want L%d %d-%d", lvl, min, max)
	}
	if info.Level != lvl || info.MinTXID != min || info.MaxTXID != max {
		t.Fatalf("L%d %s-%s, want L%d %d-%d", info.Level, info.MinTXID, info.MaxTXID, lvl, min, max)
	}
}

// Compactor.Compact: L0 into L1, nothing to do is ErrNoCompaction itself,
// then L1 into L2 from the start.
func TestUpstream_Compactor_Compact(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	t.Run("L0ToL1", func(t *testing.T) {
		c, client := upCompactor(t)
		upLTX(t, client, 0, 1, 1, now)
		upLTX(t, client, 0, 2, 2, now)
		info, err := c.Compact(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		upRange(t, info, 1, 1, 2)
	})
	t.Run("NoFiles", func(t *testing.T) {
		c, _ := upCompactor(t)
		if _, err := c.Compact(ctx, 1); err != litestream.ErrNoCompaction {
			t.Fatalf("err=%v, want ErrNoCompaction itself (compared with ==)", err)
		}
	})
	t.Run("L1ToL2", func(t *testing.T) {
		c, client := upCompactor(t)
		upLTX(t, client, 0, 1, 1, now)
		upLTX(t, client, 0, 2, 2, now)
		if _, err := c.Compact(ctx, 1); err != nil {
			t.Fatal(err)
		}
		upLTX(t, client, 0, 3, 3, now)
		info, err := c.Compact(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		upRange(t, info, 1, 3, 3)
		info, err = c.Compact(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		upRange(t, info, 2, 1, 3)
	})
	t.Run("VerifyCompaction", func(t *testing.T) {
		c, client := upCompactor(t)
		c.VerifyCompaction = true
		for txid := ltx.TXID(1); txid <= 3; txid++ {
			upLTX(t, client, 0, txid, txid, now)
		}
		info, err := c.Compact(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		upRange(t, info, 1, 1, 3)
	})
}

// fillL0AndCompact writes the missing L0 file txid, compacts into L1 and
// checks that the new L1 file spans min-max.
func fillL0AndCompact(t *testing.T, c *litestream.Compactor, client litestream.ReplicaClient, txid, min, max ltx.TXID) {
	t.Helper()
	upLTX(t, client, 0, txid, txid, time.Now())
	info, err := c.Compact(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	upRange(t, info, 1, min, max)
}

// Holes in the source level. Both refuse a hole right after the
// destination's newest file with an error matching ErrNoCompaction, and
// fail on a hole inside the inputs ("non-contiguous") or on overlapping
// files ("overlapping").
//
// DELIBERATE DIFFERENCES (README "Deliberately better": a level never gets
// a hole). Where upstream compacts past a hole, ours waits for the missing
// file unless a snapshot covers the hole, with ErrCompactionGap (which also
// matches ErrNoCompaction) and no file written:
//   - L0 3-5 into an empty L1 (upstream, and SPEC section 9.4 steps 1-2,
//     compact 3-5);
//   - L1 5-6 into an L2 ending at 2 (upstream compacts 5-6);
//   - L0 1-3,5-6 into an empty L1: upstream's newest compacts 1-3; SPEC
//     section 9.4 step 4 (the upstream it describes) fails, as ours does.
//
// With a snapshot covering the hole, ours compacts past it too.
func TestUpstream_Compactor_Compact_Holes(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	refused := func(t *testing.T, c *litestream.Compactor, dst int, what string) {
		t.Helper()
		_, err := c.Compact(ctx, dst)
		if !errors.Is(err, litestream.ErrCompactionGap) || !errors.Is(err, litestream.ErrNoCompaction) {
			t.Fatalf("%s: %v, want ErrCompactionGap matching ErrNoCompaction", what, err)
		}
		if info, err := c.MaxLTXFileInfo(ctx, dst); err != nil {
			t.Fatal(err)
		} else if info.MaxTXID > 2 {
			t.Fatalf("%s: L%d file written up to %s", what, dst, info.MaxTXID)
		}
	}
	t.Run("L0GapAtStart", func(t *testing.T) {
		c, client := upCompactor(t)
		for txid := ltx.TXID(3); txid <= 5; txid++ {
			upLTX(t, client, 0, txid, txid, now)
		}
		refused(t, c, 1, "L0 3-5 into an empty L1")
	})
	t.Run("L0GapAtStartUnderSnapshot", func(t *testing.T) {
		c, client := upCompactor(t)
		upLTX(t, client, litestream.SnapshotLevel, 1, 2, now)
		for txid := ltx.TXID(3); txid <= 5; txid++ {
			upLTX(t, client, 0, txid, txid, now)
		}
		info, err := c.Compact(ctx, 1)
		if err != nil {
			t.Fatalf("L0 3-5 into an empty L1 over a snapshot 1-2: %v", err)
		}
		upRange(t, info, 1, 3, 5)
	})
	t.Run("L0GapInside", func(t *testing.T) {
		c, client := upCompactor(t)
		for _, txid := range []ltx.TXID{1, 2, 3, 5, 6} {
			upLTX(t, client, 0, txid, txid, now)
		}
		if _, err := c.Compact(ctx, 1); err == nil || !strings.Contains(err.Error(), "non-contiguous") {
			t.Fatalf("compaction over L0 1-3,5-6: %v, want an error saying non-contiguous", err)
		}
		fillL0AndCompact(t, c, client, 4, 1, 6)
	})
	t.Run("L0GapAtSeek", func(t *testing.T) {
		c, client := upCompactor(t)
		upLTX(t, client, 1, 1, 2, now)
		for _, txid := range []ltx.TXID{1, 2, 4, 5} {
			upLTX(t, client, 0, txid, txid, now)
		}
		if _, err := c.Compact(ctx, 1); !errors.Is(err, litestream.ErrNoCompaction) {
			t.Fatalf("compaction over a hole at the seek: %v, want ErrNoCompaction", err)
		}
		fillL0AndCompact(t, c, client, 3, 3, 5)
	})
	t.Run("L1SeekGap", func(t *testing.T) {
		c, client := upCompactor(t)
		upLTX(t, client, 2, 1, 2, now)
		upLTX(t, client, 1, 5, 5, now)
		upLTX(t, client, 1, 6, 6, now)
		refused(t, c, 2, "L1 5-6 into an L2 ending at 2")
	})
	t.Run("L1InteriorGapReturnsError", func(t *testing.T) {
		c, client := upCompactor(t)
		upLTX(t, client, 1, 1, 2, now)
		upLTX(t, client, 1, 4, 5, now)
		if _, err := c.Compact(ctx, 2); err == nil || !strings.Contains(err.Error(), "non-contiguous") {
			t.Fatalf("err=%v, want one saying non-contiguous", err)
		}
		if info, err := c.MaxLTXFileInfo(ctx, 2); err != nil {
			t.Fatal(err)
		} else if info.MaxTXID != 0 {
			t.Fatalf("L2 file written: %s", info.MaxTXID)
		}
	})
	t.Run("L0OverlapReturnsError", func(t *testing.T) {
		c, client := upCompactor(t)
		upLTX(t, client, 0, 1, 3, now)
		upLTX(t, client, 0, 2, 4, now)
		if _, err := c.Compact(ctx, 1); err == nil || !strings.Contains(err.Error(), "overlapping") {
			t.Fatalf("err=%v, want one saying overlapping", err)
		}
	})
}

// A failed destination write returns "write ltx file: <cause>".
// (Ours used to put the file's key between the two; it now follows the
// cause.)
func TestUpstream_Compactor_Compact_WriteError(t *testing.T) {
	_, client := upCompactor(t)
	now := time.Now()
	upLTX(t, client, 0, 1, 1, now)
	upLTX(t, client, 0, 2, 2, now)
	cc := &countingClient{ReplicaClient: client, failWrites: errors.New("early write failure")}
	_, err := litestream.NewCompactor(cc, slog.New(slog.DiscardHandler)).Compact(context.Background(), 1)
	if err == nil || !strings.Contains(err.Error(), "write ltx file: early write failure") {
		t.Fatalf("err=%v", err)
	}
}

// dropClient cuts the first whole-file read short after n bytes, as a
// dropped connection would, and records each open's offset.
type dropClient struct {
	litestream.ReplicaClient
	n       int64
	dropped bool
	offsets []int64
}

func (c *dropClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	c.offsets = append(c.offsets, offset)
	rc, err := c.ReplicaClient.OpenLTXFile(ctx, level, minTXID, maxTXID, offset, size)
	if err != nil || c.dropped || offset != 0 {
		return rc, err
	}
	c.dropped = true
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(rc, c.n), rc}, nil
}

// A source read cut short is resumed at the byte it stopped at.
func TestUpstream_Compactor_Compact_ResumesSource(t *testing.T) {
	_, client := upCompactor(t)
	upLTX(t, client, 0, 1, 1, time.Now())
	dc := &dropClient{ReplicaClient: client, n: 16}
	info, err := litestream.NewCompactor(dc, slog.New(slog.DiscardHandler)).Compact(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	upRange(t, info, 1, 1, 1)
	resumed := false
	for _, off := range dc.offsets[1:] {
		resumed = resumed || off > 0
	}
	if !resumed {
		t.Fatalf("open offsets %v, want a reopen past 0", dc.offsets)
	}
}

// MaxLTXFileInfo: the highest MaxTXID of a level, 0 for an empty one, and
// the cache getter/setter are used.
func TestUpstream_Compactor_MaxLTXFileInfo(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	c, client := upCompactor(t)
	if info, err := c.MaxLTXFileInfo(ctx, 0); err != nil || info.MaxTXID != 0 {
		t.Fatalf("empty level: %s, %v", info.MaxTXID, err)
	}
	upLTX(t, client, 0, 1, 1, now)
	upLTX(t, client, 0, 2, 2, now)
	upLTX(t, client, 0, 3, 5, now)
	if info, err := c.MaxLTXFileInfo(ctx, 0); err != nil || info.MaxTXID != 5 {
		t.Fatalf("MaxLTXFileInfo=%s, %v; want 5", info.MaxTXID, err)
	}

	c2, client2 := upCompactor(t)
	cache := map[int]*ltx.FileInfo{}
	c2.CacheGetter = func(level int) (*ltx.FileInfo, bool) { info, ok := cache[level]; return info, ok }
	c2.CacheSetter = func(level int, info *ltx.FileInfo) { cache[level] = info }
	upLTX(t, client2, 0, 1, 3, now)
	for range 2 {
		if info, err := c2.MaxLTXFileInfo(ctx, 0); err != nil || info.MaxTXID != 3 {
			t.Fatalf("MaxLTXFileInfo=%s, %v; want 3", info.MaxTXID, err)
		}
	}
	if cache[0] == nil || cache[0].MaxTXID != 3 {
		t.Fatalf("cache %v, want L0 max 3 set", cache)
	}
}

// EnforceRetentionByTXID deletes files wholly below the TXID and always
// keeps the level's newest file.
func TestUpstream_Compactor_EnforceRetentionByTXID(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	c, client := upCompactor(t)
	upLTX(t, client, 1, 1, 2, now)
	upLTX(t, client, 1, 3, 5, now)
	upLTX(t, client, 1, 6, 10, now)
	if err := c.EnforceRetentionByTXID(ctx, 1, 5); err != nil {
		t.Fatal(err)
	}
	if got := rangesOf(levelFiles(t, client, 1)); got != "3-5,6-10" {
		t.Fatalf("L1 %s, want 3-5,6-10", got)
	}

	c2, client2 := upCompactor(t)
	upLTX(t, client2, 1, 1, 2, now)
	if err := c2.EnforceRetentionByTXID(ctx, 1, 100); err != nil {
		t.Fatal(err)
	}
	if got := rangesOf(levelFiles(t, client2, 1)); got != "1-2" {
		t.Fatalf("L1 %s, want the last file 1-2 kept", got)
	}
}

// EnforceL0Retention deletes compacted L0 files, keeping at least one, and
// deletes nothing while there is no L1.
func TestUpstream_Compactor_EnforceL0Retention(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	c, client := upCompactor(t)
	for txid := ltx.TXID(1); txid <= 3; txid++ {
		upLTX(t, client, 0, txid, txid, now)
	}
	if _, err := c.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.EnforceL0Retention(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if n := upCount(t, client, 0); n < 1 {
		t.Fatal("no L0 file left")
	}

	c2, client2 := upCompactor(t)
	upLTX(t, client2, 0, 1, 1, now)
	upLTX(t, client2, 0, 2, 2, now)
	if err := c2.EnforceL0Retention(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if n := upCount(t, client2, 0); n != 2 {
		t.Fatalf("%d L0 files without L1, want 2", n)
	}
}

// EnforceSnapshotRetention with a one-hour window deletes the two-hour-old
// snapshot only.
func TestUpstream_Compactor_EnforceSnapshotRetention(t *testing.T) {
	c, client := upCompactor(t)
	upLTX(t, client, litestream.SnapshotLevel, 1, 5, time.Now().Add(-2*time.Hour))
	upLTX(t, client, litestream.SnapshotLevel, 1, 10, time.Now().Add(-30*time.Minute))
	upLTX(t, client, litestream.SnapshotLevel, 1, 15, time.Now().Add(-5*time.Minute))
	if _, err := c.EnforceSnapshotRetention(context.Background(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := upCount(t, client, litestream.SnapshotLevel); n != 2 {
		t.Fatalf("%d snapshots, want 2", n)
	}
}

// With RetentionEnabled false the compactor's three retentions keep every
// remote file but still call LocalFileDeleter for what they would delete.
func TestUpstream_Compactor_RetentionDisabled(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (*litestream.Compactor, *file.ReplicaClient, *[]ltx.TXID) {
		c, client := upCompactor(t)
		c.RetentionEnabled = false
		var deleted []ltx.TXID
		c.LocalFileDeleter = func(level int, minTXID, maxTXID ltx.TXID) error {
			deleted = append(deleted, maxTXID)
			return nil
		}
		return c, client, &deleted
	}
	t.Run("Snapshot", func(t *testing.T) {
		c, client, deleted := setup(t)
		upLTX(t, client, litestream.SnapshotLevel, 1, 5, time.Now().Add(-2*time.Hour))
		upLTX(t, client, litestream.SnapshotLevel, 1, 10, time.Now().Add(-30*time.Minute))
		upLTX(t, client, litestream.SnapshotLevel, 1, 15, time.Now().Add(-5*time.Minute))
		if _, err := c.EnforceSnapshotRetention(ctx, time.Hour); err != nil {
			t.Fatal(err)
		}
		if n := upCount(t, client, litestream.SnapshotLevel); n != 3 {
			t.Fatalf("%d snapshots, want 3", n)
		}
		if len(*deleted) != 1 {
			t.Fatalf("local deletes %v, want 1", *deleted)
		}
	})
	t.Run("ByTXID", func(t *testing.T) {
		c, client, deleted := setup(t)
		now := time.Now()
		upLTX(t, client, 1, 1, 2, now)
		upLTX(t, client, 1, 3, 5, now)
		upLTX(t, client, 1, 6, 10, now)
		if err := c.EnforceRetentionByTXID(ctx, 1, 5); err != nil {
			t.Fatal(err)
		}
		if n := upCount(t, client, 1); n != 3 {
			t.Fatalf("%d L1 files, want 3", n)
		}
		if len(*deleted) != 1 {
			t.Fatalf("local deletes %v, want 1", *deleted)
		}
	})
	t.Run("L0", func(t *testing.T) {
		c, client, deleted := setup(t)
		old := time.Now().Add(-time.Hour)
		for txid := ltx.TXID(1); txid <= 3; txid++ {
			upLTX(t, client, 0, txid, txid, old)
		}
		if _, err := c.Compact(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if err := c.EnforceL0Retention(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
		if n := upCount(t, client, 0); n != 3 {
			t.Fatalf("%d L0 files, want 3", n)
		}
		if len(*deleted) < 1 {
			t.Fatal("no local delete")
		}
	})
}

// VerifyLevelConsistency: nil for contiguous, single and empty levels; an
// error saying "gap" or "overlap" otherwise.
func TestUpstream_Compactor_VerifyLevelConsistency(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	for _, tc := range []struct {
		name   string
		ranges [][2]ltx.TXID
		want   string
	}{
		{"Contiguous", [][2]ltx.TXID{{1, 2}, {3, 5}, {6, 10}}, ""},
		{"Gap", [][2]ltx.TXID{{1, 2}, {5, 7}}, "gap"},
		{"Overlap", [][2]ltx.TXID{{1, 5}, {3, 7}}, "overlap"},
		{"Single", [][2]ltx.TXID{{1, 5}}, ""},
		{"Empty", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, client := upCompactor(t)
			for _, r := range tc.ranges {
				upLTX(t, client, 1, r[0], r[1], now)
			}
			err := c.VerifyLevelConsistency(ctx, 1)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("err=%v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err=%v, want one saying %q", err, tc.want)
			}
		})
	}
}

// Checksum is SQLite's WAL checksum: over a real WAL's header it gives the
// header's stored checksum, and continued over the first frame's header
// and page, split anywhere on 8-byte boundaries, the frame's.
func TestUpstream_Checksum(t *testing.T) {
	db, app, _ := MustOpenDB(t, 4096)
	upExec(t, app, `INSERT INTO t (v) VALUES (1)`)
	_ = db
	wal, err := os.ReadFile(filepath.Join(filepath.Dir(db.Path()), "db-wal"))
	if err != nil {
		t.Fatal(err)
	}
	if len(wal) < 32+24+4096 {
		t.Fatalf("WAL of %d bytes", len(wal))
	}
	bo := binary.ByteOrder(binary.BigEndian)
	if binary.BigEndian.Uint32(wal[0:4])&1 == 0 {
		bo = binary.LittleEndian
	}
	s0, s1 := litestream.Checksum(bo, 0, 0, wal[:24])
	if s0 != binary.BigEndian.Uint32(wal[24:]) || s1 != binary.BigEndian.Uint32(wal[28:]) {
		t.Fatalf("header checksum %08x %08x, stored %x", s0, s1, wal[24:32])
	}
	frame := wal[32 : 32+24+4096]
	want0, want1 := binary.BigEndian.Uint32(frame[16:]), binary.BigEndian.Uint32(frame[20:])
	a0, a1 := litestream.Checksum(bo, s0, s1, frame[:8])
	a0, a1 = litestream.Checksum(bo, a0, a1, frame[24:])
	if a0 != want0 || a1 != want1 {
		t.Fatalf("frame checksum %08x %08x, stored %08x %08x", a0, a1, want0, want1)
	}
	in := append(append(append([]byte{}, wal[:24]...), frame[:8]...), frame[24:]...)
	if b0, b1 := litestream.Checksum(bo, 0, 0, in); b0 != want0 || b1 != want1 {
		t.Fatalf("one-pass checksum %08x %08x, stored %08x %08x", b0, b1, want0, want1)
	}
}

// file.ReplicaClient: Path as given, Type "file".
func TestUpstream_FileClient_PathType(t *testing.T) {
	if got := file.NewReplicaClient("/foo/bar").Path(); got != "/foo/bar" {
		t.Errorf("Path()=%s", got)
	}
	if got := file.NewReplicaClient("").Type(); got != "file" {
		t.Errorf("Type()=%s", got)
	}
}

// upFailReader yields n bytes of data then err.
type upFailReader struct {
	data []byte
	err  error
}

func (r *upFailReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// upTmpFiles lists files under root ending in .tmp.
func upTmpFiles(t testing.TB, root string) []string {
	t.Helper()
	var a []string
	_ = filepath.Walk(root, func(path string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.HasSuffix(path, ".tmp") {
			a = append(a, path)
		}
		return nil
	})
	return a
}

// A write whose reader fails returns the reader's error and leaves no .tmp
// file, however often it happens; a good write leaves only the final file.
func TestUpstream_FileClient_WriteLTXFile_Cleanup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := file.NewReplicaClient(dir)
	for i := range 5 {
		txid := ltx.TXID(i + 1)
		data := clienttest.MustLTX(t, 4096, txid, txid, 1, time.Now())
		_, err := c.WriteLTXFile(ctx, 0, txid, txid, &upFailReader{data: data[:50], err: fmt.Errorf("no space left on device %d", i)})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("no space left on device %d", i)) {
			t.Fatalf("err=%v, want the reader's", err)
		}
	}
	if a := upTmpFiles(t, dir); len(a) > 0 {
		t.Fatalf("temp files after failed writes: %v", a)
	}
	info, err := c.WriteLTXFile(ctx, 0, 1, 2, bytes.NewReader(clienttest.MustLTX(t, 4096, 1, 2, 1, time.Now())))
	if err != nil || info == nil {
		t.Fatalf("write: %v, %v", info, err)
	}
	if a := upTmpFiles(t, dir); len(a) > 0 {
		t.Fatalf("temp files after a good write: %v", a)
	}
	if _, err := os.Stat(c.LTXFilePath(0, 1, 2)); err != nil {
		t.Fatal(err)
	}
}

// upMkdirs creates each directory under root.
func upMkdirs(t testing.TB, root string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// upFiles writes each named file under dir with data.
func upFiles(t testing.TB, dir string, data []byte, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// GenerationsV3 lists v0.3 generation directories sorted, skipping names
// that are not 16 lower-case hex digits and plain files; none is empty.
func TestUpstream_FileClient_GenerationsV3(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := file.NewReplicaClient(dir)
	if g, err := c.GenerationsV3(ctx); err != nil || len(g) != 0 {
		t.Fatalf("no generations dir: %v, %v", g, err)
	}
	upMkdirs(t, dir, "generations")
	if g, err := c.GenerationsV3(ctx); err != nil || len(g) != 0 {
		t.Fatalf("empty generations dir: %v, %v", g, err)
	}
	upMkdirs(t, filepath.Join(dir, "generations"), "ffffffffffffffff", "0000000000000001", "invalid", "0123456789abcde", "0123456789ABCDEF", "aaaaaaaaaaaaaaaa")
	upFiles(t, filepath.Join(dir, "generations"), []byte("x"), "bbbbbbbbbbbbbbbb")
	g, err := c.GenerationsV3(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(g, ","); got != "0000000000000001,aaaaaaaaaaaaaaaa,ffffffffffffffff" {
		t.Fatalf("generations %s", got)
	}
}

// SnapshotsV3 lists <index>.snapshot.lz4 files sorted by index, with
// generation, index and size; other names are skipped.
func TestUpstream_FileClient_SnapshotsV3(t *testing.T) {
	ctx := context.Background()
	const gen = "0123456789abcdef"
	dir := t.TempDir()
	c := file.NewReplicaClient(dir)
	if a, err := c.SnapshotsV3(ctx, gen); err != nil || len(a) != 0 {
		t.Fatalf("no snapshots dir: %v, %v", a, err)
	}
	sdir := filepath.Join(dir, "generations", gen, "snapshots")
	upMkdirs(t, sdir, ".")
	if a, err := c.SnapshotsV3(ctx, gen); err != nil || len(a) != 0 {
		t.Fatalf("empty snapshots dir: %v, %v", a, err)
	}
	upFiles(t, sdir, []byte("test data"), "000000ff.snapshot.lz4", "00000001.snapshot.lz4", "00000010.snapshot.lz4",
		"invalid.snapshot.lz4", "00000002.snapshot", "00000003.wal.lz4")
	a, err := c.SnapshotsV3(ctx, gen)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 3 {
		t.Fatalf("%d snapshots, want 3: %+v", len(a), a)
	}
	for i, want := range []int{1, 0x10, 0xff} {
		if a[i].Index != want || a[i].Generation != gen || a[i].Size != 9 {
			t.Fatalf("snapshot %d: %+v, want index %d, size 9", i, a[i], want)
		}
	}
}

// WALSegmentsV3 lists v0.3's <index>_<offset>.wal.lz4 files (offset in 8 to
// 16 hex digits) sorted by index then offset, with index, offset and size;
// other names are skipped.
func TestUpstream_FileClient_WALSegmentsV3(t *testing.T) {
	ctx := context.Background()
	const gen = "0123456789abcdef"
	dir := t.TempDir()
	c := file.NewReplicaClient(dir)
	if a, err := c.WALSegmentsV3(ctx, gen); err != nil || len(a) != 0 {
		t.Fatalf("no wal dir: %v, %v", a, err)
	}
	wdir := filepath.Join(dir, "generations", gen, "wal")
	upMkdirs(t, wdir, ".")
	if a, err := c.WALSegmentsV3(ctx, gen); err != nil || len(a) != 0 {
		t.Fatalf("empty wal dir: %v, %v", a, err)
	}
	upFiles(t, wdir, []byte("wal data"), "00000002_00002000.wal.lz4", "00000001_00001000.wal.lz4",
		"00000001_00000000.wal.lz4", "00000002_00000000.wal.lz4", "00000002_0000000100000000.wal.lz4",
		"invalid.wal.lz4", "00000002.wal.lz4", "00000003_00001000.wal", "00000004-0000000000001000.wal.lz4")
	a, err := c.WALSegmentsV3(ctx, gen)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range a {
		if s.Generation != gen || s.Size != 8 {
			t.Fatalf("segment %+v", s)
		}
		got = append(got, fmt.Sprintf("%d/%x", s.Index, s.Offset))
	}
	if s := strings.Join(got, ","); s != "1/0,1/1000,2/0,2/2000,2/100000000" {
		t.Fatalf("segments %s", s)
	}
	if !sort.SliceIsSorted(a, func(i, j int) bool { return a[i].Index < a[j].Index }) {
		t.Fatal("not sorted")
	}
}

// OpenSnapshotV3 and OpenWALSegmentV3 return LZ4-decompressed contents, and
// a not-exist error (os.IsNotExist) for a missing file.
// (Ours wrapped the error with fmt.Errorf, for which os.IsNotExist is
// false; every backend now returns a *fs.PathError.)
func TestUpstream_FileClient_OpenV3(t *testing.T) {
	ctx := context.Background()
	const gen = "0123456789abcdef"
	dir := t.TempDir()
	c := file.NewReplicaClient(dir)
	if _, err := c.OpenSnapshotV3(ctx, gen, 0); !os.IsNotExist(err) {
		t.Errorf("missing snapshot: os.IsNotExist(%v) is false", err)
	}
	if _, err := c.OpenWALSegmentV3(ctx, gen, 0, 0); !os.IsNotExist(err) {
		t.Errorf("missing WAL segment: os.IsNotExist(%v) is false", err)
	}
	compress := func(b []byte) []byte {
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	sdir := filepath.Join(dir, "generations", gen, "snapshots")
	wdir := filepath.Join(dir, "generations", gen, "wal")
	upMkdirs(t, sdir, ".")
	upMkdirs(t, wdir, ".")
	upFiles(t, sdir, compress([]byte("snapshot data")), "00000000.snapshot.lz4")
	upFiles(t, wdir, compress([]byte("WAL segment data")), "00000001_00001000.wal.lz4")
	for _, tc := range []struct {
		open func() (io.ReadCloser, error)
		want string
	}{
		{func() (io.ReadCloser, error) { return c.OpenSnapshotV3(ctx, gen, 0) }, "snapshot data"},
		{func() (io.ReadCloser, error) { return c.OpenWALSegmentV3(ctx, gen, 1, 4096) }, "WAL segment data"},
	} {
		rc, err := tc.open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil || string(b) != tc.want {
			t.Fatalf("read %q, %v; want %q", b, err, tc.want)
		}
	}
}

// The library example: a store with L0 and L1 replicates an app's writes
// into <replica>/ltx/0/*.ltx within seconds, closes, and a replica without
// a DB restores them.
func TestUpstream_LibraryExample(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dir := t.TempDir()
	path := filepath.Join(dir, "example.db")
	replicaPath := filepath.Join(dir, "replica")
	db := litestream.NewDB(path)
	client := file.NewReplicaClient(replicaPath)
	r := litestream.NewReplicaWithClient(db, client)
	db.Replica, client.Replica = r, r
	store := litestream.NewStore([]*litestream.DB{db}, litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: 10 * time.Second}})
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = store.Close(context.Background())
		}
	})
	app, err := sql.Open("sqlite", testFileURI(path))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = app.Close() }()
	upExec(t, app, `PRAGMA journal_mode = wal`, `PRAGMA busy_timeout = 5000`,
		`CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, message TEXT NOT NULL)`,
		`INSERT INTO events (message) VALUES ('hello')`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, _ := filepath.Glob(filepath.Join(replicaPath, "ltx", "0", "*.ltx"))
		if len(m) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no L0 file in the replica after 5s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(ctx); err != nil && !errors.Is(err, sql.ErrTxDone) {
		t.Fatal(err)
	}
	closed = true

	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(dir, "restored.db")
	if err := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(replicaPath)).Restore(ctx, opt); err != nil {
		t.Fatal(err)
	}
	rdb, err := sql.Open("sqlite", testFileURI(opt.OutputPath))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rdb.Close() }()
	var msg string
	if err := rdb.QueryRow(`SELECT message FROM events`).Scan(&msg); err != nil || msg != "hello" {
		t.Fatalf("restored %q, %v", msg, err)
	}
}

// The examples' restore-on-startup pattern: restoring from an empty replica
// fails with ErrTxNotAvailable or ErrNoSnapshots, and writes no file.
func TestUpstream_Restore_EmptyReplica(t *testing.T) {
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "db")
	err := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(t.TempDir())).Restore(context.Background(), opt)
	if !errors.Is(err, litestream.ErrTxNotAvailable) && !errors.Is(err, litestream.ErrNoSnapshots) {
		t.Fatalf("err=%v, want ErrTxNotAvailable or ErrNoSnapshots", err)
	}
	if _, err := os.Stat(opt.OutputPath); !os.IsNotExist(err) {
		t.Fatalf("output after a failed restore: %v", err)
	}
}

// Syncs from many goroutines at once, with snapshots alongside, neither
// fail nor corrupt the replica.
func TestUpstream_DB_ConcurrentSyncAndSnapshot(t *testing.T) {
	ctx := context.Background()
	db, app, _ := MustOpenDB(t, 4096)
	db.MonitorInterval = 10 * time.Millisecond
	upExec(t, app, `CREATE TABLE u (id INTEGER PRIMARY KEY, value TEXT)`)
	upSync(t, db)
	start := make(chan struct{})
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			<-start
			for range 5 {
				if _, err := app.Exec(`INSERT INTO u (value) VALUES ('test')`); err != nil {
					errs <- err
				}
				if err := db.Sync(ctx); err != nil {
					errs <- err
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Go(func() {
		<-start
		for range 3 {
			if _, err := db.Snapshot(ctx); err != nil {
				errs <- err
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent sync or snapshot: %v", err)
	}
	upSync(t, db)
	upUpload(t, db)
	if got, want := MustCheckRestored(t, MustRestore(t, db.Replica, 0)), MustDump(t, app); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
}

// URL helpers that need no backend package (this test binary must not
// import the backends): the file scheme, errors for empty, unknown and
// scheme-less URLs, ReplicaTypeFromURL, IsURL and BoolQueryValue's
// spellings. Upstream also parses "file://" as the path "."; ours refuses
// it on purpose (README, "file URL needs an absolute path"), so that case
// is not checked.
func TestUpstream_ReplicaURL(t *testing.T) {
	for raw, want := range map[string]string{"file:///tmp/replica": "/tmp/replica"} {
		c, err := litestream.NewReplicaClientFromURL(raw)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		fc, ok := c.(*file.ReplicaClient)
		if !ok || c.Type() != "file" || fc.Path() != want {
			t.Fatalf("%s: %T type %s, want file client at %s", raw, c, c.Type(), want)
		}
	}
	for _, raw := range []string{"", "unknown://bucket/path", "not-a-valid-url"} {
		if _, err := litestream.NewReplicaClientFromURL(raw); err == nil {
			t.Errorf("NewReplicaClientFromURL(%q): no error", raw)
		}
	}
	for raw, want := range map[string]string{
		"s3://bucket/path": "s3", "gs://bucket/path": "gs", "abs://container/path": "abs",
		"file:///path/to/replica": "file", "sftp://host/path": "sftp", "webdav://host/path": "webdav",
		"webdavs://host/path": "webdav", "nats://host/bucket": "nats", "oss://bucket/path": "oss",
		"rook-ceph-rgw:8080": "", "": "", "invalid": "",
	} {
		if got := litestream.ReplicaTypeFromURL(raw); got != want {
			t.Errorf("ReplicaTypeFromURL(%q)=%q, want %q", raw, got, want)
		}
	}
	for s, want := range map[string]bool{"s3://bucket/path": true, "file:///path": true, "https://example.com": true, "/path/to/file": false, "relative/path": false, "": false} {
		if got := litestream.IsURL(s); got != want {
			t.Errorf("IsURL(%q)=%v, want %v", s, got, want)
		}
	}
	for _, tc := range []struct {
		vals   []string
		value  bool
		wantOK bool
	}{
		{[]string{"true", "True", "TRUE", "1", "t", "yes"}, true, true},
		{[]string{"false", "False", "FALSE", "0", "f", "no"}, false, true},
	} {
		for _, v := range tc.vals {
			if value, ok := litestream.BoolQueryValue(map[string][]string{"key": {v}}, "key"); value != tc.value || ok != tc.wantOK {
				t.Errorf("BoolQueryValue(%q)=%v,%v, want %v,%v", v, value, ok, tc.value, tc.wantOK)
			}
		}
	}
	if value, ok := litestream.BoolQueryValue(nil, "key"); value || ok {
		t.Errorf("BoolQueryValue(nil)=%v,%v, want false,false", value, ok)
	}
}

// parkClient hands out source streams whose first one blocks its first
// read until it is closed (at most 500ms), and fails destination writes once
// that read is parked: the compaction goroutine is inside a source read when
// the upload fails. It records every stream it opens.
type parkClient struct {
	litestream.ReplicaClient
	parked  chan struct{}
	mu      sync.Mutex
	streams []*parkStream
}

type parkStream struct {
	rc     io.ReadCloser
	park   chan struct{} // non-nil for the stream whose first read parks
	once   sync.Once
	done   chan struct{}
	mu     sync.Mutex
	closed bool
}

func (s *parkStream) Read(p []byte) (int, error) {
	if s.park != nil {
		s.once.Do(func() { close(s.park) })
		select { // until closed; bounded, as a compactor may read first
		case <-s.done:
		case <-time.After(500 * time.Millisecond):
		}
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return 0, os.ErrClosed
	}
	return s.rc.Read(p)
}

func (s *parkStream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	return s.rc.Close()
}

func (c *parkClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	rc, err := c.ReplicaClient.OpenLTXFile(ctx, level, minTXID, maxTXID, offset, size)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &parkStream{rc: rc, done: make(chan struct{})}
	if len(c.streams) == 0 {
		s.park = c.parked
	}
	c.streams = append(c.streams, s)
	return s, nil
}

func (c *parkClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	select {
	case <-c.parked:
	case <-time.After(5 * time.Second):
	}
	return nil, errors.New("simulated upload failure")
}

func (c *parkClient) open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.streams {
		s.mu.Lock()
		if !s.closed {
			n++
		}
		s.mu.Unlock()
	}
	return n
}

// A compaction whose upload fails while a source is being read leaves no
// source stream open and no goroutine behind once it has finished (no
// stream is reopened after Compact closed them).
func TestUpstream_Compactor_Compact_ClosesSourcesOnWriteError(t *testing.T) {
	_, client := upCompactor(t)
	now := time.Now()
	for txid := ltx.TXID(1); txid <= 3; txid++ {
		upLTX(t, client, 0, txid, txid, now)
	}
	pc := &parkClient{ReplicaClient: client, parked: make(chan struct{})}
	before := runtime.NumGoroutine()
	if _, err := litestream.NewCompactor(pc, slog.New(slog.DiscardHandler)).Compact(context.Background(), 1); err == nil {
		t.Fatal("no error from a failed upload")
	}
	deadline := time.Now().Add(5 * time.Second)
	for pc.open() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d source streams still open", pc.open(), len(pc.streams))
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a late reopen would show here
	if n := pc.open(); n > 0 {
		t.Fatalf("%d source streams opened again and left open", n)
	}
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after the failed compaction, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
