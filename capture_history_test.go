// Tests that a DB opened again proves the WAL history since its last
// captured frame by that frame's header, and writes a snapshot when the
// header differs.

package litestream_test

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

// closedDBFixture is a database with a closed DB whose L0 files captured
// every commit, ready to be opened again.
type closedDBFixture struct {
	path   string
	client *file.ReplicaClient
	app    *sql.DB
	logs   bytes.Buffer
}

func newClosedDBFixture(t *testing.T) *closedDBFixture {
	dir := t.TempDir()
	fx := &closedDBFixture{path: filepath.Join(dir, "db"), client: file.NewReplicaClient(filepath.Join(dir, "replica"))}
	fx.app = MustOpenApp(t, fx.path, 4096)
	for _, q := range []string{
		`CREATE TABLE t1 (id INTEGER PRIMARY KEY, v INTEGER)`,
		`CREATE TABLE t2 (id INTEGER PRIMARY KEY, w INTEGER)`,
		`INSERT INTO t1 VALUES (1, 0)`,
		`INSERT INTO t2 VALUES (1, 0)`,
	} {
		fx.exec(t, q)
	}
	return fx
}

func (fx *closedDBFixture) exec(t *testing.T, queries ...string) {
	t.Helper()
	tx, err := fx.app.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queries {
		if _, err := tx.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// open opens a new DB object on the database, logging into fx.logs.
func (fx *closedDBFixture) open(t *testing.T) *litestream.DB {
	t.Helper()
	db := MustNewDB(t, fx.path, fx.client)
	manual(db)
	db.Logger = slog.New(slog.NewTextHandler(&fx.logs, nil))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	return db
}

// syncAndClose captures and uploads every commit, then closes db.
func (fx *closedDBFixture) syncAndClose(t *testing.T, db *litestream.DB) {
	t.Helper()
	if err := db.SyncAndWait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// checkLatest checks that the latest restore equals the app's database.
func (fx *closedDBFixture) checkLatest(t *testing.T) {
	t.Helper()
	got := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, fx.client), 0))
	if want := MustDump(t, fx.app); got != want {
		t.Fatalf("latest restore %s, app %s\nlogs:\n%s", got, want, fx.logs.String())
	}
}

// snapshots counts the full snapshots the logs give a reason for: every
// one but a new DB's first.
func (fx *closedDBFixture) snapshots() int {
	return strings.Count(fx.logs.String(), "writing full snapshot")
}

// While the library is closed, the database and its WAL are put back from
// a copy taken before the last captured commit X (a backup restored over
// them). The app then commits Y, as many frames as X, whose last page is
// byte for byte X's last page while an earlier page differs. Comparing the
// last captured frame's page passes; its header's checksum does not. The
// next sync must write a snapshot, not skip Y's first page.
func TestDB_Open_OlderCopyEndingInTheCapturedPage(t *testing.T) {
	fx := newClosedDBFixture(t)
	db := fx.open(t)
	if err := db.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	dbCopy, err := os.ReadFile(fx.path)
	if err != nil {
		t.Fatal(err)
	}
	walCopy, err := os.ReadFile(fx.path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	fx.exec(t, `UPDATE t1 SET v = 1 WHERE id = 1`, `UPDATE t2 SET w = 5 WHERE id = 1`) // X
	fx.syncAndClose(t, db)
	if err := fx.app.Close(); err != nil {
		t.Fatal(err)
	}

	_ = os.Remove(fx.path + "-shm")
	if err := os.WriteFile(fx.path, dbCopy, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fx.path+"-wal", walCopy, 0o644); err != nil {
		t.Fatal(err)
	}
	fx.app = MustOpenApp(t, fx.path, 4096)
	fx.exec(t, `UPDATE t1 SET v = 2 WHERE id = 1`, `UPDATE t2 SET w = 5 WHERE id = 1`) // Y
	fx.exec(t, `INSERT INTO t2 VALUES (2, 7)`)

	db = fx.open(t)
	fx.syncAndClose(t, db)
	fx.checkLatest(t)
	if n := fx.snapshots(); n != 1 {
		t.Fatalf("%d full snapshots, want 1 for the replaced WAL", n)
	}
}

// Opened again over the WAL it left, with the last-frame record intact,
// torn, or gone, a DB continues without a snapshot: the record only ever
// strengthens the proof.
func TestDB_Open_AgainContinuesWithoutSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name   string
		record func(path string) error
	}{
		{"Intact", func(string) error { return nil }},
		{"Torn", func(path string) error { return os.WriteFile(path, []byte("LSLF torn"), 0o600) }},
		{"Gone", os.Remove},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newClosedDBFixture(t)
			db := fx.open(t)
			fx.syncAndClose(t, db)
			if err := tc.record(filepath.Join(db.LTXDir(), "last-frame")); err != nil {
				t.Fatal(err)
			}
			fx.exec(t, `UPDATE t1 SET v = 3 WHERE id = 1`)
			db = fx.open(t)
			fx.syncAndClose(t, db)
			fx.checkLatest(t)
			if n := fx.snapshots(); n != 0 {
				t.Fatalf("%d full snapshots after the first sync's:\n%s", n, fx.logs.String())
			}
		})
	}
}
