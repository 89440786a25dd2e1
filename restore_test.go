// Tests of restore's input checks and parallelism.
package litestream_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// copyDir copies a fixture replica so that tests can damage it.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk(src, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, rel), b, 0o644); err != nil {
			return err
		}
		return os.Chtimes(filepath.Join(dst, rel), fi.ModTime(), fi.ModTime())
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// mustNothingLeft checks a failed restore left no output, temp or spool file.
func mustNothingLeft(t testing.TB, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Fatalf("failed restore left %s behind", e.Name())
	}
}

func fixtureReplica(t testing.TB, name string) (*litestream.Replica, string) {
	dir := copyDir(t, filepath.Join("testdata", "upstream", name, "replica"))
	return litestream.NewReplicaWithClient(nil, file.NewReplicaClient(dir)), dir
}

func TestReplica_Restore_BadInput(t *testing.T) {
	ctx := context.Background()

	t.Run("OutputExists", func(t *testing.T) {
		r, _ := fixtureReplica(t, "upstream-4096")
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = filepath.Join(t.TempDir(), "db")
		if err := os.WriteFile(opt.OutputPath, []byte("keep me"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := r.Restore(ctx, opt)
		if err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("err = %v, want output exists error", err)
		}
		if b, _ := os.ReadFile(opt.OutputPath); string(b) != "keep me" {
			t.Fatal("existing output was modified")
		}
	})

	t.Run("TXIDAndTimestamp", func(t *testing.T) {
		r, _ := fixtureReplica(t, "upstream-4096")
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = filepath.Join(t.TempDir(), "db")
		opt.TXID, opt.Timestamp = 3, time.Now()
		if err := r.Restore(ctx, opt); err == nil || !strings.Contains(err.Error(), "cannot specify index & timestamp") {
			t.Fatalf("err = %v", err)
		}
	})

	// Each error names the replica and what it holds, and still matches
	// ErrTxNotAvailable.
	t.Run("ErrTxNotAvailable", func(t *testing.T) {
		emptyDir := t.TempDir()
		missingDir := filepath.Join(t.TempDir(), "missing")
		r, dir := fixtureReplica(t, "upstream-4096")
		for name, tt := range map[string]struct {
			r    *litestream.Replica
			txid ltx.TXID
			ts   time.Time
			want []string
		}{
			"Empty":        {r: litestream.NewReplicaWithClient(nil, file.NewReplicaClient(emptyDir)), want: []string{`file replica "` + emptyDir + `"`, "no LTX files"}},
			"Missing":      {r: litestream.NewReplicaWithClient(nil, file.NewReplicaClient(missingDir)), want: []string{`file replica "` + missingDir + `"`, "does not exist"}},
			"TXIDTooHigh":  {r: r, txid: 999, want: []string{`file replica "` + dir + `"`, "TXID 00000000000003e7", "holds TXIDs 0000000000000001-0000000000000010"}},
			"TimeTooEarly": {r: r, ts: time.Unix(1, 0), want: []string{`file replica "` + dir + `"`, "1970-01-01T00:00:01Z", "holds TXIDs 0000000000000001-0000000000000010", "oldest file created 20"}},
		} {
			opt := litestream.NewRestoreOptions()
			out := t.TempDir()
			opt.OutputPath, opt.TXID, opt.Timestamp = filepath.Join(out, "db"), tt.txid, tt.ts
			err := tt.r.Restore(ctx, opt)
			if !errors.Is(err, litestream.ErrTxNotAvailable) {
				t.Fatalf("%s: err = %v, want ErrTxNotAvailable", name, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: err = %q, want it to contain %q", name, err, w)
				}
			}
			mustNothingLeft(t, out)
		}
	})

	// A flipped byte anywhere in any file of the plan fails the restore with
	// an error naming that file, and leaves nothing behind.
	t.Run("FlippedByte", func(t *testing.T) {
		_, src := fixtureReplica(t, "upstream-4096")
		plan, err := litestream.CalcRestorePlan(ctx, file.NewReplicaClient(src), 0, time.Time{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range plan {
			name := litestream.LTXFilePath("", info.Level, info.MinTXID, info.MaxTXID)
			for _, where := range []string{"header", "pages", "index", "trailer"} {
				r, dir := fixtureReplica(t, "upstream-4096")
				path := filepath.Join(dir, filepath.FromSlash(name))
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				offset := map[string]int{"header": 12, "pages": ltx.HeaderSize + 20, "index": len(b) - 30, "trailer": len(b) - 3}[where]
				b[offset] ^= 0x40
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				out := t.TempDir()
				opt := litestream.NewRestoreOptions()
				opt.OutputPath = filepath.Join(out, "db")
				err = r.Restore(ctx, opt)
				if err == nil {
					t.Fatalf("%s %s: restore succeeded from a corrupt file", name, where)
				}
				if !strings.Contains(err.Error(), name) {
					t.Fatalf("%s %s: error does not name the file: %v", name, where, err)
				}
				mustNothingLeft(t, out)
			}
		}
	})

	// Every kind of damage to a file in the middle of the plan (see
	// ltxDamages) fails the restore naming the file.
	t.Run("Damaged", func(t *testing.T) {
		victim := fuzzReplicaPlan(t, 0)[2] // L0 9: in the middle of L0 and of the plan
		for _, d := range ltxDamages() {
			t.Run(d.name, func(t *testing.T) {
				client := file.NewReplicaClient(copyDir(t, fuzzReplicaDir))
				d.damage(t, client, victim)
				out := t.TempDir()
				opt := litestream.NewRestoreOptions()
				opt.OutputPath = filepath.Join(out, "db")
				err := litestream.NewReplicaWithClient(nil, client).Restore(ctx, opt)
				mustNameDamaged(t, err, d, victim)
				mustNothingLeft(t, out)
			})
		}
	})

	// Another database's snapshot is newer than everything else, so only a
	// page size that differs from the rest of the chain gives it away.
	t.Run("OtherDBSnapshot", func(t *testing.T) {
		client := file.NewReplicaClient(copyDir(t, fuzzReplicaDir))
		snap := &ltx.FileInfo{Level: litestream.SnapshotLevel, MinTXID: 1, MaxTXID: 5}
		if err := os.MkdirAll(client.LTXLevelDir(snap.Level), 0o755); err != nil {
			t.Fatal(err)
		}
		b := mustReadFile(t, filepath.Join("testdata", "upstream", "upstream-1024", "replica", "ltx", "9", "0000000000000001-0000000000000005.ltx"))
		if err := os.WriteFile(client.LTXFilePath(snap.Level, snap.MinTXID, snap.MaxTXID), b, 0o644); err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = filepath.Join(out, "db")
		err := litestream.NewReplicaWithClient(nil, client).Restore(ctx, opt)
		if err == nil || !strings.Contains(err.Error(), "page size") {
			t.Fatalf("err = %v, want a page size error", err)
		}
		mustNothingLeft(t, out)
	})
}

// A database whose replica holds another database's files of a different
// page size refuses to sync into it instead of writing a broken chain.
func TestDB_Sync_ReplicaOfOtherPageSize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	app := MustOpenApp(t, path, 4096)
	if _, err := app.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	replicaDir := copyDir(t, filepath.Join("testdata", "upstream", "upstream-1024", "replica"))
	client := file.NewReplicaClient(replicaDir)
	db := MustNewDB(t, path, client)
	db.MonitorInterval = 0
	db.ShutdownSyncTimeout = 0
	db.Replica.MonitorEnabled = false
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}

	err := db.Sync(context.Background())
	if err == nil || !strings.Contains(err.Error(), "page size 1024") {
		t.Fatalf("sync err = %v, want a page size mismatch", err)
	}
	// Close's final sync meets the same replica and says so.
	if err := db.Close(context.Background()); err == nil || !strings.Contains(err.Error(), "page size 1024") {
		t.Fatalf("close err = %v, want a page size mismatch", err)
	}
	// The replica is left as it was: upstream's files.
	if txids := L0TXIDs(t, client); len(txids) != 16 {
		t.Fatalf("replica changed: %v", txids)
	}
	MustVerifyReplica(t, client)
}

func TestDB_Sync_NotSQLite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	if err := os.WriteFile(path, []byte("this is not a database, just text that is long enough"), 0o644); err != nil {
		t.Fatal(err)
	}
	db := MustNewDB(t, path, file.NewReplicaClient(filepath.Join(dir, "replica")))
	db.MonitorInterval = 0
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close(context.Background()) }()
	if err := db.Sync(context.Background()); err == nil || !strings.Contains(err.Error(), "not a SQLite database") {
		t.Fatalf("err = %v, want not a SQLite database", err)
	}
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), "this is not a database") {
		t.Fatal("the file was modified")
	}
}

