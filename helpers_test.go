// Test helpers: opening databases, apps and replicas.
package litestream_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// testFileURI is the SQLite URI of the file at path, with the characters
// a URI path reads as syntax ('%', '?', '#') escaped.
func testFileURI(path string) string {
	return "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

// MustOpenApp opens an application connection pool in WAL mode with the
// given page size, the way a program embedding the library would.
func MustOpenApp(t testing.TB, path string, pageSize int) *sql.DB {
	t.Helper()
	app, err := sql.Open("sqlite", fmt.Sprintf("%s?_pragma=busy_timeout(5000)&_pragma=page_size(%d)&_pragma=journal_mode(wal)&_pragma=synchronous(normal)", testFileURI(path), pageSize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Close() })
	if _, err := app.Exec(`CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v INTEGER, pad BLOB)`); err != nil {
		t.Fatal(err)
	}
	return app
}

// MustOpenDB returns an open DB with manual sync (MonitorInterval 0), a
// file replica in a temp dir with uploads on demand, and an app pool. At
// cleanup it closes the DB and checks the replica's invariants.
func MustOpenDB(t testing.TB, pageSize int) (*litestream.DB, *sql.DB, *file.ReplicaClient) {
	t.Helper()
	return MustOpenDBWrapped(t, pageSize, nil)
}

// MustOpenDBWrapped is MustOpenDB with the replica reached through
// wrap(file client), e.g. a faultclient; wrap may be nil.
func MustOpenDBWrapped(t testing.TB, pageSize int, wrap func(litestream.ReplicaClient) litestream.ReplicaClient) (*litestream.DB, *sql.DB, *file.ReplicaClient) {
	t.Helper()
	return mustOpenDB(t, pageSize, wrap, func(db *litestream.DB) {
		db.MonitorInterval = 0
		db.Replica.MonitorEnabled = false
	})
}

// MustOpenMonitoredDB returns an open DB that syncs every 20ms and uploads
// every 10ms to a file replica reached through wrap (nil: directly), logging
// into logs, and an app pool. configure, if set, runs before Open. At
// cleanup it closes the DB and checks the replica's invariants.
func MustOpenMonitoredDB(t testing.TB, logs io.Writer, wrap func(litestream.ReplicaClient) litestream.ReplicaClient, configure func(*litestream.DB)) (*litestream.DB, *sql.DB, *file.ReplicaClient) {
	t.Helper()
	return mustOpenDB(t, 4096, wrap, func(db *litestream.DB) {
		db.Logger = slog.New(slog.NewTextHandler(logs, nil))
		db.MonitorInterval = 20 * time.Millisecond
		db.Replica.SyncInterval = 10 * time.Millisecond
		if configure != nil {
			configure(db)
		}
	})
}

// MustNewDB builds, unopened, a DB at path replicating through client: the
// one way tests build a DB. At cleanup, after the test's own cleanups, it
// closes the DB if still open and checks the replica's invariants
// (MustVerifyReplica) through client.
func MustNewDB(t testing.TB, path string, client litestream.ReplicaClient) *litestream.DB {
	t.Helper()
	return newVerifiedDB(t, path, client, client)
}

// newVerifiedDB is MustNewDB replicating through rc and verifying through
// raw, the client rc wraps, so that a fault-injecting rc does not fail the
// verification.
func newVerifiedDB(t testing.TB, path string, rc, raw litestream.ReplicaClient) *litestream.DB {
	t.Helper()
	db := litestream.NewDB(path)
	db.Replica = litestream.NewReplicaWithClient(db, rc)
	t.Cleanup(func() {
		if db.IsOpen() {
			if err := db.Close(context.Background()); err != nil {
				t.Errorf("close db: %v", err)
			}
		}
		MustVerifyReplica(t, raw)
	})
	return db
}

// mustOpenDB opens a DB replicating to a file replica in a temp dir through
// wrap (nil: directly), after configure, with an app pool. At cleanup it
// closes the DB and checks the replica's invariants.
func mustOpenDB(t testing.TB, pageSize int, wrap func(litestream.ReplicaClient) litestream.ReplicaClient, configure func(*litestream.DB)) (*litestream.DB, *sql.DB, *file.ReplicaClient) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	app := MustOpenApp(t, path, pageSize)

	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	var rc litestream.ReplicaClient = client
	if wrap != nil {
		rc = wrap(client)
	}
	db := newVerifiedDB(t, path, rc, client)
	db.ShutdownSyncTimeout = 0
	client.Replica = db.Replica
	configure(db)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	return db, app, client
}

// MustDump returns a digest of every user table's rows in rowid order.
func MustDump(t testing.TB, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_litestream%' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}

	h := sha256.New()
	var n int
	for _, table := range tables {
		fmt.Fprintf(h, "table %s\n", table)
		rows, err := db.Query(fmt.Sprintf(`SELECT * FROM %q ORDER BY rowid`, table))
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if b, ok := v.([]byte); ok { // %v of a blob formats every byte
					fmt.Fprintf(h, "blob%d:", len(b))
					h.Write(b)
					h.Write([]byte{'|'})
					continue
				}
				fmt.Fprintf(h, "%T:%v|", v, v)
			}
			h.Write([]byte{'\n'})
			n++
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return fmt.Sprintf("%d rows %s", n, hex.EncodeToString(h.Sum(nil))[:16])
}

