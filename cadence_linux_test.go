//go:build linux

// Tests of syncing on WAL change through inotify.
package litestream_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/benbjohnson/litestream/file"
)

// A commit wakes the monitor through inotify: with an hour-long
// MonitorInterval the L0 file still appears.
func TestDB_Monitor_SyncsOnWALChange(t *testing.T) {
	dir := t.TempDir()
	db := MustNewDB(t, filepath.Join(dir, "db"), file.NewReplicaClient(filepath.Join(dir, "replica")))
	db.MonitorInterval = time.Hour
	db.Replica.MonitorEnabled = false
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close(t.Context()) }()
	app := MustOpenApp(t, db.Path(), 4096)
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "an L0 file without a monitor tick", func() bool {
		pos, err := db.Pos()
		return err == nil && pos.TXID > 0
	})
}
