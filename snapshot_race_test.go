// snapshot_race_test.go: a snapshot read while the app restarts the WAL.
package litestream_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// snapshotRows decodes a full-database LTX stream into a database file at
// path and returns the number of rows of table t it holds.
func snapshotRows(t *testing.T, b []byte, path string) int {
	t.Helper()
	dec := ltx.NewDecoder(bytes.NewReader(b))
	if err := dec.DecodeHeader(); err != nil {
		t.Fatal(err)
	}
	hdr := dec.Header()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, hdr.PageSize)
	for {
		var ph ltx.PageHeader
		if err := dec.DecodePage(&ph, data); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(data, int64(ph.Pgno-1)*int64(hdr.PageSize)); err != nil {
			t.Fatal(err)
		}
	}
	if err := dec.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(hdr.Commit) * int64(hdr.PageSize)); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	sdb, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sdb.Close() }()
	var n int
	if err := sdb.QueryRow(`SELECT COUNT(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func walSalts(t *testing.T, path string) [2]uint32 {
	t.Helper()
	b, err := os.ReadFile(path + "-wal")
	if err != nil || len(b) < 32 {
		return [2]uint32{}
	}
	return [2]uint32{binary.BigEndian.Uint32(b[16:]), binary.BigEndian.Uint32(b[20:])}
}

// The DB holds read mark 0 (it took its read lock on a fully checkpointed
// WAL), which holds off the app's checkpoints but not a WAL restart. An app
// commit right after SnapshotReader returned restarts the WAL before the
// reader reads it: the snapshot labelled with the position's TXID must
// fail, not take the new generation's frames (a later commit).
func TestDB_SnapshotReader_AppRestartsWALBeforeRead(t *testing.T) {
	for attempt := 0; attempt < 30; attempt++ {
		if snapshotRaceAttempt(t) {
			return
		}
	}
	t.Fatal("in 30 attempts the app's commit never restarted the WAL while the snapshot was read")
}

// snapshotRaceAttempt reports whether the WAL restarted during the read,
// and fails the test if the snapshot then took the later commit.
func snapshotRaceAttempt(t *testing.T) (raced bool) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	app := MustOpenApp(t, path, 4096)
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))

	newDB := func() *litestream.DB { return mustOpenManualDB(t, path, client) }

	db := newDB()
	for i := 0; i < 20; i++ {
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(3000))`, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// The app checkpoints while the library is closed: fully backfilled.
	var busy, logN, ckptN int
	if err := app.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logN, &ckptN); err != nil {
		t.Fatal(err)
	} else if logN != ckptN {
		t.Fatalf("checkpoint not complete: %d/%d", ckptN, logN)
	}

	db2 := newDB()
	if err := db2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	before := walSalts(t, path)

	prev := runtime.GOMAXPROCS(1)
	pos, rc, err := db2.SnapshotReader(ctx)
	if err != nil {
		runtime.GOMAXPROCS(prev)
		t.Fatal(err)
	}
	// Right after SnapshotReader returned, before its goroutine runs.
	_, insErr := app.Exec(`INSERT INTO t (v, pad) VALUES (999, randomblob(10))`)
	runtime.GOMAXPROCS(prev)
	if insErr != nil {
		t.Fatal(insErr)
	}
	b, err := io.ReadAll(rc)
	_ = rc.Close()
	if after := walSalts(t, path); before == after {
		return false // the commit did not restart the WAL first
	}
	if err == nil {
		if n := snapshotRows(t, b, filepath.Join(t.TempDir(), "snap.db")); n != 20 {
			t.Fatalf("snapshot labelled TXID %s holds %d rows, want the 20 committed at that TXID: the app's later commit leaked in", pos.TXID, n)
		}
	} else if !strings.Contains(err.Error(), "wal restarted") {
		t.Fatalf("snapshot across a WAL restart: %v", err)
	}
	return true
}
