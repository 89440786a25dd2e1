// Tests that behaviour programs and operators rely on matches upstream's:
// error words people grep logs for, zero values, settings set as fields.
package litestream_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// touchLTX names a file at a level; listings read only names.
func touchLTX(t testing.TB, c *file.ReplicaClient, level int, minTXID, maxTXID ltx.TXID) {
	t.Helper()
	path := c.LTXFilePath(level, minTXID, maxTXID)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Upstream's words: a compaction whose write fails says "write ltx file",
// contiguity problems say "gap" or "overlap".
func TestCompactor_ErrorTexts(t *testing.T) {
	ctx := context.Background()
	t.Run("WriteFailed", func(t *testing.T) {
		dir := t.TempDir()
		writeTestLTX(t, dir, 0, 1, 1, []uint32{1})
		writeTestLTX(t, dir, 0, 2, 1, []uint32{1})
		// Every write fails after reading a little of the file.
		c := &testClient{ReplicaClient: file.NewReplicaClient(dir), onWrite: func(_ int, r io.Reader, _ func(io.Reader) (*ltx.FileInfo, error)) (*ltx.FileInfo, error) {
			_, _ = io.ReadFull(r, make([]byte, 100))
			return nil, errors.New("bucket on fire")
		}}
		_, err := litestream.NewCompactor(c, nil).Compact(ctx, 1)
		if err == nil || !strings.HasPrefix(err.Error(), "write ltx file") || !strings.Contains(err.Error(), "bucket on fire") {
			t.Fatalf("err = %v, want it to start with \"write ltx file\"", err)
		}
	})
	t.Run("MergeGap", func(t *testing.T) {
		dir := t.TempDir()
		writeTestLTX(t, dir, 0, 1, 1, []uint32{1})
		writeTestLTX(t, dir, 0, 3, 1, []uint32{1})
		// Nothing is written across a gap: the compaction refuses first.
		_, err := litestream.NewCompactor(file.NewReplicaClient(dir), nil).Compact(ctx, 1)
		if !errors.Is(err, litestream.ErrCompactionGap) || !strings.Contains(err.Error(), "gap") {
			t.Fatalf("err = %v, want ErrCompactionGap naming a gap", err)
		}
	})
	for _, tt := range []struct {
		name  string
		files [][2]ltx.TXID
		want  string
	}{
		{"VerifyGap", [][2]ltx.TXID{{1, 2}, {4, 5}}, "TXID gap detected"},
		{"VerifyOverlap", [][2]ltx.TXID{{1, 3}, {3, 5}}, "TXID overlap detected"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := file.NewReplicaClient(t.TempDir())
			for _, f := range tt.files {
				touchLTX(t, c, 1, f[0], f[1])
			}
			err := litestream.NewCompactor(c, nil).VerifyLevelConsistency(ctx, 1)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	t.Run("RestoreGap", func(t *testing.T) {
		dir := t.TempDir()
		writeTestLTX(t, dir, 0, 1, 1, []uint32{1})
		writeTestLTX(t, dir, 0, 3, 1, []uint32{1})
		_, err := litestream.CalcRestorePlan(ctx, file.NewReplicaClient(dir), 0, time.Time{}, nil)
		if err == nil || !strings.Contains(err.Error(), "non-contiguous ltx files: have up to") || !strings.Contains(err.Error(), "gap") {
			t.Fatalf("err = %v, want upstream's text naming a gap", err)
		}
	})
}

// noPanic runs fn, failing the test (not the binary) if it panics.
func noPanic(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s panicked: %v", what, r)
		}
	}()
	fn()
}

// Zero values, as upstream's tests and some programs build them: usable
// where upstream's are, an error otherwise, never a panic.
func TestZeroValues(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	t.Run("DBInStore", func(t *testing.T) {
		client := file.NewReplicaClient(t.TempDir())
		db := &litestream.DB{}
		db.Replica = litestream.NewReplicaWithClient(db, client)
		var store *litestream.Store
		noPanic(t, "NewStore", func() {
			store = litestream.NewStore([]*litestream.DB{db}, litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: time.Second}})
		})
		if store == nil {
			return
		}
		touchLTX(t, client, 0, 1, 1)
		touchLTX(t, client, 0, 2, 2)
		touchLTX(t, client, 1, 1, 2)
		noPanic(t, "Store.Validate", func() {
			if result, err := store.Validate(ctx); err != nil || !result.Valid {
				t.Errorf("Validate = %+v, %v", result, err)
			}
		})
		noPanic(t, "Store setters", func() {
			store.SetL0Retention(time.Minute)
			store.SetVerifyCompaction(true)
			store.SetRetentionEnabled(false)
		})
		noPanic(t, "Store.Open", func() {
			if err := store.Open(ctx); err == nil {
				t.Error("Store.Open of a DB without a path: no error")
			}
		})
		noPanic(t, "Store.Close", func() { _ = store.Close(ctx) })
	})

	t.Run("DB", func(t *testing.T) {
		client := file.NewReplicaClient(t.TempDir())
		db := &litestream.DB{}
		for name, fn := range map[string]func() error{
			"SetLogger":                func() error { db.SetLogger(nil); return nil },
			"Open":                     func() error { return db.Open() },
			"Sync":                     func() error { return db.Sync(ctx) },
			"Checkpoint":               func() error { return db.Checkpoint(ctx, litestream.CheckpointModePassive) },
			"Pos":                      func() error { _, err := db.Pos(); return err },
			"MaxLTXFileInfo":           func() error { _, err := db.MaxLTXFileInfo(ctx, 0); return err },
			"Compact":                  func() error { _, err := db.Compact(ctx, 1); return err },
			"Snapshot":                 func() error { _, err := db.Snapshot(ctx); return err },
			"SnapshotReader":           func() error { _, _, err := db.SnapshotReader(ctx); return err },
			"EnforceSnapshotRetention": func() error { _, err := db.EnforceSnapshotRetention(ctx, time.Now()); return err },
			"EnforceRetentionByTXID":   func() error { return db.EnforceRetentionByTXID(ctx, 1, 1) },
			"EnforceL0RetentionByTime": func() error { return db.EnforceL0RetentionByTime(ctx) },
			"EnsureExists":             func() error { return db.EnsureExists(ctx) },
			"ResetLocalState":          func() error { return db.ResetLocalState(ctx) },
			"SyncAndWait":              func() error { return db.SyncAndWait(ctx) },
			"SyncStatus":               func() error { _, err := db.SyncStatus(ctx); return err },
			"SyncDiagnostic":           func() error { db.SyncDiagnostic(); return nil },
			"CRC64":                    func() error { _, _, err := db.CRC64(ctx); return err },
			"WaitReplicated":           func() error { return db.WaitReplicated(ctx) },
			"Notify":                   func() error { db.Notify(); return nil },
			"Close":                    func() error { return db.Close(ctx) },
		} {
			noPanic(t, "DB."+name, func() { _ = fn() })
		}
		// With a replica, Open still needs a path.
		db.Replica = litestream.NewReplicaWithClient(db, client)
		noPanic(t, "DB.Open", func() {
			if err := db.Open(); err == nil {
				t.Error("Open without a path: no error")
				_ = db.Close(ctx)
			}
		})
	})

	t.Run("Replica", func(t *testing.T) {
		r := &litestream.Replica{}
		for name, fn := range map[string]func() error{
			"Sync":           func() error { return r.Sync(ctx) },
			"Start":          func() error { return r.Start(ctx) },
			"Stop":           func() error { return r.Stop(true) },
			"Pos":            func() error { r.Pos(); return nil },
			"Logger":         func() error { r.Logger(); return nil },
			"MaxLTXFileInfo": func() error { _, err := r.MaxLTXFileInfo(ctx, 0); return err },
			"Restore": func() error {
				return r.Restore(ctx, litestream.RestoreOptions{OutputPath: filepath.Join(t.TempDir(), "db")})
			},
			"TimeBounds":       func() error { _, _, err := r.TimeBounds(ctx); return err },
			"ValidateLevel":    func() error { _, err := r.ValidateLevel(ctx, 0); return err },
			"EnforceRetention": func() error { return r.EnforceRetention(ctx) },
		} {
			noPanic(t, "Replica."+name, func() {
				if err := fn(); err == nil && (name == "Sync" || name == "Restore" || name == "MaxLTXFileInfo") {
					t.Errorf("Replica.%s without a client: no error", name)
				}
			})
		}

		// With only a client it restores, as NewReplicaWithClient(nil, c) does.
		db, app, client := MustOpenDB(t, 4096)
		mustInsert(t, app, 1)
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
		noPanic(t, "Replica{Client}.Restore", func() {
			if got, want := MustCheckRestored(t, MustRestore(t, &litestream.Replica{Client: client}, 0)), MustDump(t, app); got != want {
				t.Errorf("restored %s, want %s", got, want)
			}
		})
	})

	t.Run("Store", func(t *testing.T) {
		s := &litestream.Store{}
		for name, fn := range map[string]func() error{
			"Open":       func() error { return s.Open(ctx) },
			"DBs":        func() error { s.DBs(); return nil },
			"Validate":   func() error { _, err := s.Validate(ctx); return err },
			"SetL0":      func() error { s.SetL0Retention(time.Second); return nil },
			"SyncDB":     func() error { _, err := s.SyncDB(ctx, "/nope", false); return err },
			"Unregister": func() error { return s.UnregisterDB(ctx, "/nope") },
			"Close":      func() error { return s.Close(ctx) },
		} {
			noPanic(t, "Store."+name, func() { _ = fn() })
		}
	})

	t.Run("Compactor", func(t *testing.T) {
		c := &litestream.Compactor{}
		for name, fn := range map[string]func() error{
			"MaxLTXFileInfo":           func() error { _, err := c.MaxLTXFileInfo(ctx, 0); return err },
			"Compact":                  func() error { _, err := c.Compact(ctx, 1); return err },
			"VerifyLevelConsistency":   func() error { return c.VerifyLevelConsistency(ctx, 1) },
			"EnforceSnapshotRetention": func() error { _, err := c.EnforceSnapshotRetention(ctx, time.Hour); return err },
			"EnforceRetentionByTXID":   func() error { return c.EnforceRetentionByTXID(ctx, 1, 5) },
			"EnforceL0Retention":       func() error { return c.EnforceL0Retention(ctx, time.Hour) },
		} {
			noPanic(t, "Compactor."+name, func() {
				if err := fn(); err == nil {
					t.Errorf("Compactor.%s without a client: no error", name)
				}
			})
		}
	})
}

