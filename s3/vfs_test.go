// vfs_test.go: the VFS reading a replica on MinIO through ranged S3 reads
// answers like a restore, for every TXID of a seeded workload. It lives
// here because importing this package into the root tests would register
// the s3 scheme there.
package s3_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/clienttest"
)

func TestVFS_MatchesRestore_MinIO(t *testing.T) {
	ctx := context.Background()
	client := mustMinIO(t).NewClient(t, "vfs")

	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	app, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = app.Close() }()
	db := litestream.NewDB(path)
	db.MonitorInterval, db.ShutdownSyncTimeout = 0, 0
	db.Replica = litestream.NewReplicaWithClient(db, client)
	db.Replica.MonitorEnabled = false
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close(ctx) }()

	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := app.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER, pad BLOB)`)
	exec(`CREATE INDEX t_v ON t (v)`)
	rng := rand.New(rand.NewSource(42))
	const steps = 14
	for step := 0; step < steps; step++ {
		switch op := rng.Intn(8); {
		case op < 3:
			for i := 0; i < 1+rng.Intn(30); i++ {
				exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(?))`, rng.Intn(1000), rng.Intn(3000))
			}
		case op < 5:
			exec(`UPDATE t SET v = v + 1, pad = randomblob(?) WHERE id % ? = 0`, rng.Intn(200), 2+rng.Intn(4))
		case op < 6:
			exec(`DELETE FROM t WHERE id % ? = 0`, 3+rng.Intn(4))
		case op < 7:
			exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(?))`, rng.Intn(1000), 30000+rng.Intn(60000))
		default:
			exec(`VACUUM`)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
		switch step {
		case steps / 3:
			if _, err := db.Compact(ctx, 1); err != nil {
				t.Fatal(err)
			}
		case steps / 2:
			if _, err := db.Snapshot(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}

	l0 := clienttest.MustList(t, client, 0, 0, false)
	v := litestream.NewVFS(client, nil)
	if err := v.Register(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = v.Close() }()
	for _, info := range l0 {
		out := filepath.Join(t.TempDir(), "restored")
		opt := litestream.NewRestoreOptions()
		opt.OutputPath, opt.TXID = out, info.MaxTXID
		if err := db.Replica.Restore(ctx, opt); err != nil {
			t.Fatalf("restore %s: %v", info.MaxTXID, err)
		}
		restored, err := sql.Open("sqlite", "file:"+out+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		want := dumpVFSTable(t, restored)
		_ = restored.Close()
		pool, err := sql.Open("sqlite", v.DSN("db@"+info.MaxTXID.String()))
		if err != nil {
			t.Fatal(err)
		}
		got := dumpVFSTable(t, pool)
		_ = pool.Close()
		if got != want {
			t.Fatalf("TXID %s through the VFS on MinIO differs from its restore (cause: %v)", info.MaxTXID, v.LastError())
		}
	}
	t.Logf("%d TXIDs compared", len(l0))
}

// dumpVFSTable renders every row of t, the schema and the integrity check.
func dumpVFSTable(t *testing.T, db *sql.DB) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master ORDER BY name)`,
		`PRAGMA integrity_check`,
		`SELECT id || ':' || v || ':' || hex(pad) FROM t ORDER BY id`,
		`SELECT count(*) || ':' || coalesce(sum(v), 0) FROM t WHERE v BETWEEN 100 AND 500`,
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for rows.Next() {
			var s sql.NullString
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s\n", s.String)
		}
		if err := rows.Close(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return b.String()
}
