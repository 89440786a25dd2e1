// vfs_reseed_test.go: a latest-following VFS over a replica wiped and
// written again by another database.
package litestream_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

// The VFS refuses the latest TXID going back (ErrConflict); once the new
// database B passes the TXID it served for A, it must serve B's pages, not
// page indexes or pages it cached for A's files of the same names.
func TestVFS_ReplacedReplicaServesNoOldPages(t *testing.T) {
	ctx := context.Background()
	dbA, appA, clientA := MustOpenDB(t, 4096)
	for i := 0; i < 12; i++ {
		if _, err := appA.Exec(`INSERT INTO t (v, pad) WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value+1 FROM s WHERE value < 5) SELECT value, randomblob(2000) FROM s`); err != nil {
			t.Fatal(err)
		}
		if err := dbA.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := dbA.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	replicaPath := clientA.Path()

	v := litestream.NewVFS(file.NewReplicaClient(replicaPath), nil)
	v.PollInterval = 20 * time.Millisecond
	if err := v.Register(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	pool, err := sql.Open("sqlite", v.DSN("app.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	pool.SetMaxOpenConns(1)
	if got, want := MustDump(t, pool), MustDump(t, appA); got != want {
		t.Fatalf("vfs %s, A %s", got, want)
	}
	if err := dbA.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Start over: wipe the replica; database B replicates to it.
	if err := os.RemoveAll(replicaPath); err != nil {
		t.Fatal(err)
	}
	pathB := filepath.Join(t.TempDir(), "b.db")
	appB := MustOpenApp(t, pathB, 4096)
	clientB := file.NewReplicaClient(replicaPath)
	dbB := MustNewDB(t, pathB, clientB)
	dbB.ShutdownSyncTimeout = 0
	dbB.MonitorInterval = 0
	dbB.Replica.MonitorEnabled = false
	clientB.Replica = dbB.Replica
	if err := dbB.Open(); err != nil {
		t.Fatal(err)
	}
	if _, err := appB.Exec(`CREATE TABLE u (v INTEGER); INSERT INTO t (v, pad) WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value+1 FROM s WHERE value < 8) SELECT value, randomblob(2000) FROM s`); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := appB.Exec(`INSERT INTO u (v) VALUES (?)`, 1000+i); err != nil {
			t.Fatal(err)
		}
		if err := dbB.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := dbB.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	want := MustDump(t, appB)
	// Control: a new VFS over the same replica serves B.
	fresh := mustVFS(t, file.NewReplicaClient(replicaPath))
	if got := MustDump(t, mustOpenVFSDB(t, fresh, "app.db")); got != want {
		t.Fatalf("fresh vfs %s, B %s", got, want)
	}
	waitFor(t, 10*time.Second, "the VFS to serve B's latest state", func() bool {
		var res string
		if err := pool.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil {
			t.Fatalf("integrity check through the VFS: %v (VFS error: %v)", err, v.LastError())
		} else if res != "ok" {
			t.Fatalf("the VFS serves B's TXIDs with A's pages: integrity_check: %s", res)
		}
		return MustDump(t, pool) == want
	})
}
