// The conformance suite's round trip: replicate a database through a Store
// and restore it from the client.

package clienttest

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	_ "modernc.org/sqlite"
)

// testStoreRoundTrip replicates a database through a Store while it is
// written, then restores by latest and by timestamp from the client. It
// returns the path of the closed source database.
func testStoreRoundTrip(t *testing.T, client litestream.ReplicaClient) string {
	ctx := context.Background()
	dir := t.TempDir()
	db := litestream.NewDB(filepath.Join(dir, "db"))
	db.MonitorInterval = 50 * time.Millisecond
	db.Replica = litestream.NewReplicaWithClient(db, client)
	db.Replica.SyncInterval = 50 * time.Millisecond
	store := litestream.NewStore([]*litestream.DB{db}, litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: time.Second}})
	store.SnapshotInterval = 2 * time.Second
	if err := store.Open(ctx); err != nil {
		t.Fatalf("open store: %v", err)
	}

	app, err := sql.Open("sqlite", "file:"+db.Path()+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = app.Close() }()
	if _, err := app.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}

	var mid time.Time
	var midCount int
	for i := 0; i < 40; i++ {
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, fmt.Sprintf("row %d %s", i, time.Now())); err != nil {
			t.Fatal(err)
		}
		if i == 19 {
			if err := db.SyncAndWait(ctx); err != nil {
				t.Fatal(err)
			}
			// The timestamp restore must see the first 20 rows exactly.
			time.Sleep(5 * time.Millisecond) // step past the millisecond of the last file
			mid, midCount = time.Now(), 20
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // pace the writer across several syncs
	}
	if err := store.Close(ctx); err != nil {
		t.Fatalf("close store: %v", err)
	}

	r := litestream.NewReplicaWithClient(nil, client)
	for _, tt := range []struct {
		name string
		ts   time.Time
		want int
	}{{"Latest", time.Time{}, 40}, {"Timestamp", mid, midCount}} {
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
		opt.Timestamp = tt.ts
		opt.IntegrityCheck = litestream.IntegrityCheckFull
		if err := r.Restore(ctx, opt); err != nil {
			t.Fatalf("%s: restore: %v", tt.name, err)
		}
		restored, err := sql.Open("sqlite", "file:"+opt.OutputPath)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		err = restored.QueryRow(`SELECT count(*) FROM t`).Scan(&n)
		_ = restored.Close()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		} else if n != tt.want {
			t.Fatalf("%s: restored %d rows, want %d", tt.name, n, tt.want)
		}
	}
	return db.Path()
}
