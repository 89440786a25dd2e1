// Black-box checks of the README's promises, from a user's side: only the
// public API and the file backend (rev-readme).
package litestream_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/superfly/ltx"
)

// rpState is one committed state: the dump after it, its TXID and a time
// taken after it was replicated and before the next commit.
type rpState struct {
	dump  string
	txid  ltx.TXID
	after time.Time
}

// rpCommitStates commits n rows one transaction each, replicating each with
// SyncAndWait, and returns the state after each commit plus a time taken
// before the first commit.
func rpCommitStates(t *testing.T, db *litestream.DB, app *sql.DB, n int) (before time.Time, states []rpState) {
	t.Helper()
	ctx := context.Background()
	// Let the library create its tables first, so that the first user
	// commit is its own TXID.
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	before = time.Now()
	time.Sleep(5 * time.Millisecond)
	for i := 1; i <= n; i++ {
		if _, err := app.Exec(`INSERT INTO t (id, v) VALUES (?, ?)`, i, i); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
		pos, err := db.Pos()
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		states = append(states, rpState{dump: MustDump(t, app), txid: pos.TXID, after: time.Now()})
		time.Sleep(5 * time.Millisecond)
	}
	return before, states
}

func rpRestore(t *testing.T, client litestream.ReplicaClient, txid ltx.TXID, at time.Time) (string, error) {
	t.Helper()
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
	opt.TXID, opt.Timestamp = txid, at
	if err := litestream.NewReplicaWithClient(nil, client).Restore(context.Background(), opt); err != nil {
		if _, serr := os.Stat(opt.OutputPath); serr == nil {
			t.Errorf("failed restore left its output: %v", err)
		}
		return "", err
	}
	return MustCheckRestored(t, opt.OutputPath), nil
}

// "A restore to a time takes the files dated strictly before it ... a time
// taken just before a commit restores the state without it." A time between
// two replicated commits restores the state of the first.
func TestREADME_RestoreTimestampBetweenCommits(t *testing.T) {
	db, app, client := MustOpenDB(t, 4096)
	_, states := rpCommitStates(t, db, app, 4)
	for i, s := range states {
		got, err := rpRestore(t, client, 0, s.after)
		if err != nil {
			t.Fatalf("restore at time after commit %d: %v", i+1, err)
		}
		if got != s.dump {
			t.Fatalf("restore at time after commit %d: got %s, want %s", i+1, got, s.dump)
		}
	}
}

// A time before the first file: ErrTxNotAvailable naming the time asked for
// and the range the replica holds.
func TestREADME_RestoreTimestampBeforeFirst(t *testing.T) {
	db, app, client := MustOpenDB(t, 4096)
	_ = db
	first := time.Now().Add(-time.Hour)
	rpCommitStates(t, db, app, 2)
	_, err := rpRestore(t, client, 0, first)
	if !errors.Is(err, litestream.ErrTxNotAvailable) {
		t.Fatalf("restore before first commit: %v, want ErrTxNotAvailable", err)
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), first.UTC().Format("2006-01-02")) && !strings.Contains(err.Error(), first.Format("2006-01-02")) {
		t.Errorf("error does not name the time asked for: %v", err)
	}
}

// A TXID the replica does not hold: ErrTxNotAvailable naming the TXID and the
// range the replica holds.
func TestREADME_RestoreTXIDNotHeld(t *testing.T) {
	db, app, client := MustOpenDB(t, 4096)
	_, states := rpCommitStates(t, db, app, 3)
	last := states[len(states)-1].txid
	_, err := rpRestore(t, client, last+5, time.Time{})
	if !errors.Is(err, litestream.ErrTxNotAvailable) {
		t.Fatalf("restore of TXID %s past the replica: %v, want ErrTxNotAvailable", last+5, err)
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), (last+5).String()) && !strings.Contains(err.Error(), fmt.Sprint(uint64(last+5))) {
		t.Errorf("error does not name the TXID asked for: %v", err)
	}
	if !strings.Contains(err.Error(), last.String()) && !strings.Contains(err.Error(), fmt.Sprint(uint64(last))) {
		t.Errorf("error does not name the replica's TXID range (up to %s): %v", last, err)
	}
	// Every TXID held restores exactly its state.
	for _, s := range states {
		got, err := rpRestore(t, client, s.txid, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if got != s.dump {
			t.Fatalf("TXID %s: got %s, want %s", s.txid, got, s.dump)
		}
	}
}

// An empty replica, and a replica path that does not exist: ErrTxNotAvailable
// naming the replica.
func TestREADME_RestoreEmptyOrMissingReplica(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{empty, filepath.Join(dir, "missing")} {
		_, err := rpRestore(t, file.NewReplicaClient(p), 0, time.Time{})
		if !errors.Is(err, litestream.ErrTxNotAvailable) {
			t.Fatalf("restore of %s: %v, want ErrTxNotAvailable", p, err)
		}
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error does not name the replica path %s: %v", p, err)
		}
		t.Logf("%v", err)
	}
}

// "once retention has removed the level-0 files of a time, a restore to it
// returns the newest state before it that the remaining files can build."
func TestREADME_RestoreTimestampAfterL0Retention(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	_, states := rpCommitStates(t, db, app, 2)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	ctx2 := context.Background()
	for i := 3; i <= 4; i++ {
		if _, err := app.Exec(`INSERT INTO t (id, v) VALUES (?, ?)`, i, i); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx2); err != nil {
			t.Fatal(err)
		}
		pos, _ := db.Pos()
		time.Sleep(5 * time.Millisecond)
		states = append(states, rpState{dump: MustDump(t, app), txid: pos.TXID, after: time.Now()})
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// Remove every L0 file below the newest (the replica keeps L1 only).
	last := states[len(states)-1].txid
	if err := db.EnforceRetentionByTXID(ctx, 0, last); err != nil {
		t.Fatal(err)
	}
	t.Logf("L0 %v L1 %d files", L0TXIDs(t, client), len(levelFiles(t, client, 1)))
	// After commit 3 (its L0 gone; the second L1 file is dated at commit
	// 4): the newest state the remaining files build is commit 2's.
	got, err := rpRestore(t, client, 0, states[2].after)
	if err != nil {
		t.Fatalf("restore between commit 3 and 4: %v", err)
	}
	if got != states[1].dump {
		t.Fatalf("restore between commit 3 and 4 after L0 retention: got %s, want commit 2's state %s", got, states[1].dump)
	}
	got, err = rpRestore(t, client, 0, states[3].after)
	if err != nil {
		t.Fatal(err)
	}
	if got != states[3].dump {
		t.Fatalf("restore after commit 4: got %s, want %s", got, states[3].dump)
	}
}