// Restore reads at most Parallelism files from the replica at once, reads
// several at once when allowed, and still applies them in order.
func TestReplica_Restore_Parallelism(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	if _, err := app.Exec(`INSERT INTO t (id, v) VALUES (1, -1), (2, -1)`); err != nil {
		t.Fatal(err)
	}
	// Each L0 file rewrites the same rows: applied out of order, the
	// restore would end with an older value.
	for i := 0; i < 30; i++ {
		if _, err := app.Exec(`UPDATE t SET v = ? WHERE id IN (1, 2)`, i); err != nil {
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
	if n := len(L0TXIDs(t, client)); n < 30 {
		t.Fatalf("replica has %d L0 files, want a plan of at least 30", n)
	}

	for _, tt := range []struct {
		parallelism int
		gate        int64
		wantMax     int64 // exact, or the upper bound when gate > 0
	}{{1, 0, 1}, {4, 2, 4}} {
		t.Run(fmt.Sprint(tt.parallelism), func(t *testing.T) {
			c := &testClient{ReplicaClient: client, openGate: tt.gate}
			opt := litestream.NewRestoreOptions()
			opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
			opt.Parallelism = tt.parallelism
			if err := litestream.NewReplicaWithClient(nil, c).Restore(ctx, opt); err != nil {
				t.Fatal(err)
			}
			if got := MustCheckRestored(t, opt.OutputPath); got != want {
				t.Fatalf("restored %s, want %s", got, want)
			}
			maxN := c.mostOpen.Load()
			if tt.gate == 0 && maxN != tt.wantMax {
				t.Fatalf("max readers in flight %d, want %d", maxN, tt.wantMax)
			} else if tt.gate > 0 && (maxN < tt.gate || maxN > tt.wantMax) {
				t.Fatalf("max readers in flight %d, want %d..%d", maxN, tt.gate, tt.wantMax)
			}
			if n := c.open.Load(); n != 0 {
				t.Fatalf("%d readers left open", n)
			}
		})
	}
}

// A file is never dated before the commits it holds: a restore to a time
// taken just before a commit excludes it, even when the commit and its sync
// fall in that time's millisecond (header times are milliseconds).
func TestReplica_Restore_TimestampJustBeforeCommit(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	mustInsert(t, app, 0)
	if err := db.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	for try := 0; try < 100; try++ {
		before := MustDump(t, app)
		at := time.Now()
		mustInsert(t, app, try)
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
		l0 := levelFiles(t, client, 0)
		if newest := l0[len(l0)-1]; newest.CreatedAt.Before(at) {
			t.Fatalf("try %d: L0 %s-%s written after %s is dated %s", try, newest.MinTXID, newest.MaxTXID,
				at.Format(time.RFC3339Nano), newest.CreatedAt.Format(time.RFC3339Nano))
		}
		if try%20 == 0 {
			opt := litestream.NewRestoreOptions()
			opt.OutputPath = filepath.Join(t.TempDir(), "db")
			opt.Timestamp = at
			if err := db.Replica.Restore(ctx, opt); err != nil {
				t.Fatal(err)
			} else if got := MustCheckRestored(t, opt.OutputPath); got != before {
				t.Fatalf("try %d: restore to %s, just before a commit, holds %s, want %s", try, at.Format(time.RFC3339Nano), got, before)
			}
		}
	}
}

// A file replica on a file system that keeps mtimes to the second (FAT,
// HFS+, many network mounts; simulated by cutting them) must still restore
// by time to the state committed before it: the header timestamps decide,
// not mtimes rounded down to before later commits.
func TestReplica_Restore_TimestampOnCoarseMtimes(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	type state struct {
		dump string
		at   time.Time
	}
	var states []state
	for i := 0; i < 12; i++ {
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
		states = append(states, state{MustDump(t, app), time.Now()})
		time.Sleep(150 * time.Millisecond) // commits spread over whole seconds
	}
	err := filepath.WalkDir(filepath.Join(client.Path(), "ltx"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mt := fi.ModTime().Truncate(time.Second)
		return os.Chtimes(p, mt, mt)
	})
	if err != nil {
		t.Fatal(err)
	}
	r := litestream.NewReplicaWithClient(nil, client)
	checked := 0
	for i := 0; i+1 < len(states); i++ {
		if states[i+1].at.Truncate(time.Second).After(states[i].at) {
			continue // the next file's cut mtime is still after this state
		}
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = filepath.Join(t.TempDir(), "db")
		opt.Timestamp = states[i].at.Add(time.Millisecond)
		if err := r.Restore(ctx, opt); err != nil {
			t.Fatal(err)
		}
		if got := MustCheckRestored(t, opt.OutputPath); got != states[i].dump {
			t.Fatalf("restore at %s (after commit %d, before commit %d): got %s, want %s: it holds a commit made after the time", opt.Timestamp.Format(time.RFC3339Nano), i, i+1, got, states[i].dump)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no state had a later commit within its second")
	}
}