// MustCheckRestored checks a restored database's integrity and returns its
// dump.
func MustCheckRestored(t testing.TB, path string) string {
	t.Helper()
	// A follower may be committing to path, or switching it to WAL mode:
	// wait for its lock as a reader would.
	db, err := sql.Open("sqlite", testFileURI(path)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	var result string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&result); err != nil {
		t.Fatalf("integrity check of %s: %v", path, err)
	} else if result != "ok" {
		t.Fatalf("integrity check of %s: %s", path, result)
	}
	return MustDump(t, db)
}

// MustRestore restores r at txid (0 = latest) into a new temp path.
func MustRestore(t testing.TB, r *litestream.Replica, txid ltx.TXID) string {
	t.Helper()
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
	opt.TXID = txid
	if err := r.Restore(context.Background(), opt); err != nil {
		t.Fatalf("restore txid %s: %v", txid, err)
	}
	return opt.OutputPath
}

// MustVerifyReplica checks the replica's invariants: every file decodes
// with a valid checksum and matches its name, files carry NoChecksum, L0 is
// dense from its first TXID with single-TXID files, each level is sorted
// without overlaps, and every TXID from the oldest snapshot to the newest
// file is covered (Replica.ValidateChain).
func MustVerifyReplica(t testing.TB, client litestream.ReplicaClient) {
	t.Helper()
	ctx := context.Background()
	errs, err := litestream.NewReplicaWithClient(nil, client).ValidateChain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Errorf("replica chain: %s", e.Message)
	}
	for level := 0; level <= litestream.SnapshotLevel; level++ {
		itr, err := client.LTXFiles(ctx, level, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		infos, err := ltx.SliceFileIterator(itr)
		if err != nil {
			t.Fatal(err)
		}
		for i, info := range infos {
			rc, err := client.OpenLTXFile(ctx, level, info.MinTXID, info.MaxTXID, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			_ = rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			dec := ltx.NewDecoder(bytes.NewReader(b))
			if err := dec.Verify(); err != nil {
				t.Fatalf("L%d %s-%s does not verify: %v", level, info.MinTXID, info.MaxTXID, err)
			}
			hdr := dec.Header()
			name := ltx.FormatFilename(info.MinTXID, info.MaxTXID)
			if hdr.MinTXID != info.MinTXID || hdr.MaxTXID != info.MaxTXID {
				t.Fatalf("L%d %s holds %s-%s", level, name, hdr.MinTXID, hdr.MaxTXID)
			}
			if hdr.Flags != ltx.HeaderFlagNoChecksum || hdr.PreApplyChecksum != 0 || dec.Trailer().PostApplyChecksum != 0 {
				t.Fatalf("L%d %s: flags=%x pre=%x post=%x, want NoChecksum and zero checksums", level, name, hdr.Flags, hdr.PreApplyChecksum, dec.Trailer().PostApplyChecksum)
			}
			switch {
			case level == 0 && info.MinTXID != info.MaxTXID:
				t.Fatalf("L0 %s covers more than one TXID", name)
			case level == 0 && hdr.WALOffset < litestream.WALHeaderSize:
				t.Fatalf("L0 %s: WAL offset %d", name, hdr.WALOffset)
			case level > 0 && level < litestream.SnapshotLevel && (hdr.WALOffset != 0 || hdr.WALSize != 0 || hdr.WALSalt1 != 0):
				t.Fatalf("L%d %s: compacted file has WAL fields", level, name)
			case level == litestream.SnapshotLevel && info.MinTXID != 1:
				t.Fatalf("L9 %s does not start at 1", name)
			}
			if i > 0 {
				prev := infos[i-1]
				if level == 0 && info.MinTXID != prev.MaxTXID+1 {
					t.Fatalf("L0 not dense: %s-%s then %s", prev.MinTXID, prev.MaxTXID, name)
				}
				if level > 0 && level < litestream.SnapshotLevel && info.MinTXID <= prev.MaxTXID {
					t.Fatalf("L%d overlap: %s-%s then %s", level, prev.MinTXID, prev.MaxTXID, name)
				}
			}
		}
	}
}

// L0TXIDs lists the replica's L0 TXIDs.
func L0TXIDs(t testing.TB, client litestream.ReplicaClient) []ltx.TXID {
	t.Helper()
	infos := levelFiles(t, client, 0)
	a := make([]ltx.TXID, len(infos))
	for i, info := range infos {
		a[i] = info.MaxTXID
	}
	return a
}

// waitReplicatedTXID waits up to 30 s until everything committed so far is
// replicated and returns the local position's TXID then.
func waitReplicatedTXID(db *litestream.DB) (ltx.TXID, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.WaitReplicated(ctx); err != nil {
		return 0, fmt.Errorf("wait replicated: %w", err)
	}
	pos, err := db.Pos()
	if err != nil {
		return 0, err
	}
	return pos.TXID, nil
}