// "must not exist": a restore into an existing file fails and leaves it.
func TestREADME_RestoreOutputExists(t *testing.T) {
	db, app, client := MustOpenDB(t, 4096)
	rpCommitStates(t, db, app, 1)
	out := filepath.Join(t.TempDir(), "out.db")
	if err := os.WriteFile(out, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = out
	err := litestream.NewReplicaWithClient(nil, client).Restore(context.Background(), opt)
	if err == nil {
		t.Fatal("restore over an existing file succeeded")
	}
	t.Logf("error: %v (os.ErrExist: %v)", err, errors.Is(err, os.ErrExist))
	if b, _ := os.ReadFile(out); string(b) != "mine" {
		t.Fatalf("existing output changed: %q", b)
	}
}

// "a -wal, -journal, -shm or -txid file left beside the output path by a
// database that was there before is removed first".
func TestREADME_RestoreRemovesStaleSidecars(t *testing.T) {
	db, app, client := MustOpenDB(t, 4096)
	_, states := rpCommitStates(t, db, app, 2)
	out := filepath.Join(t.TempDir(), "out.db")
	// A real previous database's -wal at out, holding other rows.
	rpLeaveStaleWAL(t, out, 100)
	if err := os.WriteFile(out+"-journal", []byte("junk journal"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out+"-txid", []byte("0000000000000099\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = out
	if err := litestream.NewReplicaWithClient(nil, client).Restore(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"-wal", "-journal", "-txid"} {
		if _, err := os.Stat(out + s); err == nil {
			b, _ := os.ReadFile(out + s)
			if s != "-wal" || len(b) > 0 {
				t.Errorf("%s left beside the restored output (%d bytes)", s, len(b))
			}
		}
	}
	if got, want := MustCheckRestored(t, out), states[1].dump; got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
}

// "EnsureExists: Restore first if the database is missing (no-op if it
// exists or the replica is empty)."
func TestREADME_EnsureExists(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	_, states := rpCommitStates(t, db, app, 3)

	// Missing database, replica with data: restored.
	dir := t.TempDir()
	path := filepath.Join(dir, "new.db")
	db2 := litestream.NewDB(path)
	db2.Replica = litestream.NewReplicaWithClient(db2, file.NewReplicaClient(client.Path()))
	if err := db2.EnsureExists(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, path), states[2].dump; got != want {
		t.Fatalf("EnsureExists restored %s, want %s", got, want)
	}

	// Existing database: untouched.
	if err := os.WriteFile(filepath.Join(dir, "exists.db"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	db3 := litestream.NewDB(filepath.Join(dir, "exists.db"))
	db3.Replica = litestream.NewReplicaWithClient(db3, file.NewReplicaClient(client.Path()))
	if err := db3.EnsureExists(ctx); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "exists.db")); err != nil || fi.Size() != 0 {
		t.Fatalf("EnsureExists touched an existing database: %v %v", fi, err)
	}

	// Empty replica (directory missing or empty): no-op, no error.
	for _, rp := range []string{filepath.Join(dir, "none"), t.TempDir()} {
		p := filepath.Join(dir, "fresh-"+filepath.Base(rp)+".db")
		db4 := litestream.NewDB(p)
		db4.Replica = litestream.NewReplicaWithClient(db4, file.NewReplicaClient(rp))
		if err := db4.EnsureExists(ctx); err != nil {
			t.Fatalf("EnsureExists over empty replica %s: %v", rp, err)
		}
	}
}

// "EnsureExists starts an empty database only over an empty replica. Over one
// whose files restore nothing ... it fails, with ErrTxNotAvailable wrapped,
// naming the files it found."
func TestREADME_EnsureExistsOverReplicaThatRestoresNothing(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	rpCommitStates(t, db, app, 2)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for i := 10; i < 12; i++ {
		if _, err := app.Exec(`INSERT INTO t (id, v) VALUES (?, ?)`, i, i); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// A lifecycle rule expired the older files: only the newest L1 file
	// remains (L0 and the first L1 file are gone).
	l1 := levelFiles(t, client, 1)
	if len(l1) != 2 {
		t.Fatalf("L1: %d files", len(l1))
	}
	raw := filepath.Join(t.TempDir(), "copy")
	if err := os.MkdirAll(filepath.Join(raw, "ltx", "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	name := ltx.FormatFilename(l1[1].MinTXID, l1[1].MaxTXID)
	b, err := os.ReadFile(filepath.Join(client.Path(), "ltx", "1", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(raw, "ltx", "1", name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "db")
	db2 := litestream.NewDB(p)
	db2.Replica = litestream.NewReplicaWithClient(db2, file.NewReplicaClient(raw))
	err = db2.EnsureExists(ctx)
	if !errors.Is(err, litestream.ErrTxNotAvailable) {
		t.Fatalf("EnsureExists over a replica that restores nothing: %v, want ErrTxNotAvailable", err)
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), name) && !strings.Contains(err.Error(), l1[1].MinTXID.String()) {
		t.Errorf("error does not name the files found (%s): %v", name, err)
	}
	if _, err := os.Stat(p); err == nil {
		t.Fatal("EnsureExists created the database anyway")
	}
}

// "Store.Open fails if the database file exists and is not a SQLite
// database; a missing or empty file is fine."
func TestREADME_StoreOpenFileKinds(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		content []byte
		wantErr bool
	}{
		{"missing", nil, false},
		{"empty", []byte{}, false},
		{"text", []byte(strings.Repeat("not a database\n", 400)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.db")
			if tc.content != nil {
				if err := os.WriteFile(path, tc.content, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			db := litestream.NewDB(path)
			db.Replica = litestream.NewReplicaWithClient(db, file.NewReplicaClient(filepath.Join(dir, "replica")))
			store := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
			err := store.Open(ctx)
			defer func() { _ = store.Close(ctx) }()
			if tc.wantErr && err == nil {
				// The first sync runs in the background: it may be
				// reported later rather than by Open.
				t.Fatalf("Store.Open of a non-SQLite file succeeded")
			}
			if !tc.wantErr && err != nil {
				t.Fatalf("Store.Open: %v", err)
			}
			t.Logf("Open: %v", err)
		})
	}
}

// "a second DB on the same file (under any spelling of its path, symbolic
// links resolved) fails to open with an error naming the first ... So does a
// second DB on a replica another open DB uses (the same client value, or a
// file replica on the same directory)".
func TestREADME_SecondDB(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	MustOpenApp(t, path, 4096)
	db := MustNewDB(t, path, file.NewReplicaClient(filepath.Join(dir, "r1")))
	db.MonitorInterval = 0
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close(ctx) }()
	link := filepath.Join(dir, "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, filepath.Join(dir, ".", "app.db"), filepath.Join(link, "app.db")} {
		db2 := litestream.NewDB(p)
		db2.MonitorInterval = 0
		db2.Replica = litestream.NewReplicaWithClient(db2, file.NewReplicaClient(filepath.Join(dir, "r2")))
		err := db2.Open()
		if err == nil {
			_ = db2.Close(ctx)
			t.Errorf("second DB on %s opened", p)
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error does not name the first DB %s: %v", path, err)
		}
	}
	// Another database, same replica directory (spelled differently).
	other := filepath.Join(dir, "other.db")
	MustOpenApp(t, other, 4096)
	db3 := litestream.NewDB(other)
	db3.MonitorInterval = 0
	db3.Replica = litestream.NewReplicaWithClient(db3, file.NewReplicaClient(filepath.Join(link, "r1")+"/"))
	if err := db3.Open(); err == nil {
		_ = db3.Close(ctx)
		t.Errorf("second DB on the same replica directory opened")
	} else {
		t.Logf("same replica: %v", err)
	}
}

// URL forms of the file backend.
func TestREADME_FileURLs(t *testing.T) {
	dir := t.TempDir()
	c, err := litestream.NewReplicaClientFromURL("file://" + dir)
	if err != nil {
		t.Fatalf("file://%s: %v", dir, err)
	}
	if fc, ok := c.(*file.ReplicaClient); !ok || fc.Path() != dir {
		t.Fatalf("file://%s: %#v", dir, c)
	}
	if _, err := litestream.NewReplicaClientFromURL("file://dir/sub"); err == nil {
		t.Fatal("file://dir/sub accepted")
	} else {
		t.Logf("file://dir/sub: %v", err)
	}
	if _, err := litestream.NewReplicaClientFromURL("gs://bucket/path"); err == nil {
		t.Log("gs registered in the test binary; skip the unregistered check")
	} else if !strings.Contains(err.Error(), "github.com/benbjohnson/litestream/gs") {
		t.Errorf("unregistered scheme: error does not name the package: %v", err)
	}
}

// Defaults the README's Options section lists.
func TestREADME_Defaults(t *testing.T) {
	db := litestream.NewDB(filepath.Join(t.TempDir(), "db"))
	r := litestream.NewReplicaWithClient(db, file.NewReplicaClient(t.TempDir()))
	db.Replica = r
	s := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
	opt := litestream.NewRestoreOptions()
	l := file.NewLeaser(t.TempDir())
	check := func(name string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, README says %v", name, got, want)
		}
	}
	check("DB.MonitorInterval", db.MonitorInterval, time.Second)
	check("DB.CheckpointInterval", db.CheckpointInterval, time.Minute)
	check("DB.MinCheckpointPageN", db.MinCheckpointPageN, 1000)
	tp := db.TruncatePageN
	if tp == 0 {
		tp = 121359
	}
	check("DB.TruncatePageN", tp, 121359)
	check("DB.MaxSyncWALBytes", db.MaxSyncWALBytes, 64<<20)
	check("DB.BusyTimeout", db.BusyTimeout, time.Second)
	check("DB.ShutdownSyncTimeout", db.ShutdownSyncTimeout, 30*time.Second)
	check("DB.ShutdownSyncInterval", db.ShutdownSyncInterval, 500*time.Millisecond)
	check("Replica.SyncInterval", r.SyncInterval, time.Second)
	check("Replica.MaxSyncLTXFiles", r.MaxSyncLTXFiles, 256)
	check("Replica.MonitorEnabled", r.MonitorEnabled, true)
	check("Replica.AutoRecoverEnabled", r.AutoRecoverEnabled, false)
	iri := r.IndexRefreshInterval
	if iri == 0 {
		iri = litestream.DefaultReplicaIndexRefresh
	}
	check("Replica.IndexRefreshInterval", iri, 6*time.Hour)
	check("Replica.LeaseWait", r.LeaseWait, false)
	check("Store.SnapshotInterval", s.SnapshotInterval, 24*time.Hour)
	check("Store.SnapshotRetention", s.SnapshotRetention, 24*time.Hour)
	check("Store.L0Retention", s.L0Retention, 5*time.Minute)
	check("Store.L0RetentionCheckInterval", s.L0RetentionCheckInterval, 15*time.Second)
	check("Store.RetentionEnabled", s.RetentionEnabled, true)
	check("Store.ValidationInterval", s.ValidationInterval, time.Duration(0))
	hci := s.HeartbeatCheckInterval
	if hci == 0 {
		hci = 15 * time.Second
	}
	check("Store.HeartbeatCheckInterval", hci, 15*time.Second)
	check("RestoreOptions.Parallelism", opt.Parallelism, 8)
	fi := opt.FollowInterval
	if fi == 0 {
		fi = time.Second
	}
	check("RestoreOptions.FollowInterval", fi, time.Second)
	ttl := l.TTL
	if ttl == 0 {
		ttl = 30 * time.Second
	}
	check("file.Leaser.TTL", ttl, 30*time.Second)
	check("DefaultEventBuffer", litestream.DefaultEventBuffer, 1024)
	lv := litestream.DefaultCompactionLevels
	if len(lv) != 4 || lv[1].Interval != 30*time.Second || lv[2].Interval != 5*time.Minute || lv[3].Interval != time.Hour {
		t.Errorf("DefaultCompactionLevels: %d levels", len(lv))
	}
	v := litestream.NewVFS(file.NewReplicaClient(t.TempDir()), nil)
	check("VFS.PollInterval", v.PollInterval, time.Second)
	check("VFS.CacheSize", v.CacheSize, 10*1024*1024)
	check("VFS.ReadAheadSize", v.ReadAheadSize, 128*1024)
}

// "A restore to a time takes the files dated strictly before it. A file is
// dated with the time it was written, in milliseconds rounded up": a time
// equal to an L0 file's date excludes it, a millisecond later includes it.
// "A compacted file takes the date of its newest commit."
func TestREADME_RestoreTimestampFileDateBoundary(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	_, states := rpCommitStates(t, db, app, 3)
	l0 := levelFiles(t, client, 0)
	byTXID := map[ltx.TXID]*ltx.FileInfo{}
	for _, info := range l0 {
		byTXID[info.MaxTXID] = info
	}
	for i := 1; i < len(states); i++ {
		info := byTXID[states[i].txid]
		if info == nil {
			t.Fatalf("no L0 file for TXID %s", states[i].txid)
		}
		got, err := rpRestore(t, client, 0, info.CreatedAt)
		if err != nil {
			t.Fatalf("restore at L0 %s's date: %v", info.MaxTXID, err)
		}
		if got != states[i-1].dump {
			t.Errorf("restore at exactly L0 %s's date %s: got %s, want the state before it %s", info.MaxTXID, info.CreatedAt.Format(time.RFC3339Nano), got, states[i-1].dump)
		}
		got, err = rpRestore(t, client, 0, info.CreatedAt.Add(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if got != states[i].dump {
			t.Errorf("restore 1ms after L0 %s's date: got %s, want %s", info.MaxTXID, got, states[i].dump)
		}
	}
	newest := l0[len(l0)-1]
	l1, err := db.Compact(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	listed := levelFiles(t, client, 1)
	if len(listed) != 1 {
		t.Fatalf("L1: %d files", len(listed))
	}
	hdr, err := litestream.FetchLTXHeader(ctx, client, listed[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := time.UnixMilli(hdr.Timestamp); !got.Equal(newest.CreatedAt) || !listed[0].CreatedAt.Equal(newest.CreatedAt) {
		t.Errorf("L1 %s-%s dated %s (listed %s), its newest L0 file %s", l1.MinTXID, l1.MaxTXID, got.Format(time.RFC3339Nano), listed[0].CreatedAt.Format(time.RFC3339Nano), newest.CreatedAt.Format(time.RFC3339Nano))
	}
}

// The VFS's "name@<RFC 3339 time>" pins "the last TXID before that time":
// the same state a restore to that time returns.
func TestREADME_VFSTimeMatchesRestore(t *testing.T) {
	db, app, client := MustOpenDB(t, 4096)
	before, states := rpCommitStates(t, db, app, 3)
	_ = before
	v := litestream.NewVFS(file.NewReplicaClient(client.Path()), nil)
	if err := v.Register(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = v.Close() }()
	l0 := levelFiles(t, client, 0)
	var times []time.Time
	for _, s := range states {
		times = append(times, s.after)
	}
	for _, info := range l0 {
		times = append(times, info.CreatedAt, info.CreatedAt.Add(time.Millisecond))
	}
	for _, at := range times {
		want, rerr := rpRestore(t, client, 0, at)
		name := "app.db@" + at.UTC().Format(time.RFC3339Nano)
		conn, err := sql.Open("sqlite", v.DSN(name))
		if err != nil {
			t.Fatal(err)
		}
		var n int
		qerr := conn.QueryRow(`SELECT count(*) FROM t`).Scan(&n)
		var got string
		if qerr == nil {
			got = MustDump(t, conn)
		}
		_ = conn.Close()
		if (rerr == nil) != (qerr == nil) || got != want {
			t.Errorf("at %s: VFS %s (err %v, %v), restore %s (err %v)", at.Format(time.RFC3339Nano), got, qerr, v.LastError(), want, rerr)
		}
	}
}

// "WaitReplicated ... honours its context", "returns once the insert is on
// the replica"; SyncStatus is InSync after it.
func TestREADME_WaitReplicatedAndSyncStatus(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenMonitoredDB(t, io_Discard{}, nil, nil)
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if err := db.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	want := MustDump(t, app)
	if got := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)); got != want {
		t.Fatalf("after WaitReplicated the replica restores %s, want %s", got, want)
	}
	st, err := db.SyncStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.InSync || st.LocalTXID != st.RemoteTXID || st.LocalTXID == 0 {
		t.Fatalf("SyncStatus after WaitReplicated: %+v", st)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := db.WaitReplicated(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitReplicated with a done context: %v", err)
	}
}

type io_Discard struct{}

func (io_Discard) Write(p []byte) (int, error) { return len(p), nil }

// Follow mode: applies new files, records its TXID in <output>-txid, and
// resumes from it after a restart, also across L0 files that retention
// removed meanwhile.
func TestREADME_FollowResume(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	db.L0Retention = time.Nanosecond
	rpCommitStates(t, db, app, 2)
	out := filepath.Join(t.TempDir(), "follow.db")
	follower := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(client.Path()))
	run := func() {
		t.Helper()
		stop := startFollow(follower, out)
		pos, _ := db.Pos()
		waitFor(t, 10*time.Second, "follower", func() bool {
			txid, _ := litestream.ReadTXIDFile(out)
			return txid >= pos.TXID
		})
		if err := stop(); err != nil {
			t.Fatalf("follow: %v", err)
		}
		if got, want := MustCheckRestored(t, out), MustDump(t, app); got != want {
			t.Fatalf("follower %s, source %s", got, want)
		}
	}
	run()
	for i := 10; i < 14; i++ {
		if _, err := app.Exec(`INSERT INTO t (id, v) VALUES (?, ?)`, i, i); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
		if i == 12 {
			if _, err := db.Compact(ctx, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("L0 %v", L0TXIDs(t, client))
	run()
}

// Snapshot retention keeps the newest snapshot however old; Replica.
// EnforceRetention works (upstream's panics).
func TestREADME_SnapshotRetentionKeepsNewest(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	rpCommitStates(t, db, app, 1)
	if _, err := db.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	rpCommitStates(t, db, app, 0)
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.EnforceSnapshotRetention(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	snaps := levelFiles(t, client, litestream.SnapshotLevel)
	if len(snaps) != 1 {
		t.Fatalf("%d snapshots kept, want the newest only", len(snaps))
	}
	if err := db.Replica.EnforceRetention(ctx); err != nil {
		t.Fatalf("Replica.EnforceRetention: %v", err)
	}
	if got, want := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)), MustDump(t, app); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
}

// "After ResetLocalState ... TXIDs continue after the replica's highest".
func TestREADME_ResetLocalStateContinuesTXIDs(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	_, states := rpCommitStates(t, db, app, 3)
	high := states[len(states)-1].txid
	if err := db.ResetLocalState(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (99)`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	pos, err := db.Pos()
	if err != nil {
		t.Fatal(err)
	}
	if pos.TXID <= high {
		t.Fatalf("after ResetLocalState the position is %s, not past the replica's %s", pos.TXID, high)
	}
	if got, want := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)), MustDump(t, app); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
	for _, s := range states {
		got, err := rpRestore(t, client, s.txid, time.Time{})
		if err != nil || got != s.dump {
			t.Fatalf("TXID %s after reset: %s %v, want %s", s.txid, got, err, s.dump)
		}
	}
}

// "A database another process creates at the output path during the restore
// is left alone and the restore fails (os.ErrExist); a second restore into
// the same output while one runs ... fails at once".
func TestREADME_RestoreOutputRaces(t *testing.T) {
	db, app, client := MustOpenDB(t, 4096)
	rpCommitStates(t, db, app, 2)
	out := filepath.Join(t.TempDir(), "out.db")
	entered := make(chan struct{}, 16)
	release := make(chan struct{})
	tc := &testClient{ReplicaClient: file.NewReplicaClient(client.Path())}
	tc.onOpen = func(level int) error {
		entered <- struct{}{}
		<-release
		return nil
	}
	errc := make(chan error, 1)
	go func() {
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = out
		errc <- litestream.NewReplicaWithClient(nil, tc).Restore(context.Background(), opt)
	}()
	<-entered
	// A second restore into the same output fails at once.
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = out
	ctx2, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(client.Path())).Restore(ctx2, opt)
	cancel()
	if err == nil {
		t.Errorf("a second restore into the same output succeeded while one ran")
	} else {
		t.Logf("second restore: %v", err)
	}
	// Another process creates the database meanwhile.
	if _, serr := os.Stat(out); serr == nil {
		t.Fatalf("output exists before the first restore completed (second restore: %v)", err)
	}
	if err := os.WriteFile(out, []byte("theirs"), 0o644); err != nil {
		t.Fatal(err)
	}
	close(release)
	err = <-errc
	if !errors.Is(err, os.ErrExist) {
		t.Errorf("restore whose output appeared meanwhile: %v, want os.ErrExist", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "theirs" {
		t.Errorf("the other process's file was replaced: %d bytes", len(b))
	}
}

// "A TXID restore reaches only TXIDs where some level has a file boundary
// (every TXID while its L0 file is retained)": after L0 retention a TXID at
// an L1 boundary restores exactly; one inside an L1 file fails with
// ErrTxNotAvailable.
func TestREADME_TXIDRestoreAfterL0Retention(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	_, states := rpCommitStates(t, db, app, 4)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	last := states[len(states)-1]
	if err := db.EnforceRetentionByTXID(ctx, 0, last.txid); err != nil {
		t.Fatal(err)
	}
	got, err := rpRestore(t, client, last.txid, time.Time{})
	if err != nil || got != last.dump {
		t.Fatalf("TXID %s at the L1 boundary: %s %v, want %s", last.txid, got, err, last.dump)
	}
	mid := states[1]
	got, err = rpRestore(t, client, mid.txid, time.Time{})
	if !errors.Is(err, litestream.ErrTxNotAvailable) {
		t.Fatalf("TXID %s inside L1: %s %v, want ErrTxNotAvailable", mid.txid, got, err)
	}
	t.Logf("inside L1: %v", err)
}

// Close does "final sync and upload": a commit made just before Close is on
// the replica though the intervals never came round.
func TestREADME_CloseUploads(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	app := MustOpenApp(t, path, 4096)
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db := MustNewDB(t, path, client)
	db.MonitorInterval = time.Hour
	db.Replica.SyncInterval = time.Hour
	store := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (7)`); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, client), 0)), MustDump(t, app); got != want {
		t.Fatalf("after Close the replica restores %s, want %s", got, want)
	}
}

// A host whose database file and -wal were removed but whose library
// directory (.db-litestream) was left from an older point of the same
// replica: EnsureExists restores the replica's latest state, and what the
// host commits next continues it; nothing of the replica is lost.
func TestREADME_EnsureExistsWithStaleMetaDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	replicaPath := filepath.Join(dir, "replica")
	pathA := filepath.Join(dir, "a", "app.db")
	if err := os.MkdirAll(filepath.Dir(pathA), 0o755); err != nil {
		t.Fatal(err)
	}
	appA := MustOpenApp(t, pathA, 4096)
	dbA := MustNewDB(t, pathA, file.NewReplicaClient(replicaPath))
	dbA.MonitorInterval = 0
	dbA.Replica.MonitorEnabled = false
	if err := dbA.Open(); err != nil {
		t.Fatal(err)
	}
	rpCommitStates(t, dbA, appA, 2)
	// Host B was the writer up to here: copy A's state as B's.
	pathB := filepath.Join(dir, "b", "app.db")
	if err := os.MkdirAll(filepath.Dir(pathB), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dbB_meta(pathB), os.DirFS(dbA.MetaPath())); err != nil {
		t.Fatal(err)
	}
	// A goes on.
	for i := 50; i < 53; i++ {
		if _, err := appA.Exec(`INSERT INTO t (id, v) VALUES (?, ?)`, i, i); err != nil {
			t.Fatal(err)
		}
		if err := dbA.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wantA := MustDump(t, appA)
	if err := dbA.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// B starts without its database but with its old library directory.
	dbB := MustNewDB(t, pathB, file.NewReplicaClient(replicaPath))
	dbB.MonitorInterval = 0
	dbB.Replica.MonitorEnabled = false
	if err := dbB.EnsureExists(ctx); err != nil {
		t.Fatal(err)
	}
	if got := MustCheckRestored(t, pathB); got != wantA {
		t.Fatalf("EnsureExists restored %s, want the replica's latest %s", got, wantA)
	}
	if err := dbB.Open(); err != nil {
		t.Fatal(err)
	}
	appB := MustOpenApp(t, pathB, 4096)
	if _, err := appB.Exec(`INSERT INTO t (id, v) VALUES (100, 100)`); err != nil {
		t.Fatal(err)
	}
	if err := dbB.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	want := MustDump(t, appB)
	if got := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, file.NewReplicaClient(replicaPath)), 0)); got != want {
		t.Fatalf("replica restores %s, want B's state %s (A's rows and B's new row)", got, want)
	}
}

func dbB_meta(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+litestream.MetaDirSuffix)
}

// "every LTX file's checksum is verified, and a corrupt or truncated file
// fails the restore with an error naming it" (and no output appears).
func TestREADME_RestoreCorruptFile(t *testing.T) {
	for _, damage := range []string{"flip", "truncate", "flip-header-timestamp"} {
		t.Run(damage, func(t *testing.T) {
			db, app, client := MustOpenDB(t, 4096)
			_, states := rpCommitStates(t, db, app, 3)
			if err := db.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			// Damage a copy of the replica (the cleanup verifies the original).
			copyDir := filepath.Join(t.TempDir(), "copy")
			if err := os.CopyFS(copyDir, os.DirFS(client.Path())); err != nil {
				t.Fatal(err)
			}
			name := ltx.FormatFilename(states[1].txid, states[1].txid)
			p := filepath.Join(copyDir, "ltx", "0", name)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			switch damage {
			case "flip":
				b[len(b)/2] ^= 0x10
			case "truncate":
				b = b[:len(b)-20]
			case "flip-header-timestamp":
				b[50] ^= 0x01 // inside the header
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := rpRestore(t, file.NewReplicaClient(copyDir), 0, time.Time{})
			if err == nil {
				t.Fatalf("restore through a damaged %s succeeded: %s (want %s)", name, got, states[2].dump)
			}
			if !strings.Contains(err.Error(), name) && !strings.Contains(err.Error(), states[1].txid.String()) {
				t.Errorf("error does not name %s: %v", name, err)
			}
			t.Logf("%v", err)
		})
	}
}

// EnsureExists restores over a -wal left beside the missing database by the
// database that was there before: the restored database is the replica's,
// not the replica's with the old WAL replayed into it.
func TestREADME_EnsureExistsRemovesStaleWAL(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	_, states := rpCommitStates(t, db, app, 2)
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	// An older database's -wal at path, holding commits.
	rpLeaveStaleWAL(t, path, 1000)
	db2 := litestream.NewDB(path)
	db2.Replica = litestream.NewReplicaWithClient(db2, file.NewReplicaClient(client.Path()))
	if err := db2.EnsureExists(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, path), states[1].dump; got != want {
		t.Fatalf("EnsureExists with a stale -wal beside: %s, want %s", got, want)
	}
}

// Events: "EventL0Written (a local L0 file), EventUploaded (that file
// reached the replica)", in order.
func TestREADME_EventsOrder(t *testing.T) {
	ctx := context.Background()
	db, app, _ := MustOpenDB(t, 4096)
	sub := db.Subscribe(0)
	defer sub.Close()
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	pos, _ := db.Pos()
	var written, uploaded bool
	timeout := time.After(5 * time.Second)
	for !uploaded {
		select {
		case e := <-sub.C:
			switch e.Type {
			case litestream.EventL0Written:
				written = true
			case litestream.EventUploaded:
				if !written {
					t.Fatalf("EventUploaded before EventL0Written: %+v", e)
				}
				if e.MaxTXID >= pos.TXID {
					uploaded = true
				}
			}
		case <-timeout:
			t.Fatalf("no EventUploaded reaching %s (written %v)", pos.TXID, written)
		}
	}
}

// rpHost is one host's database and library state, replicating to a shared
// replica path with manual syncs.
type rpHost struct {
	path string
	app  *sql.DB
	db   *litestream.DB
}

func rpOpenHost(t *testing.T, path, replicaPath string) *rpHost {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	h := &rpHost{path: path}
	h.db = MustNewDB(t, path, file.NewReplicaClient(replicaPath))
	h.db.MonitorInterval = 0
	h.db.Replica.MonitorEnabled = false
	h.db.ShutdownSyncTimeout = 0
	if err := h.db.EnsureExists(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.app = MustOpenApp(t, path, 4096)
	if err := h.db.Open(); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *rpHost) commit(t *testing.T, ids ...int) (states []rpState) {
	t.Helper()
	for _, id := range ids {
		if _, err := h.app.Exec(`INSERT INTO t (id, v, pad) VALUES (?, ?, randomblob(200))`, id, id); err != nil {
			t.Fatal(err)
		}
		if err := h.db.SyncAndWait(context.Background()); err != nil {
			t.Fatal(err)
		}
		pos, err := h.db.Pos()
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, rpState{dump: MustDump(t, h.app), txid: pos.TXID})
	}
	return states
}

func (h *rpHost) close(t *testing.T) {
	t.Helper()
	if err := h.db.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.app.Close(); err != nil {
		t.Fatal(err)
	}
}

// "A host that comes back with its own, older local database (a failback to
// the first machine) makes that database the replica's latest state: its
// first sync finds the replica ahead, takes the replica's newest TXID and
// writes a full snapshot of the local file after it. The other host's
// commits stay restorable by TXID and time, but are not in the latest
// state."
func TestREADME_FailbackWithOlderLocalDatabase(t *testing.T) {
	dir := t.TempDir()
	replicaPath := filepath.Join(dir, "replica")
	h1 := rpOpenHost(t, filepath.Join(dir, "h1", "app.db"), replicaPath)
	h1.commit(t, 1, 2, 3)
	h1.close(t)

	h2 := rpOpenHost(t, filepath.Join(dir, "h2", "app.db"), replicaPath)
	if got := MustDump(t, h2.app); got != func() string { return got }() {
		t.Fatal()
	}
	h2states := h2.commit(t, 4, 5, 6)
	h2.close(t)

	h1 = rpOpenHost(t, filepath.Join(dir, "h1", "app.db"), replicaPath)
	h1states := h1.commit(t, 7)
	client := file.NewReplicaClient(replicaPath)
	got, err := rpRestore(t, client, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if want := h1states[0].dump; got != want {
		t.Errorf("latest after failback: %s, want host 1's state %s", got, want)
	}
	if h1states[0].txid <= h2states[len(h2states)-1].txid {
		t.Errorf("host 1 continued at TXID %s, not after host 2's %s", h1states[0].txid, h2states[len(h2states)-1].txid)
	}
	for _, s := range h2states {
		got, err := rpRestore(t, client, s.txid, time.Time{})
		if err != nil || got != s.dump {
			t.Errorf("host 2's TXID %s: %s %v, want %s", s.txid, got, err, s.dump)
		}
	}
	h1.close(t)
}

// Follow mode: "A replica wiped and written again by another database is
// refused once its TXIDs reach the output's (before that ... the follower
// waits) ... when the files after the output's TXID rewrite every page ...
// the output becomes exactly the new database's state, never a mix of the
// two."
func TestREADME_FollowAfterReplicaWiped(t *testing.T) {
	for _, newCommits := range []int{1, 3, 12} {
		t.Run(fmt.Sprint(newCommits), func(t *testing.T) {
			dir := t.TempDir()
			replicaPath := filepath.Join(dir, "replica")
			a := rpOpenHost(t, filepath.Join(dir, "a", "app.db"), replicaPath)
			a.commit(t, 1, 2, 3, 4, 5)
			out := filepath.Join(dir, "follow.db")
			follower := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(replicaPath))
			stop := startFollow(follower, out)
			waitFollowed(t, a.db, out)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			a.close(t)
			if err := file.NewReplicaClient(replicaPath).DeleteAll(context.Background()); err != nil {
				t.Fatal(err)
			}
			b := rpOpenHost(t, filepath.Join(dir, "b", "app.db"), replicaPath)
			var ids []int
			for i := 0; i < newCommits; i++ {
				ids = append(ids, 100+i)
			}
			b.commit(t, ids...)
			want := MustDump(t, b.app)
			wantA := MustCheckRestored(t, out)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			opt := litestream.NewRestoreOptions()
			opt.OutputPath, opt.Follow, opt.FollowInterval = out, true, 20*time.Millisecond
			err := follower.Restore(ctx, opt)
			cancel()
			t.Logf("follow after wipe: %v", err)
			got := MustCheckRestored(t, out)
			switch {
			case newCommits < 5:
				// B is behind the output's TXID: nothing to apply yet, and
				// the output stays A's (the README: it waits).
				if err != nil || got != wantA {
					t.Fatalf("follower output %s, err %v; want A's %s untouched while the replica is behind it", got, err, wantA)
				}
			case got != want && (err == nil || !errors.Is(err, litestream.ErrLTXCorrupted)):
				// Refused is fine only if the output is still A's state
				// and the error says so.
				t.Fatalf("follower output %s after the replica was rewritten by another database (want %s or a refusal), err %v", got, want, err)
			case got != want && got != wantA:
				t.Fatalf("refused, but the output changed from A's %s to %s", wantA, got)
			}
			b.close(t)
		})
	}
}

// "a second DB on a replica another open DB uses ... fails to open ...
// unless the replica has a Leaser, which then decides which of them
// writes." Two DBs of one process, each with the setup line's leaser
// (default Owner "hostname:pid", the same for both): only one of them may
// write, and the replica restores one database's state.
func TestREADME_TwoDBsOneReplicaWithLeasers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	replicaPath := filepath.Join(dir, "replica")
	open := func(name string) (*litestream.DB, *sql.DB, error) {
		path := filepath.Join(dir, name)
		app := MustOpenApp(t, path, 4096)
		client := file.NewReplicaClient(replicaPath)
		db := litestream.NewDB(path)
		db.MonitorInterval = 0
		db.ShutdownSyncTimeout = 0
		db.Replica = litestream.NewReplicaWithClient(db, client)
		db.Replica.MonitorEnabled = false
		db.Replica.Leaser = client.NewLeaser()
		return db, app, db.Open()
	}
	db1, app1, err := open("one.db")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db1.Close(ctx) }()
	if _, err := app1.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if err := db1.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	db2, app2, err := open("two.db")
	if err != nil {
		t.Logf("second DB refused: %v", err)
		return
	}
	defer func() { _ = db2.Close(ctx) }()
	if _, err := app2.Exec(`INSERT INTO t (v) VALUES (2), (3)`); err != nil {
		t.Fatal(err)
	}
	err2 := db2.SyncAndWait(ctx)
	if _, err := app1.Exec(`INSERT INTO t (v) VALUES (4)`); err != nil {
		t.Fatal(err)
	}
	err1 := db1.SyncAndWait(ctx)
	t.Logf("db1 sync: %v; db2 sync: %v", err1, err2)
	if err1 == nil && err2 == nil {
		t.Errorf("both DBs wrote to one replica under leasers")
	}
	errs, err := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(replicaPath)).ValidateChain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Errorf("replica chain: %s", e.Message)
	}
	got, err := rpRestore(t, file.NewReplicaClient(replicaPath), 0, time.Time{})
	if err != nil {
		t.Fatalf("replica no longer restores: %v", err)
	}
	if got != MustDump(t, app1) && got != MustDump(t, app2) {
		t.Errorf("replica restores %s: neither db1 %s nor db2 %s", got, MustDump(t, app1), MustDump(t, app2))
	}
}

// "Nothing is registered on a global Prometheus registry".
func TestREADME_NoGlobalMetrics(t *testing.T) {
	db, app, _ := MustOpenDB(t, 4096)
	rpCommitStates(t, db, app, 1)
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "litestream") {
			t.Errorf("global registry holds %s", mf.GetName())
		}
	}
	reg := prometheus.NewRegistry()
	m, err := litestream.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMetrics(m)
	rpCommitStates(t, db, app, 0)
	mfs, err = reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, want := range []string{"litestream_replication_lag_seconds", "litestream_replication_lag_txids"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("registry lacks %s: %v", want, names)
		}
	}
}