// mustSyncUpload commits a row and puts it on the replica.
func mustSyncUpload(t testing.TB, db *litestream.DB, app interface {
	Exec(string, ...any) (sql.Result, error)
}, v int) {
	t.Helper()
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, v); err != nil {
		t.Fatal(err)
	} else if err := db.SyncAndWait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Store fields assigned between NewStore and Open take effect, as the
// seed's configuration examples assign them; a DB field assigned after
// NewStore, where the store's was left alone, stays.
func TestStore_FieldsBeforeOpen(t *testing.T) {
	db, _, _ := newStoreDB(t, t.TempDir(), nil)
	other, _, _ := newStoreDB(t, t.TempDir(), nil)
	store := litestream.NewStore([]*litestream.DB{db, other}, litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: time.Hour}})
	logs := newRecordHandler()
	store.Logger = slog.New(logs)
	store.ShutdownSyncTimeout = 7 * time.Second
	store.VerifyCompaction = true
	store.RetentionEnabled = false
	store.L0Retention = 42 * time.Second
	other.ShutdownSyncInterval = 3 * time.Second // its own, set after NewStore
	if err := store.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close(context.Background()) }()

	if db.L0Retention != 42*time.Second || db.ShutdownSyncTimeout != 7*time.Second || db.ShutdownSyncInterval != litestream.DefaultShutdownSyncInterval ||
		!db.VerifyCompaction || db.RetentionEnabled {
		t.Fatalf("db settings: L0Retention=%v ShutdownSyncTimeout=%v ShutdownSyncInterval=%v VerifyCompaction=%v RetentionEnabled=%v",
			db.L0Retention, db.ShutdownSyncTimeout, db.ShutdownSyncInterval, db.VerifyCompaction, db.RetentionEnabled)
	}
	db.Logger.Info("hello from the db")
	logs.mu.Lock()
	found := false
	for _, r := range *logs.records {
		found = found || r["msg"] == "hello from the db"
	}
	logs.mu.Unlock()
	if other.ShutdownSyncInterval != 3*time.Second || other.L0Retention != 42*time.Second {
		t.Fatalf("other DB: ShutdownSyncInterval = %v (its own 3s), L0Retention = %v (the store's 42s)", other.ShutdownSyncInterval, other.L0Retention)
	}
	if !found {
		t.Fatal("the DB does not log to the store's Logger assigned before Open")
	}
}

