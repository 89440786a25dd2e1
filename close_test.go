// Tests of DB.Close replicating what was written before the first tick.
package litestream_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/benbjohnson/litestream/file"
)

// A program that creates its database, writes and closes before the first
// monitor tick must still find its rows on the replica.
func TestDB_Close_ReplicatesBeforeFirstTick(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db := MustNewDB(t, path, client)
	db.MonitorInterval = time.Hour
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}

	app := MustOpenApp(t, path, 4096)
	for i := range 10 {
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
	}
	want := MustDump(t, app)
	if err := db.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}

	if got := MustCheckRestored(t, MustRestore(t, db.Replica, 0)); got != want {
		t.Fatalf("restored database differs from the source")
	}
	MustVerifyReplica(t, client)
}