// The control socket: permissions 0600, POST /sync with "wait": true
// returns once the replica has the commit, and an unknown route gets a JSON
// error naming the routes.
func TestREADME_ControlSocketSyncWait(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	app := MustOpenApp(t, path, 4096)
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db := MustNewDB(t, path, client)
	db.MonitorInterval = time.Hour
	db.Replica.SyncInterval = time.Hour
	store := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close(ctx) }()
	server := litestream.NewServer(store)
	sock, err := os.MkdirTemp("", "rp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sock)
	server.SocketPath = filepath.Join(sock, "s.sock")
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = server.Close() }()
	if fi, err := os.Stat(server.SocketPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", server.SocketPath)
	}}}
	time.Sleep(100 * time.Millisecond)
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (5)`); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(litestream.SyncRequest{Path: path, Wait: true})
	resp, err := hc.Post("http://x/sync", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var sr litestream.SyncResponse
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err := json.Unmarshal(b, &sr); err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /sync: %d %s", resp.StatusCode, b)
	}
	t.Logf("/sync: %s", b)
	if got, want := MustCheckRestored(t, MustRestore(t, litestream.NewReplicaWithClient(nil, file.NewReplicaClient(client.Path())), 0)), MustDump(t, app); got != want {
		t.Fatalf("after POST /sync wait the replica restores %s, want %s", got, want)
	}
	resp, err = hc.Get("http://x/nope")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	var er litestream.ErrorResponse
	if err := json.Unmarshal(b, &er); err != nil || resp.StatusCode < 400 || !strings.Contains(string(b), "/sync") {
		t.Errorf("unknown route: %d %s", resp.StatusCode, b)
	}
}

// With the backend failing, WaitReplicated honours its context and
// SyncStatus reports the failing run.
func TestREADME_WaitReplicatedBackendDown(t *testing.T) {
	ctx := context.Background()
	var down atomic.Bool
	var logs strings.Builder
	var mu sync.Mutex
	db, app, _ := MustOpenMonitoredDB(t, lockedWriter{&mu, &logs}, func(c litestream.ReplicaClient) litestream.ReplicaClient {
		tc := &testClient{ReplicaClient: c}
		tc.onWrite = func(level int, r io.Reader, write func(io.Reader) (*ltx.FileInfo, error)) (*ltx.FileInfo, error) {
			if down.Load() {
				return nil, errors.New("backend down")
			}
			return write(r)
		}
		return tc
	}, nil)
	if err := db.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	start := time.Now()
	err := db.WaitReplicated(short)
	cancel()
	if err == nil {
		t.Fatal("WaitReplicated succeeded with the backend down")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("WaitReplicated took %s past its 300ms context", took)
	}
	t.Logf("WaitReplicated: %v", err)
	time.Sleep(200 * time.Millisecond)
	st, err := db.SyncStatus(ctx)
	t.Logf("SyncStatus: %+v %v", st, err)
	if st.FailingSince.IsZero() || st.LastError == nil || st.InSync {
		t.Errorf("SyncStatus while the backend is down: %+v", st)
	}
	down.Store(false)
	if err := db.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ = db.SyncStatus(ctx)
	if !st.InSync || !st.FailingSince.IsZero() {
		t.Errorf("SyncStatus after recovery: %+v", st)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Restores to every time and every TXID of a replica holding L0, L1 and L2
// files and a snapshot, with a VACUUM that shrinks the database in the
// middle: exact while every L0 file is retained; after L0 retention, a time
// restore returns a committed state no newer than the time, and a TXID
// restore is exact or ErrTxNotAvailable.
func TestREADME_RestoreEveryTimeMixedLevels(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	var states []rpState
	step := func(sqls ...string) {
		t.Helper()
		for _, q := range sqls {
			if _, err := app.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
		pos, _ := db.Pos()
		time.Sleep(3 * time.Millisecond)
		states = append(states, rpState{dump: MustDump(t, app), txid: pos.TXID, after: time.Now()})
		time.Sleep(3 * time.Millisecond)
	}
	for i := 0; i < 4; i++ {
		step(fmt.Sprintf(`INSERT INTO t (v, pad) SELECT %d, randomblob(3000) FROM (SELECT 1 UNION SELECT 2 UNION SELECT 3)`, i))
	}
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	step(`UPDATE t SET v = v + 100 WHERE id % 2 = 0`)
	step(`DELETE FROM t WHERE id > 3`, `VACUUM`)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Compact(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	step(`INSERT INTO t (v) VALUES (7)`)
	step(`UPDATE t SET pad = randomblob(5000) WHERE id = 1`)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	step(`INSERT INTO t (v) VALUES (8)`)

	check := func(exact bool) {
		t.Helper()
		for i, s := range states {
			got, err := rpRestore(t, client, 0, s.after)
			if exact {
				if err != nil || got != s.dump {
					t.Errorf("time after state %d (TXID %s): %s %v, want %s", i, s.txid, got, err, s.dump)
				}
			} else if err == nil {
				ok := false
				for _, e := range states[:i+1] {
					ok = ok || e.dump == got
				}
				if !ok {
					t.Errorf("time after state %d: restored %s, no committed state at or before it", i, got)
				}
			} else if !errors.Is(err, litestream.ErrTxNotAvailable) {
				t.Errorf("time after state %d: %v", i, err)
			}
			got, err = rpRestore(t, client, s.txid, time.Time{})
			if exact || err == nil {
				if err != nil || got != s.dump {
					t.Errorf("TXID %s: %s %v, want %s", s.txid, got, err, s.dump)
				}
			} else if !errors.Is(err, litestream.ErrTxNotAvailable) {
				t.Errorf("TXID %s: %v", s.txid, err)
			}
		}
	}
	check(true)
	// L0 retention: every L0 file L1 covers goes.
	l1 := levelFiles(t, client, 1)
	if err := db.EnforceRetentionByTXID(ctx, 0, l1[len(l1)-1].MaxTXID+1); err != nil {
		t.Fatal(err)
	}
	t.Logf("L0 %v", L0TXIDs(t, client))
	check(false)
}

// "When the follower stops it tries for up to 2 seconds to copy the WAL into
// the database file, so the file alone is complete for other tools."
func TestREADME_FollowStopLeavesCompleteFile(t *testing.T) {
	db, app, client := MustOpenDB(t, 4096)
	rpCommitStates(t, db, app, 3)
	out := filepath.Join(t.TempDir(), "follow.db")
	stop := startFollow(litestream.NewReplicaWithClient(nil, file.NewReplicaClient(client.Path())), out)
	waitFollowed(t, db, out)
	if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (9, randomblob(9000))`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFollowed(t, db, out)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	alone := filepath.Join(t.TempDir(), "alone.db")
	if err := os.WriteFile(alone, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, alone), MustDump(t, app); got != want {
		t.Fatalf("the follower's output file alone holds %s, want %s", got, want)
	}
}