// RetentionEnabled assigned after Open, on the DB or through the Store's
// setter, keeps remote snapshots; local copies go either way.
func TestDB_EnforceSnapshotRetention_RetentionDisabledAfterOpen(t *testing.T) {
	ctx := context.Background()
	for _, viaStore := range []bool{false, true} {
		t.Run(map[bool]string{false: "Field", true: "StoreSetter"}[viaStore], func(t *testing.T) {
			db, app, client := MustOpenDB(t, 4096)
			for i := range 3 {
				mustSyncUpload(t, db, app, i)
				if _, err := db.Snapshot(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if n := len(levelFiles(t, client, litestream.SnapshotLevel)); n != 3 {
				t.Fatalf("%d snapshots, want 3", n)
			}
			if viaStore {
				store := litestream.NewStore([]*litestream.DB{db}, litestream.CompactionLevels{{Level: 0}})
				store.SetRetentionEnabled(false)
				store.SnapshotRetention = time.Nanosecond
				time.Sleep(time.Millisecond)
				if err := store.EnforceSnapshotRetention(ctx, db); err != nil {
					t.Fatal(err)
				}
			} else {
				db.RetentionEnabled = false
				if _, err := db.EnforceSnapshotRetention(ctx, time.Now().Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			if n := len(levelFiles(t, client, litestream.SnapshotLevel)); n != 3 {
				t.Fatalf("%d snapshots left on the replica, want all 3 with retention disabled", n)
			}
		})
	}
}

// A direct call evaluates the files as they are now, even when the last
// pass found nothing due for a while: only the background monitor skips.
func TestDB_EnforceL0RetentionByTime_DirectCallAlwaysLooks(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	for i := range 3 {
		mustSyncUpload(t, db, app, i)
	}
	if _, err := db.Compact(ctx, 1); err != nil { // runs a first retention pass
		t.Fatal(err)
	}
	before := L0TXIDs(t, client)
	db.L0Retention = time.Millisecond // nothing was due for 5 minutes; now everything is
	time.Sleep(10 * time.Millisecond)
	if err := db.EnforceL0RetentionByTime(ctx); err != nil {
		t.Fatal(err)
	}
	if after := L0TXIDs(t, client); len(after) != 1 || after[0] != before[len(before)-1] {
		t.Fatalf("L0 after retention: %v (before %v), want only the newest", after, before)
	}
}
