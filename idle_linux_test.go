//go:build linux

// Tests of the monitor when the WAL watcher fails or another process writes.
package litestream_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

// When the WAL watcher fails after starting, the monitor falls back to
// polling and keeps syncing commits.
func TestDB_Monitor_PollsAfterWatcherFails(t *testing.T) {
	litestream.BreakWALWatcher(t)
	mustSyncEachCommit(t)
}

// A commit by another process wakes the monitor through the WAL watch: with
// an hour-long MonitorInterval nothing else could sync it.
func TestDB_Monitor_SeesOtherProcessCommits(t *testing.T) {
	dir := t.TempDir()
	app := MustOpenApp(t, filepath.Join(dir, "db"), 4096)
	db := MustNewDB(t, filepath.Join(dir, "db"), file.NewReplicaClient(filepath.Join(dir, "replica")))
	db.MonitorInterval = time.Hour
	db.CheckpointInterval = 0
	db.Replica.MonitorEnabled = false
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close(t.Context()) }()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LITESTREAM_TEST_CHILD=commit", "LITESTREAM_TEST_DIR="+db.Path())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child process: %v\n%s", err, out)
	}
	waitTXID(t, db, 0, "an L0 file for the other process's commit")
	if err := db.Replica.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, MustRestore(t, db.Replica, 0)), MustDump(t, app); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
}