// Follow into an output that exists but was never a follower's (no -txid):
// the file is not replaced or changed.
func TestREADME_FollowIntoForeignExistingFile(t *testing.T) {
	db, app, client := MustOpenDB(t, 4096)
	rpCommitStates(t, db, app, 2)
	dir := t.TempDir()
	out := filepath.Join(dir, "mine.db")
	mine, err := sql.Open("sqlite", "file:"+out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mine.Exec(`CREATE TABLE mine (x); INSERT INTO mine VALUES ('precious')`); err != nil {
		t.Fatal(err)
	}
	_ = mine.Close()
	before, _ := os.ReadFile(out)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	opt := litestream.NewRestoreOptions()
	opt.OutputPath, opt.Follow, opt.FollowInterval = out, true, 20*time.Millisecond
	err = litestream.NewReplicaWithClient(nil, file.NewReplicaClient(client.Path())).Restore(ctx, opt)
	t.Logf("follow into a foreign file: %v", err)
	after, _ := os.ReadFile(out)
	if !bytes.Equal(before, after) {
		t.Fatalf("follow changed a database it did not create (%d bytes, then %d)", len(before), len(after))
	}
	if err == nil {
		t.Errorf("follow into an existing file without a -txid returned nil")
	}
}

// "a subscriber whose buffer ... is full misses events, and the next one it
// gets says how many in Missed."
func TestREADME_EventsMissed(t *testing.T) {
	ctx := context.Background()
	db, app, _ := MustOpenDB(t, 4096)
	sub := db.Subscribe(1)
	defer sub.Close()
	for i := 0; i < 5; i++ {
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	<-sub.C // the one buffered
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-sub.C:
		if e.Missed == 0 {
			t.Errorf("event after a full buffer: Missed = 0 (%+v)", e)
		}
		t.Logf("Missed %d", e.Missed)
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
}

// MaxSyncWALBytes "bounds the WAL bytes read per sync chunk, stopping at a
// commit boundary": with a small bound and transactions far larger, and
// several small ones between, every TXID of the replica restores a state the
// app committed, and WaitReplicated covers the large ones whole.
func TestREADME_MaxSyncWALBytesNeverSplitsATransaction(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenMonitoredDB(t, io_Discard{}, nil, func(db *litestream.DB) {
		db.MaxSyncWALBytes = 16 << 10
	})
	committed := map[string]bool{}
	snap := func() { committed[MustDump(t, app)] = true }
	snap()
	for round := 0; round < 3; round++ {
		tx, err := app.Begin()
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 60; i++ {
			if _, err := tx.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(4000))`, round); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		snap()
		for i := 0; i < 3; i++ {
			if _, err := app.Exec(`INSERT INTO t (v) VALUES (-1)`); err != nil {
				t.Fatal(err)
			}
			snap()
		}
		if err := db.WaitReplicated(ctx); err != nil {
			t.Fatal(err)
		}
		r := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(client.Path()))
		if got, want := MustCheckRestored(t, MustRestore(t, r, 0)), MustDump(t, app); got != want {
			t.Fatalf("after WaitReplicated: %s, want %s", got, want)
		}
	}
	for _, txid := range L0TXIDs(t, client) {
		got, err := rpRestore(t, client, txid, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if !committed[got] {
			t.Errorf("TXID %s restores %s, a state the app never committed", txid, got)
		}
	}
}

// "The highest is taken over L0, the compaction levels and the snapshots: a
// replica whose newest L0 files were removed (by hand, a partial copy) gets
// new TXIDs after its compacted files'", and the latest restore has them.
func TestREADME_ResetLocalStateAfterNewestL0Removed(t *testing.T) {
	ctx := context.Background()
	// Not MustOpenDB: its cleanup wants L0 dense, which removing files by
	// hand breaks.
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	app := MustOpenApp(t, path, 4096)
	client := file.NewReplicaClient(filepath.Join(dir, "replica"))
	db := litestream.NewDB(path)
	db.Replica = litestream.NewReplicaWithClient(db, client)
	db.MonitorInterval, db.ShutdownSyncTimeout = 0, 0
	db.Replica.MonitorEnabled = false
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close(ctx) }()
	_, states := rpCommitStates(t, db, app, 5)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	high := states[len(states)-1].txid
	// Remove the newest L0 files by hand.
	for _, info := range levelFiles(t, client, 0) {
		if info.MaxTXID > states[1].txid {
			if err := os.Remove(filepath.Join(client.Path(), "ltx", "0", ltx.FormatFilename(info.MinTXID, info.MaxTXID))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.ResetLocalState(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (77)`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	pos, _ := db.Pos()
	if pos.TXID <= high {
		t.Errorf("new TXID %s not after the compacted files' %s", pos.TXID, high)
	}
	if got, err := rpRestore(t, client, 0, time.Time{}); err != nil || got != MustDump(t, app) {
		t.Fatalf("latest: %s %v, want %s", got, err, MustDump(t, app))
	}
}

// Close with the backend down: the final upload is retried for
// ShutdownSyncTimeout, Close reports the failure, and the commit, kept in the
// local files, reaches the replica at the next start.
func TestREADME_CloseWithBackendDownThenRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	app := MustOpenApp(t, path, 4096)
	raw := file.NewReplicaClient(filepath.Join(dir, "replica"))
	var down atomic.Bool
	tc := &testClient{ReplicaClient: raw}
	tc.onWrite = func(level int, r io.Reader, write func(io.Reader) (*ltx.FileInfo, error)) (*ltx.FileInfo, error) {
		if down.Load() {
			return nil, errors.New("backend down")
		}
		return write(r)
	}
	open := func() *litestream.DB {
		db := litestream.NewDB(path)
		db.Replica = litestream.NewReplicaWithClient(db, tc)
		db.MonitorInterval = 20 * time.Millisecond
		db.Replica.SyncInterval = 10 * time.Millisecond
		db.ShutdownSyncTimeout, db.ShutdownSyncInterval = 300*time.Millisecond, 50*time.Millisecond
		if err := db.Open(); err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := open()
	if err := db.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := db.Close(ctx)
	t.Logf("Close with the backend down: %v (%s)", err, time.Since(start))
	if err == nil {
		t.Errorf("Close returned nil though the final upload failed")
	}
	want := MustDump(t, app)
	down.Store(false)
	db = open()
	if err := db.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := rpRestore(t, raw, 0, time.Time{}); err != nil || got != want {
		t.Fatalf("after restart: %s %v, want %s", got, err, want)
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	MustVerifyReplica(t, raw)
}

// "The date is the one in the file's LTX header; backends that cannot keep
// it as metadata (file, WebDAV) read each header of a level a restore to a
// time lists": a copy of a file replica, whose mtimes are the copy's time,
// still restores to every time exactly, and the VFS agrees.
func TestREADME_RestoreTimestampOfCopiedReplica(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	_, states := rpCommitStates(t, db, app, 4)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	more := func() {
		for i := 20; i < 22; i++ {
			if _, err := app.Exec(`INSERT INTO t (id, v) VALUES (?, ?)`, i, i); err != nil {
				t.Fatal(err)
			}
			if err := db.SyncAndWait(ctx); err != nil {
				t.Fatal(err)
			}
			pos, _ := db.Pos()
			time.Sleep(5 * time.Millisecond)
			states = append(states, rpState{dump: MustDump(t, app), txid: pos.TXID, after: time.Now()})
			time.Sleep(5 * time.Millisecond)
		}
	}
	more()
	time.Sleep(1100 * time.Millisecond) // the copy's mtimes are later than every state
	copyDir := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(copyDir, os.DirFS(client.Path())); err != nil {
		t.Fatal(err)
	}
	cc := file.NewReplicaClient(copyDir)
	for i, s := range states {
		got, err := rpRestore(t, cc, 0, s.after)
		if err != nil || got != s.dump {
			t.Errorf("copy, time after state %d: %s %v, want %s", i, got, err, s.dump)
		}
	}
	v := litestream.NewVFS(cc, nil)
	if err := v.Register(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = v.Close() }()
	for i, s := range states {
		conn, err := sql.Open("sqlite", v.DSN("app.db@"+s.after.UTC().Format(time.RFC3339Nano)))
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := conn.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
			t.Errorf("VFS on the copy, time after state %d: %v %v", i, err, v.LastError())
		} else if got := MustDump(t, conn); got != s.dump {
			t.Errorf("VFS on the copy, time after state %d: %s, want %s", i, got, s.dump)
		}
		_ = conn.Close()
	}
}

// "The one exception: when the files after the output's TXID rewrite every
// page (e.g. the new database's L1 file from TXID 1 spans it), the output
// becomes exactly the new database's state, never a mix of the two."
func TestREADME_FollowAfterReplicaWipedL1Spans(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	replicaPath := filepath.Join(dir, "replica")
	a := rpOpenHost(t, filepath.Join(dir, "a", "app.db"), replicaPath)
	a.commit(t, 1, 2, 3)
	out := filepath.Join(dir, "follow.db")
	follower := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(replicaPath))
	stop := startFollow(follower, out)
	waitFollowed(t, a.db, out)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	a.close(t)
	if err := file.NewReplicaClient(replicaPath).DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	b := rpOpenHost(t, filepath.Join(dir, "b", "app.db"), replicaPath)
	b.db.L0Retention = time.Nanosecond // L0 retention removes what L1 covers
	b.commit(t, 100, 101, 102, 103, 104, 105, 106, 107)
	if _, err := b.db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	b.commit(t, 108)
	t.Logf("B's L0 %v", L0TXIDs(t, file.NewReplicaClient(replicaPath)))
	want := MustDump(t, b.app)
	var logs strings.Builder
	_ = logs
	fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	opt := litestream.NewRestoreOptions()
	opt.OutputPath, opt.Follow, opt.FollowInterval = out, true, 20*time.Millisecond
	err := follower.Restore(fctx, opt)
	cancel()
	got := MustCheckRestored(t, out)
	txid, _ := litestream.ReadTXIDFile(out)
	t.Logf("follow: %v; output %s at %s; B %s", err, got, txid, want)
	if got != want {
		t.Errorf("follower output %s, want B's state %s (L1 from TXID 1 spans the output's TXID)", got, want)
	}
	b.close(t)
}

// VFS names: "name@latest" follows the latest TXID like "name"; a pinned
// TXID serves exactly that TXID; a TXID the replica does not hold fails, and
// LastError wraps ErrTxNotAvailable.
func TestREADME_VFSNames(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	_, states := rpCommitStates(t, db, app, 3)
	v := litestream.NewVFS(file.NewReplicaClient(client.Path()), nil)
	v.PollInterval = 20 * time.Millisecond
	if err := v.Register(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = v.Close() }()
	dump := func(name string) (string, error) {
		conn, err := sql.Open("sqlite", v.DSN(name))
		if err != nil {
			return "", err
		}
		defer conn.Close()
		var n int
		if err := conn.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
			return "", err
		}
		return MustDump(t, conn), nil
	}
	for _, name := range []string{"app.db", "app.db@latest"} {
		if got, err := dump(name); err != nil || got != states[2].dump {
			t.Errorf("%s: %s %v, want %s", name, got, err, states[2].dump)
		}
	}
	for _, s := range states {
		name := fmt.Sprintf("app.db@%016x", uint64(s.txid))
		if got, err := dump(name); err != nil || got != s.dump {
			t.Errorf("%s: %s %v, want %s", name, got, err, s.dump)
		}
	}
	// Following: a long-lived connection sees a new commit in its next
	// read transaction.
	conn, err := sql.Open("sqlite", v.DSN("app.db@latest"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetMaxOpenConns(1)
	if got := MustDump(t, conn); got != states[2].dump {
		t.Fatalf("latest %s", got)
	}
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (55)`); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	want := MustDump(t, app)
	waitFor(t, 5*time.Second, "the VFS to follow", func() bool { return MustDump(t, conn) == want })

	missing := fmt.Sprintf("app.db@%016x", uint64(states[2].txid)+50)
	if _, err := dump(missing); err == nil {
		t.Errorf("%s opened", missing)
	} else if !errors.Is(v.LastError(), litestream.ErrTxNotAvailable) {
		t.Errorf("%s: %v; LastError %v, want ErrTxNotAvailable", missing, err, v.LastError())
	}
}

// "At most Parallelism (default 8) files are read from the replica at once".
func TestREADME_RestoreParallelismBound(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	for i := 0; i < 30; i++ {
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(2000))`, i); err != nil {
			t.Fatal(err)
		}
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	want := MustDump(t, app)
	for _, par := range []int{0, 1, 3, 8} {
		tc := &testClient{ReplicaClient: file.NewReplicaClient(client.Path())}
		opt := litestream.NewRestoreOptions()
		if par != 8 {
			opt.Parallelism = par
		}
		opt.OutputPath = filepath.Join(t.TempDir(), "r.db")
		if err := litestream.NewReplicaWithClient(nil, tc).Restore(ctx, opt); err != nil {
			t.Fatal(err)
		}
		if got := MustCheckRestored(t, opt.OutputPath); got != want {
			t.Fatalf("parallelism %d: %s, want %s", par, got, want)
		}
		limit := int64(max(par, 1))
		if most := tc.mostOpen.Load(); most > limit {
			t.Errorf("parallelism %d: %d files open at once", par, most)
		} else {
			t.Logf("parallelism %d: at most %d open", par, most)
		}
	}
}

// rpLeaveStaleWAL leaves at path the -wal of an earlier database holding
// row id, and no database file: what removing a database without its -wal
// leaves behind. Closing checkpoints and removes the -wal, so it is copied
// aside first and put back.
func rpLeaveStaleWAL(t *testing.T, path string, id int) {
	t.Helper()
	prev, err := sql.Open("sqlite", testFileURI(path)+"?_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	prev.SetMaxOpenConns(1)
	if _, err := prev.Exec(`PRAGMA wal_autocheckpoint=0; CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER, pad BLOB); INSERT INTO t VALUES (?, ?, NULL)`, id, id); err != nil {
		t.Fatal(err)
	}
	wal, err := os.ReadFile(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	_ = prev.Close()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+"-wal", wal, 0o644); err != nil {
		t.Fatal(err)
	}
}
